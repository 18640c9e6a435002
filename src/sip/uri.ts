/**
 * SIP and SIPS URIs (RFC 3261 §19.1, grammar §25.1) with IPv6 references as
 * RFC 5118 §4 describes them, plus a minimal reading of tel: URIs (RFC 3966).
 *
 * Parsing is hand-written scanning: no regular expressions on attacker input.
 */
import { SipParseError } from './errors.js';

/**
 * A parsed URI. `user` and `password` are kept as written (escapes such as
 * `%41` not decoded; use {@link unescapeUri}). `host` is lowercased for names,
 * kept in brackets for IPv6 (`[2001:db8::1]`), and empty for tel: URIs.
 * `params` are the uri-parameters (`;lr` → `{ lr: null }`), names lowercased,
 * values as written. `headers` are the `?name=value&...` part, as written
 * (read-only: a URI without them shares one frozen empty record).
 */
export interface SipUri {
  scheme: string;
  user?: string;
  password?: string;
  host: string;
  port?: number;
  params: Record<string, string | null>;
  headers: Record<string, string>;
}

/**
 * The prototype of {@link dict} records: an empty object without prototype of its own, frozen. A
 * record made from it inherits no property (`'constructor' in r` is false, `__proto__` is a plain
 * key), as with `Object.create(null)`, but V8 keeps it a fast object with in-object properties:
 * `Object.create(null)` makes a hash-table (dictionary mode) object, 184 instead of 40 heap bytes
 * with two parameters, and every parsed URI, Via and name-addr has one or two of them.
 */
const DictPrototype = Object.freeze(Object.create(null) as object);
function Dict(this: object): void {}
Dict.prototype = DictPrototype;

/** An empty record inheriting nothing, so names like `constructor` or `__proto__` are plain keys. */
export function dict<T>(): Record<string, T> {
  return new (Dict as unknown as new () => Record<string, T>)();
}

function malformed(why?: string): SipParseError {
  return new SipParseError(400, why ? `Bad Request: malformed URI (${why})` : 'Bad Request: malformed URI');
}

// Character classes of RFC 3261 §25.1, as 128-entry tables.
function table(chars: string, alnum = true): Uint8Array {
  const t = new Uint8Array(128);
  if (alnum) {
    for (let c = 0x30; c <= 0x39; c++) t[c] = 1;
    for (let c = 0x41; c <= 0x5a; c++) t[c] = 1;
    for (let c = 0x61; c <= 0x7a; c++) t[c] = 1;
  }
  for (let i = 0; i < chars.length; i++) t[chars.charCodeAt(i)] = 1;
  return t;
}
const MARK = "-_.!~*'()";
/** user = 1*( unreserved / escaped / user-unreserved ) */
const USER = table(MARK + '&=+$,;?/');
/** password = *( unreserved / escaped / "&" / "=" / "+" / "$" / "," ) */
const PASSWORD = table(MARK + '&=+$,');
/** paramchar = param-unreserved / unreserved / escaped */
const PARAM = table(MARK + '[]/:&+$');
/** hname / hvalue = *( hnv-unreserved / unreserved / escaped ) */
const HEADER = table(MARK + '[]/?:+$');
/** hostname characters (alphanum, "-", "."; "_" tolerated as deployed). */
const HOSTNAME = table('-._');
/** scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) */
const SCHEME = table('+-.');

function isHex(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}

/** True when every character of `s` is in `t` or part of a valid `%HH` escape. */
function allIn(s: string, t: Uint8Array): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x25) {
      if (i + 2 >= s.length) return false;
      if (!isHex(s.charCodeAt(i + 1)) || !isHex(s.charCodeAt(i + 2))) return false;
      i += 2;
    } else if (c >= 128 || t[c] !== 1) return false;
  }
  return true;
}

/** IPv4address = 1*3DIGIT "." 1*3DIGIT "." 1*3DIGIT "." 1*3DIGIT, each 0–255. */
export function isIPv4(host: string): boolean {
  let parts = 0;
  let digits = 0;
  let value = 0;
  for (let i = 0; i <= host.length; i++) {
    const c = i < host.length ? host.charCodeAt(i) : 0x2e;
    if (c === 0x2e) {
      if (digits === 0 || value > 255) return false;
      parts++;
      digits = 0;
      value = 0;
    } else if (c >= 0x30 && c <= 0x39) {
      if (++digits > 3) return false;
      value = value * 10 + (c - 0x30);
    } else return false;
  }
  return parts === 4;
}

