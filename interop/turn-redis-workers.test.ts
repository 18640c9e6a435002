/**
 * TURN in the primary of a node with two SIP workers on a Redis store (the
 * built CLI, `sip.workers: 2`): coturn's turnutils_uclient allocates with the
 * password of a user added to the shared store through the CLI, and with a
 * REST API secret kept in Redis (`rtcedge turn secret add`), not in the
 * configuration; another secret is refused. The primary reads both through
 * its own Redis connection.
 *
 * Ports: Redis 26398; SIP 27364; TURN 33604, relays 33800-33849; turnutils_peer 33606.
 */
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWithPeers } from './harness/peers.js';
import { startRedis, type TestRedis } from './harness/redis.js';
import { makeTempDir, removeTempDir } from './harness/temp-dir.js';
import { runUclient, startTurnutilsPeer, stopTurnutilsPeer, uclientCounts } from './harness/turnutils.js';
import { RedisStore } from '../src/store/index.js';
import { configSchema } from '../src/config/schema.js';
import { serveWorkers, type ServedWorkers } from '../test/cluster/harness.js';

const REDIS_PORT = 26398;
const SIP_PORT = 27364;
const TURN_PORT = 33604;
const PEER_PORT = 33606;
const SECRET = 'workers-rest-secret';
const DOMAIN = 'example.test';

describeWithPeers(['turnutils_uclient', 'turnutils_peer', 'redis-server'])('TURN in the primary of two SIP workers on a Redis store', () => {
  let dir: string;
  let redis: TestRedis | undefined;
  let peer: ChildProcess | undefined;
  let served: ServedWorkers | undefined;

  beforeAll(async () => {
    dir = makeTempDir('turn-redis-workers');
    redis = await startRedis('127.0.0.1', REDIS_PORT, dir);
    peer = await startTurnutilsPeer(PEER_PORT);
    const config = {
      domains: [DOMAIN],
      log: { level: 'info' },
      sip: { workers: 2, listen: [{ transport: 'udp', host: '127.0.0.1', port: SIP_PORT }] },
      store: { type: 'redis', redis: { url: redis.url, key_prefix: 'turn-workers:' } },
      node: { uri: `sip:127.0.0.1:${SIP_PORT}` },
      admin: { enabled: false },
      turn: {
        enabled: true,
        listen: [{ transport: 'udp', host: '127.0.0.1', port: TURN_PORT }],
        relay_address: '127.0.0.1',
        relay_port_min: 33800,
        relay_port_max: 33849,
        allow_loopback_peers: true,
      },
    };
    // The secret is in Redis before the node starts (the primary reads the shared secrets at start, then every 10 s).
    const store = await new RedisStore(configSchema.parse({ ...config, sip: {} }).store.redis).connect();
    await store.addTurnSecret(SECRET);
    await store.close();
    served = await serveWorkers('turn-redis-workers', config, DOMAIN, ['alice'], 'alicepw');
  }, 30_000);

  afterAll(async () => {
    await served?.stop();
    stopTurnutilsPeer(peer);
    await redis?.stop();
    removeTempDir(dir);
  });

  const relay = (...creds: string[]) => runUclient(['-p', String(TURN_PORT), '-r', String(PEER_PORT), '-n', '10', '-c', '-e', '127.0.0.1', ...creds, '127.0.0.1']);

  it('logs ready with both workers and TURN', () => {
    expect(served!.server.ready).toMatchObject({ workers: 2 });
    expect(JSON.stringify(served!.server.ready)).toContain(String(TURN_PORT));
  });

  it('a user of the shared store allocates and relays', async () => {
    const r = await relay('-u', 'alice', '-w', 'alicepw');
    expect(uclientCounts(r.out)).toEqual({ sent: 10, recv: 10 });
    expect(r.code).toBe(0);
  });

  it('a REST API secret kept in Redis works; another secret is refused', async () => {
    const r = await relay('-u', 'webrtc-user', '-W', SECRET);
    expect(uclientCounts(r.out)).toEqual({ sent: 10, recv: 10 });
    const bad = await relay('-u', 'webrtc-user', '-W', 'not-the-secret');
    expect(bad.code).not.toBe(0);
    expect(bad.out).toMatch(/Cannot complete Allocation|error 401/);
  });
});
