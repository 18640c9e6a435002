import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import {
  computeHA1,
  computeResponse,
  formatCredentials,
  parseAuthParams,
  type DigestAlgorithm,
  type DigestCredentials,
} from '../../src/auth/digest.js';
import { checkNonce, createNonce, NonceCountTracker, nonceTimestamp } from '../../src/auth/nonce.js';
import { authenticateRequest, challengeCounter, challengeHeaders, digestMemoSizes, OPAQUE_MEMO_REALMS, opaqueFor, STAND_IN_MEMO_ENTRIES, STAND_IN_MEMO_NAME_CHARS, type DigestPolicy } from '../../src/auth/sip-digest.js';
import type { SipRequest } from '../../src/sip/message.js';
import { UserSourceUnavailableError } from '../../src/auth/user-source.js';

const REALM = 'example.com';
const secret = Buffer.from('5ecret-5ecret-5ecret-5ecret', 'utf8');
const T0 = 1_700_000_000_000;
const PASSWORDS: Record<string, string> = { alice: 'wonderland', bob: 'builder' };
const OPAQUE = opaqueFor(secret, REALM);

function makePolicy(over: Partial<DigestPolicy> = {}): DigestPolicy & { clock: { t: number }; lookups: string[] } {
  const clock = { t: T0 };
  const lookups: string[] = [];
  return {
    realm: REALM,
    secret,
    nonceTtlS: 30,
    algorithms: ['MD5'],
    async lookupHa1(username: string, realm: string, alg: DigestAlgorithm) {
      lookups.push(`${username}@${realm}/${alg}`);
      const pw = PASSWORDS[username];
      return pw === undefined ? undefined : computeHA1(alg, username, realm, pw);
    },
    nonceCounts: new NonceCountTracker(1000),
    nowMs: () => clock.t,
    clock,
    lookups,
    ...over,
  };
}

function request(method: string, headers: { name: string; value: string }[] = []): SipRequest {
  return {
    kind: 'request',
    method,
    uri: 'sip:example.com',
    headers: [
      { name: 'Via', value: 'SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1;rport' },
      { name: 'From', value: '<sip:alice@example.com>;tag=1' },
      { name: 'To', value: '<sip:alice@example.com>' },
      { name: 'Call-ID', value: 'c1@127.0.0.1' },
      { name: 'CSeq', value: `1 ${method}` },
      ...headers,
    ],
    body: Buffer.alloc(0),
  };
}

/** A client's answer, computed independently of the server path under test. */
function answer(o: {
  username: string;
  password: string;
  nonce: string;
  method?: string;
  uri?: string;
  alg?: DigestAlgorithm;
  nc?: string;
  qop?: boolean;
  realm?: string;
  opaque?: string;
}): string {
  const alg = o.alg ?? 'MD5';
  const realm = o.realm ?? REALM;
  const uri = o.uri ?? 'sip:example.com';
  const qop = o.qop ?? true;
  const nc = o.nc ?? '00000001';
  const cnonce = 'c0ffee';
  const creds: DigestCredentials = {
    username: o.username,
    realm,
    nonce: o.nonce,
    uri,
    response: computeResponse({
      alg,
      ha1: computeHA1(alg, o.username, realm, o.password),
      method: o.method ?? 'REGISTER',
      uri,
      nonce: o.nonce,
      ...(qop ? { qop: 'auth' as const, nc, cnonce } : {}),
    }),
    algorithm: alg,
    ...(qop ? { qop: 'auth', nc, cnonce } : {}),
    ...(o.opaque !== undefined ? { opaque: o.opaque } : {}),
  };
  return formatCredentials(creds);
}

const nonceT0 = createNonce(secret, T0);

/** How a nonce issued at `t` (ms) appears in expectations once normalized: nonces carry a counter. */
const nonceAt = (t: number) => `<nonce@${t}>`;
const N0 = nonceAt(T0);

