import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getHeader, type SipRequest } from '../../src/sip/message.js';
import { createResponse } from '../../src/sip/response.js';
import { openStore } from '../../src/store/index.js';
import { UdpUa } from '../helpers/udp-ua.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';

const PORT = 26280;
const DOMAIN = 'example.test';

/**
 * A number a local user owns (`rtcedge user add --phone`, the store's phones
 * table) retargets an E.164 Request-URI to that user without any DNS lookup
 * (the server has no reachable DNS server here): enum-lookup, RFC 6116 §2.
 */
describe('local phone numbers through a running server', () => {
  let test: TestServer;
  let callee: UdpUa;
  let caller: UdpUa;

  beforeAll(async () => {
    test = await startTestServer({
      name: 'phone',
      domain: DOMAIN,
      sip: { listen: [{ transport: 'udp', host: '127.0.0.1', port: PORT }], timers: { t1: 20, t2: 160, t4: 200 } },
      users: { dave: 'davepw', erin: 'erinpw' },
      dns: { servers: ['127.0.0.1:9'] },
    });
    const store = openStore(test.config);
    store.setPhones('dave', DOMAIN, ['+15551234']);
    store.setPhones('erin', DOMAIN, ['4420']);
    store.close();
    callee = await UdpUa.open();
    caller = await UdpUa.open();
    expect((await callee.register(PORT, 'dave', 'davepw', DOMAIN)).status).toBe(200);
    expect((await callee.register(PORT, 'erin', 'erinpw', DOMAIN)).status).toBe(200);
  });

  afterAll(async () => {
    caller?.close();
    callee?.close();
    await test?.stop();
  });

  async function call(uri: string, to: string): Promise<SipRequest> {
    const req = caller.request('INVITE', uri, { from: 'sip:carol@elsewhere.test', to, contactUser: 'carol' });
    caller.send(req, PORT);
    const callId = getHeader(req, 'call-id');
    const arrived = (await callee.waitFor((m) => m.kind === 'request' && m.method === 'INVITE' && getHeader(m, 'call-id') === callId)) as SipRequest;
    callee.send(createResponse(arrived, 486, { toTag: 'x' }), PORT);
    expect((await caller.response(req, 486)).status).toBe(486);
    return arrived;
  }

  it('delivers sip:+15551234@domain;user=phone to the owner of +15551234', async () => {
    const arrived = await call(`sip:+15551234@${DOMAIN};user=phone`, `sip:+15551234@${DOMAIN};user=phone`);
    expect(getHeader(arrived, 'to')).toContain('+15551234');
    expect(arrived.uri).toMatch(/^sip:dave@127\.0\.0\.1:\d+/);
  });

  it('delivers tel:+4420 to the user who stored the number without its +', async () => {
    const arrived = await call('tel:+4420', 'tel:+4420');
    expect(arrived.uri).toMatch(/^sip:erin@127\.0\.0\.1:\d+/);
  });

  it('answers 404 to another domain for a number no local user owns, without asking DNS', async () => {
    const req = caller.request('INVITE', `sip:+15559999@${DOMAIN};user=phone`, { from: 'sip:carol@elsewhere.test', to: `sip:+15559999@${DOMAIN};user=phone`, contactUser: 'carol' });
    caller.send(req, PORT);
    expect((await caller.response(req)).status).toBe(404);
  });
});
