/**
 * The bound on completed server transactions held for Timer J
 * (`sip.limits.completed_transactions`), on a running server over UDP: past
 * the bound the oldest is released early and counted in /metrics
 * (`rtcedge_sip_completed_released_total`); a retransmission of a held one is
 * answered with the very response sent first (RFC 3261 §17.2.2), one of a
 * released one is handled as a new request (here: a 401, its nonce count
 * replayed). The 200s of authorized REGISTERs fill the bound: digest
 * challenges are answered statelessly and never held.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import { getHeader, type SipRequest, type SipResponse } from '../../src/sip/message.js';
import { UdpUa } from '../helpers/udp-ua.js';

const SIP_PORT = 27460;
const ADMIN = 'http://127.0.0.1:27461';
const DOMAIN = 'example.test';
const BOUND = 3;

async function releasedCount(): Promise<number> {
  const text = await (await fetch(`${ADMIN}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('rtcedge_sip_completed_released_total '));
  expect(line).toBeDefined();
  return Number(line!.split(' ')[1]);
}

describe('completed transactions held for Timer J, bounded', () => {
  let ts: TestServer;
  let ua: UdpUa;

  beforeAll(async () => {
    ts = await startTestServer({
      name: 'completed-bound',
      sip: { listen: [{ transport: 'udp', host: '127.0.0.1', port: SIP_PORT }], limits: { completed_transactions: BOUND } },
      users: Object.fromEntries(Array.from({ length: BOUND + 1 }, (_, i) => [`u${i}`, 'pw'])),
      more: { admin: { listen: ADMIN.slice('http://'.length) } },
    });
    ua = await UdpUa.open();
  });

  afterAll(async () => {
    ua?.close();
    await ts?.stop();
  });

  /** The final responses received for `req` (same Call-ID and CSeq), in order. */
  const finalsFor = (req: SipRequest): SipResponse[] =>
    ua.received.filter((m): m is SipResponse => m.kind === 'response' && m.status >= 200 && getHeader(m, 'call-id') === getHeader(req, 'call-id') && getHeader(m, 'cseq') === getHeader(req, 'cseq'));

  /** Send `req` and wait until its `n`-th final response has arrived. */
  async function sendAndWait(req: SipRequest, n: number): Promise<SipResponse> {
    ua.send(req, SIP_PORT);
    await ua.waitFor(() => finalsFor(req).length >= n);
    return finalsFor(req)[n - 1]!;
  }

  /** Register u`i`: the challenge (answered statelessly, nothing held), then the authorized REGISTER, whose 200 is held. */
  async function register(i: number): Promise<SipRequest> {
    const req = ua.request('REGISTER', `sip:${DOMAIN}`, { from: `sip:u${i}@${DOMAIN}`, to: `sip:u${i}@${DOMAIN}`, contactUser: `u${i}` });
    const authed = ua.authorize(req, await sendAndWait(req, 1), `u${i}`, 'pw');
    expect((await sendAndWait(authed, 1)).status).toBe(200);
    return authed;
  }

  it('releases the oldest past the bound and counts it; a held one is still answered from memory', async () => {
    expect(await releasedCount()).toBe(0);
    const reqs: SipRequest[] = [];
    for (let i = 0; i <= BOUND; i++) reqs.push(await register(i));
    // Four completed, three held: the first was released before its Timer J.
    expect(await releasedCount()).toBe(1);

    // The newest is held: its retransmission gets the very 200 sent first (same To tag, same Date).
    const newest = reqs[BOUND]!;
    const again = await sendAndWait(newest, 2);
    expect([again.status, getHeader(again, 'to'), getHeader(again, 'date')]).toEqual([200, getHeader(finalsFor(newest)[0]!, 'to'), getHeader(finalsFor(newest)[0]!, 'date')]);

    // The first was released: its retransmission is a new request, whose nonce count was seen already
    // (RFC 7616 §3.3): a fresh challenge, sent statelessly, so nothing more is held or released.
    const first = reqs[0]!;
    expect((await sendAndWait(first, 2)).status).toBe(401);
    expect(await releasedCount()).toBe(1);
  });
});