/** Replace every nonce in challenge headers by nonceAt(its issue time), after checking it is genuine. */
function normalize<T>(out: T): T {
  const o = out as { ok?: boolean; headers?: { name: string; value: string }[] };
  if (o.ok !== false || !o.headers) return out;
  const headers = o.headers.map((h) => ({
    ...h,
    value: h.value.replace(/nonce="([^"]+)"/, (_m, n: string) => {
      const t = nonceTimestamp(n)!;
      expect(checkNonce(secret, n, 1, t)).toBe('valid');
      return `nonce="${nonceAt(t)}"`;
    }),
  }));
  return { ...o, headers } as T;
}

describe('authenticateRequest: challenges', () => {
  it('no credentials -> 401 with one WWW-Authenticate per algorithm, exact bytes', async () => {
    const p = makePolicy({ algorithms: ['SHA-256', 'MD5'] });
    const out = await authenticateRequest(request('REGISTER'), 'www', p);
    expect(normalize(out)).toEqual({
      ok: false,
      status: 401,
      reason: 'Unauthorized',
      headers: [
        { name: 'WWW-Authenticate', value: `Digest realm="example.com", nonce="${N0}", algorithm=SHA-256, qop="auth", opaque="${OPAQUE}"` },
        { name: 'WWW-Authenticate', value: `Digest realm="example.com", nonce="${N0}", algorithm=MD5, qop="auth", opaque="${OPAQUE}"` },
      ],
      detail: 'no credentials for realm',
    });
    expect(p.lookups).toEqual([]);
  });

  it('proxy kind -> 407 with Proxy-Authenticate, reads Proxy-Authorization only', async () => {
    const p = makePolicy();
    const auth = answer({ username: 'alice', password: 'wonderland', nonce: nonceT0, method: 'INVITE' });
    const out = await authenticateRequest(request('INVITE', [{ name: 'Authorization', value: auth }]), 'proxy', p);
    expect(normalize(out)).toEqual({
      ok: false,
      status: 407,
      reason: 'Proxy Authentication Required',
      headers: [{ name: 'Proxy-Authenticate', value: `Digest realm="example.com", nonce="${N0}", algorithm=MD5, qop="auth", opaque="${OPAQUE}"` }],
      detail: 'no credentials for realm',
    });
    const ok = await authenticateRequest(request('INVITE', [{ name: 'Proxy-Authorization', value: auth }]), 'proxy', p);
    expect(ok).toEqual({ ok: true, username: 'alice', realm: REALM, algorithm: 'MD5' });
  });

  it('credentials for another realm only -> challenge', async () => {
    const p = makePolicy();
    const auth = answer({ username: 'alice', password: 'wonderland', nonce: nonceT0, realm: 'other.org' });
    const out = await authenticateRequest(request('REGISTER', [{ name: 'Authorization', value: auth }]), 'www', p);
    expect(out.ok).toBe(false);
    if (!out.ok) expect([out.status, out.detail]).toEqual([401, 'no credentials for realm']);
  });

  it('forged nonce -> challenge without stale', async () => {
    const p = makePolicy();
    const forged = createNonce(Buffer.from('not the secret'), T0);
    const auth = answer({ username: 'alice', password: 'wonderland', nonce: forged });
    const out = await authenticateRequest(request('REGISTER', [{ name: 'Authorization', value: auth }]), 'www', p);
    expect(out.ok).toBe(false);
    if (!out.ok) {
      expect(out.status).toBe(401);
      expect(out.detail).toBe('invalid nonce');
      expect(out.headers[0].value).not.toContain('stale');
    }
  });
});

