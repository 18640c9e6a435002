/**
 * HTTP Digest computations and header grammar, as used by SIP (RFC 3261 §22.4).
 *
 * - RFC 7616 §3.4.1: response = H(HA1:nonce:nc:cnonce:qop:HA2) with qop=auth,
 *   HA1 = H(username:realm:password), HA2 = H(method:digest-uri).
 * - RFC 7616 §3.4.2: `-sess` algorithms, HA1' = H(HA1:nonce:cnonce).
 * - RFC 2069 / RFC 2617 §3.2.2.1 without qop: response = H(HA1:nonce:HA2).
 * - RFC 8760: SHA-256 and SHA-512-256 for SIP. SHA-512-256 is FIPS 180-4
 *   SHA-512/256 (node `sha512-256`), not SHA-512 truncated to 256 bits; the
 *   example printed in RFC 7616 §3.9.2 only reproduces with the latter.
 *
 * All strings are hashed as UTF-8; digests are lowercase hex.
 */
import { hash } from 'node:crypto';
import { AuthError } from './errors.js';

/**
 * Every supported hash algorithm of the Digest scheme (RFC 7616 §3.2, RFC 8760 §2),
 * in the order challenges offer them. The one list: the configuration schema, the
 * store's HA1 columns and the directory's attributes all derive from it.
 */
export const DIGEST_ALGORITHMS = ['MD5', 'SHA-256', 'SHA-512-256'] as const;

/** A hash algorithm of the Digest scheme (RFC 7616 §3.2, RFC 8760 §2). */
export type DigestAlgorithm = (typeof DIGEST_ALGORITHMS)[number];

const NODE_HASH: Record<DigestAlgorithm, string> = {
  MD5: 'md5',
  'SHA-256': 'sha256',
  'SHA-512-256': 'sha512-256',
};

/** Hex length of a digest of `alg`: 32 for MD5, 64 for SHA-256 and SHA-512-256. */
export function digestHexLength(alg: DigestAlgorithm): number {
  return alg === 'MD5' ? 32 : 64;
}

/** H(data) as lowercase hex; `data` is hashed as UTF-8 (RFC 7616 §3.4.4 charset=UTF-8). */
export function hashHex(alg: DigestAlgorithm, data: string): string {
  return hash(NODE_HASH[alg], data, 'hex');
}

/**
 * Parse an `algorithm` parameter value as sent (`MD5`, `sha-256`, `SHA-512-256-sess`, ...).
 * Case-insensitive (RFC 7616 §3.3). Returns undefined for an algorithm not supported.
 */
export function parseAlgorithm(value: string): { alg: DigestAlgorithm; sess: boolean } | undefined {
  let v = value.toUpperCase();
  let sess = false;
  if (v.endsWith('-SESS')) {
    sess = true;
    v = v.slice(0, -5);
  }
  return (DIGEST_ALGORITHMS as readonly string[]).includes(v) ? { alg: v as DigestAlgorithm, sess } : undefined;
}

/**
 * HA1 = H(username:realm:password) as lowercase hex (RFC 7616 §3.4.2, RFC 2617 §3.2.2.2).
 * This is what a user store keeps instead of the password, one per algorithm.
 */
export function computeHA1(alg: DigestAlgorithm, username: string, realm: string, password: string): string {
  return hashHex(alg, `${username}:${realm}:${password}`);
}

/** userhash = H(username:realm) as lowercase hex (RFC 7616 §3.4.4). */
export function computeUserhash(alg: DigestAlgorithm, username: string, realm: string): string {
  return hashHex(alg, `${username}:${realm}`);
}

/** Inputs of {@link computeResponse}. */
export interface ResponseParams {
  alg: DigestAlgorithm;
  /** H(username:realm:password), lowercase hex. */
  ha1: string;
  /** Request method (`REGISTER`, `INVITE`, ...). SIP uses the request's method, ACK/CANCEL included. */
  method: string;
  /** The `uri` parameter exactly as the client sent it. */
  uri: string;
  nonce: string;
  /** Only `auth`; `auth-int` is not supported. Absent: RFC 2069 form. */
  qop?: 'auth';
  /** 8 hex digits, as sent (`00000001`). Required with qop. */
  nc?: string;
  /** Required with qop or sess. */
  cnonce?: string;
  /** `-sess` variant: HA1 becomes H(HA1:nonce:cnonce) (RFC 7616 §3.4.2). */
  sess?: boolean;
}

/**
 * The `response` parameter as lowercase hex.
 * With qop=auth: H(HA1:nonce:nc:cnonce:qop:HA2) (RFC 7616 §3.4.1);
 * without qop: H(HA1:nonce:HA2) (RFC 2069, RFC 2617 §3.2.2.1). HA2 = H(method:uri).
 * Missing nc/cnonce with qop are hashed as empty strings (the result then simply fails to match).
 */
