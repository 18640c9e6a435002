import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import net from 'node:net';
import { getHeader, type SipRequest, type SipResponse } from '../../src/sip/message.js';
import { createResponse } from '../../src/sip/response.js';
import { UdpUa } from '../helpers/udp-ua.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';

const PORT = 26260;
const DOMAIN = 'example.test';
const USERS = ['par', 'seq', 'six', 'mute', 'dead', 'loopy', 'trying'];

/**
 * Target-set handling of the proxy (RFC 3261 §16.5–§16.7): parallel and
 * sequential forking, 6xx, timeouts, transport failures and loop detection.
 * Callers come from another domain, so no digest is involved.
 */
describe('proxy forking and response selection', () => {
  let test: TestServer;
  const uas: UdpUa[] = [];
  let caller: UdpUa;

  beforeAll(async () => {
    test = await startTestServer({
      name: 'fork',
      domain: DOMAIN,
      sip: { listen: [{ transport: 'udp', host: '127.0.0.1', port: PORT }], timers: { t1: 20, t2: 160, t4: 200 } },
      users: Object.fromEntries(USERS.map((u) => [u, `${u}pw`])),
    });
    caller = await UdpUa.open();
  });

  afterAll(async () => {
    caller?.close();
    for (const u of uas) u.close();
    await test?.stop();
  });

  /** Register `contact` for `user` with digest; returns after the 200. */
  async function register(ua: UdpUa, user: string, contact: string): Promise<void> {
    const req = ua.request('REGISTER', `sip:${DOMAIN}`, { from: `sip:${user}@${DOMAIN}`, to: `sip:${user}@${DOMAIN}`, contact });
    ua.send(req, PORT);
    const challenge = await ua.response(req);
    const authed = ua.authorize(req, challenge, user, `${user}pw`);
    ua.send(authed, PORT);
    expect((await ua.response(authed)).status).toBe(200);
  }

  async function newUa(): Promise<UdpUa> {
    const ua = await UdpUa.open();
    uas.push(ua);
    return ua;
  }

  function invite(user: string): SipRequest {
    const req = caller.request('INVITE', `sip:${user}@${DOMAIN}`, { from: 'sip:carol@elsewhere.test', to: `sip:${user}@${DOMAIN}`, contactUser: 'carol' });
    caller.send(req, PORT);
    return req;
  }

  const inviteAt = (ua: UdpUa, callId: string) =>
    ua.waitFor((m) => m.kind === 'request' && m.method === 'INVITE' && getHeader(m, 'call-id') === callId) as Promise<SipRequest>;
  const cancelAt = (ua: UdpUa, callId: string) =>
    ua.waitFor((m) => m.kind === 'request' && m.method === 'CANCEL' && getHeader(m, 'call-id') === callId) as Promise<SipRequest>;

  it('forks in parallel to bindings of equal q and cancels the others when one answers 200', async () => {
    const [a, b] = [await newUa(), await newUa()];
    await register(a, 'par', `<sip:par@127.0.0.1:${a.port}>`);
    await register(b, 'par', `<sip:par@127.0.0.1:${b.port}>`);
    const req = invite('par');
    const callId = getHeader(req, 'call-id')!;
    const [ia, ib] = await Promise.all([inviteAt(a, callId), inviteAt(b, callId)]);
    b.send(createResponse(ib, 180, { toTag: 'b' }), PORT);
    a.send(createResponse(ia, 200, { toTag: 'a', headers: [{ name: 'Contact', value: `<sip:par@127.0.0.1:${a.port}>` }] }), PORT);
    expect((await caller.response(req, 200)).status).toBe(200);
    const cancel = await cancelAt(b, callId);
    expect(cancel.uri).toBe(ib.uri);
  });

  it('sends 100 Trying before forwarding an INVITE, and none before a final response given at once (RFC 3261 §17.2.1)', async () => {
    const ua = await newUa();
    await register(ua, 'trying', `<sip:trying@127.0.0.1:${ua.port}>`);
    const req = invite('trying');
    const callId = getHeader(req, 'call-id')!;
    const forwarded = await inviteAt(ua, callId);
    expect((await caller.response(req, 100)).reason).toBe('Trying');
    ua.send(createResponse(forwarded, 486, { toTag: 't' }), PORT);
    expect((await caller.response(req)).status).toBe(486);

    const unknown = invite('nobody');
    const final = await caller.response(unknown);
    expect(final.status).toBe(404);
    const unknownCallId = getHeader(unknown, 'call-id');
    expect(caller.received.filter((m) => m.kind === 'response' && m.status === 100 && getHeader(m, 'call-id') === unknownCallId)).toEqual([]);
  });

  it('forks sequentially by q: the lower q gets the INVITE only after the higher one fails', async () => {
    const [hi, lo] = [await newUa(), await newUa()];
    await register(hi, 'seq', `<sip:seq@127.0.0.1:${hi.port}>;q=1.0`);
    await register(lo, 'seq', `<sip:seq@127.0.0.1:${lo.port}>;q=0.5`);
    const req = invite('seq');
    const callId = getHeader(req, 'call-id')!;
    const first = await inviteAt(hi, callId);
    await new Promise((r) => setTimeout(r, 150));
    expect(lo.received.some((m) => m.kind === 'request' && getHeader(m, 'call-id') === callId)).toBe(false);
    hi.send(createResponse(first, 486, { toTag: 'h' }), PORT);
    const second = await inviteAt(lo, callId);
    lo.send(createResponse(second, 200, { toTag: 'l', headers: [{ name: 'Contact', value: `<sip:seq@127.0.0.1:${lo.port}>` }] }), PORT);
    expect((await caller.response(req)).status).toBe(200);
  });

  it('a 6xx ends forking, cancels the other branch and is the final answer', async () => {
    const [a, b] = [await newUa(), await newUa()];
    await register(a, 'six', `<sip:six@127.0.0.1:${a.port}>`);
    await register(b, 'six', `<sip:six@127.0.0.1:${b.port}>`);
    const req = invite('six');
    const callId = getHeader(req, 'call-id')!;
    const [ia, ib] = await Promise.all([inviteAt(a, callId), inviteAt(b, callId)]);
    b.send(createResponse(ib, 180, { toTag: 'b' }), PORT);
    await caller.response(req, 180);
    a.send(createResponse(ia, 603, { toTag: 'a' }), PORT);
    const cancel = await cancelAt(b, callId);
    b.send(createResponse(cancel, 200), PORT);
    b.send(createResponse(ib, 487, { toTag: 'b' }), PORT);
    const final = await caller.response(req);
    expect(final.status).toBe(603);
  });

  it('answers 408 when every branch times out (Timer B)', async () => {
    const silent = await newUa(); // receives, never answers
    await register(silent, 'mute', `<sip:mute@127.0.0.1:${silent.port}>`);
    const req = invite('mute');
    const final = await caller.response(req, undefined, 5000);
    expect(final.status).toBe(408);
    // UDP retransmissions (Timer A) reached the UA before the timeout.
    const copies = silent.received.filter((m) => m.kind === 'request' && m.method === 'INVITE' && getHeader(m, 'call-id') === getHeader(req, 'call-id'));
    expect(copies.length).toBeGreaterThan(2);
  });

  it('answers 503 when no branch can be reached (connection refused)', async () => {
    const closed = net.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', () => r()));
    const port = (closed.address() as net.AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const ua = await newUa();
    await register(ua, 'dead', `<sip:dead@127.0.0.1:${port};transport=tcp>`);
    const req = invite('dead');
    const final = (await caller.response(req, undefined, 5000)) as SipResponse;
    expect(final.status).toBe(503);
  });

  it('detects a loop (482) when a binding points back at the server', async () => {
    const ua = await newUa();
    await register(ua, 'loopy', `<sip:loopy@127.0.0.1:${PORT}>`);
    const req = invite('loopy');
    const final = await caller.response(req, undefined, 5000);
    expect(final.status).toBe(482);
  });
});