describe('authenticateRequest: answers', () => {
  for (const alg of ['MD5', 'SHA-256', 'SHA-512-256'] as DigestAlgorithm[]) {
    it(`accepts a correct ${alg} qop=auth answer`, async () => {
      const p = makePolicy({ algorithms: ['SHA-512-256', 'SHA-256', 'MD5'] });
      const auth = answer({ username: 'alice', password: 'wonderland', nonce: nonceT0, alg });
      const out = await authenticateRequest(request('REGISTER', [{ name: 'Authorization', value: auth }]), 'www', p);
      expect(out).toEqual({ ok: true, username: 'alice', realm: REALM, algorithm: alg });
      expect(p.lookups).toEqual([`alice@example.com/${alg}`]);
    });
  }

  it('accepts a digest uri naming this server rather than the Request-URI (SIPp style)', async () => {
    const p = makePolicy({ isOwnHost: (h) => h === '192.0.2.10' });
    const auth = answer({ username: 'alice', password: 'wonderland', nonce: nonceT0, uri: 'sip:192.0.2.10:5060' });
    const out = await authenticateRequest(request('REGISTER', [{ name: 'Authorization', value: auth }]), 'www', p);
    expect(out.ok).toBe(true);
  });

  it('accepts an RFC 2069 answer with no qop, nc or cnonce', async () => {
    const p = makePolicy();
    const auth = answer({ username: 'bob', password: 'builder', nonce: nonceT0, qop: false });
    expect(auth).not.toContain('qop');
    const out = await authenticateRequest(request('REGISTER', [{ name: 'Authorization', value: auth }]), 'www', p);
    expect(out).toEqual({ ok: true, username: 'bob', realm: REALM, algorithm: 'MD5' });
  });

  it('refuses a qop=auth response computed in the RFC 2069 form', async () => {
    const p = makePolicy();
    const noQop = answer({ username: 'bob', password: 'builder', nonce: nonceT0, qop: false });
    const auth = noQop + ', qop=auth, nc=00000001, cnonce="c0ffee"';
    const out = await authenticateRequest(request('REGISTER', [{ name: 'Authorization', value: auth }]), 'www', p);
    expect(out.ok).toBe(false);
    if (!out.ok) expect(out.status).toBe(403);
  });

  it('picks the credentials of our realm among several', async () => {
    const p = makePolicy();
    const other = answer({ username: 'alice', password: 'x', nonce: nonceT0, realm: 'other.org' });
    const ours = answer({ username: 'alice', password: 'wonderland', nonce: nonceT0 });
    const out = await authenticateRequest(
      request('REGISTER', [
        { name: 'Authorization', value: 'Bearer abc.def' },
        { name: 'Authorization', value: other },
        { name: 'Authorization', value: ours },
      ]),
      'www',
      p,
    );
    expect(out.ok).toBe(true);
  });

  it('response hex is compared case-insensitively', async () => {
    const p = makePolicy();
    const auth = answer({ username: 'alice', password: 'wonderland', nonce: nonceT0 });
    const upper = auth.replace(/response="([0-9a-f]+)"/, (_m, h: string) => `response="${h.toUpperCase()}"`);
    expect(upper).not.toBe(auth);
    const out = await authenticateRequest(request('REGISTER', [{ name: 'Authorization', value: upper }]), 'www', p);
    expect(out.ok).toBe(true);
  });
});

