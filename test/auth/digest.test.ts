import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  computeHA1,
  computeResponse,
  computeUserhash,
  formatChallenge,
  formatCredentials,
  parseAlgorithm,
  parseCredentials,
  type DigestAlgorithm,
  type DigestCredentials,
} from '../../src/auth/digest.js';
import { AuthError } from '../../src/auth/errors.js';

interface Vector {
  id: string;
  algorithm: string;
  username?: string;
  realm?: string;
  password?: string;
  method?: string;
  uri?: string;
  nonce?: string;
  nc?: string;
  cnonce?: string;
  qop?: string;
  opaque?: string;
  userhash?: boolean;
  username_hash?: string;
  response: string;
}

const vectors: Vector[] = JSON.parse(
  readFileSync(new URL('../vectors/digest/vectors.json', import.meta.url), 'utf8'),
).vectors;

const computable = vectors.filter((v) => v.password !== undefined);
const asPrinted = vectors.find((v) => v.id === 'rfc7616-3.9.2-as-printed-in-RFC')!;

function responseOf(v: Vector): string {
  const alg = v.algorithm as DigestAlgorithm;
  return computeResponse({
    alg,
    ha1: computeHA1(alg, v.username!, v.realm!, v.password!),
    method: v.method!,
    uri: v.uri!,
    nonce: v.nonce!,
    qop: 'auth',
    nc: v.nc,
    cnonce: v.cnonce,
  });
}

describe('digest vectors', () => {
  it('has the five vectors of the test data', () => {
    expect(vectors.map((v) => v.id)).toEqual([
      'rfc2617-3.5',
      'rfc7616-3.9.1-md5',
      'rfc7616-3.9.1-sha256',
      'rfc7616-3.9.2-sha512-256-CORRECTED',
      'rfc7616-3.9.2-as-printed-in-RFC',
    ]);
    expect(computable).toHaveLength(4);
  });

  for (const v of computable) {
    it(`${v.id}: response`, () => {
      expect(v.qop).toBe('auth');
      expect(responseOf(v)).toBe(v.response);
    });
    it(`${v.id}: through formatCredentials/parseCredentials`, () => {
      const creds: DigestCredentials = {
        username: v.userhash ? computeUserhash(v.algorithm as DigestAlgorithm, v.username!, v.realm!) : v.username!,
        realm: v.realm!,
        nonce: v.nonce!,
        uri: v.uri!,
        response: responseOf(v),
        algorithm: v.algorithm,
        qop: 'auth',
        nc: v.nc,
        cnonce: v.cnonce,
        opaque: v.opaque,
        ...(v.userhash ? { userhash: true } : {}),
      };
      expect(parseCredentials(formatCredentials(creds))).toEqual(creds);
    });
  }

  it('rfc2617 §3.5 HA1 of Mufasa', () => {
    expect(computeHA1('MD5', 'Mufasa', 'testrealm@host.com', 'Circle Of Life')).toBe('939e7578ed9e3c518a452acee763bce9');
  });

  it('rfc7616 §3.9.2 userhash is real SHA-512/256, not the printed truncated SHA-512', () => {
    const v = vectors.find((x) => x.id === 'rfc7616-3.9.2-sha512-256-CORRECTED')!;
    expect(v.userhash).toBe(true);
    const uh = computeUserhash('SHA-512-256', v.username!, v.realm!);
    expect(uh).toBe(v.username_hash);
    expect(uh).not.toBe(asPrinted.username_hash);
    expect(responseOf(v)).not.toBe(asPrinted.response);
  });

  it('the printed §3.9.2 values are SHA-512 truncated to 256 bits (known-wrong vector)', () => {
    const v = vectors.find((x) => x.id === 'rfc7616-3.9.2-sha512-256-CORRECTED')!;
    const h = (s: string) => createHash('sha512').update(s, 'utf8').digest('hex').slice(0, 64);
    expect(h(`${v.username}:${v.realm}`)).toBe(asPrinted.username_hash);
    const ha1 = h(`${v.username}:${v.realm}:${v.password}`);
    const ha2 = h(`${v.method}:${v.uri}`);
    expect(h(`${ha1}:${v.nonce}:${v.nc}:${v.cnonce}:auth:${ha2}`)).toBe(asPrinted.response);
  });
});

describe('computeResponse forms', () => {
  it('RFC 2069 form without qop is H(HA1:nonce:HA2)', () => {
    // RFC 2617 §3.5 inputs without qop; value computed independently with md5sum.
    const ha1 = computeHA1('MD5', 'Mufasa', 'testrealm@host.com', 'Circle Of Life');
    expect(
      computeResponse({ alg: 'MD5', ha1, method: 'GET', uri: '/dir/index.html', nonce: 'dcd98b7102dd2f0e8b11d0f600bfb0c093' }),
    ).toBe('670fd8c2df070c60b045671b8b24ff02');
  });

  it('-sess replaces HA1 by H(HA1:nonce:cnonce)', () => {
    const ha1 = computeHA1('SHA-256', 'alice', 'example.com', 'pw');
    const base = { alg: 'SHA-256' as const, method: 'REGISTER', uri: 'sip:example.com', nonce: 'n1', qop: 'auth' as const, nc: '00000001', cnonce: 'c1' };
    const sessHa1 = createHash('sha256').update(`${ha1}:n1:c1`).digest('hex');
    expect(computeResponse({ ...base, ha1, sess: true })).toBe(computeResponse({ ...base, ha1: sessHa1 }));
    expect(computeResponse({ ...base, ha1, sess: true })).not.toBe(computeResponse({ ...base, ha1 }));
  });
});

