/**
 * Two nodes (in-process servers on one host, different ports) on one
 * redis-server: a challenge from one node answered at the other, bindings
 * registered at one found by the other, and the 503 + Retry-After while Redis
 * is down, with recovery by itself once it is back.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { describeWithPeers } from '../../interop/harness/peers.js';
import { startRedis, type TestRedis } from '../../interop/harness/redis.js';
import { makeTempDir, removeTempDir } from '../../interop/harness/temp-dir.js';
import { getHeader, type SipRequest, type SipResponse } from '../../src/sip/message.js';
import { RedisStore, credentialsFor } from '../../src/store/index.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import { UdpUa } from '../helpers/udp-ua.js';
import { TcpConnection } from '../helpers/tcp-ua.js';
import type { SipHeader } from '../../src/sip/message.js';

/** `req` as sent over a TCP connection from `port`: a TCP Via. */
function overTcp(req: SipRequest, port: number): SipRequest {
  const headers: SipHeader[] = req.headers.map((h) => (/^via$/i.test(h.name) ? { name: h.name, value: h.value.replace(/^SIP\/2\.0\/UDP 127\.0\.0\.1:\d+/, `SIP/2.0/TCP 127.0.0.1:${port}`) } : h));
  return { ...req, headers };
}

const REDIS_PORT = 26383;
const PORT_A = 5180;
const PORT_B = 5182;
const ADMIN_PORT_B = 27331;
const DOMAIN = 'example.test';