export function computeResponse(p: ResponseParams): string {
  const ha1 = p.sess ? hashHex(p.alg, `${p.ha1}:${p.nonce}:${p.cnonce ?? ''}`) : p.ha1;
  const ha2 = hashHex(p.alg, `${p.method}:${p.uri}`);
  if (p.qop) {
    return hashHex(p.alg, `${ha1}:${p.nonce}:${p.nc ?? ''}:${p.cnonce ?? ''}:${p.qop}:${ha2}`);
  }
  return hashHex(p.alg, `${ha1}:${p.nonce}:${ha2}`);
}

/** The parameters of an Authorization / Proxy-Authorization field with the Digest scheme (RFC 7616 §3.4). */
export interface DigestCredentials {
  /** The user name; when `userhash` is true, the hex userhash instead. `username*` (RFC 8187) is decoded into this. */
  username: string;
  realm: string;
  nonce: string;
  /** digest-uri as sent, not necessarily the Request-URI. */
  uri: string;
  /** Hex digest as sent (case preserved). */
  response: string;
  /** Algorithm as sent; `MD5` when the parameter is absent (RFC 7616 §3.3). */
  algorithm: string;
  qop?: string;
  nc?: string;
  cnonce?: string;
  opaque?: string;
  userhash?: boolean;
}

/** Limits on attacker-controlled input: the whole field value and the number of parameters. */
const MAX_CREDENTIALS_LENGTH = 8192;
const MAX_PARAMS = 32;

function isTokenChar(c: number): boolean {
  // token chars of RFC 3261 §25.1: alphanum and -.!%*_+`'~
  return (
    (c >= 0x30 && c <= 0x39) ||
    (c >= 0x41 && c <= 0x5a) ||
    (c >= 0x61 && c <= 0x7a) ||
    c === 0x2d || c === 0x2e || c === 0x21 || c === 0x25 || c === 0x2a ||
    c === 0x5f || c === 0x2b || c === 0x60 || c === 0x27 || c === 0x7e
  );
}

function isWs(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0d || c === 0x0a;
}

/**
 * Split `scheme param=value, param="quoted", ...` into a lowercase scheme and a
 * map of lowercase parameter names to unescaped values. Linear scan, no regex.
 * When `expectScheme` (lowercase) is given, a different scheme is refused before the parameters are read.
 * @throws AuthError(400) on malformed syntax, an unexpected scheme, duplicate parameters or oversize input.
 */
export function parseAuthParams(value: string, expectScheme?: string): { scheme: string; params: Map<string, string> } {
  if (value.length > MAX_CREDENTIALS_LENGTH) throw new AuthError(400, 'credentials too long');
  const n = value.length;
  let i = 0;
  while (i < n && isWs(value.charCodeAt(i))) i++;
  const schemeStart = i;
  while (i < n && isTokenChar(value.charCodeAt(i))) i++;
  if (i === schemeStart) throw new AuthError(400, 'missing auth scheme');
  const scheme = value.slice(schemeStart, i).toLowerCase();
  if (expectScheme !== undefined && scheme !== expectScheme) throw new AuthError(400, `unsupported auth scheme ${scheme}`);
  const params = new Map<string, string>();
  let first = true;
  for (;;) {
    while (i < n && isWs(value.charCodeAt(i))) i++;
    if (i >= n) break;
    if (!first) {
      if (value.charCodeAt(i) !== 0x2c) throw new AuthError(400, 'expected "," between auth parameters');
      i++;
      while (i < n && isWs(value.charCodeAt(i))) i++;
      if (i >= n) break; // tolerate a trailing comma
    } else if (i === schemeStart + scheme.length) {
      throw new AuthError(400, 'expected whitespace after auth scheme');
    }
    first = false;
    const nameStart = i;
    while (i < n && isTokenChar(value.charCodeAt(i))) i++;
    if (i === nameStart) throw new AuthError(400, 'expected auth parameter name');
    const name = value.slice(nameStart, i).toLowerCase();
    while (i < n && isWs(value.charCodeAt(i))) i++;
    if (value.charCodeAt(i) !== 0x3d) throw new AuthError(400, `expected "=" after ${name}`);
    i++;
    while (i < n && isWs(value.charCodeAt(i))) i++;
    let v: string;
    if (value.charCodeAt(i) === 0x22) {
      i++;
      let out = '';
      let closed = false;
      let runStart = i;
      while (i < n) {
        const c = value.charCodeAt(i);
        if (c === 0x5c) {
          out += value.slice(runStart, i);
          if (i + 1 >= n) break;
          out += value[i + 1];
          i += 2;
          runStart = i;
        } else if (c === 0x22) {
          out += value.slice(runStart, i);
          i++;
          closed = true;
          break;
        } else i++;
      }
      if (!closed) throw new AuthError(400, `unterminated quoted-string in ${name}`);
      v = out;
    } else {
      const vStart = i;
      while (i < n && isTokenChar(value.charCodeAt(i))) i++;
      if (i === vStart) throw new AuthError(400, `empty value for ${name}`);
      v = value.slice(vStart, i);
    }
    if (params.has(name)) throw new AuthError(400, `duplicate auth parameter ${name}`);
    if (params.size >= MAX_PARAMS) throw new AuthError(400, 'too many auth parameters');
    params.set(name, v);
  }
  return { scheme, params };
}

