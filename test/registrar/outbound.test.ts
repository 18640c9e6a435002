import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import stun from 'stun';
import { getHeader, getHeaderValues, type SipRequest, type SipResponse } from '../../src/sip/message.js';
import { computeResponse, formatCredentials, parseAuthParams } from '../../src/auth/digest.js';
import { createResponse } from '../../src/sip/response.js';
import { TcpConnection } from '../helpers/tcp-ua.js';
import { UdpUa } from '../helpers/udp-ua.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';

const PORT = 26160;
const DOMAIN = 'example.test';
const INSTANCE = '"<urn:uuid:00000000-0000-4000-8000-00000000a11c>"';

/** A REGISTER from alice over `conn` for an Outbound flow with this reg-id, answered with digest. */
async function registerFlow(conn: TcpConnection, regId: number): Promise<SipResponse> {
  const callId = randomBytes(6).toString('hex');
  const build = (cseq: number, auth?: string): SipRequest => ({
    kind: 'request',
    method: 'REGISTER',
    uri: `sip:${DOMAIN}`,
    headers: [
      { name: 'Via', value: `SIP/2.0/TCP 127.0.0.1:${conn.localPort};branch=z9hG4bK${randomBytes(6).toString('hex')};rport` },
      { name: 'Max-Forwards', value: '70' },
      { name: 'From', value: `<sip:alice@${DOMAIN}>;tag=${regId}a` },
      { name: 'To', value: `<sip:alice@${DOMAIN}>` },
      { name: 'Call-ID', value: callId },
      { name: 'CSeq', value: `${cseq} REGISTER` },
      { name: 'Supported', value: 'path, outbound' },
      { name: 'Contact', value: `<sip:alice@127.0.0.1:${conn.localPort};transport=tcp;ob>;+sip.instance=${INSTANCE};reg-id=${regId}` },
      { name: 'Expires', value: '600' },
      ...(auth ? [{ name: 'Authorization', value: auth }] : []),
    ],
    body: Buffer.alloc(0),
  });
  conn.send(build(1));
  const challenge = (await conn.waitFor((m) => m.kind === 'response' && getHeader(m, 'call-id') === callId && m.status === 401)) as SipResponse;
  const { params } = parseAuthParams(getHeader(challenge, 'www-authenticate')!, 'digest');
  const ha1 = createHash('md5').update(`alice:${DOMAIN}:alicepw`).digest('hex');
  const nonce = params.get('nonce')!;
  const response = computeResponse({ alg: 'MD5', ha1, method: 'REGISTER', uri: `sip:${DOMAIN}`, nonce, qop: 'auth', nc: '00000001', cnonce: 'c1' });
  conn.send(build(2, formatCredentials({ username: 'alice', realm: DOMAIN, nonce, uri: `sip:${DOMAIN}`, response, algorithm: 'MD5', qop: 'auth', nc: '00000001', cnonce: 'c1' })));
  return (await conn.waitFor((m) => m.kind === 'response' && getHeader(m, 'call-id') === callId && m.status >= 200 && getHeader(m, 'cseq') === '2 REGISTER')) as SipResponse;
}