/**
 * IPv6address of RFC 5118 §4.10 (RFC 4291 text form, optional trailing IPv4).
 * `lenient` also reads the RFC 3261 ABNF bug form `2001:db8:::192.0.2.1` as `::`.
 */
export function isIPv6Address(addr: string, lenient = false): boolean {
  if (lenient) addr = addr.replace(':::', '::');
  if (addr.length < 2 || addr.length > 45) return false;
  const dbl = addr.indexOf('::');
  if (dbl >= 0 && addr.indexOf('::', dbl + 1) >= 0) return false;
  const countGroups = (s: string, allowV4Tail: boolean): number => {
    if (s === '') return 0;
    const groups = s.split(':');
    let n = 0;
    for (let i = 0; i < groups.length; i++) {
      const g = groups[i];
      if (i === groups.length - 1 && allowV4Tail && g.indexOf('.') >= 0) {
        if (!isIPv4(g)) return -1;
        n += 2;
        continue;
      }
      if (g.length < 1 || g.length > 4) return -1;
      for (let j = 0; j < g.length; j++) if (!isHex(g.charCodeAt(j))) return -1;
      n++;
    }
    return n;
  };
  if (dbl < 0) return countGroups(addr, true) === 8;
  const head = countGroups(addr.slice(0, dbl), false);
  const tail = countGroups(addr.slice(dbl + 2), true);
  return head >= 0 && tail >= 0 && head + tail <= 7;
}

/** IPv6reference = "[" IPv6address "]" (RFC 3261 §25.1, RFC 5118). */
export function isIPv6Reference(host: string): boolean {
  return host.length > 2 && host.charCodeAt(0) === 0x5b && host.charCodeAt(host.length - 1) === 0x5d &&
    isIPv6Address(host.slice(1, -1), true);
}

/** hostname = *( domainlabel "." ) toplabel [ "." ] (labels of alphanum and "-"; "_" tolerated). */
function isHostname(host: string): boolean {
  if (host.length === 0 || host.length > 255) return false;
  if (!allIn(host, HOSTNAME) || host.indexOf('%') >= 0) return false;
  return host.charCodeAt(0) !== 0x2e && host.indexOf('..') < 0;
}

/** True for a valid `host` of RFC 3261 §25.1: hostname, IPv4address or IPv6reference. */
export function isValidHost(host: string): boolean {
  if (host.charCodeAt(0) === 0x5b) return isIPv6Reference(host);
  return isIPv4(host) || isHostname(host);
}

/** Parse a port: 1*DIGIT, 0–65535; returns undefined when invalid. */
export function parsePort(s: string): number | undefined {
  if (s.length === 0 || s.length > 5) return undefined;
  let v = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return undefined;
    v = v * 10 + (c - 0x30);
  }
  return v <= 65535 ? v : undefined;
}

/** Decode `%HH` escapes (RFC 3261 §19.1.2); invalid escapes are left as written. Result is a binary (latin1) string. */
export function unescapeUri(s: string): string {
  if (s.indexOf('%') < 0) return s;
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x25 && i + 2 < s.length && isHex(s.charCodeAt(i + 1)) && isHex(s.charCodeAt(i + 2))) {
      out += String.fromCharCode(parseInt(s.slice(i + 1, i + 3), 16));
      i += 2;
    } else out += s[i];
  }
  return out;
}

/** Read `;name[=value]` uri-parameters from `s` (which starts after the first ";" or is empty). */
function parseUriParams(s: string, params: Record<string, string | null>): void {
  if (s === '') return;
  for (const p of s.split(';')) {
    if (p === '') throw malformed('empty parameter');
    const eq = p.indexOf('=');
    const name = eq < 0 ? p : p.slice(0, eq);
    const value = eq < 0 ? null : p.slice(eq + 1);
    if (name === '' || !allIn(name, PARAM) || (value !== null && (value === '' || !allIn(value, PARAM)))) {
      throw malformed('bad parameter');
    }
    const key = name.toLowerCase();
    if (!Object.hasOwn(params, key)) params[key] = value;
  }
}