describe('authenticateRequest: refusals', () => {
  it('wrong password and unknown user give the identical 403 outcome, both after a lookup', async () => {
    const p = makePolicy();
    const wrong = answer({ username: 'alice', password: 'guess', nonce: nonceT0 });
    const unknown = answer({ username: 'mallory', password: 'guess', nonce: nonceT0 });
    const a = await authenticateRequest(request('REGISTER', [{ name: 'Authorization', value: wrong }]), 'www', p);
    const b = await authenticateRequest(request('REGISTER', [{ name: 'Authorization', value: unknown }]), 'www', p);
    const expected = { ok: false, status: 403, reason: 'Forbidden', headers: [], detail: 'wrong response or unknown user' };
    expect(a).toEqual(expected);
    expect(b).toEqual(expected);
    expect(p.lookups).toEqual(['alice@example.com/MD5', 'mallory@example.com/MD5']);
  });

  it('the stand-in HA1s are remembered per user name and algorithm, bounded: answers stay the same past the bound', async () => {
    const p = makePolicy({ algorithms: ['SHA-256', 'MD5'], nonceCounts: undefined });
    const outcome = async (username: string, password: string, alg: DigestAlgorithm) => {
      const v = answer({ username, password, nonce: nonceT0, alg });
      const out = await authenticateRequest(request('REGISTER', [{ name: 'Authorization', value: v }]), 'www', p);
      return out.ok ? 200 : out.status;
    };
    const long = 'm'.repeat(STAND_IN_MEMO_NAME_CHARS + 1); // not remembered: derived each time
    const before = [await outcome('mallory', 'guess', 'MD5'), await outcome('mallory', 'guess', 'SHA-256'), await outcome('alice', 'wonderland', 'SHA-256'), await outcome(long, 'guess', 'MD5')];
    // More distinct unknown names than the memo holds: it fills to its bound and is emptied once on the way.
    let most = 0;
    let emptied = 0;
    for (let i = 0; i <= STAND_IN_MEMO_ENTRIES; i++) {
      const before = digestMemoSizes(secret).standIns;
      expect(await outcome(`u${i}`, 'guess', i % 2 ? 'MD5' : 'SHA-256')).toBe(403);
      const after = digestMemoSizes(secret).standIns;
      if (after < before) emptied++;
      most = Math.max(most, after);
    }
    expect(most).toBe(STAND_IN_MEMO_ENTRIES);
    expect(emptied).toBe(1);
    expect(digestMemoSizes(secret).standIns).toBeLessThan(STAND_IN_MEMO_ENTRIES);
    const after = [await outcome('mallory', 'guess', 'MD5'), await outcome('mallory', 'guess', 'SHA-256'), await outcome('alice', 'wonderland', 'SHA-256'), await outcome(long, 'guess', 'MD5')];
    expect(before).toEqual([403, 403, 200, 403]);
    expect(after).toEqual(before);
  });

  it('remembers the opaque of at most OPAQUE_MEMO_REALMS realms per secret, emptied when full; the value stays the same', () => {
    const own = Buffer.alloc(32, 7);
    const first = opaqueFor(own, 'r0.example');
    let most = 0;
    for (let i = 0; i < 3 * OPAQUE_MEMO_REALMS; i++) {
      opaqueFor(own, `r${i}.example`);
      most = Math.max(most, digestMemoSizes(own).opaques);
      if (i === OPAQUE_MEMO_REALMS) expect(digestMemoSizes(own).opaques).toBe(1);
    }
    expect(most).toBe(OPAQUE_MEMO_REALMS);
    expect(opaqueFor(own, 'r0.example')).toBe(first);
    expect(opaqueFor(Buffer.alloc(32, 7), 'r0.example')).toBe(first); // not from the memo: another Buffer
    expect(digestMemoSizes(own).opaques).toBeLessThanOrEqual(OPAQUE_MEMO_REALMS);
  });

  it('unknown user cannot pass with any response, e.g. one of the wrong length or empty', async () => {
    const p = makePolicy();
    for (const response of ['', '0', 'd41d8cd98f00b204e9800998ecf8427e']) {
      const v = formatCredentials({ username: 'mallory', realm: REALM, nonce: nonceT0, uri: 'sip:example.com', response, algorithm: 'MD5' });
      const out = await authenticateRequest(request('REGISTER', [{ name: 'Authorization', value: v }]), 'www', p);
      expect(out.ok ? 200 : out.status).toBe(403);
    }
  });

  it('stale nonce with a correct answer -> challenge with stale=true and a fresh nonce', async () => {
    const p = makePolicy();
    p.clock.t = T0 + 30_001;
    const fresh = nonceAt(T0 + 30_000); // a challenge's nonce carries its issue time in whole seconds
    const auth = answer({ username: 'alice', password: 'wonderland', nonce: nonceT0 });
    const out = await authenticateRequest(request('REGISTER', [{ name: 'Authorization', value: auth }]), 'www', p);
    expect(normalize(out)).toEqual({
      ok: false,
      status: 401,
      reason: 'Unauthorized',
      headers: [{ name: 'WWW-Authenticate', value: `Digest realm="example.com", nonce="${fresh}", algorithm=MD5, qop="auth", opaque="${OPAQUE}", stale=true` }],
      detail: 'stale nonce',
    });
  });

  it('stale nonce with a wrong password or unknown user -> challenge without stale, identical', async () => {
    const p = makePolicy();
    p.clock.t = T0 + 60_000;
    const outs = [];
    for (const [u, pw] of [['alice', 'guess'], ['mallory', 'guess']]) {
      const auth = answer({ username: u, password: pw, nonce: nonceT0 });
      outs.push(await authenticateRequest(request('REGISTER', [{ name: 'Authorization', value: auth }]), 'www', p));
    }
    const fresh = nonceAt(T0 + 60_000);
    for (const out of outs) {
      expect(normalize(out)).toEqual({
        ok: false,
        status: 401,
        reason: 'Unauthorized',
        headers: [{ name: 'WWW-Authenticate', value: `Digest realm="example.com", nonce="${fresh}", algorithm=MD5, qop="auth", opaque="${OPAQUE}"` }],
        detail: 'stale nonce',
      });
    }
  });

  it('replayed nc -> challenge; a higher nc is accepted', async () => {
    const p = makePolicy();
    const first = answer({ username: 'alice', password: 'wonderland', nonce: nonceT0, nc: '00000001' });
    const req = () => request('REGISTER', [{ name: 'Authorization', value: first }]);
    expect((await authenticateRequest(req(), 'www', p)).ok).toBe(true);
    const replay = await authenticateRequest(req(), 'www', p);
    expect(normalize(replay)).toEqual({
      ok: false,
      status: 401,
      reason: 'Unauthorized',
      headers: [{ name: 'WWW-Authenticate', value: `Digest realm="example.com", nonce="${N0}", algorithm=MD5, qop="auth", opaque="${OPAQUE}"` }],
      detail: 'nonce count replayed',
    });
    const next = answer({ username: 'alice', password: 'wonderland', nonce: nonceT0, nc: '0000000a' });
    expect((await authenticateRequest(request('REGISTER', [{ name: 'Authorization', value: next }]), 'www', p)).ok).toBe(true);
    const lower = answer({ username: 'alice', password: 'wonderland', nonce: nonceT0, nc: '00000009' });
    const out = await authenticateRequest(request('REGISTER', [{ name: 'Authorization', value: lower }]), 'www', p);
    expect(out.ok ? 200 : out.status).toBe(401);
  });

  it('a wrong answer does not consume the nonce count of the legitimate client', async () => {
    const p = makePolicy();
    const bad = answer({ username: 'alice', password: 'guess', nonce: nonceT0, nc: '00000005' });
    expect(await authenticateRequest(request('REGISTER', [{ name: 'Authorization', value: bad }]), 'www', p)).toMatchObject({ status: 403 });
    const good = answer({ username: 'alice', password: 'wonderland', nonce: nonceT0, nc: '00000001' });
    expect((await authenticateRequest(request('REGISTER', [{ name: 'Authorization', value: good }]), 'www', p)).ok).toBe(true);
  });

  it('algorithm not offered -> challenge listing the offered ones', async () => {
    const p = makePolicy({ algorithms: ['SHA-256'] });
    const auth = answer({ username: 'alice', password: 'wonderland', nonce: nonceT0, alg: 'MD5' });
    const out = await authenticateRequest(request('REGISTER', [{ name: 'Authorization', value: auth }]), 'www', p);
    expect(normalize(out)).toMatchObject({
      ok: false,
      status: 401,
      detail: 'algorithm MD5 not offered',
      headers: [
        { name: 'WWW-Authenticate', value: `Digest realm="example.com", nonce="${N0}", algorithm=SHA-256, qop="auth", opaque="${OPAQUE}"` },
      ],
    });
    expect(p.lookups).toEqual([]);
  });

  const malformed: [string, string][] = [
    ['Digest username="alice", realm="example.com"', 'missing nonce'],
    ['Digest username="alice, realm="example.com"', 'expected "," between auth parameters'],
    [`Digest username="alice", realm="example.com", nonce="${nonceT0}", uri="sip:example.com", response="00", qop=auth-int, nc=00000001, cnonce="x"`, 'unsupported qop auth-int'],
    [`Digest username="alice", realm="example.com", nonce="${nonceT0}", uri="sip:example.com", response="00", qop=auth, nc=1, cnonce="x"`, 'qop=auth without a valid nc'],
    [`Digest username="alice", realm="example.com", nonce="${nonceT0}", uri="sip:example.com", response="00", qop=auth, nc=00000001`, 'qop=auth without cnonce'],
  ];
  for (const [value, detail] of malformed) {
    it(`malformed credentials -> 400 (${detail})`, async () => {
      const p = makePolicy();
      const out = await authenticateRequest(request('REGISTER', [{ name: 'Authorization', value }]), 'www', p);
      expect(out).toEqual({ ok: false, status: 400, reason: 'Bad Request', headers: [], detail });
    });
  }
});

