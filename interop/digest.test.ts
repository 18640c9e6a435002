/**
 * Digest (RFC 7616, RFC 8760) on the wire, against real clients where they exist:
 * - sipsak (MD5 only) registers a user created with all three HA1s while the server
 *   offers MD5, SHA-256 and SHA-512-256 challenges in one 401; sipsak reads only the
 *   first challenge, so with SHA-256 first it gives up (why `sip.auth.algorithms`
 *   defaults to [MD5]);
 * - a REGISTER sipsak authorized, replayed from another socket with the same
 *   Authorization (same nonce and nc) and a new branch and Contact, is refused;
 *   the same bytes resent unchanged are a retransmission and get the same answer
 *   without a new binding;
 * - SHA-256 and SHA-512-256 answers over UDP (computed with src/auth/digest.ts,
 *   checked against the RFC 7616 vectors in test/auth: no independent SIP client
 *   here answers SHA-256 — baresip 1.0, sipsak, SIPp 3.6.1 and sip.js only do MD5).
 *
 * Ports: rtcedge 29460 (MD5 first) and 29470 (SHA-256 first); raw sockets on ephemeral loopback ports.
 */
import dgram from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWithPeers } from './harness/peers.js';
import { computeHA1, computeResponse, formatCredentials, parseAuthParams, type DigestAlgorithm } from '../src/auth/digest.js';
import { assertPortsFree } from './harness/ports.js';
import { stopAllStarted } from './harness/process.js';
import { startRtcedge, type Rtcedge } from './harness/rtcedge.js';
import { headerValues } from './harness/sip-log.js';
import { runSipsak, sipsakRegisterArgs } from './harness/sipsak.js';
import { makeTempDir, removeTempDir } from './harness/temp-dir.js';

const MD5_FIRST = 29460;
const SHA_FIRST = 29470;
const PW = { carol: 'carol-pw-9', erin: 'erin-pw-8' };
const REALM = 'example.test';