describe('parseAlgorithm', () => {
  it('is case-insensitive and knows -sess', () => {
    expect(parseAlgorithm('md5')).toEqual({ alg: 'MD5', sess: false });
    expect(parseAlgorithm('SHA-256-sess')).toEqual({ alg: 'SHA-256', sess: true });
    expect(parseAlgorithm('sha-512-256')).toEqual({ alg: 'SHA-512-256', sess: false });
    expect(parseAlgorithm('SHA-512')).toBeUndefined();
    expect(parseAlgorithm('AKAv1-MD5')).toBeUndefined();
  });
});

describe('parseCredentials', () => {
  it('parses a SIP Authorization value with mixed-case names and unquoted tokens', () => {
    const c = parseCredentials(
      'Digest USERNAME="alice",Realm="example.com", nonce="abc" , uri="sip:example.com",' +
        'response="0123456789abcdef0123456789abcdef",algorithm=MD5,cnonce="xyz",qop=auth,nc=00000001,opaque=""',
    );
    expect(c).toEqual({
      username: 'alice',
      realm: 'example.com',
      nonce: 'abc',
      uri: 'sip:example.com',
      response: '0123456789abcdef0123456789abcdef',
      algorithm: 'MD5',
      cnonce: 'xyz',
      qop: 'auth',
      nc: '00000001',
      opaque: '',
    });
  });

  it('defaults algorithm to MD5 and unescapes quoted-strings', () => {
    const c = parseCredentials('digest username="a\\"b\\\\c", realm="r,x", nonce="n", uri="sip:x", response="r"');
    expect(c.username).toBe('a"b\\c');
    expect(c.realm).toBe('r,x');
    expect(c.algorithm).toBe('MD5');
    expect(c.qop).toBeUndefined();
  });

  it('decodes username* (RFC 8187)', () => {
    const c = parseCredentials(
      "Digest username*=UTF-8''J%C3%A4s%C3%B8n%20Doe, realm=\"api@example.org\", nonce=\"n\", uri=\"/\", response=\"r\"",
    );
    expect(c.username).toBe('J\u00e4s\u00f8n Doe');
  });

  it('round-trips quoting of special characters', () => {
    const creds: DigestCredentials = {
      username: 'we"ird\\user',
      realm: 'example.com',
      nonce: 'n',
      uri: 'sip:bob@example.com;transport=tcp',
      response: 'ff',
      algorithm: 'SHA-256',
    };
    const s = formatCredentials(creds);
    expect(s).toBe(
      'Digest username="we\\"ird\\\\user", realm="example.com", nonce="n", uri="sip:bob@example.com;transport=tcp", response="ff", algorithm=SHA-256',
    );
    expect(parseCredentials(s)).toEqual(creds);
  });

  const bad: [string, string][] = [
    ['Basic YWxpY2U6cHc=', 'unsupported auth scheme basic'],
    ['Digest realm="r", nonce="n", uri="u", response="x"', 'missing username'],
    ['Digest username="a", nonce="n", uri="u", response="x"', 'missing realm'],
    ['Digest username="a", realm="r", uri="u", response="x"', 'missing nonce'],
    ['Digest username="a", realm="r", nonce="n", response="x"', 'missing uri'],
    ['Digest username="a", realm="r", nonce="n", uri="u"', 'missing response'],
    ['Digest username="a, realm="r"', 'expected "," between auth parameters'],
    ['Digest username="a', 'unterminated quoted-string in username'],
    ['Digest username="a" realm="r"', 'expected "," between auth parameters'],
    ['Digest username="a", username="b"', 'duplicate auth parameter username'],
    ['Digest username', 'expected "=" after username'],
    ['', 'missing auth scheme'],
  ];
  for (const [value, msg] of bad) {
    it(`rejects ${JSON.stringify(value)} with 400`, () => {
      let err: unknown;
      try {
        parseCredentials(value);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(AuthError);
      expect((err as AuthError).status).toBe(400);
      expect((err as AuthError).message).toBe(msg);
    });
  }
});

describe('formatChallenge', () => {
  it('formats the minimal and the full form exactly', () => {
    expect(formatChallenge({ realm: 'example.com', nonce: 'abc', algorithm: 'MD5' })).toBe(
      'Digest realm="example.com", nonce="abc", algorithm=MD5',
    );
    expect(
      formatChallenge({ realm: 'example.com', nonce: 'abc', algorithm: 'SHA-512-256', qop: 'auth', opaque: 'o', stale: true }),
    ).toBe('Digest realm="example.com", nonce="abc", algorithm=SHA-512-256, qop="auth", opaque="o", stale=true');
    expect(formatChallenge({ realm: 'example.com', nonce: 'abc', algorithm: 'SHA-256', qop: 'auth', stale: false })).toBe(
      'Digest realm="example.com", nonce="abc", algorithm=SHA-256, qop="auth"',
    );
  });
});