describe('challenge headers parse back', () => {
  it('yields the realm, nonce, algorithm and qop as offered', async () => {
    const out = await authenticateRequest(request('REGISTER'), 'www', makePolicy());
    if (out.ok) throw new Error('expected a challenge');
    const { scheme, params } = parseAuthParams(normalize(out).headers[0].value);
    expect(scheme).toBe('digest');
    expect(Object.fromEntries(params)).toEqual({ realm: REALM, nonce: N0, algorithm: 'MD5', qop: 'auth', opaque: OPAQUE });
  });
});

describe('several algorithms offered at once (RFC 8760 §2.4)', () => {
  const ALL: DigestAlgorithm[] = ['SHA-256', 'SHA-512-256', 'MD5'];
  for (const alg of ALL) {
    it(`accepts whichever challenge the client answers: ${alg}`, async () => {
      const p = makePolicy({ algorithms: ALL });
      const challenge = await authenticateRequest(request('REGISTER'), 'www', p);
      if (challenge.ok) throw new Error('expected a challenge');
      expect(challenge.headers.map((h) => parseAuthParams(h.value).params.get('algorithm'))).toEqual(ALL);
      const auth = answer({ username: 'alice', password: 'wonderland', nonce: nonceT0, alg, opaque: OPAQUE });
      const out = await authenticateRequest(request('REGISTER', [{ name: 'Authorization', value: auth }]), 'www', p);
      expect(out).toEqual({ ok: true, username: 'alice', realm: REALM, algorithm: alg });
      expect(p.lookups).toEqual([`alice@${REALM}/${alg}`]);
    });
  }

  it('a user without an HA1 for the answered algorithm gets the same 403 as a wrong password; MD5 still works', async () => {
    // carol was created when only MD5 was enabled.
    const carolMd5 = computeHA1('MD5', 'carol', REALM, 'pw');
    const lookupHa1 = async (u: string, _r: string, alg: DigestAlgorithm) =>
      u === 'carol' && alg === 'MD5' ? carolMd5 : u === 'alice' ? computeHA1(alg, u, REALM, 'wonderland') : undefined;
    const p = makePolicy({ algorithms: ALL, lookupHa1 });
    const sha = answer({ username: 'carol', password: 'pw', nonce: nonceT0, alg: 'SHA-256' });
    const lacking = await authenticateRequest(request('REGISTER', [{ name: 'Authorization', value: sha }]), 'www', p);
    const wrong = answer({ username: 'alice', password: 'nope', nonce: nonceT0, alg: 'SHA-256', nc: '00000002' });
    const wrongPw = await authenticateRequest(request('REGISTER', [{ name: 'Authorization', value: wrong }]), 'www', p);
    expect(lacking).toEqual(wrongPw);
    expect(lacking).toMatchObject({ ok: false, status: 403, headers: [] });
    const md5 = answer({ username: 'carol', password: 'pw', nonce: nonceT0, alg: 'MD5', nc: '00000003' });
    const ok = await authenticateRequest(request('REGISTER', [{ name: 'Authorization', value: md5 }]), 'www', p);
    expect(ok).toEqual({ ok: true, username: 'carol', realm: REALM, algorithm: 'MD5' });
  });

  it('an answer with a foreign opaque is challenged again; the right one passes', async () => {
    const p = makePolicy();
    const bad = answer({ username: 'alice', password: 'wonderland', nonce: nonceT0, opaque: 'not-ours' });
    const out = await authenticateRequest(request('REGISTER', [{ name: 'Authorization', value: bad }]), 'www', p);
    expect(out).toMatchObject({ ok: false, status: 401, detail: 'opaque mismatch' });
    const good = answer({ username: 'alice', password: 'wonderland', nonce: nonceT0, opaque: OPAQUE });
    expect((await authenticateRequest(request('REGISTER', [{ name: 'Authorization', value: good }]), 'www', p)).ok).toBe(true);
  });
});

