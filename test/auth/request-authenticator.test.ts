/**
 * The request authenticator (auth/request-authenticator.ts): a verified
 * client certificate for the claimed AOR authenticates without a challenge;
 * otherwise digest, with 403s counted by the failed-authentication guard and
 * a locked user refused from addresses it never authenticated from.
 */
import { describe, expect, it } from 'vitest';
import { computeHA1, computeResponse, formatCredentials } from '../../src/auth/digest.js';
import { createNonce, nonceIssuer } from '../../src/auth/nonce.js';
import { createAuthenticator, type RequestOrigin } from '../../src/auth/request-authenticator.js';
import type { DigestPolicy } from '../../src/auth/sip-digest.js';
import { silentLogger } from '../../src/log.js';
import { AddressSet } from '../../src/security/address-set.js';
import { AuthFailureGuard } from '../../src/security/auth-failures.js';
import { BanList } from '../../src/security/ban-list.js';
import type { SipRequest } from '../../src/sip/message.js';

const REALM = 'example.test';
const secret = Buffer.from('a-secret-of-at-least-16-bytes', 'utf8');
const T0 = 1_700_000_000_000;

const policy: DigestPolicy = {
  realm: REALM,
  secret,
  nonceTtlS: 300,
  algorithms: ['MD5'],
  lookupHa1: async (username, realm, alg) => (username === 'alice' ? computeHA1(alg, 'alice', realm, 'right') : undefined),
  nowMs: () => T0,
};

/** A REGISTER for alice's AOR, with digest credentials of `username`/`password` when given. */
function register(creds?: { username: string; password: string }, nonce = createNonce(secret, T0)): SipRequest {
  const headers = [
    { name: 'Via', value: 'SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-ra;rport' },
    { name: 'From', value: '<sip:alice@example.test>;tag=1' },
    { name: 'To', value: '<sip:alice@example.test>' },
    { name: 'Call-ID', value: 'ra@127.0.0.1' },
    { name: 'CSeq', value: '1 REGISTER' },
  ];
  if (creds) {
    const uri = `sip:${REALM}`;
    const response = computeResponse({ alg: 'MD5', ha1: computeHA1('MD5', creds.username, REALM, creds.password), method: 'REGISTER', uri, nonce });
    headers.push({ name: 'Authorization', value: formatCredentials({ username: creds.username, realm: REALM, nonce, uri, response, algorithm: 'MD5' }) });
  }
  return { kind: 'request', method: 'REGISTER', uri: `sip:${REALM}`, headers, body: Buffer.alloc(0) };
}

function guard(perSource: number, perUser: number) {
  const bans = new BanList({ logger: silentLogger, nowMs: () => T0 });
  const failures = new AuthFailureGuard({ bans, exempt: new AddressSet([]), perSource, perUser, windowSeconds: 60, banSeconds: 600, logger: silentLogger, nowMs: () => T0 });
  return { bans, failures };
}

const from = (remoteAddress: string, tlsIdentities?: string[]): RequestOrigin => ({ remoteAddress, tlsIdentities });
const certificates = { aorOf: (uri: string) => uri.replace(/^sips?:/, 'sip:').toLowerCase() };

