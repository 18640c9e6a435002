/**
 * RFC 4475 (SIP torture messages) and RFC 5118 (IPv6 torture messages) sent on
 * the wire to a server started in-process, over UDP on loopback, with what the
 * server answers asserted for each message as the RFCs describe it
 * (torture-suite.ts), and the messages whose handling needs a closer look.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import v8 from 'node:v8';
import Database from 'better-sqlite3';
import vm from 'node:vm';
import { parseMessage } from '../../src/sip/parser.js';
import { getHeader, getHeaderValues, type SipRequest } from '../../src/sip/message.js';
import { computeResponse, formatCredentials, parseAuthParams, computeHA1 } from '../../src/auth/digest.js';
import { UdpUa } from '../helpers/udp-ua.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import { UdpPeer, leftoverAddresses, vector } from './torture-wire.js';
import { DOMAIN, EXPECT, PASSWORD, TORTURE_USERS, allVectors, prepare as prepareFor, registerCallee, replayAll } from './torture-suite.js';

const PORT = 27060;

/** A torture message rewritten for a UDP sender on 127.0.0.1:uaPort. */
const prepare = (name: string, raw: Buffer, uaPort: number): Buffer => prepareFor(name, raw, { uaPort, proxy: `127.0.0.1:${PORT}` });

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('RFC 4475 and RFC 5118 torture messages over UDP', () => {
  let test: TestServer;
  let callee: UdpPeer;
  const vectors = allVectors();

  beforeAll(async () => {
    // Short timers so completed transactions go away within the test (64·T1 = 3.2 s).
    test = await startTestServer({
      name: 'torture',
      domain: DOMAIN,
      sip: { listen: [{ transport: 'udp', host: '127.0.0.1', port: PORT }], timers: { t1: 50, t2: 400, t4: 500 } },
      users: TORTURE_USERS,
    });
    callee = await UdpPeer.open(true);
    await registerCallee(PORT, callee);
  });

  afterAll(async () => {
    callee?.close();
    await test?.stop();
  });

  it('covers every message of both archives, and leaves no address outside loopback', () => {
    expect(vectors.length).toBe(49 + 12);
    expect(Object.keys(EXPECT).sort()).toEqual(vectors.map((v) => v.name).sort());
    for (const v of vectors) expect(leftoverAddresses(prepare(v.name, v.raw, 1))).toEqual([]);
  });

  it('answers each message as the RFCs say', async () => {
    const failures = await replayAll({
      vectors,
      open: () => UdpPeer.open(true),
      serverPort: PORT,
      sender: (ua) => ({ uaPort: ua.port, proxy: `127.0.0.1:${PORT}` }),
      callee,
      proxyVia: () => `SIP/2.0/UDP 127.0.0.1:${PORT};branch=z9hG4bK`,
    });
    expect(failures).toEqual([]);
  });

  it('wsinv.dat: the folded, oddly spaced INVITE is forwarded with every Via kept and Max-Forwards decremented', async () => {
    const ua = await UdpPeer.open(false);
    try {
      const msg = prepare('rfc4475/wsinv.dat', vector('rfc4475/wsinv.dat'), ua.port);
      await ua.send(msg, PORT);
      expect(await ua.until((p) => p.messages.some((m) => m.kind === 'request'), 2000)).toBe(true);
      const fwd = ua.messages.find((m): m is SipRequest => m.kind === 'request')!;
      expect(fwd.uri).toBe(`sip:vivekg@127.0.0.1:${ua.port};unknownparam`);
      expect(getHeaderValues(fwd, 'via')).toHaveLength(4);
      expect(getHeader(fwd, 'max-forwards')).toBe('67');
      // The Route names the next hop (the sender), not this proxy: it stays (loose routing, §16.4 / §16.6 step 7).
      expect(getHeaderValues(fwd, 'route')).toEqual([`<sip:127.0.0.1:${ua.port};lr;unknownwith=value;unknown-no-value>`]);
      expect(getHeader(fwd, 'newfangledheader')).toBe('newfangled value continued newfangled value');
      expect(getHeader(fwd, 'unknownheaderwithunusualvalue')).toBe(';;,,;;,;');
      expect(fwd.body.length).toBe(150);
    } finally {
      ua.close();
    }
  });

  it('dblreq.dat: only the REGISTER of the datagram is answered', async () => {
    const ua = await UdpPeer.open(false);
    try {
      await ua.send(prepare('rfc4475/dblreq.dat', vector('rfc4475/dblreq.dat'), ua.port), PORT);
      expect(await ua.until((p) => p.final() !== undefined, 2000)).toBe(true);
      await sleep(300);
      expect(ua.statuses()).toEqual([401]);
      expect(ua.raw[0].toString('latin1')).toContain('CSeq: 8 REGISTER');
      expect(callee.messages.some((m) => getHeader(m, 'call-id')?.startsWith('dblreq.0ha0isnda977644900765'))).toBe(false);
    } finally {
      ua.close();
    }
  });

  it('bext01.dat: 420 lists exactly the Proxy-Require option tags in Unsupported', async () => {
    const ua = await UdpPeer.open(false);
    try {
      await ua.send(prepare('rfc4475/bext01.dat', vector('rfc4475/bext01.dat'), ua.port), PORT);
      expect(await ua.until((p) => p.final() !== undefined, 2000)).toBe(true);
      const res = ua.messages[0];
      expect(res.kind === 'response' && res.status).toBe(420);
      expect(getHeaderValues(res, 'unsupported')).toEqual(['noProxiesSupportThis', 'norDoAnyProxiesSupportThis']);
    } finally {
      ua.close();
    }
  });

  it('insuf.dat: the 400 carries the Via and CSeq it could copy', async () => {
    const ua = await UdpPeer.open(false);
    try {
      await ua.send(prepare('rfc4475/insuf.dat', vector('rfc4475/insuf.dat'), ua.port), PORT);
      expect(await ua.until((p) => p.final() !== undefined, 2000)).toBe(true);
      const text = ua.raw[0].toString('latin1');
      expect(text).toMatch(/^SIP\/2\.0 400 Bad Request: missing /);
      expect(text).toContain('CSeq: 193942 INVITE\r\n');
      expect(text).toContain(`\r\nVia: SIP/2.0/UDP 127.0.0.1:${ua.port};rport;branch=z9hG4bKkdj.insuf\r\n`);
      expect(text).not.toMatch(/\r\n(From|To|Call-ID):/);
    } finally {
      ua.close();
    }
  });

  it('badbranch.dat: a bare z9hG4bK branch is no transaction id: two requests with different CSeq are two transactions', async () => {
    const ua = await UdpPeer.open(false);
    try {
      const first = prepare('rfc4475/badbranch.dat', vector('rfc4475/badbranch.dat'), ua.port);
      const second = Buffer.from(first.toString('latin1').replace('CSeq: 8 OPTIONS', 'CSeq: 9 OPTIONS'), 'latin1');
      await ua.send(first, PORT);
      expect(await ua.until((p) => p.statuses().length >= 1, 2000)).toBe(true);
      await ua.send(second, PORT);
      expect(await ua.until((p) => p.statuses().length >= 2, 2000)).toBe(true);
      const cseqs = ua.messages.map((m) => getHeader(m, 'cseq'));
      expect(cseqs).toEqual(['8 OPTIONS', '9 OPTIONS']);
      expect(ua.statuses()).toEqual([200, 200]);
    } finally {
      ua.close();
    }
  });

  describe('REGISTER messages of §3.1.2.13 and §3.3.12–§3.3.14 with credentials', () => {
    /**
     * The first final response to Call-ID `callId` that `peer` received, as text. Only those: a socket may get the
     * ephemeral port an earlier test's peer had, and with it the retransmissions of a final response still sent
     * there (wsinv.dat's 486, retransmitted until Timer H since nobody ACKs it).
     */
    const finalFor = (peer: UdpPeer, callId: string | undefined): string | undefined =>
      peer.raw.map((d) => d.toString('latin1')).find((t) => /^SIP\/2\.0 [2-6]\d\d /.test(t) && t.includes(`\r\nCall-ID: ${callId}\r\n`));

    /** Send the message, answer the 401 with Authorization from a new socket (a new transaction), return the final response text. */
    async function registerAuthorized(name: string, user: string): Promise<string> {
      const first = await UdpPeer.open(false);
      const second = await UdpPeer.open(false);
      try {
        const msg = prepare(name, vector(name), second.port);
        const req = parseMessage(msg) as SipRequest;
        const callId = getHeader(req, 'call-id');
        await first.send(prepare(name, vector(name), first.port), PORT);
        expect(await first.until((p) => finalFor(p, callId) !== undefined, 2000)).toBe(true);
        const challenge = parseMessage(Buffer.from(finalFor(first, callId)!, 'latin1'));
        expect(challenge.kind === 'response' && challenge.status).toBe(401);
        const { params } = parseAuthParams(getHeader(challenge, 'www-authenticate')!, 'digest');
        const nonce = params.get('nonce')!;
        const realm = params.get('realm')!;
        const ha1 = computeHA1('MD5', user, realm, PASSWORD);
        const cnonce = 'c0ffee';
        const response = computeResponse({ alg: 'MD5', ha1, method: req.method, uri: req.uri, nonce, qop: 'auth', nc: '00000001', cnonce });
        const creds = formatCredentials({ username: user, realm, nonce, uri: req.uri, response, algorithm: 'MD5', qop: 'auth', nc: '00000001', cnonce });
        const text = msg.toString('latin1');
        const eol = text.indexOf('\r\n');
        const withAuth = Buffer.from(`${text.slice(0, eol + 2)}Authorization: ${creds}\r\n${text.slice(eol + 2)}`, 'latin1');
        await second.send(withAuth, PORT);
        expect(await second.until((p) => finalFor(p, callId) !== undefined, 2000)).toBe(true);
        return finalFor(second, callId)!;
      } finally {
        first.close();
        second.close();
      }
    }

    it('cparam01.dat: ;unknownparam outside <> is a Contact header parameter, not part of the bound URI', async () => {
      const res = await registerAuthorized('rfc4475/cparam01.dat', 'watson');
      expect(res).toMatch(/^SIP\/2\.0 200 /);
      expect(res).toMatch(/\r\nContact: <sip:\+19725552222@gw1\.example\.net>;unknownparam;expires=\d+\r\n/);
    });

    it('cparam02.dat: ;unknownparam inside <> stays part of the bound URI', async () => {
      const res = await registerAuthorized('rfc4475/cparam02.dat', 'watson');
      expect(res).toMatch(/^SIP\/2\.0 200 /);
      expect(res).toMatch(/\r\nContact: <sip:\+19725552222@gw1\.example\.net;unknownparam>;expires=\d+\r\n/);
      expect(res).toMatch(/\r\nContact: <sip:\+19725552222@gw1\.example\.net>;unknownparam;expires=\d+\r\n/);
    });

    it('regescrt.dat: the escaped header in the Contact URI is stored and returned unchanged', async () => {
      const res = await registerAuthorized('rfc4475/regescrt.dat', 'reguser');
      expect(res).toMatch(/^SIP\/2\.0 200 /);
      expect(res).toContain('\r\nContact: <sip:user@example.test?Route=%3Csip:sip.example.com%3E>;expires=');
    });

    it('regbadct.dat: an addr-spec Contact with ?Route= is rejected with 400, no binding stored', async () => {
      const res = await registerAuthorized('rfc4475/regbadct.dat', 'reguser');
      expect(res).toMatch(/^SIP\/2\.0 400 Bad Request/);
      const db = new Database(join(test.dir, 'rtcedge.db'), { readonly: true });
      const rows = db.prepare('SELECT contact_uri FROM bindings WHERE aor = ?').all(`sip:reguser@${DOMAIN}`) as { contact_uri: string }[];
      db.close();
      expect(rows.map((r) => r.contact_uri)).toEqual(['sip:user@example.test?Route=%3Csip:sip.example.com%3E']);
    });
  });

  it('survives the whole set sent 100 times: still answers OPTIONS, heap growth bounded', async () => {
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    const measure = async () => {
      for (let i = 0; i < 3; i++) {
        gc();
        await sleep(20);
      }
      return process.memoryUsage().heapUsed;
    };
    const ua = await UdpPeer.open(true);
    ua.retain = false;
    callee.retain = false;
    try {
      const prepared = vectors.map((v) => prepare(v.name, v.raw, ua.port));
      // One warm-up round, then wait for its transactions to end (64·T1).
      for (const m of prepared) await ua.send(m, PORT);
      await sleep(3800);
      const before = await measure();
      const rounds = 100;
      for (let round = 0; round < rounds; round++) {
        // A distinct branch per round, so each round makes new transactions rather than retransmissions.
        for (const m of prepared) await ua.send(Buffer.from(m.toString('latin1').replace(/branch=z9hG4bK/gi, `branch=z9hG4bKr${round}x`), 'latin1'), PORT);
        await sleep(5);
      }
      await sleep(4000);
      const after = await measure();
      const grown = (after - before) / 1024 / 1024;
      expect(grown, `heap grew ${grown.toFixed(1)} MiB`).toBeLessThan(8);

      const probe = await UdpUa.open();
      try {
        const req = probe.request('OPTIONS', `sip:127.0.0.1:${PORT}`, { from: 'sip:probe@elsewhere.test', to: `sip:127.0.0.1:${PORT}` });
        probe.send(req, PORT);
        expect((await probe.response(req)).status).toBe(200);
      } finally {
        probe.close();
      }
      expect(ua.count).toBeGreaterThan(rounds * 40);
    } finally {
      callee.retain = true;
      ua.close();
    }
  }, 40_000);
});