describe('digest uri check (RFC 7616 §3.4.6)', () => {
  async function withUri(uri: string, over: Partial<DigestPolicy> = {}, ruri = 'sip:example.com') {
    const p = makePolicy({ isOwnHost: (h) => h === '127.0.0.1', ...over });
    const auth = answer({ username: 'alice', password: 'wonderland', nonce: nonceT0, uri });
    const req = { ...request('REGISTER', [{ name: 'Authorization', value: auth }]), uri: ruri };
    return authenticateRequest(req, 'www', p);
  }
  const accepted = [
    'sip:example.com',
    'sip:example.com:5060',
    'sips:EXAMPLE.com;transport=tls',
    'sip:127.0.0.1:5060',
    'sip:bob@example.com',
  ];
  for (const uri of accepted) {
    it(`default mode accepts ${uri}`, async () => {
      expect((await withUri(uri)).ok).toBe(true);
    });
  }
  it('default mode accepts the target host of an INVITE Request-URI', async () => {
    expect((await withUri('sip:other.example', {}, 'sip:bob@other.example')).ok).toBe(true);
  });
  for (const uri of ['sip:attacker.example', 'sip:127.0.0.2', 'tel:+15551234', 'http://example.com/', 'garbage']) {
    it(`default mode refuses ${uri} with 400`, async () => {
      expect(await withUri(uri)).toEqual({
        ok: false,
        status: 400,
        reason: 'Bad Request',
        headers: [],
        detail: 'digest uri does not match the request',
      });
    });
  }
  it('strict mode accepts only the Request-URI (RFC 3261 §19.1.4 comparison)', async () => {
    expect((await withUri('sip:example.com', { strictUri: true })).ok).toBe(true);
    expect((await withUri('sip:EXAMPLE.COM', { strictUri: true })).ok).toBe(true);
    expect(await withUri('sip:127.0.0.1:5060', { strictUri: true })).toMatchObject({ ok: false, status: 400 });
    expect(await withUri('sip:example.com;transport=tcp', { strictUri: true })).toMatchObject({ ok: false, status: 400 });
  });
});

