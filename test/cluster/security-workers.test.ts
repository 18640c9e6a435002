/**
 * Call limits and bans hold across SIP workers (`rtcedge serve` with
 * `sip.workers: 2`, the built CLI as a process; security/worker-peers.ts over
 * the Unix-socket mesh): calls of one user whose Call-IDs the two workers own
 * count against one limit, and failed authentications from one address spread
 * over both workers reach `per_source` and ban it on both; worker 0 alone
 * writes data_dir/bans.json; a nonce is accepted only by the worker that
 * issued it (another answers stale=true).
 *
 * The primary's /metrics sums both workers' counters and shows the ban once.
 *
 * Ports: 27320 (UDP), admin 27321. The guessing UA sends from 127.0.0.2 (its ban must not
 * stop the other UAs, on 127.0.0.1).
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readBanFile } from '../../src/admin/ban-file.js';
import { computeResponse, formatCredentials, parseAuthParams } from '../../src/auth/digest.js';
import { nonceIssuer } from '../../src/auth/nonce.js';
import { createResponse } from '../../src/sip/response.js';
import { getHeader, type SipRequest } from '../../src/sip/message.js';
import type { ServeProcess } from '../cli/harness.js';
import { authenticatedInvite, callIdFor, guessingSource, serveWorkers, type ServedWorkers } from './harness.js';
import { UdpUa } from '../helpers/udp-ua.js';

const PORT = 27320;
const DOMAIN = 'example.test';
const PW = 'workers-pw';
const PER_SOURCE = 4;

describe('security state across two SIP workers', () => {
  let served: ServedWorkers | undefined;
  let dir: string;
  let server: ServeProcess;
  const uas: UdpUa[] = [];

  beforeAll(async () => {
    served = await serveWorkers(
      'security-workers',
      {
        domains: [DOMAIN],
        log: { level: 'info' },
        sip: {
          workers: 2,
          listen: [{ transport: 'udp', host: '127.0.0.1', port: PORT }],
          security: {
            exempt_sources: [],
            source_rate: { requests_per_second: 1000, burst: 1000 },
            auth_failures: { per_source: PER_SOURCE, per_user: 0, ban_seconds: 600 },
            calls: { max_concurrent_per_user: 1, max_attempts_per_minute: 0 },
          },
      },
      turn: { enabled: false },
      federation: { require_tls: false },
      admin: { listen: '127.0.0.1:27321' },
      },
      DOMAIN,
      ['alice', 'bob'],
      PW,
    );
    ({ dir, server } = served);
  }, 30_000);

  afterAll(async () => {
    for (const ua of uas) ua.close();
    await served?.stop();
  });

  async function send(u: UdpUa, req: SipRequest): Promise<SipRequest> {
    u.send(req, PORT);
    return req;
  }

  async function ua(): Promise<UdpUa> {
    const u = await UdpUa.open();
    uas.push(u);
    return u;
  }

  it('one concurrent call per user holds whichever worker owns each call: the second gets 486 until the first ends', async () => {
    const bob = await ua();
    const alice = await ua();
    expect((await bob.register(PORT, 'bob', PW, DOMAIN)).status).toBe(200);
    const call = (owner: number) => authenticatedInvite(alice, PORT, DOMAIN, owner, 'alice', PW, 'bob');
    for (const [first, second] of [
      [0, 1],
      [1, 0],
    ]) {
      const a = await call(first!);
      const ringing = (await bob.waitFor((m) => m.kind === 'request' && m.method === 'INVITE' && getHeader(m, 'call-id') === a.callId)) as SipRequest;
      const b = await call(second!);
      const refused = await alice.response(b.authed);
      expect([refused.status, refused.reason], `second call owned by worker ${second}`).toEqual([486, 'Busy Here: concurrent call limit']);
      // bob declines the first call: it ends, and the line is free for a call the other worker owns.
      bob.send(createResponse(ringing, 603, { toTag: 'b0b' }), PORT);
      expect((await alice.response(a.authed)).status).toBe(603);
      const c = await call(second!);
      const got = (await bob.waitFor((m) => m.kind === 'request' && m.method === 'INVITE' && getHeader(m, 'call-id') === c.callId)) as SipRequest;
      bob.send(createResponse(got, 603, { toTag: 'b0c' }), PORT);
      expect((await alice.response(c.authed)).status).toBe(603);
    }
  });

  it('a nonce is accepted only by its issuer: reused on a REGISTER the other worker owns it gets 401 stale=true with a nonce of that worker', async () => {
    const carol = await ua();
    const first = carol.request('REGISTER', `sip:${DOMAIN}`, { from: `sip:alice@${DOMAIN}`, to: `sip:alice@${DOMAIN}`, callId: callIdFor(0), contactUser: 'alice' });
    carol.send(first, PORT);
    const challenge = await carol.response(first, 401);
    const nonce = parseAuthParams(getHeader(challenge, 'www-authenticate')!, 'digest').params.get('nonce')!;
    expect(nonceIssuer(nonce)).toBe(0);
    /** A REGISTER with credentials for `nonce` at nonce-count `nc`, whose Call-ID `owner` owns. */
    const withNonce = (owner: number, nc: number): SipRequest => {
      const req = carol.request('REGISTER', `sip:${DOMAIN}`, { from: `sip:alice@${DOMAIN}`, to: `sip:alice@${DOMAIN}`, callId: callIdFor(owner), contactUser: 'alice' });
      const ha1 = createHash('md5').update(`alice:${DOMAIN}:${PW}`).digest('hex');
      const n = nc.toString(16).padStart(8, '0');
      const response = computeResponse({ alg: 'MD5', ha1, method: 'REGISTER', uri: req.uri, nonce, qop: 'auth', nc: n, cnonce: 'c0ffee' });
      req.headers.push({ name: 'Authorization', value: formatCredentials({ username: 'alice', realm: DOMAIN, nonce, uri: req.uri, response, algorithm: 'MD5', qop: 'auth', nc: n, cnonce: 'c0ffee' }) });
      return req;
    };
    expect((await carol.response(await send(carol, withNonce(0, 1)))).status).toBe(200);
    const elsewhere = await send(carol, withNonce(1, 2));
    const stale = await carol.response(elsewhere);
    expect(stale.status).toBe(401);
    const fresh = parseAuthParams(getHeader(stale, 'www-authenticate')!, 'digest').params;
    expect(fresh.get('stale')).toBe('true');
    expect(nonceIssuer(fresh.get('nonce')!)).toBe(1);
    // On its issuer, the next nonce-count is accepted.
    expect((await carol.response(await send(carol, withNonce(0, 3)))).status).toBe(200);
  });

  it('failed authentications from one address reaching both workers ban it at per_source on both; worker 0 writes bans.json', async () => {
    // A guessing UA on 127.0.0.2: REGISTERs with a wrong password, Call-IDs owned by each worker in turn.
    const helper = await ua();
    const guesser = await guessingSource(helper, PORT, DOMAIN);
    try {
      await guesser.guess(PER_SOURCE);
      // Two failures on each worker: only a count kept in one place reaches 4. Now neither answers.
      for (const owner of [0, 1]) expect(await guesser.answered(owner), `OPTIONS owned by worker ${owner}`).toBe(false);
      await expect.poll(() => readBanFile(join(dir, 'data')).map((b) => [b.address, b.reason]), { timeout: 3000 }).toEqual([['127.0.0.2', 'auth-failures']]);
      const banned = server.stdout().split('\n').filter((l) => l.includes('"msg":"source banned"'));
      expect(banned).toHaveLength(1);
      // The other UAs (127.0.0.1) are not banned.
      expect((await helper.register(PORT, 'alice', PW, DOMAIN)).status).toBe(200);
    } finally {
      guesser.close();
    }
  });

  it('/metrics of the primary sums both workers\' counters and shows bans once', async () => {
    const text = await (await fetch('http://127.0.0.1:27321/metrics')).text();
    const sample = (series: string): number | undefined => {
      const line = text.split('\n').find((l) => l.startsWith(`${series} `));
      return line === undefined ? undefined : Number(line.slice(series.length + 1));
    };
    expect(sample('rtcedge_metrics_workers_missing')).toBe(0);
    // Two of the four refused authentications went through each worker.
    expect(sample('rtcedge_auth_failures_total')).toBe(PER_SOURCE);
    // Both workers hold the one ban.
    expect(sample('rtcedge_bans')).toBe(1);
    // alice and bob are registered: counted in the store by the primary and in memory by each worker.
    expect(sample('rtcedge_registered_aors')).toBe(2);
    expect(sample('rtcedge_bindings')).toBeGreaterThanOrEqual(2);
    expect(sample('rtcedge_sip_requests_total{direction="in",method="INVITE"}')).toBeGreaterThanOrEqual(12);
  });
});