/** A UDP socket on 127.0.0.1 that sends text and collects what comes back. */
class RawUdp {
  readonly received: string[] = [];
  private constructor(readonly socket: dgram.Socket) {
    socket.on('message', (m) => this.received.push(m.toString('utf8')));
  }
  static async open(): Promise<RawUdp> {
    const s = dgram.createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
    return new RawUdp(s);
  }
  get port(): number {
    return this.socket.address().port;
  }
  send(text: string, port: number): void {
    this.socket.send(Buffer.from(text), port, '127.0.0.1');
  }
  /** Responses received so far whose Via carries `branch`, as status codes. */
  statuses(branch: string): number[] {
    return this.received.filter((m) => m.includes(`branch=${branch}`)).map((m) => Number(m.slice(8, 11)));
  }
  /** Waits (bounded) until a final response for `branch` arrives; returns it. */
  async final(branch: string, timeoutMs = 3000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = this.received.find((r) => r.includes(`branch=${branch}`) && Number(r.slice(8, 11)) >= 200);
      if (m) return m;
      if (Date.now() > deadline) throw new Error(`no final response for ${branch}; got ${this.received.map((r) => r.split('\r\n')[0]).join(' | ')}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  close(): void {
    this.socket.close();
  }
}

function register(o: { ua: RawUdp; server: number; user: string; branch: string; callId: string; cseq: number; contactPort: number; auth?: string }): string {
  return [
    `REGISTER sip:127.0.0.1:${o.server} SIP/2.0`,
    `Via: SIP/2.0/UDP 127.0.0.1:${o.ua.port};branch=${o.branch};rport`,
    'Max-Forwards: 70',
    `From: <sip:${o.user}@${REALM}>;tag=${o.callId.slice(0, 6)}`,
    `To: <sip:${o.user}@${REALM}>`,
    `Call-ID: ${o.callId}`,
    `CSeq: ${o.cseq} REGISTER`,
    `Contact: <sip:${o.user}@127.0.0.1:${o.contactPort}>`,
    'Expires: 60',
    ...(o.auth ? [`Authorization: ${o.auth}`] : []),
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');
}

const branch = () => `z9hG4bK${randomBytes(6).toString('hex')}`;

describeWithPeers(['baresip', 'sipsak'])('digest on the wire: several challenges, replay, SHA-256', () => {
  let dir: string;
  let md5First: Rtcedge | undefined;
  let shaFirst: Rtcedge | undefined;
  let ua: RawUdp | undefined;

  beforeAll(async () => {
    await assertPortsFree('127.0.0.1', [MD5_FIRST, SHA_FIRST]);
    dir = makeTempDir('digest');
    const users = [
      { aor: `carol@${REALM}`, password: PW.carol },
      { aor: `erin@${REALM}`, password: PW.erin },
    ];
    [md5First, shaFirst] = await Promise.all([
      startRtcedge({ dir: join(dir, 'md5'), ports: { udp: MD5_FIRST }, users, config: { sip: { auth: { algorithms: ['MD5', 'SHA-256', 'SHA-512-256'] } } } }),
      startRtcedge({ dir: join(dir, 'sha'), ports: { udp: SHA_FIRST }, users, config: { sip: { auth: { algorithms: ['SHA-256', 'SHA-512-256', 'MD5'] } } } }),
    ]);
    ua = await RawUdp.open();
  }, 60_000);

  afterAll(async () => {
    ua?.close();
    await Promise.all([md5First?.stop(), shaFirst?.stop()]);
    await stopAllStarted();
    removeTempDir(dir);
  });

  it('sipsak answers the first (MD5) of three challenges and registers a user holding all three HA1s', async () => {
    const r = await runSipsak(sipsakRegisterArgs({ target: `sip:carol@127.0.0.1:${MD5_FIRST}`, contact: 'sip:carol@127.0.0.1:29401', user: 'carol', password: PW.carol, expires: 60 }), { timeoutMs: 10_000 });
    expect(r.code, r.output).toBe(0);
    const challenge = md5First!.sipLog({ direction: 'send', status: 401, cseqMethod: 'REGISTER' })[0]!;
    const offered = headerValues(challenge.message, 'WWW-Authenticate').map((v) => parseAuthParams(v).params);
    expect(offered.map((p) => p.get('algorithm'))).toEqual(['MD5', 'SHA-256', 'SHA-512-256']);
    expect(new Set(offered.map((p) => p.get('nonce'))).size).toBe(1);
    expect(offered.every((p) => p.get('qop') === 'auth' && p.get('opaque'))).toBe(true);
    const authorized = md5First!.sipLog({ direction: 'recv', method: 'REGISTER' }).find((e) => headerValues(e.message, 'Authorization').length > 0)!;
    expect(parseAuthParams(headerValues(authorized.message, 'Authorization')[0]!).params.get('algorithm')).toBe('MD5');
    expect(md5First!.bindings(`sip:carol@${REALM}`).map((b) => b.contact_uri)).toEqual(['sip:carol@127.0.0.1:29401']);
  });

  it('sipsak reads only the first challenge: with SHA-256 first it gives up', async () => {
    const r = await runSipsak(sipsakRegisterArgs({ target: `sip:carol@127.0.0.1:${SHA_FIRST}`, contact: 'sip:carol@127.0.0.1:29402', user: 'carol', password: PW.carol, expires: 60 }), { timeoutMs: 10_000 });
    expect(r.code).not.toBe(0);
    expect(r.output).toMatch(/unsupported authentication algorithm/);
    expect(shaFirst!.bindings(`sip:carol@${REALM}`)).toEqual([]);
  });

  it('a replayed REGISTER (same Authorization, same nc) is refused; a retransmission creates nothing new', async () => {
    // The REGISTER sipsak authorized in the first test, as the server received it.
    const original = md5First!.sipLog({ direction: 'recv', method: 'REGISTER' }).find((e) => headerValues(e.message, 'Authorization').length > 0)!;
    const auth = headerValues(original.message, 'Authorization')[0]!;
    const lines = original.message.split(/\r?\n/);
    // An attacker who saw it resends it from elsewhere with its own branch and Contact: the Authorization does not cover them.
    const b1 = branch();
    const replay = lines
      .map((l) => (/^Via:/i.test(l) ? `Via: SIP/2.0/UDP 127.0.0.1:${ua!.port};branch=${b1};rport` : /^Contact:/i.test(l) ? 'Contact: <sip:mallory@127.0.0.1:29499>' : l))
      .join('\r\n');
    expect(replay).toContain(auth);
    ua!.send(replay, MD5_FIRST);
    const answer = await ua!.final(b1);
    expect(answer.split('\r\n')[0]).toBe('SIP/2.0 401 Unauthorized');
    expect(md5First!.bindings(`sip:carol@${REALM}`).map((b) => b.contact_uri)).toEqual(['sip:carol@127.0.0.1:29401']);

    // Our own REGISTER, authorized once, then the same bytes twice.
    const callId = randomBytes(8).toString('hex');
    const b2 = branch();
    ua!.send(register({ ua: ua!, server: MD5_FIRST, user: 'erin', branch: b2, callId, cseq: 1, contactPort: 29411 }), MD5_FIRST);
    const ch = await ua!.final(b2);
    const params = parseAuthParams(/WWW-Authenticate: (.*)/.exec(ch)![1]!).params;
    const uri = `sip:127.0.0.1:${MD5_FIRST}`;
    const nonce = params.get('nonce')!;
    const ha1 = computeHA1('MD5', 'erin', REALM, PW.erin);
    const response = computeResponse({ alg: 'MD5', ha1, method: 'REGISTER', uri, nonce, qop: 'auth', nc: '00000001', cnonce: 'abc123' });
    const creds = formatCredentials({ username: 'erin', realm: REALM, nonce, uri, response, algorithm: 'MD5', qop: 'auth', nc: '00000001', cnonce: 'abc123', opaque: params.get('opaque')! });
    const b3 = branch();
    const bytes = register({ ua: ua!, server: MD5_FIRST, user: 'erin', branch: b3, callId, cseq: 2, contactPort: 29412, auth: creds });
    ua!.send(bytes, MD5_FIRST);
    expect((await ua!.final(b3)).split('\r\n')[0]).toBe('SIP/2.0 200 OK');
    ua!.send(bytes, MD5_FIRST); // retransmission: the transaction answers again, nothing is processed twice
    await new Promise((r) => setTimeout(r, 300));
    expect(ua!.statuses(b3)).toEqual([200, 200]);
    expect(md5First!.sipLog({ direction: 'recv', method: 'REGISTER', callId }).length).toBe(3);
    // Same bytes with a new branch and CSeq (a new transaction) and another Contact: refused.
    const b4 = branch();
    const replayed = bytes.replace(b3, b4).replace('CSeq: 2 REGISTER', 'CSeq: 3 REGISTER').replace(':29412>', ':29413>');
    ua!.send(replayed, MD5_FIRST);
    expect((await ua!.final(b4)).split('\r\n')[0]).toBe('SIP/2.0 401 Unauthorized');
    expect(md5First!.bindings(`sip:erin@${REALM}`).map((b) => b.contact_uri)).toEqual(['sip:erin@127.0.0.1:29412']);
  });

  for (const alg of ['SHA-256', 'SHA-512-256'] as DigestAlgorithm[]) {
    it(`an answer to the ${alg} challenge registers; the same user answering MD5 also does`, async () => {
      for (const [a, contactPort] of [[alg, 29421], ['MD5', 29422]] as const) {
        const callId = randomBytes(8).toString('hex');
        const b1 = branch();
        ua!.send(register({ ua: ua!, server: SHA_FIRST, user: 'erin', branch: b1, callId, cseq: 1, contactPort }), SHA_FIRST);
        const ch = await ua!.final(b1);
        const chosen = [...ch.matchAll(/WWW-Authenticate: (.*)/g)].map((m) => parseAuthParams(m[1]!).params).find((p) => p.get('algorithm') === a)!;
        const uri = `sip:${REALM}`;
        const nonce = chosen.get('nonce')!;
        const response = computeResponse({ alg: a, ha1: computeHA1(a, 'erin', REALM, PW.erin), method: 'REGISTER', uri, nonce, qop: 'auth', nc: '00000001', cnonce: 'c1' });
        const creds = formatCredentials({ username: 'erin', realm: REALM, nonce, uri, response, algorithm: a, qop: 'auth', nc: '00000001', cnonce: 'c1' });
        const b2 = branch();
        ua!.send(register({ ua: ua!, server: SHA_FIRST, user: 'erin', branch: b2, callId, cseq: 2, contactPort, auth: creds }), SHA_FIRST);
        expect((await ua!.final(b2)).split('\r\n')[0], a).toBe('SIP/2.0 200 OK');
      }
      expect(shaFirst!.bindings(`sip:erin@${REALM}`).map((b) => b.contact_uri).sort()).toEqual(['sip:erin@127.0.0.1:29421', 'sip:erin@127.0.0.1:29422']);
    });
  }
});