describe('SIP Outbound (RFC 5626) over TCP', () => {
  let test: TestServer;
  const conns: TcpConnection[] = [];
  let bob: UdpUa;

  beforeAll(async () => {
    test = await startTestServer({
      name: 'outbound',
      domain: DOMAIN,
      sip: {
        listen: [
          { transport: 'udp', host: '127.0.0.1', port: PORT },
          { transport: 'tcp', host: '127.0.0.1', port: PORT },
        ],
      },
      users: { alice: 'alicepw', bob: 'bobpw' },
    });
    bob = await UdpUa.open();
  });

  afterAll(async () => {
    for (const c of conns) c.destroy();
    bob?.close();
    await test?.stop();
  });

  it('registers two flows with reg-id, answers with Require: outbound and Flow-Timer, pongs keepalives', async () => {
    conns.push(await TcpConnection.connect(PORT), await TcpConnection.connect(PORT));
    for (const [i, c] of conns.entries()) {
      const ok = await registerFlow(c, i + 1);
      expect(ok.status).toBe(200);
      expect(getHeader(ok, 'require')).toBe('outbound');
      expect(getHeader(ok, 'flow-timer')).toBe('120');
    }
    // RFC 5626 §3.5.1: a double-CRLF ping gets a single CRLF pong.
    conns[0].write('\r\n\r\n');
    await expect.poll(() => conns[0].pongs, { timeout: 2000 }).toBe(1);
  });

  it('answers a STUN Binding keepalive on the SIP UDP port with the mapped address', async () => {
    const res = await stun.request(`stun://127.0.0.1:${PORT}`, { retries: 1 });
    const mapped = res.getXorAddress();
    expect(mapped.address).toBe('127.0.0.1');
    expect(mapped.port).toBeGreaterThan(0);
  });

  /** The Record-Route entry (with the flow token of alice's flow) of the first call, whose flow then dies. */
  let deadFlowRoute = '';

  it('routes a request over one flow, and over the other once that flow dies', async () => {
    let lastRecordRoute = '';
    const call = async (n: number): Promise<TcpConnection> => {
      const invite = bob.request('INVITE', `sip:alice@${DOMAIN}`, { from: `sip:bob@${DOMAIN}`, to: `sip:alice@${DOMAIN}`, contactUser: 'bob' });
      bob.send(invite, PORT);
      const c407 = await bob.response(invite, 407);
      const authed = bob.authorize(invite, c407, 'bob', 'bobpw');
      bob.send(authed, PORT);
      const callId = getHeader(invite, 'call-id')!;
      const arrived = await Promise.any(
        conns.map((c) => c.waitFor((m) => m.kind === 'request' && m.method === 'INVITE' && getHeader(m, 'call-id') === callId, 3000).then((m) => ({ c, m }))),
      );
      const inv = arrived.m as SipRequest;
      lastRecordRoute = getHeaderValues(inv, 'record-route')[0] ?? '';
      // The Record-Route towards alice carries a flow token.
      expect(getHeaderValues(inv, 'record-route')[0]).toMatch(new RegExp(`^<sip:[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+@127\\.0\\.0\\.1:${PORT};transport=tcp;lr>$`));
      arrived.c.send(createResponse(inv, 486, { toTag: `t${n}` }));
      expect((await bob.response(authed)).status).toBe(486);
      return arrived.c;
    };
    const first = await call(1);
    deadFlowRoute = lastRecordRoute;
    first.destroy();
    await new Promise((r) => setTimeout(r, 200));
    const second = await call(2);
    expect(second).not.toBe(first);
  });

  /** An INVITE from bob outside a dialog with one Route entry, authorized after its 407; the final response. */
  async function inviteWithRoute(route: string): Promise<SipResponse> {
    const invite = bob.request('INVITE', `sip:alice@127.0.0.1:40999;transport=tcp`, {
      from: `sip:bob@${DOMAIN}`,
      to: `sip:alice@${DOMAIN}`,
      contactUser: 'bob',
      headers: [{ name: 'Route', value: route }],
    });
    bob.send(invite, PORT);
    const first = await bob.response(invite);
    if (first.status !== 407) return first;
    const authed = bob.authorize(invite, first, 'bob', 'bobpw');
    bob.send(authed, PORT);
    return bob.response(authed);
  }

  it('answers 430 to a request routed by the flow token of a flow that is gone (RFC 5626 §5.3)', async () => {
    expect(deadFlowRoute).toMatch(/^<sip:[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{11}@/);
    const res = await inviteWithRoute(deadFlowRoute);
    expect(res.status).toBe(430);
    expect(res.reason).toBe('Flow Failed');
  });

  it('answers 403 to a flow token whose MAC does not verify, before any challenge (RFC 5626 §5.3)', async () => {
    const forged = deadFlowRoute.replace(/\.([A-Za-z0-9_-])/, (_m, c: string) => `.${c === 'A' ? 'B' : 'A'}`);
    expect(forged).not.toBe(deadFlowRoute);
    const res = await inviteWithRoute(forged);
    expect(res.status).toBe(403);
    expect(res.reason).toBe('Forbidden: invalid flow token');
  });
});
