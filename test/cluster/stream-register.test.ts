/**
 * REGISTERs over one TLS connection to `rtcedge serve` with `sip.workers: 2`:
 * a REGISTER to our domain is answered by the worker holding the connection
 * whichever worker owns its Call-ID (its challenges name that worker as
 * nonce issuer), the bindings it stores are found through both workers,
 * credentials are checked by the worker that issued their nonce (a replay,
 * a changed nonce and a wrong password still fail), and a REGISTER for
 * another domain is still proxied by its Call-ID's owner (whose client
 * transaction gets the downstream answer). flowRegisterWorker's choices,
 * busy worker included, are checked directly.
 *
 * Ports: 27370 (UDP and TLS), admin 27371; the other domain's registrar: UDP 127.0.0.2:27372.
 */
import dgram from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callIdFor, serveWorkers, twoWorkersConfig, type ServedWorkers } from './harness.js';
import { UdpUa } from '../helpers/udp-ua.js';
import { TcpConnection } from '../helpers/tcp-ua.js';
import { createResponse } from '../../src/sip/response.js';
import { parseMessage } from '../../src/sip/parser.js';
import { serializeMessage } from '../../src/sip/serializer.js';
import { parseAuthParams } from '../../src/auth/digest.js';
import { nonceIssuer } from '../../src/auth/nonce.js';
import { getHeader, type SipHeader, type SipMessage, type SipRequest, type SipResponse } from '../../src/sip/message.js';

const PORT = 27370;
const FOREIGN_PORT = 27372;
const DOMAIN = 'example.test';
const PW = 'stream-pw';

