/**
 * SIP over IPv6 sockets (RFC 5118 §1: IPv6 references in SIP, here on the
 * wire): a server listening on ::1 over UDP, TCP and TLS, and on 127.0.0.1
 * over UDP on the same port (IPv6-only sockets share ports with IPv4 ones).
 * A UA registers over [::1] on each transport; a caller's INVITE over [::1]
 * reaches it with the proxy's IPv6 address in Via and Record-Route, the 200
 * comes back and the ACK follows the recorded route. Then the RFC 5118
 * messages (torture-suite.ts) are replayed from [::1] over UDP and TLS to a
 * callee bound at [::1].
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { computeHA1, computeResponse, formatCredentials, parseAuthParams } from '../../src/auth/digest.js';
import { getHeader, getHeaderValues, type SipMessage, type SipRequest, type SipResponse } from '../../src/sip/message.js';
import { createResponse } from '../../src/sip/response.js';
import { serializeMessage } from '../../src/sip/serializer.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import { StreamPeer, UdpPeer, type ReceivedMessages } from './torture-wire.js';
import { DOMAIN, PASSWORD, TORTURE_USERS, allVectors, registerCallee, replayAll } from './torture-suite.js';

const PORT = 27070;
const TLS_PORT = 27071;
const V6 = '[::1]';

type Transport = 'udp' | 'tcp' | 'tls';

/** A sender on [::1] over a transport; a UDP one answers requests it gets when `autoAnswer` (see UdpPeer). */
function openV6(transport: Transport, autoAnswer = false): Promise<ReceivedMessages> {
  if (transport === 'udp') return UdpPeer.open(autoAnswer, '::1');
  return StreamPeer.connect(transport === 'tls' ? TLS_PORT : PORT, { tls: transport === 'tls', host: '::1' });
}

/** A request from `peer` as text: Via with its [::1] address and rport, and the given headers. */
function request(peer: ReceivedMessages, transport: Transport, method: string, uri: string, headers: string[], cseq = 1): Buffer {
  const lines = [
    `${method} ${uri} SIP/2.0`,
    `Via: SIP/2.0/${transport.toUpperCase()} ${V6}:${peer.port};branch=z9hG4bK${randomBytes(6).toString('hex')};rport`,
    'Max-Forwards: 70',
    ...headers,
    `CSeq: ${cseq} ${method}`,
    'Content-Length: 0',
    '',
    '',
  ];
  return Buffer.from(lines.join('\r\n'));
}

/** The first message at `peer` satisfying pred, or a failure naming what arrived. */
async function arrival<T extends SipMessage>(peer: ReceivedMessages, pred: (m: SipMessage) => boolean, what: string): Promise<T> {
  const ok = await peer.until((p) => p.messages.some(pred), 3000);
  expect(ok, `${what}; got: ${peer.raw.map((r) => r.toString('latin1').split('\r\n')[0]).join(' | ')}`).toBe(true);
  return peer.messages.find(pred) as T;
}

const isResponse = (callId: string, status: number) => (m: SipMessage) => m.kind === 'response' && m.status === status && getHeader(m, 'call-id') === callId;