describe('user source outage', () => {
  it('UserSourceUnavailableError from lookupHa1 gives 503 with Retry-After, not 403', async () => {
    const p = makePolicy({
      lookupHa1: async () => {
        throw new UserSourceUnavailableError('ldap down', 17);
      },
    });
    const auth = answer({ username: 'alice', password: 'wonderland', nonce: nonceT0 });
    const out = await authenticateRequest(request('REGISTER', [{ name: 'Authorization', value: auth }]), 'proxy', p);
    // kind proxy reads Proxy-Authorization: this answer is in Authorization, so first a 407...
    expect(out).toMatchObject({ ok: false, status: 407 });
    const out2 = await authenticateRequest(request('REGISTER', [{ name: 'Proxy-Authorization', value: auth }]), 'proxy', p);
    expect(out2).toEqual({
      ok: false,
      status: 503,
      reason: 'Service Unavailable',
      headers: [{ name: 'Retry-After', value: '17' }],
      detail: 'user source unavailable',
    });
  });

  it('any other lookup failure propagates', async () => {
    const p = makePolicy({
      lookupHa1: async () => {
        throw new Error('bug');
      },
    });
    const auth = answer({ username: 'alice', password: 'wonderland', nonce: nonceT0 });
    await expect(authenticateRequest(request('REGISTER', [{ name: 'Authorization', value: auth }]), 'www', p)).rejects.toThrow('bug');
  });
});