describe('createAuthenticator', () => {
  it('a verified certificate naming the To AOR authenticates without a challenge; one for another AOR does not', async () => {
    const auth = createAuthenticator(policy, { certificates });
    expect(await auth(register(), 'www', from('127.0.0.1', ['sip:alice@example.test']))).toEqual({
      ok: true,
      username: 'alice',
      realm: REALM,
      method: 'certificate',
    });
    expect(await auth(register(), 'www', from('127.0.0.1', ['sip:bob@example.test']))).toMatchObject({ ok: false, status: 401 });
  });

  it('digest: the right password passes, a wrong one and an unknown user get the same 403', async () => {
    const auth = createAuthenticator(policy);
    expect(await auth(register({ username: 'alice', password: 'right' }), 'www', from('127.0.0.1'))).toMatchObject({ ok: true, username: 'alice' });
    const wrong = await auth(register({ username: 'alice', password: 'wrong' }), 'www', from('127.0.0.1'));
    const unknown = await auth(register({ username: 'mallory', password: 'wrong' }), 'www', from('127.0.0.1'));
    expect(wrong).toMatchObject({ ok: false, status: 403, reason: 'Forbidden', headers: [] });
    expect({ ...unknown, detail: undefined }).toEqual({ ...wrong, detail: undefined });
  });

  it('403s ban the source at per_source; a locked user is refused from new addresses, not from one it used', async () => {
    const { bans, failures } = guard(2, 3);
    const auth = createAuthenticator(policy, { failures });
    expect(await auth(register({ username: 'alice', password: 'right' }), 'www', from('192.0.2.10'))).toMatchObject({ ok: true });
    await auth(register({ username: 'alice', password: 'wrong' }), 'www', from('192.0.2.1'));
    expect(bans.isBanned('192.0.2.1', T0)).toBe(false);
    await auth(register({ username: 'alice', password: 'wrong' }), 'www', from('192.0.2.1'));
    expect(bans.isBanned('192.0.2.1', T0)).toBe(true);
    await auth(register({ username: 'alice', password: 'wrong' }), 'www', from('192.0.2.2'));
    // alice is locked now: even the right password from a new address gets 403, without the digest checked.
    expect(await auth(register({ username: 'alice', password: 'right' }), 'www', from('192.0.2.3'))).toMatchObject({
      ok: false,
      status: 403,
      detail: 'user locked',
    });
    expect(await auth(register({ username: 'alice', password: 'right' }), 'www', from('192.0.2.10'))).toMatchObject({ ok: true });
  });
});

describe('nonces of another SIP worker', () => {
  // This authenticator is worker 0 of several.
  const worker0: DigestPolicy = { ...policy, nonceIssuer: 0 };
  const mine = createNonce(secret, T0, { issuer: 0 });
  const theirs = createNonce(secret, T0, { issuer: 1 });
  const alice = { username: 'alice', password: 'right' };

  it('answers a nonce another worker issued with a stale challenge carrying a nonce of this worker; its own nonces are checked as usual', async () => {
    const auth = createAuthenticator(worker0);
    const out = await auth(register(alice, theirs), 'www', from('192.0.2.10'));
    expect(out).toMatchObject({ ok: false, status: 401, reason: 'Unauthorized', detail: 'nonce of worker 1' });
    const header = (out as { headers: { name: string; value: string }[] }).headers[0]!;
    expect(header.name).toBe('WWW-Authenticate');
    const m = /^Digest realm="example.test", nonce="([A-Za-z0-9_-]{43})", algorithm=MD5, qop="auth", opaque="[^"]+", stale=true$/.exec(header.value);
    expect(m).not.toBeNull();
    expect(nonceIssuer(m![1]!)).toBe(0);
    expect(await auth(register(alice, mine), 'www', from('192.0.2.10'))).toMatchObject({ ok: true, username: 'alice' });
    // One worker (no nonceIssuer in the policy): any issuer is checked as usual.
    expect(await createAuthenticator(policy)(register(alice, theirs), 'www', from('192.0.2.10'))).toMatchObject({ ok: true });
  });

  it('a forged nonce naming another worker gets the plain challenge; a stale answer counts as no failure', async () => {
    const forged = theirs.slice(0, 30) + (theirs[30] === 'A' ? 'B' : 'A') + theirs.slice(31);
    expect(nonceIssuer(forged)).toBe(1);
    const { bans, failures } = guard(1, 0);
    const auth = createAuthenticator(worker0, { failures });
    const out = await auth(register(alice, forged), 'www', from('192.0.2.20'));
    expect(out).toMatchObject({ ok: false, status: 401, detail: 'invalid nonce' });
    expect((out as { headers: { value: string }[] }).headers[0]!.value).not.toContain('stale');
    expect(await auth(register({ username: 'alice', password: 'wrong' }, theirs), 'www', from('192.0.2.20'))).toMatchObject({ status: 401, detail: 'nonce of worker 1' });
    expect(bans.isBanned('192.0.2.20', T0)).toBe(false);
  });
});