/** Decode an RFC 8187 ext-value `UTF-8''J%C3%A4s%C3%B8n`; throws AuthError(400) when malformed or not UTF-8. */
function decodeExtValue(v: string): string {
  const m = /^([A-Za-z0-9!#$%&+\-^_`{}~]+)'[A-Za-z0-9-]*'(.*)$/.exec(v);
  if (!m || m[1].toUpperCase() !== 'UTF-8') throw new AuthError(400, 'bad username* encoding');
  try {
    return decodeURIComponent(m[2]);
  } catch {
    throw new AuthError(400, 'bad username* encoding');
  }
}

/**
 * Parse the value of an Authorization / Proxy-Authorization field
 * (`Digest username="alice", realm="example.com", ...`, RFC 3261 §25.1, RFC 7616 §3.4).
 * Parameter names are case-insensitive; quoted-strings are unescaped; `username*`
 * (RFC 7616 §3.4.4, RFC 8187) is accepted in place of `username`.
 * @throws AuthError(400) for a scheme other than Digest, malformed syntax, or a missing
 *   username, realm, nonce, uri or response.
 */
export function parseCredentials(value: string): DigestCredentials {
  const { params } = parseAuthParams(value, 'digest');
  let username = params.get('username');
  const ext = params.get('username*');
  if (ext !== undefined) {
    if (username !== undefined) throw new AuthError(400, 'both username and username* present');
    username = decodeExtValue(ext);
  }
  const realm = params.get('realm');
  const nonce = params.get('nonce');
  const uri = params.get('uri');
  const response = params.get('response');
  if (username === undefined) throw new AuthError(400, 'missing username');
  if (realm === undefined) throw new AuthError(400, 'missing realm');
  if (nonce === undefined) throw new AuthError(400, 'missing nonce');
  if (uri === undefined) throw new AuthError(400, 'missing uri');
  if (response === undefined) throw new AuthError(400, 'missing response');
  const creds: DigestCredentials = {
    username,
    realm,
    nonce,
    uri,
    response,
    algorithm: params.get('algorithm') ?? 'MD5',
  };
  const qop = params.get('qop');
  if (qop !== undefined) creds.qop = qop;
  const nc = params.get('nc');
  if (nc !== undefined) creds.nc = nc;
  const cnonce = params.get('cnonce');
  if (cnonce !== undefined) creds.cnonce = cnonce;
  const opaque = params.get('opaque');
  if (opaque !== undefined) creds.opaque = opaque;
  const userhash = params.get('userhash');
  if (userhash !== undefined) creds.userhash = userhash.toLowerCase() === 'true';
  return creds;
}

/** Quote a string as a quoted-string, escaping `"` and `\` (RFC 3261 §25.1). */
export function quote(s: string): string {
  // Most values (nonces, realms, URIs) have nothing to escape: one string, not one per character.
  if (s.indexOf('"') < 0 && s.indexOf('\\') < 0) return `"${s}"`;
  let out = '"';
  for (const ch of s) out += ch === '"' || ch === '\\' ? `\\${ch}` : ch;
  return out + '"';
}

/** Inputs of {@link formatChallenge}. */
export interface DigestChallenge {
  realm: string;
  nonce: string;
  algorithm: DigestAlgorithm;
  qop?: 'auth';
  opaque?: string;
  stale?: boolean;
}

/**
 * A WWW-Authenticate / Proxy-Authenticate value (RFC 7616 §3.3, RFC 3261 §22.4):
 * `Digest realm="...", nonce="...", algorithm=MD5, qop="auth"[, opaque="..."][, stale=true]`.
 */
export function formatChallenge(c: DigestChallenge): string {
  let s = `Digest realm=${quote(c.realm)}, nonce=${quote(c.nonce)}, algorithm=${c.algorithm}`;
  if (c.qop) s += `, qop=${quote(c.qop)}`;
  if (c.opaque !== undefined) s += `, opaque=${quote(c.opaque)}`;
  if (c.stale) s += ', stale=true';
  return s;
}

/**
 * An Authorization / Proxy-Authorization value for these credentials (RFC 7616 §3.4):
 * `Digest username="...", realm="...", nonce="...", uri="...", response="...", algorithm=X`
 * then `qop=auth, nc=..., cnonce="..."`, `opaque="..."`, `userhash=true` when present.
 * qop, nc and algorithm are tokens, unquoted, as RFC 7616 requires.
 */
export function formatCredentials(c: DigestCredentials): string {
  let s =
    `Digest username=${quote(c.username)}, realm=${quote(c.realm)}, nonce=${quote(c.nonce)}, ` +
    `uri=${quote(c.uri)}, response=${quote(c.response)}, algorithm=${c.algorithm}`;
  if (c.qop !== undefined) s += `, qop=${c.qop}`;
  if (c.nc !== undefined) s += `, nc=${c.nc}`;
  if (c.cnonce !== undefined) s += `, cnonce=${quote(c.cnonce)}`;
  if (c.opaque !== undefined) s += `, opaque=${quote(c.opaque)}`;
  if (c.userhash !== undefined) s += `, userhash=${c.userhash ? 'true' : 'false'}`;
  return s;
}