function parseUriHeaders(s: string, headers: Record<string, string>): void {
  for (const h of s.split('&')) {
    const eq = h.indexOf('=');
    if (eq <= 0) throw malformed('bad header');
    const name = h.slice(0, eq);
    const value = h.slice(eq + 1);
    if (!allIn(name, HEADER) || !allIn(value, HEADER)) throw malformed('bad header');
    if (!Object.hasOwn(headers, name)) headers[name] = value;
  }
}

/** The `headers` of every parsed URI without a `?` part (most): one shared, frozen, empty record. */
const NO_HEADERS: Record<string, string> = Object.freeze(dict<string>());

/**
 * Parse a URI (RFC 3261 §19.1.1, §25.1; RFC 5118 IPv6 references).
 *
 * - `sip:` / `sips:` (scheme case-insensitive): full grammar; user may carry
 *   escapes and `;` (RFC 4475 §3.1.1.9: `sip:user;par=u%40example.net@example.com`
 *   has user `user;par=u%40example.net`).
 * - `tel:`: user = the number up to the first `;`, host = '', params after it.
 *
 * @throws SipParseError 400 "Bad Request: malformed URI (...)" for text that does
 *   not follow the grammar; 416 "Unsupported URI Scheme" for any other scheme.
 */
export function parseUri(s: string): SipUri {
  const colon = s.indexOf(':');
  if (colon <= 0) throw malformed('no scheme');
  const scheme = s.slice(0, colon).toLowerCase();
  if (!allIn(scheme, SCHEME) || scheme.indexOf('%') >= 0 || !(scheme.charCodeAt(0) >= 0x61 && scheme.charCodeAt(0) <= 0x7a)) {
    throw malformed('bad scheme');
  }
  const rest = s.slice(colon + 1);
  const params = dict<string | null>();
  if (scheme === 'tel') {
    const headers = NO_HEADERS;
    const semi = rest.indexOf(';');
    const number = semi < 0 ? rest : rest.slice(0, semi);
    if (number === '' || !allIn(number, table('-.()+*#', true))) throw malformed('bad telephone-subscriber');
    if (semi >= 0) parseUriParams(rest.slice(semi + 1), params);
    return { scheme, user: number, host: '', params, headers };
  }
  if (scheme !== 'sip' && scheme !== 'sips') throw new SipParseError(416, 'Unsupported URI Scheme');

  let user: string | undefined;
  let password: string | undefined;
  let i = 0;
  const at = rest.indexOf('@');
  if (at >= 0) {
    const userinfo = rest.slice(0, at);
    // password is after the first ':' of userinfo (':' is not a user character).
    const pc = userinfo.indexOf(':');
    user = pc < 0 ? userinfo : userinfo.slice(0, pc);
    if (pc >= 0) password = userinfo.slice(pc + 1);
    if (user === '' || !allIn(user, USER)) throw malformed('bad user');
    if (password !== undefined && !allIn(password, PASSWORD)) throw malformed('bad password');
    i = at + 1;
  }
  // host
  let hostEnd: number;
  if (rest.charCodeAt(i) === 0x5b) {
    const close = rest.indexOf(']', i);
    if (close < 0) throw malformed('unterminated IPv6 reference');
    hostEnd = close + 1;
  } else {
    hostEnd = i;
    while (hostEnd < rest.length) {
      const c = rest.charCodeAt(hostEnd);
      if (c === 0x3a || c === 0x3b || c === 0x3f) break;
      hostEnd++;
    }
  }
  const rawHost = rest.slice(i, hostEnd);
  if (!isValidHost(rawHost)) throw malformed('bad host');
  const host = rawHost.toLowerCase();
  i = hostEnd;
  let port: number | undefined;
  if (rest.charCodeAt(i) === 0x3a) {
    let e = i + 1;
    while (e < rest.length && rest.charCodeAt(e) !== 0x3b && rest.charCodeAt(e) !== 0x3f) e++;
    port = parsePort(rest.slice(i + 1, e));
    if (port === undefined) throw malformed('bad port');
    i = e;
  }
  const q = rest.indexOf('?', i);
  const paramPart = rest.slice(i, q < 0 ? rest.length : q);
  if (paramPart !== '') {
    if (paramPart.charCodeAt(0) !== 0x3b) throw malformed('junk after host');
    parseUriParams(paramPart.slice(1), params);
  }
  let headers = NO_HEADERS;
  if (q >= 0) parseUriHeaders(rest.slice(q + 1), (headers = dict<string>()));
  const uri: SipUri = { scheme, host, params, headers };
  if (user !== undefined) uri.user = user;
  if (password !== undefined) uri.password = password;
  if (port !== undefined) uri.port = port;
  return uri;
}

