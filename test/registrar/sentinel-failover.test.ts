/**
 * A node on a Sentinel-managed Redis (`store.redis.sentinels`): the primary
 * is killed, the Sentinel promotes the replica, and the node finds the new
 * primary by itself. Meanwhile REGISTERs get 200 or 503 with Retry-After,
 * nothing else; after the switch they get 200 and the binding is on the new
 * primary.
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import { describeWithPeers } from '../../interop/harness/peers.js';
import { startSentinelSet, type TestSentinelSet } from '../../interop/harness/redis.js';
import { makeTempDir, removeTempDir } from '../../interop/harness/temp-dir.js';
import { getHeader } from '../../src/sip/message.js';
import { configSchema } from '../../src/config/schema.js';
import { RedisStore } from '../../src/store/index.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import { UdpUa } from '../helpers/udp-ua.js';

const PORTS: [number, number, number] = [26395, 26396, 26397];
const SIP_PORT = 5194;
const DOMAIN = 'example.test';

describeWithPeers(['redis-server'])('a node on a Redis failing over under Sentinel', () => {
  let dir: string;
  let set: TestSentinelSet;
  let node: TestServer;
  beforeAll(async () => {
    dir = makeTempDir('sentinel');
    set = await startSentinelSet('127.0.0.1', PORTS, dir);
    node = await startTestServer({
      name: 'sentinel-node',
      sip: { listen: [{ transport: 'udp', host: '127.0.0.1', port: SIP_PORT }] },
      users: { alice: 'alicepw' },
      more: {
        store: { type: 'redis', redis: { sentinels: [set.sentinel], sentinel_name: 'mymaster', key_prefix: 'sentinel:', retry_after: 2, command_timeout: 500, connect_timeout: 500 } },
        node: { uri: `sip:127.0.0.1:${SIP_PORT}` },
        admin: { enabled: false },
      },
    });
  });
  afterAll(async () => {
    await node?.stop();
    await set?.stop();
    removeTempDir(dir);
  });

  test('the primary dies: 503 with Retry-After or 200 meanwhile, 200 again once the replica is promoted', async () => {
    const ua = await UdpUa.open();
    expect((await ua.register(SIP_PORT, 'alice', 'alicepw', DOMAIN)).status).toBe(200);
    const switched = set.switched(30_000);
    await set.primary.stop();
    const seen = new Set<string>();
    let ok = false;
    const deadline = Date.now() + 30_000;
    await switched;
    while (!ok && Date.now() < deadline) {
      const res = await ua.register(SIP_PORT, 'alice', 'alicepw', DOMAIN);
      seen.add(res.status === 503 ? `503 Retry-After ${getHeader(res, 'retry-after')}` : String(res.status));
      ok = res.status === 200;
      if (!ok) await new Promise((r) => setTimeout(r, 250));
    }
    expect([...seen], 'statuses seen').toContain('200');
    expect(ok).toBe(true);
    for (const s of seen) expect(s).toMatch(/^(200|503 Retry-After 2)$/);
    // The binding is on the promoted replica.
    const direct = await new RedisStore(configSchema.parse({ store: { type: 'redis', redis: { url: `redis://127.0.0.1:${PORTS[1]}`, key_prefix: 'sentinel:' } }, node: { uri: 'sip:127.0.0.1' } }).store.redis).connect();
    try {
      expect((await direct.listBindings(`sip:alice@${DOMAIN}`)).map((b) => b.contactUri)).toEqual([`sip:alice@127.0.0.1:${ua.port}`]);
      expect(await direct.redis.role()).toContain('master');
    } finally {
      await direct.close();
    }
    ua.close();
  });
});
