import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { Writable } from 'node:stream';
import { getHeader, type SipRequest } from '../../src/sip/message.js';
import { UdpUa } from '../helpers/udp-ua.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';

const PORT = 26460;
const DOMAIN = 'example.test';

/**
 * Requests that name the server's own address. ACKs for 2xx forwarded
 * without state (RFC 3261 §16.11): an ACK whose Request-URI is the server's
 * own address with a user part (a UA that ignores the Record-Route, as SIPp's
 * built-in uac does) reaches the callee's binding once; an ACK whose next hop
 * is the server itself is dropped. A branch whose next hop is the server
 * itself fails with 482: nothing is ever sent to one of its own listeners.
 */
describe('requests to the server\'s own address', () => {
  let test: TestServer;
  let bob: UdpUa;
  let caller: UdpUa;
  const logLines: { msg?: string; uri?: string; startLine?: string }[] = [];

  beforeAll(async () => {
    const sink = new Writable({
      write(chunk, _enc, done) {
        for (const line of chunk.toString().split('\n')) if (line) logLines.push(JSON.parse(line));
        done();
      },
    });
    test = await startTestServer({
      name: 'ack',
      domain: DOMAIN,
      sip: { listen: [{ transport: 'udp', host: '127.0.0.1', port: PORT }] },
      users: { bob: 'bobpw', mallory: 'mallorypw' },
      logger: pino({ level: 'debug' }, sink),
    });
    bob = await UdpUa.open();
    caller = await UdpUa.open();
    expect((await bob.register(PORT, 'bob', 'bobpw', DOMAIN)).status).toBe(200);
  });

  afterAll(async () => {
    bob?.close();
    caller?.close();
    await test?.stop();
  });

  const acksAtBob = () => bob.received.filter((m): m is SipRequest => m.kind === 'request' && m.method === 'ACK');

  it('delivers an ACK to sip:bob@<server address> once, to the binding', async () => {
    const ack = caller.request('ACK', `sip:bob@127.0.0.1:${PORT}`, { from: 'sip:carol@other.test', to: `sip:bob@127.0.0.1:${PORT}`, toTag: 'b0b' });
    caller.send(ack, PORT);
    const got = (await bob.waitFor((m) => m.kind === 'request' && m.method === 'ACK')) as SipRequest;
    expect(got.uri).toBe(`sip:bob@127.0.0.1:${bob.port}`);
    expect(getHeader(got, 'max-forwards')).toBe('69');
    expect(getHeader(got, 'via')).toMatch(new RegExp(`^SIP/2\\.0/UDP 127\\.0\\.0\\.1:${PORT};branch=z9hG4bK`));
    await new Promise((r) => setTimeout(r, 300));
    expect(acksAtBob()).toHaveLength(1);
  });

  it('drops an ACK to the server\'s own address instead of sending it to itself', async () => {
    const before = acksAtBob().length;
    const ack = caller.request('ACK', `sip:127.0.0.1:${PORT}`, { from: 'sip:carol@other.test', to: `sip:127.0.0.1:${PORT}`, toTag: 'x1' });
    caller.send(ack, PORT);
    await expect.poll(() => logLines.filter((l) => l.msg === 'ACK not forwarded' && l.uri === `sip:127.0.0.1:${PORT}`).length, { timeout: 2000 }).toBe(1);
    await new Promise((r) => setTimeout(r, 300));
    // The server received that ACK once: no copy of it came back to the server.
    expect(logLines.filter((l) => l.msg === 'ACK not forwarded').length).toBe(1);
    expect(acksAtBob()).toHaveLength(before);
  });

  it('fails a branch whose binding names the server itself with 482, sending nothing to itself', async () => {
    const mallory = await UdpUa.open();
    try {
      // A binding whose Contact is the server's own listener.
      const reg = mallory.request('REGISTER', `sip:${DOMAIN}`, { from: `sip:mallory@${DOMAIN}`, to: `sip:mallory@${DOMAIN}`, contact: `<sip:mallory@127.0.0.1:${PORT}>` });
      mallory.send(reg, PORT);
      const authed = mallory.authorize(reg, await mallory.response(reg), 'mallory', 'mallorypw');
      mallory.send(authed, PORT);
      expect((await mallory.response(authed)).status).toBe(200);
    } finally {
      mallory.close();
    }
    const invite = caller.request('INVITE', `sip:mallory@${DOMAIN}`, { from: 'sip:carol@other.test', to: `sip:mallory@${DOMAIN}` });
    caller.send(invite, PORT);
    const res = await caller.response(invite);
    expect([res.status, res.reason]).toEqual([482, 'Loop Detected: the next hop is this server']);
    const invitesIn = logLines.filter((l) => l.msg === 'sip recv' && l.startLine?.startsWith('INVITE '));
    expect(invitesIn.map((l) => l.startLine)).toEqual([`INVITE sip:mallory@${DOMAIN} SIP/2.0`]);
  });
});
