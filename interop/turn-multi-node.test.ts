/**
 * TURN on two nodes of one Redis store: coturn's turnutils_uclient
 * allocates at each node with the password of a user added once to the
 * shared store, and with a REST API secret kept in Redis (`rtcedge turn
 * secret add`), not in either node's configuration; another secret is
 * refused. Allocations stay on the node that made them (each relays on its
 * own ports).
 *
 * Ports: Redis 26391; node A SIP 5280, TURN 33578, relays 33700-33749; node B
 * SIP 5282, TURN 33588, relays 33750-33799; turnutils_peer 33592.
 */
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWithPeers } from './harness/peers.js';
import { startRedis, type TestRedis } from './harness/redis.js';
import { makeTempDir, removeTempDir } from './harness/temp-dir.js';
import { runUclient, startTurnutilsPeer, stopTurnutilsPeer, uclientCounts } from './harness/turnutils.js';
import { RedisStore } from '../src/store/index.js';
import { configSchema } from '../src/config/schema.js';
import { startTestServer, type TestServer } from '../test/helpers/test-server.js';

const REDIS_PORT = 26391;
const PEER_PORT = 33592;
const SECRET = 'shared-rest-secret';
const NODES = [
  { sip: 5280, turn: 33578, relays: [33700, 33749] },
  { sip: 5282, turn: 33588, relays: [33750, 33799] },
] as const;

describeWithPeers(['turnutils_uclient', 'turnutils_peer', 'redis-server'])('TURN on two nodes of one Redis store', () => {
  let dir: string;
  let redis: TestRedis;
  let peer: ChildProcess | undefined;
  const servers: TestServer[] = [];

  beforeAll(async () => {
    dir = makeTempDir('turn-nodes');
    redis = await startRedis('127.0.0.1', REDIS_PORT, dir);
    peer = await startTurnutilsPeer(PEER_PORT);
    // The secret is in Redis before the nodes start (each reads the shared secrets at start, then every 10 s).
    const store = await new RedisStore(configSchema.parse({ store: { type: 'redis', redis: { url: redis.url, key_prefix: 'turn-nodes:' } }, node: { uri: 'sip:127.0.0.1' } }).store.redis).connect();
    await store.addTurnSecret(SECRET);
    await store.close();
    for (const [i, n] of NODES.entries()) {
      servers.push(
        await startTestServer({
          name: `turn-node-${i}`,
          sip: { listen: [{ transport: 'udp', host: '127.0.0.1', port: n.sip }] },
          users: i === 0 ? { alice: 'alicepw' } : {},
          more: {
            store: { type: 'redis', redis: { url: redis.url, key_prefix: 'turn-nodes:' } },
            node: { uri: `sip:127.0.0.1:${n.sip}` },
            admin: { enabled: false },
            turn: {
              enabled: true,
              listen: [{ transport: 'udp', host: '127.0.0.1', port: n.turn }],
              relay_address: '127.0.0.1',
              relay_port_min: n.relays[0],
              relay_port_max: n.relays[1],
              allow_loopback_peers: true,
            },
          },
        }),
      );
    }
  });

  afterAll(async () => {
    for (const s of servers) await s.stop();
    stopTurnutilsPeer(peer);
    await redis?.stop();
    removeTempDir(dir);
  });

  const relay = (port: number, ...creds: string[]) => runUclient(['-p', String(port), '-r', String(PEER_PORT), '-n', '10', '-c', '-e', '127.0.0.1', ...creds, '127.0.0.1']);

  it('a user of the shared store allocates and relays at either node', async () => {
    for (const n of NODES) {
      const r = await relay(n.turn, '-u', 'alice', '-w', 'alicepw');
      expect(uclientCounts(r.out), `node on ${n.turn}`).toEqual({ sent: 10, recv: 10 });
      expect(r.code).toBe(0);
    }
  });

  it('a REST API secret kept in Redis works at either node; another secret is refused', async () => {
    for (const n of NODES) {
      const r = await relay(n.turn, '-u', 'webrtc-user', '-W', SECRET);
      expect(uclientCounts(r.out), `node on ${n.turn}`).toEqual({ sent: 10, recv: 10 });
    }
    const bad = await relay(NODES[1].turn, '-u', 'webrtc-user', '-W', 'not-the-secret');
    expect(bad.code).not.toBe(0);
    expect(bad.out).toMatch(/Cannot complete Allocation|error 401/);
  });
});
