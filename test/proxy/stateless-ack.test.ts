import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { Writable } from 'node:stream';
import { getHeader, type SipRequest } from '../../src/sip/message.js';
import { UdpUa } from '../helpers/udp-ua.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';

const PORT = 26460;
const DOMAIN = 'example.test';

/**
 * ACKs for 2xx forwarded without state (RFC 3261 §16.11): an ACK whose
 * Request-URI is the server's own address with a user part (a UA that ignores
 * the Record-Route, as SIPp's built-in uac does) reaches the callee's binding
 * once; an ACK whose next hop is the server itself is dropped, never sent to
 * one of its own listeners.
 */
describe('stateless ACK forwarding', () => {
  let test: TestServer;
  let bob: UdpUa;
  let caller: UdpUa;
  const logLines: { msg?: string; uri?: string }[] = [];

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
      users: { bob: 'bobpw' },
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
});
