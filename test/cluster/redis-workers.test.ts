/**
 * `rtcedge serve` with `sip.workers: 2` on a Redis store (the built CLI as a
 * process, a real redis-server on loopback): each worker commits its own
 * bindings to Redis and reads them through its own cache, which Redis
 * invalidates; nothing of a binding travels over the worker mesh. Requests
 * carry Call-IDs chosen for the worker that must own them (callIdOwner), so a
 * registration through one worker is looked up by the other.
 *
 * Ports: 27360 (UDP and TCP), admin 27361; Redis 26394.
 */
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWithPeers } from '../../interop/harness/peers.js';
import { startRedis, type TestRedis } from '../../interop/harness/redis.js';
import { makeTempDir, removeTempDir } from '../../interop/harness/temp-dir.js';
import { runCliAsync, type ServeProcess } from '../cli/harness.js';
import { authenticatedInvite, callIdFor, guessingSource, serveWorkers, type ServedWorkers } from './harness.js';
import { UdpUa } from '../helpers/udp-ua.js';
import { TcpConnection } from '../helpers/tcp-ua.js';
import { createResponse } from '../../src/sip/response.js';
import { getHeader, type SipHeader, type SipRequest, type SipResponse } from '../../src/sip/message.js';
import { RedisStore } from '../../src/store/index.js';
import { configSchema } from '../../src/config/schema.js';
import { readBanFile } from '../../src/admin/ban-file.js';

const PORT = 27360;
const ADMIN_PORT = 27361;
const REDIS_PORT = 26394;
const DOMAIN = 'example.test';
const PW = 'redis-workers-pw';
const NODE_URI = `sip:127.0.0.1:${PORT};transport=tcp`;
const PER_SOURCE = 4;