describe('REGISTERs over one TLS connection to two SIP workers', () => {
  let served: ServedWorkers | undefined;
  let conn: TcpConnection;
  /** Builds and authorizes the requests that travel over the connection (its own socket is not used for them). */
  let helper: UdpUa;
  const uas: UdpUa[] = [];

  beforeAll(async () => {
    served = await serveWorkers('stream-register', twoWorkersConfig(DOMAIN, PORT, 'tls', 27371), DOMAIN, ['alice', 'bob', 'carol', 'dave'], PW);
    conn = await TcpConnection.connectTls(PORT);
    helper = await ua();
  }, 30_000);

  afterAll(async () => {
    conn?.destroy();
    for (const u of uas) u.close();
    await served?.stop();
  });

  async function ua(): Promise<UdpUa> {
    const u = await UdpUa.open();
    uas.push(u);
    return u;
  }

  /** `req` as sent over the connection: a TLS top Via naming its local port. */
  function overTls(req: SipRequest): SipRequest {
    const via: SipHeader = { name: 'Via', value: `SIP/2.0/TLS 127.0.0.1:${conn.localPort};branch=z9hG4bK${randomBytes(8).toString('hex')}` };
    return { ...req, headers: req.headers.map((h) => (/^via$/i.test(h.name) ? via : h)) };
  }

  /** A REGISTER of `user` to `uri` with Call-ID `callId` and a Contact on the connection. */
  function register(user: string, callId: string, uri = `sip:${DOMAIN}`): SipRequest {
    return overTls(helper.request('REGISTER', uri, { from: `sip:${user}@${DOMAIN}`, to: `sip:${user}@${DOMAIN}`, callId, contact: `<sip:${user}@127.0.0.1:${conn.localPort};transport=tls>` }));
  }

  /** Send `req` over the connection; resolves with its final response (same Call-ID and CSeq). */
  function exchange(req: SipRequest, timeoutMs = 3000): Promise<SipResponse> {
    const since = conn.received.length;
    conn.send(req);
    const callId = getHeader(req, 'call-id');
    const cseq = getHeader(req, 'cseq');
    return conn.waitFor(
      (m) => conn.received.indexOf(m) >= since && m.kind === 'response' && m.status >= 200 && getHeader(m, 'call-id') === callId && getHeader(m, 'cseq') === cseq,
      timeoutMs,
    ) as Promise<SipResponse>;
  }

  function challengeParams(res: SipResponse): Map<string, string> {
    return parseAuthParams(getHeader(res, res.status === 401 ? 'www-authenticate' : 'proxy-authenticate') ?? '', 'digest').params;
  }

  /** The worker that holds the connection: the nonce issuer of a challenge answered over it (set by the first test). */
  let holder = -1;

  it('answers a REGISTER whose Call-ID either worker owns from the worker holding the connection, and stores the binding', async () => {
    const issuers: number[] = [];
    for (const owner of [0, 1]) {
      const reg = register('alice', callIdFor(owner));
      const challenge = await exchange(reg);
      expect(challenge.status, `REGISTER owned by worker ${owner}`).toBe(401);
      issuers.push(nonceIssuer(challengeParams(challenge).get('nonce')!)!);
      const ok = await exchange(overTls(helper.authorize(reg, challenge, 'alice', PW)));
      expect(ok.status, `REGISTER owned by worker ${owner}`).toBe(200);
      expect(getHeader(ok, 'contact')).toContain(`127.0.0.1:${conn.localPort};transport=tls`);
    }
    // Both challenges came from one worker, whichever owned the Call-ID: the one holding the connection.
    expect(issuers[0]).toBe(issuers[1]);
    expect([0, 1]).toContain(issuers[0]);
    holder = issuers[0];
  });

  it('reaches the binding registered over the connection from requests either worker owns', async () => {
    const bob = await ua();
    for (const owner of [0, 1, 1, 0]) {
      const callId = callIdFor(owner);
      const req = bob.request('MESSAGE', `sip:alice@${DOMAIN}`, { from: `sip:bob@${DOMAIN}`, to: `sip:alice@${DOMAIN}`, callId, body: 'hi' });
      bob.send(req, PORT);
      const authed = bob.authorize(req, await bob.response(req, 407), 'bob', PW);
      bob.send(authed, PORT);
      const got = (await conn.waitFor((m) => m.kind === 'request' && m.method === 'MESSAGE' && getHeader(m, 'call-id') === callId)) as SipRequest;
      conn.send(createResponse(got, 200, { toTag: 'a11ce' }));
      expect((await bob.response(authed)).status, `MESSAGE owned by worker ${owner}`).toBe(200);
    }
  });

  it("checks credentials where their nonce was issued: the other worker's nonce, a replayed nonce count, a nonce changed on the way, a wrong password", async () => {
    expect(holder).toBeGreaterThanOrEqual(0);
    const other = 1 - holder;
    // The challenge comes over UDP, from the Call-ID's owner: the worker that does not hold the connection.
    const callId = callIdFor(other);
    const phone = await ua();
    const first = phone.request('REGISTER', `sip:${DOMAIN}`, { from: `sip:carol@${DOMAIN}`, to: `sip:carol@${DOMAIN}`, callId, contactUser: 'carol' });
    phone.send(first, PORT);
    const udpChallenge = await phone.response(first, 401);
    expect(nonceIssuer(challengeParams(udpChallenge).get('nonce')!)).toBe(other);
    // The credentials come over the connection: checked by the issuer, which keeps the nonce's counts. No stale challenge.
    const moved = overTls(phone.authorize(first, udpChallenge, 'carol', PW));
    expect((await exchange(moved)).status).toBe(200);
    // The same nonce count again (over UDP, to the issuer that owns the Call-ID): a replay, refused.
    const replay = phone.authorize(first, udpChallenge, 'carol', PW);
    phone.send(replay, PORT);
    expect((await phone.response(replay)).status).toBe(401);

    // A nonce changed on the way (its MAC): a fresh challenge, then the registration goes through.
    const reg = register('dave', callIdFor(other));
    const challenge = await exchange(reg);
    expect(challenge.status).toBe(401);
    const nonce = challengeParams(challenge).get('nonce')!;
    const bad = nonce.slice(0, 30) + (nonce[30] === 'A' ? 'B' : 'A') + nonce.slice(31);
    const tampered = overTls(helper.authorize(reg, { ...challenge, headers: challenge.headers.map((h) => (/^www-authenticate$/i.test(h.name) ? { name: h.name, value: h.value.replace(nonce, bad) } : h)) }, 'dave', PW));
    const again = await exchange(tampered);
    expect(again.status).toBe(401);
    expect(challengeParams(again).get('nonce')).not.toBe(bad);

    // A wrong password: refused, nothing stored.
    const refused = await exchange(overTls(helper.authorize(tampered, again, 'dave', 'not-the-password')));
    expect([401, 403]).toContain(refused.status);
    const probe = await ua();
    const msg = probe.request('MESSAGE', `sip:dave@${DOMAIN}`, { from: `sip:bob@${DOMAIN}`, to: `sip:dave@${DOMAIN}`, callId: callIdFor(holder), body: 'x' });
    probe.send(msg, PORT);
    const authed = probe.authorize(msg, await probe.response(msg, 407), 'bob', PW);
    probe.send(authed, PORT);
    // Dave has no binding: 480 for a local sender (location-lookup).
    expect((await probe.response(authed)).status).toBe(480);

    // The right password after all that: registered through the connection's worker.
    const last = register('dave', callIdFor(other));
    const lastChallenge = await exchange(last);
    expect(nonceIssuer(challengeParams(lastChallenge).get('nonce')!)).toBe(holder);
    expect((await exchange(overTls(helper.authorize(last, lastChallenge, 'dave', PW)))).status).toBe(200);
  });

  it("proxies a REGISTER for another domain through its Call-ID's owner: the downstream 200 ends its client transaction", async () => {
    expect(holder).toBeGreaterThanOrEqual(0);
    const foreign = dgram.createSocket('udp4');
    const got: SipRequest[] = [];
    foreign.on('message', (data) => {
      const m: SipMessage = parseMessage(data);
      if (m.kind !== 'request' || m.method !== 'REGISTER') return;
      got.push(m);
      foreign.send(serializeMessage(createResponse(m, 200, { toTag: 'f0re1gn' })), PORT, '127.0.0.1');
    });
    await new Promise<void>((r) => foreign.bind(FOREIGN_PORT, '127.0.0.2', () => r()));
    try {
      // The Call-ID is the other worker's: the request must cross to it, as any proxied request does.
      const reg = register('bob', callIdFor(1 - holder), `sip:127.0.0.2:${FOREIGN_PORT}`);
      let res = await exchange(reg);
      let sent = reg;
      if (res.status === 407) {
        sent = overTls(helper.authorize(reg, res, 'bob', PW));
        res = await exchange(sent);
      }
      expect(res.status).toBe(200);
      expect(getHeader(res, 'to')).toContain('tag=f0re1gn');
      expect(got.length).toBe(1);
      expect(got[0].uri).toBe(`sip:127.0.0.2:${FOREIGN_PORT}`);
      expect(getHeader(got[0], 'call-id')).toBe(getHeader(sent, 'call-id'));
      // A client transaction the 200 did not reach would send the REGISTER again after 500 ms (Timer E).
      await new Promise((r) => setTimeout(r, 1200));
      expect(got.length).toBe(1);
    } finally {
      foreign.close();
    }
  });

  it('counts the REGISTERs kept on the connection and the messages handed off in the summary lines', async () => {
    const summaries = () =>
      served!.server
        .stdout()
        .split('\n')
        .filter((l) => l.includes('"msg":"summary"'))
        .map((l) => JSON.parse(l) as { worker: number; keptOnFlow: number; handedOff: number });
    // alice's two REGISTERs of a Call-ID the other worker owns, dave's five (carol's credentials went to their nonce's issuer).
    await expect.poll(() => summaries().filter((s) => s.worker === holder).reduce((n, s) => n + s.keptOnFlow, 0), { timeout: 5000 }).toBeGreaterThanOrEqual(7);
    expect(summaries().filter((s) => s.worker !== holder).reduce((n, s) => n + s.keptOnFlow, 0)).toBe(0);
  });
});
