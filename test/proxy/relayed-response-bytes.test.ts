import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getHeader, getHeaderValues, type SipRequest } from '../../src/sip/message.js';
import { UdpUa } from '../helpers/udp-ua.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';

const PORT = 26290;
const DOMAIN = 'example.test';

/**
 * Responses a stateful proxy relays upstream lose their top Via (RFC 3261
 * §16.7 step 3), also when it shares its field with the next one, and keep
 * the header fields the proxy does not know; a 503 goes up as 500 (§16.7 step 6).
 */
describe('relayed responses on the wire', () => {
  let test: TestServer;
  let caller: UdpUa;
  let callee: UdpUa;
  /** Every datagram the caller received, as bytes. */
  const callerRaw: Buffer[] = [];

  beforeAll(async () => {
    test = await startTestServer({
      name: 'relay-bytes',
      domain: DOMAIN,
      sip: { listen: [{ transport: 'udp', host: '127.0.0.1', port: PORT }], timers: { t1: 20, t2: 160, t4: 200 } },
      users: { bob: 'bobpw' },
    });
    caller = await UdpUa.open();
    callee = await UdpUa.open();
    caller.socket.on('message', (data) => callerRaw.push(Buffer.from(data)));
    expect((await callee.register(PORT, 'bob', 'bobpw', DOMAIN)).status).toBe(200);
  });

  afterAll(async () => {
    caller?.close();
    callee?.close();
    await test?.stop();
  });

  async function invite(): Promise<{ req: SipRequest; at: SipRequest; callId: string }> {
    const req = caller.request('INVITE', `sip:bob@${DOMAIN}`, { from: 'sip:carol@elsewhere.test', to: `sip:bob@${DOMAIN}`, contactUser: 'carol' });
    const callId = getHeader(req, 'call-id')!;
    caller.send(req, PORT);
    const at = (await callee.waitFor((m) => m.kind === 'request' && m.method === 'INVITE' && getHeader(m, 'call-id') === callId)) as SipRequest;
    return { req, at, callId };
  }

  /** The caller's datagram whose start line is `startLine` and which names `callId`. */
  async function rawAtCaller(startLine: string, callId: string): Promise<Buffer> {
    await caller.waitFor((m) => m.kind === 'response' && `SIP/2.0 ${m.status} ${m.reason}` === startLine && getHeader(m, 'call-id') === callId);
    const raw = callerRaw.find((d) => d.toString('latin1').startsWith(startLine + '\r\n') && d.toString('latin1').includes(callId));
    expect(raw).toBeDefined();
    return raw!;
  }

  it('a top Via sharing its field with the caller\'s still leaves only the caller\'s', async () => {
    const { at, callId } = await invite();
    const [ours, theirs] = getHeaderValues(at, 'via');
    const lines = ['SIP/2.0 486 Busy Here', `Via: ${ours}, ${theirs}`, `From: ${getHeader(at, 'from')}`, `To: ${getHeader(at, 'to')};tag=b2`, `Call-ID: ${callId}`, `CSeq: ${getHeader(at, 'cseq')}`, 'X-Kept: yes', 'Content-Length: 0', '', ''];
    callee.sendRaw(lines.join('\r\n'), PORT);
    const got = (await rawAtCaller('SIP/2.0 486 Busy Here', callId)).toString('latin1');
    expect(got).toContain(`\r\nVia: ${theirs}\r\n`);
    expect(got).not.toContain(ours);
    expect(got).toContain('\r\nX-Kept: yes\r\n');
  });

  it('a 503 from the only branch goes upstream as 500 (§16.7 step 6), rebuilt, unknown headers kept', async () => {
    const { at, callId } = await invite();
    const [ours, theirs] = getHeaderValues(at, 'via');
    const lines = ['SIP/2.0 503 Service Unavailable', `Via: ${ours}`, `Via: ${theirs}`, `From: ${getHeader(at, 'from')}`, `To: ${getHeader(at, 'to')};tag=b3`, `Call-ID: ${callId}`, `CSeq: ${getHeader(at, 'cseq')}`, 'X-Kept: yes', 'Content-Length: 0', '', ''];
    callee.sendRaw(lines.join('\r\n'), PORT);
    const got = (await rawAtCaller('SIP/2.0 500 Server Internal Error', callId)).toString('latin1');
    expect(got).toContain(`\r\nVia: ${theirs}\r\n`);
    expect(got).not.toContain(ours);
    expect(got).toContain('\r\nX-Kept: yes\r\n');
  });
});
