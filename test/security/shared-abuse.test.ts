/**
 * Two nodes on one redis-server share call limits, bans and failed-authentication
 * counts: a user's concurrent calls count at both nodes; failures from one
 * address spread over both nodes reach the per-source limit together, and the
 * ban holds at both.
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import { describeWithPeers } from '../../interop/harness/peers.js';
import { startRedis, type TestRedis } from '../../interop/harness/redis.js';
import { makeTempDir, removeTempDir } from '../../interop/harness/temp-dir.js';
import { getHeader, type SipRequest } from '../../src/sip/message.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import { UdpUa } from '../helpers/udp-ua.js';

const REDIS_PORT = 26384;
const PORT_A = 5190;
const PORT_B = 5192;
const DOMAIN = 'example.test';

describeWithPeers(['redis-server'])('call limits and bans shared by two nodes on one Redis store', () => {
  let dir: string;
  let redis: TestRedis;
  const nodes: TestServer[] = [];
  beforeAll(async () => {
    dir = makeTempDir('shared-bans');
    redis = await startRedis('127.0.0.1', REDIS_PORT, dir);
    for (const port of [PORT_A, PORT_B]) {
      nodes.push(
        await startTestServer({
          name: `ban-node-${port}`,
          sip: {
            listen: [{ transport: 'udp', host: '127.0.0.1', port }],
            // Loopback is exempt by default; here it is the attacker.
            security: { exempt_sources: [], auth_failures: { per_source: 3, per_user: 0, window_seconds: 60, ban_seconds: 600 }, calls: { max_concurrent_per_user: 1 } },
          },
          users: port === PORT_A ? { alice: 'alicepw', bob: 'bobpw' } : {},
          more: { store: { type: 'redis', redis: { url: redis.url, key_prefix: 'bans:' } }, node: { uri: `sip:127.0.0.1:${port}` }, admin: { enabled: false } },
        }),
      );
    }
  });
  afterAll(async () => {
    for (const n of nodes) await n.stop();
    await redis?.stop();
    removeTempDir(dir);
  });

  /** A REGISTER for alice with a wrong password at `port`: resolves with the final status. */
  async function wrongPassword(ua: UdpUa, port: number): Promise<number> {
    const req = ua.request('REGISTER', `sip:${DOMAIN}`, { from: `sip:alice@${DOMAIN}`, to: `sip:alice@${DOMAIN}`, contactUser: 'alice' });
    ua.send(req, port);
    const authed = ua.authorize(req, await ua.response(req), 'alice', 'wrong');
    ua.send(authed, port);
    return (await ua.response(authed)).status;
  }

  test('a call of alice through node A counts at node B: her second concurrent call there gets 486, until the first ends', async () => {
    const bob = await UdpUa.open();
    expect((await bob.register(PORT_B, 'bob', 'bobpw', DOMAIN)).status).toBe(200);
    const alice = await UdpUa.open();
    /** An authenticated INVITE from alice to bob through `port`; returns the request with credentials. */
    const invite = async (port: number): Promise<SipRequest> => {
      const req: SipRequest = { ...alice.request('INVITE', `sip:bob@${DOMAIN}`, { from: `sip:alice@${DOMAIN}`, to: `sip:bob@${DOMAIN}` }), body: Buffer.from('v=0\r\n') };
      alice.send(req, port);
      const authed = alice.authorize(req, await alice.response(req, 407), 'alice', 'alicepw');
      alice.send(authed, port);
      return authed;
    };
    // The first call rings at bob (who does not answer yet): it is active.
    const first = await invite(PORT_A);
    const ringing = (await bob.waitFor((m) => m.kind === 'request' && m.method === 'INVITE')) as SipRequest;
    const second = await alice.response(await invite(PORT_B));
    expect(second.status).toBe(486);
    expect(second.reason).toBe('Busy Here: concurrent call limit');
    expect(bob.received.filter((m) => m.kind === 'request' && m.method === 'INVITE')).toHaveLength(1);

    // Bob declines the first call: its end leaves the shared count (sent within ENDED_BATCH_MS), and a call through B rings again.
    const copied = ringing.headers.filter((h) => /^(via|from|call-id|cseq)$/i.test(h.name));
    bob.send({ kind: 'response', status: 603, reason: 'Decline', headers: [...copied, { name: 'To', value: `${getHeader(ringing, 'to')};tag=bob1` }], body: Buffer.alloc(0) }, PORT_A);
    expect((await alice.response(first)).status).toBe(603);
    const before = bob.received.length;
    const admitted = async (): Promise<boolean> => {
      const authed = await invite(PORT_B);
      return alice.response(authed, undefined, 1000).then(
        (r) => !(r.status === 486 && r.reason === 'Busy Here: concurrent call limit'),
        () => true,
      );
    };
    await expect.poll(admitted, { timeout: 5000, interval: 100 }).toBe(true);
    await bob.waitFor((m) => m.kind === 'request' && m.method === 'INVITE', 3000, before);
    alice.close();
    bob.close();
  });

  test('two failures at node A and one at node B ban the source at both', async () => {
    const ua = await UdpUa.open();
    expect(await wrongPassword(ua, PORT_A)).toBe(403);
    expect(await wrongPassword(ua, PORT_A)).toBe(403);
    expect(await wrongPassword(ua, PORT_B)).toBe(403);
    // Banned now: neither node answers the source any more.
    for (const port of [PORT_A, PORT_B]) {
      await expect
        .poll(
          async () => {
            const opt: SipRequest = ua.request('OPTIONS', `sip:${DOMAIN}`, { from: `sip:alice@${DOMAIN}`, to: `sip:${DOMAIN}` });
            ua.send(opt, port);
            return ua.response(opt, undefined, 500).then((r) => getHeader(r, 'cseq'), () => 'no answer');
          },
          { timeout: 5000, interval: 100 },
        )
        .toBe('no answer');
    }
    ua.close();
  });
});