describeWithPeers(['redis-server'])('two nodes on one Redis store', () => {
  let dir: string;
  let redis: TestRedis;
  let a: TestServer;
  let b: TestServer;
  let store: RedisStore;
  beforeAll(async () => {
    dir = makeTempDir('shared-store');
    redis = await startRedis('127.0.0.1', REDIS_PORT, dir);
    const node = (port: number) => ({
      store: { type: 'redis', redis: { url: redis.url, key_prefix: 'nodes:', retry_after: 7, command_timeout: 500, connect_timeout: 500 } },
      node: { uri: `sip:127.0.0.1:${port};transport=tcp` },
      // Node B's admin API: it shows what Redis holds, not only B's cache.
      admin: port === PORT_B ? { listen: `127.0.0.1:${ADMIN_PORT_B}` } : { enabled: false },
    });
    const sip = (port: number) => ({ listen: [{ transport: 'udp', host: '127.0.0.1', port }, { transport: 'tcp', host: '127.0.0.1', port }] });
    a = await startTestServer({ name: 'node-a', sip: sip(PORT_A), users: { alice: 'alicepw', bob: 'bobpw' }, more: node(PORT_A) });
    b = await startTestServer({ name: 'node-b', sip: sip(PORT_B), more: node(PORT_B) });
    store = await new RedisStore(a.config.store.redis).connect();
  });
  afterAll(async () => {
    await store?.close();
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

  test('a binding over TCP at node B leads its Path with B and the flow: node A routes through B, B sends down the flow', async () => {
    const ua = await UdpUa.open();
    const tcp = await TcpConnection.connect(PORT_B);
    const contact = `<sip:carol@127.0.0.1:${tcp.localPort};transport=tcp>`;
    const reg = overTcp(ua.request('REGISTER', `sip:${DOMAIN}`, { from: `sip:bob@${DOMAIN}`, to: `sip:bob@${DOMAIN}`, contact }), tcp.localPort);
    tcp.send(reg);
    const challenge = (await tcp.waitFor((m) => m.kind === 'response' && m.status === 401)) as SipResponse;
    tcp.send(overTcp(ua.authorize(reg, challenge, 'bob', 'bobpw'), tcp.localPort));
    const ok = (await tcp.waitFor((m) => m.kind === 'response' && m.status === 200)) as SipResponse;
    // The node's own Path entry is not echoed (it is the registrar's, not a proxy's on the way).
    expect(getHeader(ok, 'path')).toBeUndefined();
    const stored = await store.listBindings(`sip:bob@${DOMAIN}`);
    const viaTcp = stored.find((b) => b.contactUri.includes(String(tcp.localPort)))!;
    expect(viaTcp.path).toHaveLength(1);
    expect(viaTcp.path[0]).toMatch(new RegExp(`^<sip:[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+@127\\.0\\.0\\.1:${PORT_B};transport=tcp;lr>$`));

    const alice = await UdpUa.open();
    const msg: SipRequest = { ...alice.request('MESSAGE', `sip:bob@${DOMAIN}`, { from: `sip:alice@${DOMAIN}`, to: `sip:bob@${DOMAIN}` }), body: Buffer.from('via B') };
    alice.send(msg, PORT_A);
    alice.send(alice.authorize(msg, await alice.response(msg), 'alice', 'alicepw'), PORT_A);
    const got = (await tcp.waitFor((m) => m.kind === 'request' && m.method === 'MESSAGE')) as SipRequest;
    const vias = got.headers.filter((h) => /^via$/i.test(h.name)).map((h) => h.value);
    expect(vias[0]).toMatch(new RegExp(`^SIP/2.0/TCP 127.0.0.1:${PORT_B};`));
    expect(vias[1]).toMatch(new RegExp(`^SIP/2.0/TCP 127.0.0.1:${PORT_A};`));
    expect(getHeader(got, 'route')).toBeUndefined();
    alice.close();
    ua.close();
    tcp.destroy();
  });

  // Node B reads alice's bindings through Redis (a cache Redis invalidates), never a copy pushed by node A.
  test.each([
    ['OPTIONS', 100, 200],
    ['INVITE', 10, 486],
  ] as const)('a binding registered or removed at node A is used by node B as soon as the 200 arrives, every time (%s)', async (method, rounds, answer) => {
    const alice = await UdpUa.open();
    const carol = await UdpUa.open();
    // Answers every request the nodes forward to alice (INVITE: 486 Busy Here, a final answer), so no transaction is left waiting.
    alice.socket.on('message', () => {
      const m = alice.received.at(-1);
      if (m?.kind !== 'request' || m.method !== method) return;
      const copy = m.headers.filter((h) => /^(via|from|to|call-id|cseq)$/i.test(h.name));
      alice.send({ kind: 'response', status: answer, reason: answer === 200 ? 'OK' : 'Busy Here', headers: copy, body: Buffer.alloc(0) }, PORT_B);
    });
    const register = async (contactUser: string, expires: number): Promise<void> => {
      const reg = alice.request('REGISTER', `sip:${DOMAIN}`, { from: `sip:alice@${DOMAIN}`, to: `sip:alice@${DOMAIN}`, contactUser, headers: [{ name: 'Expires', value: String(expires) }] });
      alice.send(reg, PORT_A);
      const authed = alice.authorize(reg, await alice.response(reg), 'alice', 'alicepw');
      alice.send(authed, PORT_A);
      expect((await alice.response(authed)).status).toBe(200);
    };
    const optionsAtB = (): SipRequest => {
      const opt = carol.request(method, `sip:alice@${DOMAIN}`, { from: 'sip:carol@elsewhere.test', to: `sip:alice@${DOMAIN}` });
      carol.send(opt, PORT_B);
      return opt;
    };
    for (let i = 0; i < rounds; i++) {
      await register(`v${i}`, 60);
      // No wait between the 200 from A and the request at B.
      const opt = optionsAtB();
      const callId = getHeader(opt, 'call-id');
      const got = (await alice.waitFor((m) => m.kind === 'request' && m.method === method && getHeader(m, 'call-id') === callId)) as SipRequest;
      expect(got.uri).toBe(`sip:v${i}@127.0.0.1:${alice.port}`);
      expect((await carol.response(opt)).status).toBe(answer);

      await register(`v${i}`, 0);
      // No binding left: the sender of another domain gets 404 (location-lookup), and nothing reaches alice.
      const gone = optionsAtB();
      expect((await carol.response(gone)).status).toBe(404);
      expect(alice.received.some((m) => m.kind === 'request' && getHeader(m, 'call-id') === getHeader(gone, 'call-id'))).toBe(false);
    }
    alice.close();
    carol.close();
  });

  test("node B's admin API lists and removes a binding registered at node A that B never looked up", async () => {
    const ua = await UdpUa.open();
    const reg = ua.request('REGISTER', `sip:${DOMAIN}`, { from: `sip:alice@${DOMAIN}`, to: `sip:alice@${DOMAIN}`, contactUser: 'admin-view' });
    ua.send(reg, PORT_A);
    const authed = ua.authorize(reg, await ua.response(reg), 'alice', 'alicepw');
    ua.send(authed, PORT_A);
    expect((await ua.response(authed)).status).toBe(200);
    const contact = `sip:admin-view@127.0.0.1:${ua.port}`;
    const api = `http://127.0.0.1:${ADMIN_PORT_B}/api/registrations`;
    const headers = { authorization: `Bearer ${readFileSync(join(b.config.data_dir, 'admin-token'), 'utf8').trim()}` };
    const contactsIn = (body: unknown): string[] =>
      (body as { aor: string; bindings: { contactUri: string }[] }[]).filter((r) => r.aor === `sip:alice@${DOMAIN}`).flatMap((r) => r.bindings.map((x) => x.contactUri));

    expect(contactsIn(await (await fetch(api, { headers })).json())).toContain(contact);
    const one = await fetch(`${api}?aor=${encodeURIComponent(`sip:alice@${DOMAIN}`)}`, { headers });
    expect(contactsIn(await one.json())).toContain(contact);

    const del = await fetch(`${api}?aor=${encodeURIComponent(`sip:alice@${DOMAIN}`)}&contact=${encodeURIComponent(contact)}`, { method: 'DELETE', headers });
    expect(await del.json()).toEqual({ removed: 1 });
    await expect.poll(async () => (await store.listBindings(`sip:alice@${DOMAIN}`)).map((x) => x.contactUri), { timeout: 2000 }).not.toContain(contact);
    ua.close();
  });

  test('a password changed in the store reaches the credential cache of every node within a second', async () => {
    const ua = await UdpUa.open();
    expect((await ua.register(PORT_A, 'bob', 'bobpw', DOMAIN)).status).toBe(200);
    expect((await ua.register(PORT_B, 'bob', 'bobpw', DOMAIN)).status).toBe(200);
    await store.setUserHa1('bob', DOMAIN, credentialsFor('bob', DOMAIN, 'newpw', ['MD5']));
    for (const port of [PORT_A, PORT_B]) {
      await expect.poll(async () => (await ua.register(port, 'bob', 'newpw', DOMAIN)).status, { timeout: 3000, interval: 200 }).toBe(200);
      expect((await ua.register(port, 'bob', 'bobpw', DOMAIN)).status).toBe(403);
    }
    await store.setUserHa1('bob', DOMAIN, credentialsFor('bob', DOMAIN, 'bobpw', ['MD5']));
    ua.close();
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
    // Node A, once its own connection is back, knows the binding node B stored after the outage.
    const bob = await UdpUa.open();
    let attempt = 0;
    const delivered = async (): Promise<boolean> => {
      const text = `back ${++attempt}`;
      const msg: SipRequest = { ...bob.request('MESSAGE', `sip:alice@${DOMAIN}`, { from: `sip:bob@${DOMAIN}`, to: `sip:alice@${DOMAIN}` }), body: Buffer.from(text) };
      bob.send(msg, PORT_A);
      bob.send(bob.authorize(msg, await bob.response(msg), 'bob', 'bobpw'), PORT_A);
      return ua.waitFor((m) => m.kind === 'request' && m.method === 'MESSAGE' && m.body.toString() === text, 1000).then(() => true, () => false);
    };
    await expect.poll(delivered, { timeout: 10_000, interval: 200 }).toBe(true);
    ua.close();
    bob.close();
  });
});