describe('the challenge to a request (RFC 3261 §8.2.7: the same response to a retransmission)', () => {
  const nonceIn = (h: { value: string }[]) => /nonce="([^"]+)"/.exec(h[0]!.value)![1]!;
  const headersAt = (req: SipRequest, nowMs: number) => challengeHeaders('www', REALM, ['SHA-256', 'MD5'], secret, nowMs, false, 0, req);

  it('is the same, byte for byte, for the same request within the same second, and its nonce verifies', () => {
    const req = request('REGISTER');
    const first = headersAt(req, T0 + 10);
    expect(headersAt(request('REGISTER'), T0 + 999)).toEqual(first);
    expect(nonceIn(first)).toBe(nonceIn([first[1]!]));
    expect(nonceTimestamp(nonceIn(first))).toBe(T0);
    expect(checkNonce(secret, nonceIn(first), 30, T0 + 999)).toBe('valid');
  });

  it('differs in the next second, for another branch, Call-ID, CSeq or method, and without the request', () => {
    const req = request('REGISTER');
    const n = nonceIn(headersAt(req, T0));
    expect(nonceIn(headersAt(req, T0 + 1000))).not.toBe(n);
    const other = (name: string, value: string) => ({ ...req, headers: req.headers.map((h) => (h.name === name ? { name, value } : h)) });
    expect(nonceIn(headersAt(other('Via', 'SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-2;rport'), T0))).not.toBe(n);
    expect(nonceIn(headersAt(other('Call-ID', 'c2@127.0.0.1'), T0))).not.toBe(n);
    expect(nonceIn(headersAt(other('CSeq', '2 REGISTER'), T0))).not.toBe(n);
    expect(nonceIn(headersAt(request('INVITE'), T0))).not.toBe(n);
    const a = nonceIn(challengeHeaders('www', REALM, ['MD5'], secret, T0, false, 0));
    expect(nonceIn(challengeHeaders('www', REALM, ['MD5'], secret, T0, false, 0))).not.toBe(a);
  });
});

describe('challengeCounter', () => {
  it('is the first 52 bits of SHA-256 over hex(secret), LF and the request fields: the same for a retransmission, another for another request or secret', () => {
    const reg = request('REGISTER');
    const fields = 'REGISTER\nSIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1;rport\nc1@127.0.0.1\n1 REGISTER\n<sip:alice@example.com>;tag=1';
    const d = createHash('sha256').update(`${secret.toString('hex')}\n${fields}`).digest();
    const expected = d.readUIntBE(0, 6) * 16 + (d[6]! >> 4);
    expect(challengeCounter(secret, reg)).toBe(expected);
    expect(challengeCounter(secret, request('REGISTER'))).toBe(expected);
    expect(Number.isSafeInteger(expected) && expected < 2 ** 52).toBe(true);
    const next = { ...reg, headers: reg.headers.map((h) => (h.name === 'CSeq' ? { name: 'CSeq', value: '2 REGISTER' } : h)) };
    expect(challengeCounter(secret, next)).not.toBe(expected);
    expect(challengeCounter(Buffer.from('another-secret-another-secret'), reg)).not.toBe(expected);
  });
});
