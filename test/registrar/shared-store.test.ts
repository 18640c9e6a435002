/**
 * Two nodes (in-process servers on one host, different ports) on one
 * redis-server: a challenge from one node answered at the other, bindings
 * registered at one found by the other, and the 503 + Retry-After while Redis
 * is down, with recovery by itself once it is back.
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import { describeWithPeers } from '../../interop/harness/peers.js';
import { startRedis, type TestRedis } from '../../interop/harness/redis.js';
import { makeTempDir, removeTempDir } from '../../interop/harness/temp-dir.js';
import { getHeader, type SipRequest } from '../../src/sip/message.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import { UdpUa } from '../helpers/udp-ua.js';

const REDIS_PORT = 26383;
const PORT_A = 5180;
const PORT_B = 5182;
const DOMAIN = 'example.test';

describeWithPeers(['redis-server'])('two nodes on one Redis store', () => {
  let dir: string;
  let redis: TestRedis;
  let a: TestServer;
  let b: TestServer;
  beforeAll(async () => {
    dir = makeTempDir('shared-store');
    redis = await startRedis('127.0.0.1', REDIS_PORT, dir);
    const node = (port: number) => ({
      store: { type: 'redis', redis: { url: redis.url, key_prefix: 'nodes:', retry_after: 7, command_timeout: 500, connect_timeout: 500 } },
      node: { uri: `sip:127.0.0.1:${port};transport=tcp` },
      admin: { enabled: false },
    });
    const sip = (port: number) => ({ listen: [{ transport: 'udp', host: '127.0.0.1', port }, { transport: 'tcp', host: '127.0.0.1', port }] });
    a = await startTestServer({ name: 'node-a', sip: sip(PORT_A), users: { alice: 'alicepw', bob: 'bobpw' }, more: node(PORT_A) });
    b = await startTestServer({ name: 'node-b', sip: sip(PORT_B), more: node(PORT_B) });
  });
  afterAll(async () => {
    await a?.stop();
    await b?.stop();
    await redis?.stop();
    removeTempDir(dir);
  });

  test('a challenge from node A is answered at node B; a binding made at B is used by A at once', async () => {
    const bob = await UdpUa.open();
    const reg = bob.request('REGISTER', `sip:${DOMAIN}`, { from: `sip:bob@${DOMAIN}`, to: `sip:bob@${DOMAIN}`, contactUser: 'bob' });
    bob.send(reg, PORT_A);
    const challenge = await bob.response(reg);
    expect(challenge.status).toBe(401);
    const authed = bob.authorize(reg, challenge, 'bob', 'bobpw');
    bob.send(authed, PORT_B);
    expect((await bob.response(authed)).status).toBe(200);

    const alice = await UdpUa.open();
    const msg: SipRequest = { ...alice.request('MESSAGE', `sip:bob@${DOMAIN}`, { from: `sip:alice@${DOMAIN}`, to: `sip:bob@${DOMAIN}` }), body: Buffer.from('hi') };
    alice.send(msg, PORT_A);
    const c407 = await alice.response(msg);
    expect(c407.status).toBe(407);
    alice.send(alice.authorize(msg, c407, 'alice', 'alicepw'), PORT_A);
    const got = (await bob.waitFor((m) => m.kind === 'request' && m.method === 'MESSAGE')) as SipRequest;
    expect(got.uri).toBe(`sip:bob@127.0.0.1:${bob.port}`);
    expect(getHeader(got, 'via')).toContain(`127.0.0.1:${PORT_A}`);
    alice.close();
    bob.close();
  });

  test('Redis down: REGISTER gets 503 with Retry-After from the store settings; the nodes recover by themselves', async () => {
    const ua = await UdpUa.open();
    await redis.stop();
    try {
      const res = await ua.register(PORT_A, 'alice', 'alicepw', DOMAIN);
      expect(res.status).toBe(503);
      expect(getHeader(res, 'retry-after')).toBe('7');
    } finally {
      await redis.start();
    }
    await expect.poll(async () => (await ua.register(PORT_B, 'alice', 'alicepw', DOMAIN)).status, { timeout: 15_000, interval: 500 }).toBe(200);
    // Node A sees the binding node B stored after the outage.
    const bob = await UdpUa.open();
    const msg: SipRequest = { ...bob.request('MESSAGE', `sip:alice@${DOMAIN}`, { from: `sip:bob@${DOMAIN}`, to: `sip:alice@${DOMAIN}` }), body: Buffer.from('back') };
    bob.send(msg, PORT_A);
    bob.send(bob.authorize(msg, await bob.response(msg), 'bob', 'bobpw'), PORT_A);
    await ua.waitFor((m) => m.kind === 'request' && m.method === 'MESSAGE', 5000);
    ua.close();
    bob.close();
  });
});