/** `host` or `host:port` of a URI (IPv6 in brackets). */
export function hostPort(u: SipUri): string {
  return u.port === undefined ? u.host : `${u.host}:${u.port}`;
}

/** Format a URI; `formatUri(parseUri(s))` gives back `s` for URIs in normal form (lowercase scheme, host and parameter names). */
export function formatUri(u: SipUri): string {
  let s = `${u.scheme}:`;
  if (u.scheme === 'tel') {
    s += u.user ?? '';
  } else {
    if (u.user !== undefined) s += u.password !== undefined ? `${u.user}:${u.password}@` : `${u.user}@`;
    s += hostPort(u);
  }
  for (const k of Object.keys(u.params)) {
    const v = u.params[k];
    s += v === null ? `;${k}` : `;${k}=${v}`;
  }
  const hk = Object.keys(u.headers);
  for (let i = 0; i < hk.length; i++) s += `${i === 0 ? '?' : '&'}${hk[i]}=${u.headers[hk[i]]}`;
  return s;
}

/** Parameters that must match when present in either URI (RFC 3261 §19.1.4). */
const STRICT_PARAMS = ['user', 'ttl', 'method', 'maddr', 'transport'];

/**
 * URI equality of RFC 3261 §19.1.4: schemes equal; userinfo case-sensitive
 * after decoding escapes; host case-insensitive; ports equal (absent ≠ 5060);
 * user, ttl, method, maddr and transport parameters present in both or neither
 * and equal; other parameters equal when present in both; URI headers present
 * in both with equal values. Other comparisons are case-insensitive.
 */
export function uriEquals(a: SipUri, b: SipUri): boolean {
  if (a.scheme !== b.scheme) return false;
  const ua = a.user === undefined ? undefined : unescapeUri(a.user);
  const ub = b.user === undefined ? undefined : unescapeUri(b.user);
  if (ua !== ub) return false;
  const pa = a.password === undefined ? undefined : unescapeUri(a.password);
  const pb = b.password === undefined ? undefined : unescapeUri(b.password);
  if (pa !== pb) return false;
  if (unescapeUri(a.host).toLowerCase() !== unescapeUri(b.host).toLowerCase()) return false;
  if (a.port !== b.port) return false;
  const norm = (v: string | null | undefined): string | null | undefined =>
    v === null || v === undefined ? v : unescapeUri(v).toLowerCase();
  for (const p of STRICT_PARAMS) {
    if (norm(a.params[p]) !== norm(b.params[p])) return false;
  }
  for (const k of Object.keys(a.params)) {
    if (Object.hasOwn(b.params, k) && norm(a.params[k]) !== norm(b.params[k])) return false;
  }
  const ha = lowerKeys(a.headers);
  const hb = lowerKeys(b.headers);
  const ka = Object.keys(ha);
  if (ka.length !== Object.keys(hb).length) return false;
  for (const k of ka) {
    if (!Object.hasOwn(hb, k) || unescapeUri(ha[k]).toLowerCase() !== unescapeUri(hb[k]).toLowerCase()) return false;
  }
  return true;
}

function lowerKeys(h: Record<string, string>): Record<string, string> {
  const out = dict<string>();
  for (const k of Object.keys(h)) out[unescapeUri(k).toLowerCase()] = h[k];
  return out;
}
