import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StreamFramer } from '../../src/sip/stream-framer.js';
import { parseMessage } from '../../src/sip/parser.js';
import { serializeMessage } from '../../src/sip/serializer.js';
import type { SipMessage, SipResponse } from '../../src/sip/message.js';
import { UdpUa } from '../helpers/udp-ua.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';

const PORT = 26470;
const TLS_PORT = 26471;
const DOMAIN = 'example.test';

/**
 * `sips:` means TLS on every hop (RFC 5630 §3.1.3, RFC 3261 §26.2.2),
 * through a running server: a sips: INVITE that arrives over UDP gets 480,
 * and one that arrives over TLS for a user registered over UDP gets 480
 * too, and nothing reaches the UDP binding.
 */
describe('sips: requests and non-TLS hops', () => {
  let test: TestServer;
  let bob: UdpUa;
  let caller: UdpUa;

  beforeAll(async () => {
    test = await startTestServer({
      name: 'sips',
      domain: DOMAIN,
      sip: {
        listen: [
          { transport: 'udp', host: '127.0.0.1', port: PORT },
          { transport: 'tls', host: '127.0.0.1', port: TLS_PORT },
        ],
      },
      users: { bob: 'bobpw' },
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

  const invites = () => bob.received.filter((m) => m.kind === 'request' && m.method === 'INVITE');
  const inviteFromCarol = () => caller.request('INVITE', `sips:bob@${DOMAIN}`, { from: 'sip:carol@other.test', to: `sips:bob@${DOMAIN}` });

  it('answers 480 to a sips: INVITE that came over UDP', async () => {
    const req = inviteFromCarol();
    caller.send(req, PORT);
    const res = await caller.response(req);
    expect(res.status).toBe(480);
    expect(res.reason).toBe('Temporarily Unavailable: sips: request over UDP (RFC 5630: TLS on every hop)');
    expect(invites()).toHaveLength(0);
  });

  it('answers 480 to a sips: INVITE over TLS for a user whose binding is UDP, and sends nothing to it', async () => {
    const socket = tls.connect({ host: '127.0.0.1', port: TLS_PORT, rejectUnauthorized: false });
    await new Promise<void>((resolve, reject) => {
      socket.once('secureConnect', resolve);
      socket.once('error', reject);
    });
    const framer = new StreamFramer();
    const got: SipMessage[] = [];
    socket.on('data', (chunk: Buffer) => {
      for (const ev of framer.push(chunk)) if (ev.type === 'message') got.push(parseMessage(ev.data));
    });
    socket.write(serializeMessage(inviteFromCarol()));
    const deadline = Date.now() + 3000;
    while (!got.some((m) => m.kind === 'response' && m.status >= 200) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    socket.destroy();
    const final = got.find((m): m is SipResponse => m.kind === 'response' && m.status >= 200);
    expect(final?.status).toBe(480);
    expect(final?.reason).toBe('Temporarily Unavailable: sips: needs TLS, the next hop is UDP (RFC 5630)');
    expect(invites()).toHaveLength(0);
  });
});
