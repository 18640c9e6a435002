/**
 * Digest challenges answered statelessly (RFC 3261 §8.2.7, §26.1.5), on a
 * running server over real UDP and TCP sockets: after the 401/407 the server
 * holds no transaction for it (the `rtcedge_sip_transactions{kind="server"}`
 * gauge, TransactionLayer.size(), is what it was before the request); a retransmitted request is handled as new
 * and gets the same challenge again (same To tag, same nonce within the same second), whose nonce
 * authenticates; an INVITE gets its 407 without a 100 Trying before it; the
 * ACK of that 407 is absorbed (the callee's socket never sees it) and a
 * CANCEL of it gets 481 (§9.2: no matching transaction).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getHeader, type SipMessage, type SipRequest, type SipResponse } from '../../src/sip/message.js';
import { toTag } from '../../src/sip/parsed-headers.js';
import { serializeMessage } from '../../src/sip/serializer.js';
import { nonceTimestamp } from '../../src/auth/nonce.js';
import { TcpConnection } from '../helpers/tcp-ua.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import { UdpUa } from '../helpers/udp-ua.js';

const SIP_PORT = 27480;
const ADMIN = '127.0.0.1:27481';
const DOMAIN = 'example.test';

/** Value of one series of the server's /metrics (`name{labels}` exactly as exposed). */
async function metric(series: string): Promise<number> {
  const text = await (await fetch(`http://${ADMIN}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  expect(line, series).toBeDefined();
  return Number(line!.slice(series.length + 1));
}

const serverTransactions = () => metric('rtcedge_sip_transactions{kind="server"}');

/** The nonce of a challenge. */
function nonceOf(res: SipResponse): string {
  const h = getHeader(res, res.status === 401 ? 'www-authenticate' : 'proxy-authenticate') ?? '';
  return /nonce="([^"]+)"/.exec(h)![1]!;
}

/** Responses received for `req` (same Call-ID and CSeq). */
function responsesTo(received: SipMessage[], req: SipRequest): SipResponse[] {
  return received.filter((m): m is SipResponse => m.kind === 'response' && getHeader(m, 'call-id') === getHeader(req, 'call-id') && getHeader(m, 'cseq') === getHeader(req, 'cseq'));
}

/** The ACK a UAC sends for a non-2xx final response (RFC 3261 §17.1.1.3): INVITE's branch, the response's To. */
function ackFor(invite: SipRequest, res: SipResponse): SipRequest {
  const headers = invite.headers
    .filter((h) => /^(via|from|call-id|max-forwards)$/i.test(h.name))
    .concat([
      { name: 'To', value: getHeader(res, 'to')! },
      { name: 'CSeq', value: `${getHeader(invite, 'cseq')!.split(' ')[0]} ACK` },
    ]);
  return { kind: 'request', method: 'ACK', uri: invite.uri, headers, body: Buffer.alloc(0) };
}

/** The CANCEL of `invite` (§9.1): same Request-URI, top Via, From, To, Call-ID and CSeq number. */
function cancelOf(invite: SipRequest): SipRequest {
  const headers = invite.headers
    .filter((h) => /^(via|from|to|call-id|max-forwards)$/i.test(h.name))
    .concat([{ name: 'CSeq', value: `${getHeader(invite, 'cseq')!.split(' ')[0]} CANCEL` }]);
  return { kind: 'request', method: 'CANCEL', uri: invite.uri, headers, body: Buffer.alloc(0) };
}

describe('digest challenges answered statelessly (RFC 3261 §8.2.7)', () => {
  let ts: TestServer;
  let alice: UdpUa;
  let bob: UdpUa;

  beforeAll(async () => {
    ts = await startTestServer({
      name: 'stateless-challenge',
      sip: { listen: [{ transport: 'udp', host: '127.0.0.1', port: SIP_PORT }, { transport: 'tcp', host: '127.0.0.1', port: SIP_PORT }] },
      users: { alice: 'alicepw', bob: 'bobpw' },
      more: { admin: { listen: ADMIN } },
    });
    alice = await UdpUa.open();
    bob = await UdpUa.open();
    expect((await bob.register(SIP_PORT, 'bob', 'bobpw', DOMAIN)).status).toBe(200);
  });

  afterAll(async () => {
    alice?.close();
    bob?.close();
    await ts?.stop();
  });

  it('a REGISTER on UDP without credentials: 401, nothing held; its retransmission: the same 401 again, whose nonce works', async () => {
    const challengesBefore = await metric('rtcedge_sip_stateless_challenges_total');
    const held = await serverTransactions();
    const req = alice.request('REGISTER', `sip:${DOMAIN}`, { from: `sip:alice@${DOMAIN}`, to: `sip:alice@${DOMAIN}`, contactUser: 'alice' });
    alice.send(req, SIP_PORT);
    const first = await alice.response(req, 401);
    expect(await serverTransactions()).toBe(held);

    alice.send(req, SIP_PORT); // the very same request again (a retransmission: same branch)
    await alice.waitFor(() => responsesTo(alice.received, req).length === 2);
    const second = responsesTo(alice.received, req)[1]!;
    expect(second.status).toBe(401);
    expect(toTag(second)).toBe(toTag(first));
    expect(toTag(first)).toMatch(/^ch[0-9a-z]+$/);
    // §8.2.7: the same request gets the same response; the nonce carries its issue time in whole
    // seconds, so the two challenges are byte-identical unless a second boundary fell between them.
    if (nonceTimestamp(nonceOf(second)) === nonceTimestamp(nonceOf(first))) expect(serializeMessage(second).equals(serializeMessage(first))).toBe(true);
    else expect(nonceOf(second)).not.toBe(nonceOf(first));
    expect(nonceTimestamp(nonceOf(first))! % 1000).toBe(0);
    expect(await serverTransactions()).toBe(held);
    expect((await metric('rtcedge_sip_stateless_challenges_total')) - challengesBefore).toBe(2);

    const authed = alice.authorize(req, second, 'alice', 'alicepw');
    alice.send(authed, SIP_PORT);
    expect((await alice.response(authed)).status).toBe(200);
  });

  it('an INVITE through the proxy: 407 with no 100 before it, nothing held; its ACK is absorbed, never forwarded to the callee', async () => {
    const acksBefore = await metric('rtcedge_sip_challenge_acks_absorbed_total');
    const held = await serverTransactions();
    const invite = alice.request('INVITE', `sip:bob@${DOMAIN}`, { from: `sip:alice@${DOMAIN}`, to: `sip:bob@${DOMAIN}`, contactUser: 'alice', body: 'v=0\r\n' });
    alice.send(invite, SIP_PORT);
    const challenge = await alice.response(invite, 407);
    expect(toTag(challenge)).toMatch(/^ch[0-9a-z]+$/);
    expect(await serverTransactions()).toBe(held);

    alice.send(ackFor(invite, challenge), SIP_PORT);
    alice.send(invite, SIP_PORT); // retransmitted INVITE: challenged again, same To tag
    await alice.waitFor(() => responsesTo(alice.received, invite).length === 2);
    const again = responsesTo(alice.received, invite);
    expect(again.map((r) => r.status)).toEqual([407, 407]);
    expect(toTag(again[1]!)).toBe(toTag(challenge));

    // The authorized INVITE reaches bob; the ACK, sent before it over the same socket, would have arrived first.
    const authed = alice.authorize(invite, again[1]!, 'alice', 'alicepw');
    alice.send(authed, SIP_PORT);
    const callId = getHeader(invite, 'call-id');
    await bob.waitFor((m) => m.kind === 'request' && m.method === 'INVITE' && getHeader(m, 'call-id') === callId);
    expect(bob.received.filter((m) => m.kind === 'request' && getHeader(m, 'call-id') === callId).map((m) => (m as SipRequest).method)).toEqual(['INVITE']);
    expect((await metric('rtcedge_sip_challenge_acks_absorbed_total')) - acksBefore).toBe(1);
    // §8.2.7: no provisional response before the challenge.
    expect(responsesTo(alice.received, invite).some((r) => r.status < 200)).toBe(false);
  });

  it('a CANCEL of a statelessly challenged INVITE gets 481 (§9.2: no matching transaction)', async () => {
    const invite = alice.request('INVITE', `sip:bob@${DOMAIN}`, { from: `sip:alice@${DOMAIN}`, to: `sip:bob@${DOMAIN}`, contactUser: 'alice' });
    alice.send(invite, SIP_PORT);
    await alice.response(invite, 407);
    const cancel = cancelOf(invite);
    alice.send(cancel, SIP_PORT);
    expect((await alice.response(cancel)).status).toBe(481);
    expect(bob.received.some((m) => getHeader(m, 'call-id') === getHeader(invite, 'call-id'))).toBe(false);
  });

  it('over TCP too: an INVITE challenged holds nothing while waiting for its ACK, which is absorbed', async () => {
    const acksBefore = await metric('rtcedge_sip_challenge_acks_absorbed_total');
    const held = await serverTransactions();
    const conn = await TcpConnection.connect(SIP_PORT);
    try {
      const { port } = conn.socket.address() as { port: number };
      const invite = alice.request('INVITE', `sip:bob@${DOMAIN}`, { from: `sip:alice@${DOMAIN}`, to: `sip:bob@${DOMAIN}`, contact: `<sip:alice@127.0.0.1:${port};transport=tcp>` });
      const via = invite.headers.find((h) => h.name === 'Via')!;
      invite.headers[invite.headers.indexOf(via)] = { name: 'Via', value: via.value.replace('SIP/2.0/UDP 127.0.0.1:' + alice.port, `SIP/2.0/TCP 127.0.0.1:${port}`) };
      conn.send(invite);
      const challenge = (await conn.waitFor((m) => m.kind === 'response' && getHeader(m, 'call-id') === getHeader(invite, 'call-id'))) as SipResponse;
      expect(challenge.status).toBe(407);
      expect(await serverTransactions()).toBe(held);
      conn.send(ackFor(invite, challenge));
      await expect.poll(() => metric('rtcedge_sip_challenge_acks_absorbed_total')).toBe(acksBefore + 1);
      expect(bob.received.some((m) => getHeader(m, 'call-id') === getHeader(invite, 'call-id'))).toBe(false);
    } finally {
      conn.destroy();
    }
  });
});
