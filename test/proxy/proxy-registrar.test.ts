import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { getHeader, getHeaderValues, type SipRequest, type SipResponse } from '../../src/sip/message.js';
import { createResponse } from '../../src/sip/response.js';
import { UdpUa } from '../helpers/udp-ua.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';

const PORT = 26060;
const DOMAIN = 'example.test';

describe('registrar and proxy over UDP', () => {
  let test: TestServer;
  let dir: string;
  let alice: UdpUa;
  let bob: UdpUa;

  beforeAll(async () => {
    test = await startTestServer({
      name: 'proxy',
      domain: DOMAIN,
      sip: { listen: [{ transport: 'udp', host: '127.0.0.1', port: PORT }], registrar: { min_expires: 30 } },
      users: { alice: 'alicepw', bob: 'bobpw', carol: 'carolpw' },
    });
    dir = test.dir;
    alice = await UdpUa.open();
    bob = await UdpUa.open();
  });

  afterAll(async () => {
    alice?.close();
    bob?.close();
    await test?.stop();
  });

  async function register(ua: UdpUa, user: string, pw: string, expires = 300): Promise<SipResponse> {
    const req = ua.request('REGISTER', `sip:${DOMAIN}`, {
      from: `sip:${user}@${DOMAIN}`,
      to: `sip:${user}@${DOMAIN}`,
      contactUser: user,
      headers: [{ name: 'Expires', value: String(expires) }],
    });
    ua.send(req, PORT);
    const challenge = await ua.response(req);
    expect(challenge.status).toBe(401);
    const authed = ua.authorize(req, challenge, user, pw);
    ua.send(authed, PORT);
    return ua.response(authed);
  }

  it('answers OPTIONS to itself with 200 and Allow', async () => {
    const req = alice.request('OPTIONS', `sip:127.0.0.1:${PORT}`, { from: 'sip:probe@elsewhere.test', to: `sip:127.0.0.1:${PORT}` });
    alice.send(req, PORT);
    const res = await alice.response(req);
    expect(res.status).toBe(200);
    expect(getHeader(res, 'allow')).toContain('INVITE');
    expect(getHeader(res, 'allow')).toContain('REGISTER');
  });

  it('challenges REGISTER with 401 MD5 qop=auth, then stores the binding', async () => {
    const req = alice.request('REGISTER', `sip:${DOMAIN}`, { from: `sip:alice@${DOMAIN}`, to: `sip:alice@${DOMAIN}`, contactUser: 'alice' });
    alice.send(req, PORT);
    const challenge = await alice.response(req);
    expect(challenge.status).toBe(401);
    const www = getHeader(challenge, 'www-authenticate')!;
    expect(www).toMatch(/^Digest realm="example\.test", nonce="[^"]+", algorithm=MD5, qop="auth"/);

    const res = await register(alice, 'alice', 'alicepw');
    expect(res.status).toBe(200);
    const contacts = getHeaderValues(res, 'contact');
    expect(contacts).toHaveLength(1);
    expect(contacts[0]).toMatch(new RegExp(`^<sip:alice@127\\.0\\.0\\.1:${alice.port}>;expires=(300|299)$`));
    expect(getHeader(res, 'date')).toMatch(/GMT$/);

    const db = new Database(join(dir, 'rtcedge.db'), { readonly: true });
    const rows = db.prepare('SELECT aor, contact_uri, expires FROM bindings WHERE aor = ?').all(`sip:alice@${DOMAIN}`) as { contact_uri: string; expires: number }[];
    db.close();
    expect(rows.map((r) => r.contact_uri)).toEqual([`sip:alice@127.0.0.1:${alice.port}`]);
    expect(rows[0].expires).toBeGreaterThan(Date.now() / 1000 + 290);
  });

  it('refuses a wrong password with 403 and a too brief interval with 423', async () => {
    const bad = await register(bob, 'bob', 'wrong');
    expect(bad.status).toBe(403);
    const brief = await register(bob, 'bob', 'bobpw', 5);
    expect(brief.status).toBe(423);
    expect(getHeader(brief, 'min-expires')).toBe('30');
  });

  it('refuses a REGISTER with Path from a UA without Supported: path with 420 (RFC 3327 §5.3), storing nothing', async () => {
    const req = bob.request('REGISTER', `sip:${DOMAIN}`, {
      from: `sip:carol@${DOMAIN}`,
      to: `sip:carol@${DOMAIN}`,
      contactUser: 'carol',
      headers: [{ name: 'Path', value: '<sip:edge.example.test;lr>' }],
    });
    bob.send(req, PORT);
    const authed = bob.authorize(req, await bob.response(req), 'carol', 'carolpw');
    bob.send(authed, PORT);
    const res = await bob.response(authed);
    expect([res.status, getHeader(res, 'unsupported')]).toEqual([420, 'path']);
    const db = new Database(join(dir, 'rtcedge.db'), { readonly: true });
    const rows = db.prepare('SELECT contact_uri FROM bindings WHERE aor = ?').all(`sip:carol@${DOMAIN}`);
    db.close();
    expect(rows).toEqual([]);
  });

  it('relays INVITE, 180, 200, ACK, BYE and 200 between two registered users', async () => {
    expect((await register(alice, 'alice', 'alicepw')).status).toBe(200);
    expect((await register(bob, 'bob', 'bobpw')).status).toBe(200);

    const invite = alice.request('INVITE', `sip:bob@${DOMAIN}`, { from: `sip:alice@${DOMAIN}`, to: `sip:bob@${DOMAIN}`, contactUser: 'alice', body: 'v=0\r\n' });
    const callId = getHeader(invite, 'call-id')!;
    alice.send(invite, PORT);
    const c407 = await alice.response(invite);
    expect(c407.status).toBe(407);
    expect(getHeader(c407, 'proxy-authenticate')).toMatch(/^Digest realm="example\.test"/);
    // ACK for the 407 is absorbed hop by hop.
    alice.send(ackFor(invite, c407), PORT);
    const authed = alice.authorize(invite, c407, 'alice', 'alicepw');
    alice.send(authed, PORT);

    const atBob = (await bob.waitFor((m) => m.kind === 'request' && m.method === 'INVITE' && getHeader(m, 'call-id') === callId)) as SipRequest;
    expect(atBob.uri).toBe(`sip:bob@127.0.0.1:${bob.port}`);
    expect(getHeaderValues(atBob, 'via')).toHaveLength(2);
    expect(getHeaderValues(atBob, 'via')[0]).toMatch(new RegExp(`^SIP/2\\.0/UDP 127\\.0\\.0\\.1:${PORT};branch=z9hG4bK`));
    expect(getHeaderValues(atBob, 'record-route')).toEqual([`<sip:127.0.0.1:${PORT};transport=udp;lr>`]);
    expect(getHeader(atBob, 'max-forwards')).toBe('69');
    // Credentials for this realm are consumed, not forwarded.
    expect(getHeader(atBob, 'proxy-authorization')).toBeUndefined();
    expect(atBob.body.toString()).toBe('v=0\r\n');
    // The ACK for the 407 never reached bob.
    expect(bob.received.filter((m) => m.kind === 'request' && m.method === 'ACK')).toHaveLength(0);

    bob.send(createResponse(atBob, 180, { toTag: 'bobtag' }), PORT);
    const ringing = await alice.response(authed, 180);
    expect(getHeaderValues(ringing, 'via')).toHaveLength(1);
    const ok = createResponse(atBob, 200, { toTag: 'bobtag', headers: [{ name: 'Contact', value: `<sip:bob@127.0.0.1:${bob.port}>` }, ...getHeaderValues(atBob, 'record-route').map((v) => ({ name: 'Record-Route', value: v }))] });
    bob.send(ok, PORT);
    const ok200 = await alice.response(authed, 200);
    expect(getHeader(ok200, 'to')).toContain('tag=bobtag');
    expect(getHeaderValues(ok200, 'record-route')).toEqual([`<sip:127.0.0.1:${PORT};transport=udp;lr>`]);

    // ACK and BYE follow the route set through the proxy to bob's Contact.
    const route = [{ name: 'Route', value: `<sip:127.0.0.1:${PORT};transport=udp;lr>` }];
    const fromTag = /tag=([^;>]+)/.exec(getHeader(invite, 'from')!)![1];
    const ack = alice.request('ACK', `sip:bob@127.0.0.1:${bob.port}`, { from: `sip:alice@${DOMAIN}`, to: `sip:bob@${DOMAIN}`, toTag: 'bobtag', fromTag, callId, cseq: 2, headers: route });
    alice.send(ack, PORT);
    const ackAtBob = await bob.waitFor((m) => m.kind === 'request' && m.method === 'ACK' && getHeader(m, 'call-id') === callId);
    expect(getHeader(ackAtBob, 'route')).toBeUndefined();

    const bye = alice.request('BYE', `sip:bob@127.0.0.1:${bob.port}`, { from: `sip:alice@${DOMAIN}`, to: `sip:bob@${DOMAIN}`, toTag: 'bobtag', fromTag, callId, cseq: 3, headers: route });
    alice.send(bye, PORT);
    const byeAtBob = (await bob.waitFor((m) => m.kind === 'request' && m.method === 'BYE' && getHeader(m, 'call-id') === callId)) as SipRequest;
    bob.send(createResponse(byeAtBob, 200), PORT);
    const byeOk = await alice.response(bye);
    expect(byeOk.status).toBe(200);
  });

  it('answers 404 for an unknown user and 480 for a user without bindings', async () => {
    for (const [user, status] of [['nobody', 404], ['carol', 480]] as const) {
      const invite = alice.request('INVITE', `sip:${user}@${DOMAIN}`, { from: `sip:alice@${DOMAIN}`, to: `sip:${user}@${DOMAIN}`, contactUser: 'alice' });
      alice.send(invite, PORT);
      const c407 = await alice.response(invite);
      expect(c407.status).toBe(407);
      alice.send(ackFor(invite, c407), PORT);
      const authed = alice.authorize(invite, c407, 'alice', 'alicepw');
      alice.send(authed, PORT);
      const res = await alice.response(authed);
      expect(res.status).toBe(status);
    }
  });

  it('forwards CANCEL and answers the INVITE with 487', async () => {
    const invite = alice.request('INVITE', `sip:bob@${DOMAIN}`, { from: `sip:alice@${DOMAIN}`, to: `sip:bob@${DOMAIN}`, contactUser: 'alice' });
    const callId = getHeader(invite, 'call-id')!;
    alice.send(invite, PORT);
    const c407 = await alice.response(invite);
    alice.send(ackFor(invite, c407), PORT);
    const authed = alice.authorize(invite, c407, 'alice', 'alicepw');
    alice.send(authed, PORT);
    const atBob = (await bob.waitFor((m) => m.kind === 'request' && m.method === 'INVITE' && getHeader(m, 'call-id') === callId)) as SipRequest;
    bob.send(createResponse(atBob, 180, { toTag: 'b2' }), PORT);
    await alice.response(authed, 180);

    const cancel: SipRequest = {
      kind: 'request',
      method: 'CANCEL',
      uri: authed.uri,
      headers: [
        { name: 'Via', value: getHeader(authed, 'via')! },
        { name: 'Max-Forwards', value: '70' },
        { name: 'From', value: getHeader(authed, 'from')! },
        { name: 'To', value: getHeader(authed, 'to')! },
        { name: 'Call-ID', value: callId },
        { name: 'CSeq', value: `${getHeader(authed, 'cseq')!.split(' ')[0]} CANCEL` },
      ],
      body: Buffer.alloc(0),
    };
    alice.send(cancel, PORT);
    expect((await alice.response(cancel)).status).toBe(200);
    const cancelAtBob = (await bob.waitFor((m) => m.kind === 'request' && m.method === 'CANCEL' && getHeader(m, 'call-id') === callId)) as SipRequest;
    expect(getHeaderValues(cancelAtBob, 'via')[0]).toBe(getHeaderValues(atBob, 'via')[0]);
    bob.send(createResponse(cancelAtBob, 200), PORT);
    bob.send(createResponse(atBob, 487, { toTag: 'b2' }), PORT);
    const final = await alice.response(authed, 487);
    expect(final.status).toBe(487);
    // The proxy ACKs bob's 487 itself (hop by hop).
    await bob.waitFor((m) => m.kind === 'request' && m.method === 'ACK' && getHeader(m, 'call-id') === callId);
  });

  it('refuses to relay an in-dialog request that does not follow a route it recorded', async () => {
    const bye = alice.request('BYE', 'sip:victim@127.0.0.9:5099', { from: 'sip:mallory@elsewhere.test', to: 'sip:victim@elsewhere.test', toTag: 'x1' });
    alice.send(bye, PORT);
    const res = await alice.response(bye);
    expect(res.status).toBe(403);
    expect(res.reason).toBe('Relaying denied');
  });

  it('answers a malformed request with 400 naming the problem', async () => {
    const raw =
      `OPTIONS sip:127.0.0.1:${PORT} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:${alice.port};branch=z9hG4bKbad1;rport\r\n` +
      'From: <sip:x@example.test>;tag=1\r\nTo: <sip:127.0.0.1>\r\nCall-ID: bad-cseq-1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: ten\r\nContent-Length: 0\r\n\r\n';
    alice.sendRaw(raw, PORT);
    const res = (await alice.waitFor((m) => m.kind === 'response' && getHeader(m, 'call-id') === 'bad-cseq-1')) as SipResponse;
    expect(res.status).toBe(400);
    expect(res.reason).toMatch(/Max-Forwards/i);
  });
});

function ackFor(invite: SipRequest, res: SipResponse): SipRequest {
  return {
    kind: 'request',
    method: 'ACK',
    uri: invite.uri,
    headers: [
      { name: 'Via', value: getHeader(invite, 'via')! },
      { name: 'Max-Forwards', value: '70' },
      { name: 'From', value: getHeader(invite, 'from')! },
      { name: 'To', value: getHeader(res, 'to')! },
      { name: 'Call-ID', value: getHeader(invite, 'call-id')! },
      { name: 'CSeq', value: `${getHeader(invite, 'cseq')!.split(' ')[0]} ACK` },
    ],
    body: Buffer.alloc(0),
  };
}