describe('SIP over IPv6 sockets', () => {
  let test: TestServer;

  beforeAll(async () => {
    test = await startTestServer({
      name: 'ipv6',
      domain: DOMAIN,
      sip: {
        listen: [
          { transport: 'udp', host: '127.0.0.1', port: PORT },
          { transport: 'udp', host: '::1', port: PORT },
          { transport: 'tcp', host: '[::1]', port: PORT },
          { transport: 'tls', host: '::1', port: TLS_PORT },
        ],
        timers: { t1: 50, t2: 400, t4: 500 },
      },
      users: { ...TORTURE_USERS, bob_udp: PASSWORD, bob_tcp: PASSWORD, bob_tls: PASSWORD },
    });
  });

  afterAll(async () => {
    await test?.stop();
  });

  it('answers OPTIONS on 127.0.0.1 and on ::1 at the same UDP port', async () => {
    for (const host of ['127.0.0.1', '::1']) {
      const ua = await UdpPeer.open(false, host);
      try {
        const h = host.includes(':') ? V6 : host;
        const callId = `opt-${randomBytes(4).toString('hex')}`;
        const msg = request(ua, 'udp', 'OPTIONS', `sip:${h}:${PORT}`, [`From: <sip:probe@other.test>;tag=p`, `To: <sip:${h}:${PORT}>`, `Call-ID: ${callId}`]).toString('latin1');
        await ua.send(Buffer.from(msg.replace(`Via: SIP/2.0/UDP ${V6}:`, `Via: SIP/2.0/UDP ${h}:`)), PORT);
        await arrival(ua, isResponse(callId, 200), `200 to OPTIONS over ${host}`);
      } finally {
        ua.close();
      }
    }
  });

  for (const transport of ['udp', 'tcp', 'tls'] as const) {
    it(`${transport}: a UA registers over [::1] and a call over [::1] reaches it`, async () => {
      const bob = await openV6(transport);
      const caller = await UdpPeer.open(false, '::1');
      try {
        // REGISTER with digest.
        const user = `bob_${transport}`;
        const contact = `<sip:${user}@${V6}:${bob.port};transport=${transport}>`;
        const regCall = `reg-${transport}-${randomBytes(4).toString('hex')}`;
        const regHeaders = [`From: <sip:${user}@${DOMAIN}>;tag=r${transport}`, `To: <sip:${user}@${DOMAIN}>`, `Call-ID: ${regCall}`, `Contact: ${contact}`, 'Expires: 600'];
        await bob.send(request(bob, transport, 'REGISTER', `sip:${DOMAIN}`, regHeaders), PORT);
        const challenge = await arrival<SipResponse>(bob, isResponse(regCall, 401), '401 to REGISTER');
        const { params } = parseAuthParams(getHeader(challenge, 'www-authenticate')!, 'digest');
        const [realm, nonce] = [params.get('realm')!, params.get('nonce')!];
        const response = computeResponse({ alg: 'MD5', ha1: computeHA1('MD5', user, realm, PASSWORD), method: 'REGISTER', uri: `sip:${DOMAIN}`, nonce, qop: 'auth', nc: '00000001', cnonce: 'c6' });
        const auth = formatCredentials({ username: user, realm, nonce, uri: `sip:${DOMAIN}`, response, algorithm: 'MD5', qop: 'auth', nc: '00000001', cnonce: 'c6' });
        await bob.send(request(bob, transport, 'REGISTER', `sip:${DOMAIN}`, [...regHeaders, `Authorization: ${auth}`], 2), PORT);
        const ok = await arrival<SipResponse>(bob, isResponse(regCall, 200), '200 to REGISTER');
        expect(getHeaderValues(ok, 'contact')).toEqual([`${contact};expires=600`]);

        // INVITE from a caller of another domain over UDP [::1]: forwarded to bob on its transport over IPv6.
        const callId = `call-${transport}-${randomBytes(4).toString('hex')}`;
        const inviteHeaders = [`From: <sip:carol@other.test>;tag=c1`, `To: <sip:${user}@${DOMAIN}>`, `Call-ID: ${callId}`, `Contact: <sip:carol@${V6}:${caller.port}>`];
        await caller.send(request(caller, 'udp', 'INVITE', `sip:${user}@${DOMAIN}`, inviteHeaders), PORT);
        const invite = await arrival<SipRequest>(bob, (m) => m.kind === 'request' && m.method === 'INVITE' && getHeader(m, 'call-id') === callId, 'INVITE at bob');
        const listener = transport === 'tls' ? TLS_PORT : PORT;
        expect(invite.uri).toBe(`sip:${user}@${V6}:${bob.port};transport=${transport}`);
        expect(getHeaderValues(invite, 'via')[0]).toMatch(new RegExp(`^SIP/2\\.0/${transport.toUpperCase()} \\[::1\\]:${listener};branch=z9hG4bK`));
        expect(getHeaderValues(invite, 'record-route').every((rr) => rr.includes(`sip:`) && rr.includes(V6))).toBe(true);
        expect(getHeaderValues(invite, 'record-route').length).toBeGreaterThan(0);

        // bob answers 200; the caller gets it; its ACK follows the recorded route to bob.
        const answer = createResponse(invite, 200, { toTag: 'b1', headers: [{ name: 'Contact', value: contact }] });
        await bob.send(serializeMessage(answer), PORT);
        const accepted = await arrival<SipResponse>(caller, isResponse(callId, 200), '200 to INVITE at the caller');
        const routes = [...getHeaderValues(accepted, 'record-route')].reverse();
        const ack = request(caller, 'udp', 'ACK', `sip:${user}@${V6}:${bob.port};transport=${transport}`, [
          `From: <sip:carol@other.test>;tag=c1`,
          `To: <sip:${user}@${DOMAIN}>;tag=b1`,
          `Call-ID: ${callId}`,
          ...routes.map((r) => `Route: ${r}`),
        ]);
        await caller.send(ack, PORT);
        await arrival(bob, (m) => m.kind === 'request' && m.method === 'ACK' && getHeader(m, 'call-id') === callId, 'ACK at bob');
      } finally {
        bob.close();
        caller.close();
      }
    });
  }

  describe('RFC 5118 messages from [::1]', () => {
    let callee: UdpPeer;
    const vectors = allVectors(['rfc5118']);

    beforeAll(async () => {
      callee = await UdpPeer.open(true, '::1');
      await registerCallee(PORT, callee, V6);
    });

    afterAll(() => callee?.close());

    it('over UDP: answered as RFC 5118 says, forwarded over IPv6', async () => {
      const failures = await replayAll({
        vectors,
        open: () => openV6('udp', true),
        serverPort: PORT,
        sender: (ua) => ({ uaPort: ua.port, uaHost: V6, proxy: `${V6}:${PORT}` }),
        callee,
        proxyVia: () => `SIP/2.0/UDP ${V6}:${PORT};branch=z9hG4bK`,
      });
      expect(failures).toEqual([]);
    });

    it('over TLS: answered as RFC 5118 says', async () => {
      const failures = await replayAll({
        vectors,
        open: () => openV6('tls'),
        serverPort: TLS_PORT,
        sender: (ua) => ({ uaPort: ua.port, uaHost: V6, viaTransport: 'TLS', selfTarget: `${V6}:${callee.port}`, proxy: `${V6}:${TLS_PORT}` }),
        callee,
        selfIs: 'callee',
        proxyVia: () => `SIP/2.0/UDP ${V6}:${PORT};branch=z9hG4bK`,
      });
      expect(failures).toEqual([]);
    });
  });
});