describeWithPeers(['redis-server'])('two SIP workers of one node on a Redis store', () => {
  let redisDir: string;
  let redis: TestRedis | undefined;
  let served: ServedWorkers | undefined;
  let dir: string;
  let server: ServeProcess;
  let store: RedisStore | undefined;
  const uas: UdpUa[] = [];

  beforeAll(async () => {
    redisDir = makeTempDir('redis-workers-redis');
    redis = await startRedis('127.0.0.1', REDIS_PORT, redisDir);
    served = await serveWorkers(
      'redis-workers',
      {
        domains: [DOMAIN],
        log: { level: 'info', summary_interval: 1 },
        sip: {
          workers: 2,
          listen: [
            { transport: 'udp', host: '127.0.0.1', port: PORT },
            { transport: 'tcp', host: '127.0.0.1', port: PORT },
          ],
          security: {
            exempt_sources: [],
            source_rate: { requests_per_second: 1000, burst: 1000 },
            auth_failures: { per_source: PER_SOURCE, per_user: 0, ban_seconds: 600 },
            calls: { max_concurrent_per_user: 1, max_attempts_per_minute: 0 },
          },
        },
        store: { type: 'redis', redis: { url: redis.url, key_prefix: 'rw:', retry_after: 7, command_timeout: 500, connect_timeout: 500 } },
        node: { uri: NODE_URI },
        turn: { enabled: false },
        federation: { require_tls: false },
        admin: { listen: `127.0.0.1:${ADMIN_PORT}` },
      },
      DOMAIN,
      ['alice', 'bob', 'carol', 'dave', 'erin'],
      PW,
    );
    ({ dir, server } = served);
    const shared = configSchema.parse({ domains: [DOMAIN], store: { type: 'redis', redis: { url: redis.url, key_prefix: 'rw:' } }, node: { uri: NODE_URI } });
    store = await new RedisStore(shared.store.redis).connect();
  }, 30_000);

  afterAll(async () => {
    for (const ua of uas) ua.close();
    await store?.close();
    await served?.stop();
    await redis?.stop();
    removeTempDir(redisDir);
  });

  async function ua(): Promise<UdpUa> {
    const u = await UdpUa.open();
    uas.push(u);
    return u;
  }

  /** Register `contactUser` of `user` from `phone` with a Call-ID worker `owner` owns; resolves with the final response. */
  async function registerThrough(phone: UdpUa, user: string, contactUser: string, owner: number, expires = 60): Promise<SipResponse> {
    const reg = phone.request('REGISTER', `sip:${DOMAIN}`, {
      from: `sip:${user}@${DOMAIN}`,
      to: `sip:${user}@${DOMAIN}`,
      contactUser,
      callId: callIdFor(owner),
      headers: [{ name: 'Expires', value: String(expires) }],
    });
    phone.send(reg, PORT);
    const challenge = await phone.response(reg);
    if (challenge.status !== 401) return challenge;
    const authed = phone.authorize(reg, challenge, user, PW);
    phone.send(authed, PORT);
    return phone.response(authed);
  }

  it('logs ready once with both workers; no worker is a binding writer and bindings are read through Redis', () => {
    expect(server.ready).toMatchObject({ workers: 2, sip: [`udp:127.0.0.1:${PORT}`, `tcp:127.0.0.1:${PORT}`], domains: [DOMAIN] });
    const lines = server.stdout().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.filter((l) => l.msg === 'sip worker ready').map((l) => l.worker).sort()).toEqual([0, 1]);
    // Every worker's location service reads through Redis (its own connections), none loads or replicates bindings.
    expect(lines.filter((l) => l.msg === 'bindings read through the store into a bounded cache' && typeof l.worker === 'number').map((l) => l.worker).sort()).toEqual([0, 1]);
    expect(lines.some((l) => l.msg === 'bindings loaded')).toBe(false);
  });

  it('a binding registered or removed through either worker is used by the other as soon as the 200 arrives, every time', async () => {
    const bob = await ua();
    const carol = await ua();
    // Answers every OPTIONS forwarded to bob with 200, so no transaction is left waiting.
    bob.socket.on('message', () => {
      const m = bob.received.at(-1);
      if (m?.kind !== 'request' || m.method !== 'OPTIONS') return;
      bob.send(createResponse(m, 200), PORT);
    });
    const optionsOwnedBy = (owner: number): SipRequest => {
      const opt = carol.request('OPTIONS', `sip:bob@${DOMAIN}`, { from: 'sip:carol@elsewhere.test', to: `sip:bob@${DOMAIN}`, callId: callIdFor(owner) });
      carol.send(opt, PORT);
      return opt;
    };
    for (let i = 0; i < 40; i++) {
      const owner = i % 2;
      expect((await registerThrough(bob, 'bob', `v${i}`, owner)).status).toBe(200);
      // No wait between the 200 from one worker and the request owned by the other.
      const opt = optionsOwnedBy(1 - owner);
      const callId = getHeader(opt, 'call-id');
      const got = (await bob.waitFor((m) => m.kind === 'request' && m.method === 'OPTIONS' && getHeader(m, 'call-id') === callId)) as SipRequest;
      expect(got.uri, `round ${i}, registered through worker ${owner}`).toBe(`sip:v${i}@127.0.0.1:${bob.port}`);
      expect((await carol.response(opt)).status).toBe(200);

      expect((await registerThrough(bob, 'bob', `v${i}`, owner, 0)).status).toBe(200);
      const gone = optionsOwnedBy(1 - owner);
      expect((await carol.response(gone)).status, `round ${i}, removed through worker ${owner}`).toBe(404);
      expect(bob.received.some((m) => m.kind === 'request' && getHeader(m, 'call-id') === getHeader(gone, 'call-id'))).toBe(false);
    }
    // Only Redis carried the bindings: the store holds none of bob's now.
    expect(await store!.listBindings(`sip:bob@${DOMAIN}`)).toEqual([]);
  });

  it("a UA registered over a TCP connection (one worker's flow) is reached by INVITEs either worker owns, through the node's Path entry", async () => {
    const conn = await TcpConnection.connect(PORT);
    try {
      const tcpVia = (): SipHeader => ({ name: 'Via', value: `SIP/2.0/TCP 127.0.0.1:${conn.localPort};branch=z9hG4bK${randomBytes(8).toString('hex')}` });
      const overTcp = (r: SipRequest): SipRequest => ({ ...r, headers: r.headers.map((h) => (/^via$/i.test(h.name) ? tcpVia() : h)) });
      const helper = await ua();
      const contact = `<sip:carol@127.0.0.1:${conn.localPort};transport=tcp>`;
      // A REGISTER whose Call-ID each worker owns: the connection is on one of them, so one is handled by the other.
      for (const owner of [0, 1]) {
        const callId = callIdFor(owner);
        const reg = overTcp(helper.request('REGISTER', `sip:${DOMAIN}`, { from: `sip:carol@${DOMAIN}`, to: `sip:carol@${DOMAIN}`, callId, contact }));
        conn.send(reg);
        const challenge = (await conn.waitFor((m) => m.kind === 'response' && m.status === 401 && getHeader(m, 'call-id') === callId)) as SipResponse;
        conn.send(overTcp(helper.authorize(reg, challenge, 'carol', PW)));
        await conn.waitFor((m) => m.kind === 'response' && m.status === 200 && getHeader(m, 'call-id') === callId);
      }
      // The binding's Path leads with this node (a flow token of the worker holding the connection).
      const stored = await store!.listBindings(`sip:carol@${DOMAIN}`);
      expect(stored).toHaveLength(1);
      expect(stored[0]!.path).toHaveLength(1);
      expect(stored[0]!.path[0]).toMatch(new RegExp(`^<sip:[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+@127\\.0\\.0\\.1:${PORT};transport=tcp;lr>$`));

      const alice = await ua();
      for (const owner of [0, 1, 1, 0]) {
        const callId = callIdFor(owner);
        const invite = alice.request('INVITE', `sip:carol@${DOMAIN}`, { from: `sip:alice@${DOMAIN}`, to: `sip:carol@${DOMAIN}`, callId });
        alice.send(invite, PORT);
        const authed = alice.authorize(invite, await alice.response(invite, 407), 'alice', PW);
        alice.send(authed, PORT);
        const got = (await conn.waitFor((m) => m.kind === 'request' && m.method === 'INVITE' && getHeader(m, 'call-id') === callId)) as SipRequest;
        // The node's own Path entry was taken off, not routed to: no Route left, the request came down the flow.
        expect(getHeader(got, 'route')).toBeUndefined();
        conn.send(createResponse(got, 486, { toTag: 'ca401' }));
        const answered = await alice.response(authed);
        expect([answered.status, answered.reason], `INVITE owned by worker ${owner}`).toEqual([486, 'Busy Here']);
        // One call at a time per user (sip.security.calls): the end reaches Redis's count within 200 ms.
        await new Promise((r) => setTimeout(r, 400));
      }
    } finally {
      conn.destroy();
    }
  });

  it("the primary's admin API lists a binding a worker stored in Redis, and what it removes neither worker routes to", async () => {
    const erin = await ua();
    expect((await registerThrough(erin, 'erin', 'erin', 1)).status).toBe(200);
    const configFile = join(dir, 'rtcedge.yaml');
    const list = await runCliAsync(['reg', 'list', `erin@${DOMAIN}`, '--json', '-c', configFile], dir);
    expect(list.status, list.stderr).toBe(0);
    expect((JSON.parse(list.stdout) as { bindings: { contactUri: string }[] }[])[0]!.bindings.map((b) => b.contactUri)).toEqual([`sip:erin@127.0.0.1:${erin.port}`]);
    // Both workers hold erin's AOR in their caches before the removal.
    const alice = await ua();
    const message = async (owner: number, body: string): Promise<SipRequest> => {
      const req = alice.request('MESSAGE', `sip:erin@${DOMAIN}`, { from: `sip:alice@${DOMAIN}`, to: `sip:erin@${DOMAIN}`, callId: callIdFor(owner), body });
      alice.send(req, PORT);
      const authed = alice.authorize(req, await alice.response(req, 407), 'alice', PW);
      alice.send(authed, PORT);
      return authed;
    };
    for (const owner of [0, 1]) {
      const authed = await message(owner, `before ${owner}`);
      const got = (await erin.waitFor((m) => m.kind === 'request' && m.method === 'MESSAGE' && m.body.toString() === `before ${owner}`)) as SipRequest;
      erin.send(createResponse(got, 200, { toTag: 'e1' }), PORT);
      expect((await alice.response(authed)).status).toBe(200);
    }
    const del = await runCliAsync(['reg', 'del', `erin@${DOMAIN}`, '-c', configFile], dir);
    expect(del.status, del.stderr).toBe(0);
    expect(await store!.listBindings(`sip:erin@${DOMAIN}`)).toEqual([]);
    for (const owner of [0, 1]) {
      const authed = await message(owner, `gone ${owner}`);
      expect((await alice.response(authed)).status, `MESSAGE owned by worker ${owner}`).toBe(480);
    }
    expect(erin.received.filter((m) => m.kind === 'request' && m.method === 'MESSAGE' && m.body.toString().startsWith('gone'))).toEqual([]);
  });

  it('one concurrent call per user holds whichever worker owns each call (counted in Redis): the second gets 486 until the first ends', async () => {
    const bob = await ua();
    const alice = await ua();
    expect((await registerThrough(bob, 'bob', 'bob', 0)).status).toBe(200);
    const call = (owner: number) => authenticatedInvite(alice, PORT, DOMAIN, owner, 'alice', PW, 'bob');
    for (const [first, second] of [
      [0, 1],
      [1, 0],
    ] as const) {
      const a = await call(first);
      const ringing = (await bob.waitFor((m) => m.kind === 'request' && m.method === 'INVITE' && getHeader(m, 'call-id') === a.callId)) as SipRequest;
      const b = await call(second);
      const refused = await alice.response(b.authed);
      expect([refused.status, refused.reason], `second call owned by worker ${second}`).toEqual([486, 'Busy Here: concurrent call limit']);
      // bob declines the first call: it ends (the admitting worker takes it out of Redis's count), and the line is free.
      bob.send(createResponse(ringing, 603, { toTag: 'b0b' }), PORT);
      expect((await alice.response(a.authed)).status).toBe(603);
      // The end reaches Redis within 200 ms (ended calls are sent in batches).
      await new Promise((r) => setTimeout(r, 400));
      const c = await call(second);
      const got = (await bob.waitFor((m) => m.kind === 'request' && m.method === 'INVITE' && getHeader(m, 'call-id') === c.callId)) as SipRequest;
      bob.send(createResponse(got, 603, { toTag: 'b0c' }), PORT);
      expect((await alice.response(c.authed)).status).toBe(603);
      await new Promise((r) => setTimeout(r, 400));
    }
  });

  /** Every ban published on the node's channel from now on (a subscriber of its own), until `stop`. */
  async function banChannel(): Promise<{ bans: { address: string; reason: string }[]; stop(): Promise<void> }> {
    const sub = store!.redis.duplicate({ enableOfflineQueue: true });
    const bans: { address: string; reason: string }[] = [];
    sub.on('message', (_channel: string, text: string) => bans.push(JSON.parse(text) as { address: string; reason: string }));
    await sub.subscribe('rw:bans');
    return { bans, stop: async () => void (await sub.quit()) };
  }

  /** The `source banned` lines (warn) the node logged for `address` so far. */
  const bannedLines = (address: string): string[] => server.stdout().split('\n').filter((l) => l.includes('"msg":"source banned"') && l.includes(`"address":"${address}"`));

  it('failed authentications from one address reaching both workers ban it at per_source on both, published to Redis once, counted in Redis only', async () => {
    const channel = await banChannel();
    // A guessing UA on 127.0.0.2: REGISTERs with a wrong password, Call-IDs owned by each worker in turn.
    const helper = await ua();
    const guesser = await guessingSource(helper, PORT, DOMAIN);
    try {
      await guesser.guess(PER_SOURCE - 1);
      // The failures so far are counted in Redis, where every worker and node counts them (one count, not one per worker).
      await expect.poll(() => store!.redis.get('rw:authfail:127.0.0.2'), { timeout: 3000 }).toBe(String(PER_SOURCE - 1));
      await guesser.guess(1);
      // Failures on both workers: only a count kept in one place reaches 4. Now neither answers.
      for (const owner of [0, 1]) expect(await guesser.answered(owner), `OPTIONS owned by worker ${owner}`).toBe(false);
      // The ban is shared with other nodes through Redis.
      await expect.poll(async () => JSON.parse((await store!.redis.get('rw:ban:127.0.0.2')) ?? '{}').reason, { timeout: 3000 }).toBe('auth-failures');
      expect(await store!.redis.exists('rw:authfail:127.0.0.2')).toBe(0);
      // Published once, decided once: by the worker that counted the last failure, not again by the other or by
      // worker 0 on the other's behalf (the OPTIONS above took 2 s, time for any second publish to arrive).
      expect(channel.bans.filter((b) => b.address === '127.0.0.2').map((b) => b.reason)).toEqual(['auth-failures']);
      expect(bannedLines('127.0.0.2')).toHaveLength(1);
      // The other UAs (127.0.0.1) are not banned.
      expect((await helper.register(PORT, 'alice', PW, DOMAIN)).status).toBe(200);
    } finally {
      guesser.close();
      await channel.stop();
    }
  });

  it('a ban another node publishes holds on both workers, is logged once (worker 0) and published by neither worker again', async () => {
    const helper = await ua();
    const source = await guessingSource(helper, PORT, DOMAIN, '127.0.0.3');
    const channel = await banChannel();
    try {
      for (const owner of [0, 1]) expect(await source.answered(owner), `OPTIONS owned by worker ${owner} before the ban`).toBe(true);
      // As RedisAbuseChannel.publishBan of another node: the ban's key, then the message on the channel.
      const until = Date.now() + 600_000;
      await store!.redis.set('rw:ban:127.0.0.3', JSON.stringify({ reason: 'request-rate', until }), 'PXAT', until);
      expect(await store!.redis.publish('rw:bans', JSON.stringify({ address: '127.0.0.3', reason: 'request-rate', until, node: 'another-node/1' }))).toBe(3);
      await expect.poll(async () => (await source.answered(0)) || (await source.answered(1)), { timeout: 5000 }).toBe(false);
      for (const owner of [0, 1]) expect(await source.answered(owner), `OPTIONS owned by worker ${owner}`).toBe(false);
      await expect.poll(() => readBanFile(join(dir, 'data')).map((b) => b.address), { timeout: 3000 }).toContain('127.0.0.3');
      expect(bannedLines('127.0.0.3')).toHaveLength(1);
      expect(bannedLines('127.0.0.3')[0]).toContain('"sharedBy":"another node"');
      // Only the test's own message went over the channel: no worker published it again.
      expect(channel.bans.filter((b) => b.address === '127.0.0.3')).toHaveLength(1);
    } finally {
      source.close();
      await channel.stop();
    }
  });

  it('Redis down: REGISTER through either worker gets 503 with Retry-After; both recover by themselves and find what the other stored', async () => {
    const dave = await ua();
    await redis!.stop();
    try {
      for (const owner of [0, 1]) {
        const res = await registerThrough(dave, 'dave', 'dave', owner);
        expect(res.status, `REGISTER owned by worker ${owner}`).toBe(503);
        expect(getHeader(res, 'retry-after')).toBe('7');
      }
    } finally {
      await redis!.start();
    }
    for (const owner of [0, 1]) {
      await expect.poll(async () => (await registerThrough(dave, 'dave', `dave${owner}`, owner)).status, { timeout: 15_000, interval: 500 }).toBe(200);
    }
    // Each worker, once its connections are back, finds the bindings the other stored after the outage.
    const alice = await ua();
    let attempt = 0;
    const delivered = async (owner: number): Promise<boolean> => {
      const text = `back ${owner} ${++attempt}`;
      const req = alice.request('MESSAGE', `sip:dave@${DOMAIN}`, { from: `sip:alice@${DOMAIN}`, to: `sip:dave@${DOMAIN}`, callId: callIdFor(owner), body: text });
      alice.send(req, PORT);
      const challenge = await alice.response(req);
      if (challenge.status !== 407) return false;
      alice.send(alice.authorize(req, challenge, 'alice', PW), PORT);
      return dave.waitFor((m) => m.kind === 'request' && m.method === 'MESSAGE' && m.body.toString() === text, 1000).then(() => true, () => false);
    };
    for (const owner of [0, 1]) await expect.poll(() => delivered(owner), { timeout: 10_000, interval: 200 }).toBe(true);
    const uris = (await store!.listBindings(`sip:dave@${DOMAIN}`)).map((b) => b.contactUri).sort();
    expect(uris).toEqual([`sip:dave0@127.0.0.1:${dave.port}`, `sip:dave1@127.0.0.1:${dave.port}`]);
  });
});
