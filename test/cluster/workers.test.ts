/**
 * `rtcedge serve` with `sip.workers: 2` (the built CLI as a process: a
 * primary and two SIP workers on the same UDP and TCP ports). Requests whose
 * Call-ID each worker owns (callIdOwner) reach UAs registered through UDP and
 * through a TCP connection; a retransmitted INVITE and its CANCEL meet the one
 * transaction. Every worker reads the one UDP socket, so a datagram lands on
 * either; the summary lines show that messages were handed between them.
 *
 * Ports: 27310 (UDP and TCP), admin 27311.
 */
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCliAsync, type ServeProcess } from '../cli/harness.js';
import { callIdFor, serveWorkers, type ServedWorkers } from './harness.js';
import { UdpUa } from '../helpers/udp-ua.js';
import { TcpConnection } from '../helpers/tcp-ua.js';
import { createResponse } from '../../src/sip/response.js';
import { getHeader, type SipHeader, type SipRequest, type SipResponse } from '../../src/sip/message.js';

const PORT = 27310;
const DOMAIN = 'example.test';
const PW = 'workers-pw';

describe('two SIP workers behind one set of ports', () => {
  let served: ServedWorkers | undefined;
  let dir: string;
  let server: ServeProcess;
  const uas: UdpUa[] = [];

  beforeAll(async () => {
    served = await serveWorkers(
      'workers',
      {
        domains: [DOMAIN],
        log: { level: 'info', summary_interval: 1 },
        sip: {
          workers: 2,
          listen: [
            { transport: 'udp', host: '127.0.0.1', port: PORT },
            { transport: 'tcp', host: '127.0.0.1', port: PORT },
          ],
      },
      turn: { enabled: false },
      federation: { require_tls: false },
      admin: { listen: '127.0.0.1:27311' },
      },
      DOMAIN,
      ['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'gina', 'hank'],
      PW,
    );
    ({ dir, server } = served);
  }, 30_000);

  afterAll(async () => {
    for (const ua of uas) ua.close();
    await served?.stop();
  });

  async function ua(): Promise<UdpUa> {
    const u = await UdpUa.open();
    uas.push(u);
    return u;
  }

  /** Send `req` as alice, answer the 407 with her credentials; resolves with the authorized request (sent). */
  async function sendAuthorized(alice: UdpUa, req: SipRequest, retransmissions = 0): Promise<SipRequest> {
    alice.send(req, PORT);
    // Retransmitted every 500 ms (Timer E of a UA, RFC 3261 §17.1.2.2) when asked: a restarting worker may drop the first.
    const timers = Array.from({ length: retransmissions }, (_, i) => setTimeout(() => alice.send(req, PORT), 500 * (i + 1)));
    const challenge = await alice.response(req, 407, 500 * retransmissions + 3000).finally(() => timers.forEach(clearTimeout));
    const authed = alice.authorize(req, challenge, 'alice', PW);
    alice.send(authed, PORT);
    return authed;
  }

  it('logs ready once, with both workers, and the same listener fields as one process', () => {
    expect(server.ready).toMatchObject({ workers: 2, sip: [`udp:127.0.0.1:${PORT}`, `tcp:127.0.0.1:${PORT}`], domains: [DOMAIN] });
    const workerReady = server.stdout().split('\n').filter((l) => l.includes('"sip worker ready"'));
    expect(workerReady.map((l) => (JSON.parse(l) as { worker: number }).worker).sort()).toEqual([0, 1]);
  });

  it('a UA registered through UDP gets MESSAGE and INVITE whose Call-ID either worker owns', async () => {
    const bob = await ua();
    const alice = await ua();
    expect((await bob.register(PORT, 'bob', PW, DOMAIN)).status).toBe(200);
    for (const owner of [0, 1, 0, 1]) {
      for (const method of ['MESSAGE', 'INVITE']) {
        const callId = callIdFor(owner);
        const req = alice.request(method, `sip:bob@${DOMAIN}`, { from: `sip:alice@${DOMAIN}`, to: `sip:bob@${DOMAIN}`, callId, body: method === 'MESSAGE' ? 'hi' : '' });
        const authed = await sendAuthorized(alice, req);
        const got = (await bob.waitFor((m) => m.kind === 'request' && m.method === method && getHeader(m, 'call-id') === callId)) as SipRequest;
        const status = method === 'MESSAGE' ? 200 : 486;
        bob.send(createResponse(got, status, { toTag: 'b0b' }), PORT);
        expect((await alice.response(authed)).status, `${method} owned by worker ${owner}`).toBe(status);
      }
    }
  });

  it('a UA registered over a TCP connection is reached by INVITEs entering by UDP, whichever worker owns them', async () => {
    const conn = await TcpConnection.connect(PORT);
    try {
      const tcpVia = (): SipHeader => ({ name: 'Via', value: `SIP/2.0/TCP 127.0.0.1:${conn.localPort};branch=z9hG4bK${randomBytes(8).toString('hex')}` });
      const overTcp = (r: SipRequest): SipRequest => ({ ...r, headers: r.headers.map((h) => (/^via$/i.test(h.name) ? tcpVia() : h)) });
      const helper = await ua(); // builds and authorizes carol's requests; they travel over the connection
      // One REGISTER whose Call-ID each worker owns: the connection is on one of them, so one exchange is
      // handed to the other worker and its answers go back through the connection's worker.
      for (const owner of [0, 1]) {
        const callId = callIdFor(owner);
        const contact = `<sip:carol@127.0.0.1:${conn.localPort};transport=tcp>`;
        const reg = overTcp(helper.request('REGISTER', `sip:${DOMAIN}`, { from: `sip:carol@${DOMAIN}`, to: `sip:carol@${DOMAIN}`, callId, contact }));
        conn.send(reg);
        const challenge = (await conn.waitFor((m) => m.kind === 'response' && m.status === 401 && getHeader(m, 'call-id') === callId)) as SipResponse;
        conn.send(overTcp(helper.authorize(reg, challenge, 'carol', PW)));
        await conn.waitFor((m) => m.kind === 'response' && m.status === 200 && getHeader(m, 'call-id') === callId);
      }

      const alice = await ua();
      for (const owner of [0, 1, 1, 0]) {
        const callId = callIdFor(owner);
        const authed = await sendAuthorized(alice, alice.request('INVITE', `sip:carol@${DOMAIN}`, { from: `sip:alice@${DOMAIN}`, to: `sip:carol@${DOMAIN}`, callId }));
        const got = (await conn.waitFor((m) => m.kind === 'request' && m.method === 'INVITE' && getHeader(m, 'call-id') === callId)) as SipRequest;
        conn.send(createResponse(got, 486, { toTag: 'ca401' }));
        expect((await alice.response(authed)).status, `INVITE owned by worker ${owner}`).toBe(486);
      }
    } finally {
      conn.destroy();
    }
  });

  it('a retransmitted INVITE and its CANCEL reach the one transaction: the callee sees one INVITE, the caller 487', async () => {
    const dave = await ua();
    expect((await dave.register(PORT, 'dave', PW, DOMAIN)).status).toBe(200);
    const alice = await ua();
    for (const owner of [0, 1, 0, 1]) {
      const callId = callIdFor(owner);
      const invite = await sendAuthorized(alice, alice.request('INVITE', `sip:dave@${DOMAIN}`, { from: `sip:alice@${DOMAIN}`, to: `sip:dave@${DOMAIN}`, callId }));
      const got = (await dave.waitFor((m) => m.kind === 'request' && m.method === 'INVITE' && getHeader(m, 'call-id') === callId)) as SipRequest;
      dave.send(createResponse(got, 180, { toTag: 'da4e' }), PORT);
      await alice.response(invite, 180);
      // Retransmissions of the INVITE (each datagram lands on either worker): answered from the transaction.
      const ringingBefore = alice.received.filter((m) => m.kind === 'response' && m.status === 180 && getHeader(m, 'call-id') === callId).length;
      for (let i = 0; i < 3; i++) alice.send(invite, PORT);
      await expect
        .poll(() => alice.received.filter((m) => m.kind === 'response' && m.status === 180 && getHeader(m, 'call-id') === callId).length, { timeout: 3000 })
        .toBeGreaterThanOrEqual(ringingBefore + 3);
      const cancel: SipRequest = {
        kind: 'request',
        method: 'CANCEL',
        uri: invite.uri,
        headers: invite.headers
          .filter((h) => /^(via|from|to|call-id|max-forwards)$/i.test(h.name))
          .concat([{ name: 'CSeq', value: `${getHeader(invite, 'cseq')!.split(' ')[0]} CANCEL` }]),
        body: Buffer.alloc(0),
      };
      alice.send(cancel, PORT);
      expect((await alice.response(cancel)).status).toBe(200);
      const cancelled = (await dave.waitFor((m) => m.kind === 'request' && m.method === 'CANCEL' && getHeader(m, 'call-id') === callId)) as SipRequest;
      dave.send(createResponse(cancelled, 200), PORT);
      dave.send(createResponse(got, 487, { toTag: 'da4e' }), PORT);
      expect((await alice.response(invite)).status, `INVITE owned by worker ${owner}`).toBe(487);
      const invites = dave.received.filter((m) => m.kind === 'request' && m.method === 'INVITE' && getHeader(m, 'call-id') === callId);
      expect(invites).toHaveLength(1);
    }
  });

  it('the admin API of the primary lists a binding a worker stored, and what it removes no worker routes to any more', async () => {
    const erin = await ua();
    expect((await erin.register(PORT, 'erin', PW, DOMAIN)).status).toBe(200);
    const configFile = join(dir, 'rtcedge.yaml');
    const list = await runCliAsync(['reg', 'list', `erin@${DOMAIN}`, '--json', '-c', configFile], dir);
    expect((JSON.parse(list.stdout) as { bindings: { contactUri: string }[] }[])[0]!.bindings.map((b) => b.contactUri)).toEqual([`sip:erin@127.0.0.1:${erin.port}`]);
    const del = await runCliAsync(['reg', 'del', `erin@${DOMAIN}`, '-c', configFile], dir);
    expect(del.status, del.stderr).toBe(0);
    const alice = await ua();
    for (const owner of [0, 1]) {
      const callId = callIdFor(owner);
      const authed = await sendAuthorized(alice, alice.request('MESSAGE', `sip:erin@${DOMAIN}`, { from: `sip:alice@${DOMAIN}`, to: `sip:erin@${DOMAIN}`, callId, body: 'gone?' }));
      expect((await alice.response(authed)).status, `MESSAGE owned by worker ${owner}`).toBe(480);
    }
    expect(erin.received.filter((m) => m.kind === 'request' && m.method === 'MESSAGE')).toEqual([]);
  });

  it('SIGHUP reaches the primary and both workers: one "reloaded" line naming the two workers that reloaded', async () => {
    const reloaded = () => server.stdout().split('\n').filter((l) => l.includes('"msg":"reloaded"'));
    const before = reloaded().length;
    process.kill(server.proc.pid!, 'SIGHUP');
    await expect.poll(() => reloaded().length, { timeout: 5000 }).toBe(before + 1);
    expect(JSON.parse(reloaded().at(-1)!)).toMatchObject({ reloaded: [], workers: 2 });
  });

  it('a worker killed is restarted, reads the bindings from the store, and serves the Call-IDs it owns', async () => {
    const bob = await ua();
    expect((await bob.register(PORT, 'bob', PW, DOMAIN)).status).toBe(200);
    const lines = () => server.stdout().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
    const ready = (worker: number) => lines().filter((l) => l.msg === 'sip worker ready' && l.worker === worker);
    const victim = ready(1)[0]!.pid as number;
    process.kill(victim, 'SIGKILL');
    await expect.poll(() => ready(1).length, { timeout: 10_000 }).toBe(2);
    expect(lines().find((l) => l.msg === 'sip worker exited; restarting')).toMatchObject({ worker: 1, pid: victim, signal: 'SIGKILL' });
    expect(ready(1)[1]!.pid).not.toBe(victim);
    const alice = await ua();
    for (const owner of [1, 0]) {
      const callId = callIdFor(owner);
      const authed = await sendAuthorized(alice, alice.request('MESSAGE', `sip:bob@${DOMAIN}`, { from: `sip:alice@${DOMAIN}`, to: `sip:bob@${DOMAIN}`, callId, body: 'again' }), 4);
      const got = (await bob.waitFor((m) => m.kind === 'request' && m.method === 'MESSAGE' && getHeader(m, 'call-id') === callId, 5000)) as SipRequest;
      bob.send(createResponse(got, 200, { toTag: 'b0b' }), PORT);
      expect((await alice.response(authed, undefined, 5000)).status, `MESSAGE owned by worker ${owner}`).toBe(200);
    }
  });

  it('a binding registered through either worker is found at once, by a request the other worker owns sent the moment the 200 arrived', async () => {
    const alice = await ua();
    for (const [user, owner] of [['frank', 0], ['gina', 1], ['hank', 0]] as const) {
      const phone = await ua();
      const reg = phone.request('REGISTER', `sip:${DOMAIN}`, { from: `sip:${user}@${DOMAIN}`, to: `sip:${user}@${DOMAIN}`, contactUser: user, callId: callIdFor(owner) });
      phone.send(reg, PORT);
      const authed = phone.authorize(reg, await phone.response(reg), user, PW);
      phone.send(authed, PORT);
      expect((await phone.response(authed)).status).toBe(200);
      const callId = callIdFor(1 - owner);
      const msg = await sendAuthorized(alice, alice.request('MESSAGE', `sip:${user}@${DOMAIN}`, { from: `sip:alice@${DOMAIN}`, to: `sip:${user}@${DOMAIN}`, callId, body: 'hi' }));
      const got = (await phone.waitFor((m) => m.kind === 'request' && m.method === 'MESSAGE' && getHeader(m, 'call-id') === callId)) as SipRequest;
      phone.send(createResponse(got, 200, { toTag: 'f0f' }), PORT);
      expect((await alice.response(msg)).status, `MESSAGE to ${user}, registered through worker ${owner}`).toBe(200);
    }
  });

  it('messages were handed between the workers (summary lines of both workers)', async () => {
    const handed = () =>
      server
        .stdout()
        .split('\n')
        .filter((l) => l.includes('"msg":"summary"'))
        .map((l) => JSON.parse(l) as { worker: number; handedOff: number; handedIn: number; meshFramesSent: number; meshBytesSent: number; meshWrites: number });
    await expect.poll(() => handed().reduce((n, s) => n + s.handedIn, 0), { timeout: 5000 }).toBeGreaterThan(0);
    const lines = handed();
    expect(lines.reduce((n, s) => n + s.handedOff, 0)).toBeGreaterThan(0);
    // Every message handed off is a mesh frame of the worker that handed it (more: replication, flows, answers).
    for (const w of [0, 1]) {
      const mine = lines.filter((s) => s.worker === w);
      const sum = (k: 'handedOff' | 'meshFramesSent' | 'meshBytesSent' | 'meshWrites') => mine.reduce((n, s) => n + s[k], 0);
      expect(sum('meshFramesSent')).toBeGreaterThanOrEqual(sum('handedOff'));
      expect(sum('meshWrites')).toBeGreaterThan(0);
      // At most one write per frame; a frame sent before a process's first summary snapshot may leave (and count its write) after it.
      expect(sum('meshWrites')).toBeLessThanOrEqual(sum('meshFramesSent') + 2);
      expect(sum('meshBytesSent')).toBeGreaterThan(sum('meshFramesSent') * 14);
    }
  });
});
