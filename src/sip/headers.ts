/**
 * Grammar of the header fields routing needs (RFC 3261 §20, ABNF §25.1):
 * Via, name-addr / addr-spec values (From, To, Contact, Route, Record-Route),
 * CSeq and generic parameters. Hand-written scanners, no regular expressions.
 *
 * Every parser takes one element of a list (split with `splitList` from
 * `message.ts` first) and throws {@link SipParseError} with status 400.
 */
import { SipParseError } from './errors.js';
import { dict, isValidHost, parsePort } from './uri.js';

/**
 * One via-parm (RFC 3261 §20.42): `SIP/2.0/UDP host:port;branch=z9hG4bK...`.
 * `transport` uppercase; `host` as written (IPv6 in brackets); `params` with
 * lowercased names and values as written (`rport` is null when empty).
 */
export interface Via {
  transport: string;
  host: string;
  port?: number;
  params: Record<string, string | null>;
}

/**
 * A name-addr or addr-spec with header parameters (RFC 3261 §20.10, §20.20,
 * §20.39): `"Alice" <sip:alice@example.com>;tag=1928301774`.
 * `displayName` as written (quotes included), `uri` the text inside `<>` (or the
 * bare addr-spec), `params` the header parameters (tag, expires, q,
 * +sip.instance, ...), names lowercased, values verbatim.
 */
export interface NameAddr {
  displayName?: string;
  uri: string;
  params: Record<string, string | null>;
}

// token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~")
const TOKEN = new Uint8Array(128);
for (let c = 0x30; c <= 0x39; c++) TOKEN[c] = 1;
for (let c = 0x41; c <= 0x5a; c++) TOKEN[c] = 1;
for (let c = 0x61; c <= 0x7a; c++) TOKEN[c] = 1;
for (const ch of "-.!%*_+`'~") TOKEN[ch.charCodeAt(0)] = 1;

/** True when `c` (a UTF-16 code unit) is a token character (RFC 3261 §25.1). */
export function isTokenChar(c: number): boolean {
  return c < 128 && TOKEN[c] === 1;
}

/** True when `s` is a non-empty token. */
export function isToken(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) if (!isTokenChar(s.charCodeAt(i))) return false;
  return true;
}

function isWs(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0d || c === 0x0a;
}

function skipWs(s: string, i: number): number {
  while (i < s.length && isWs(s.charCodeAt(i))) i++;
  return i;
}

/** Index just past the closing quote of the quoted-string starting at `i` (which holds `"`), or -1. */
function endOfQuoted(s: string, i: number): number {
  for (let j = i + 1; j < s.length; j++) {
    const c = s.charCodeAt(j);
    if (c === 0x5c) j++;
    else if (c === 0x22) return j + 1;
  }
  return -1;
}

/** True for characters that end an unquoted parameter value. */
function endsValue(c: number): boolean {
  return isWs(c) || c === 0x3b || c === 0x2c || c === 0x22 || c === 0x3c || c === 0x3e || c === 0x3d || c < 0x20 || c === 0x7f;
}

/**
 * Generic parameters (RFC 3261 §25.1 `*( SEMI generic-param )`):
 * `";a=b;c"` → `{ a: 'b', c: null }`. A leading `;` is optional; LWS around
 * `;` and `=` is allowed; names are lowercased; quoted values are kept with
 * their quotes; the first of duplicate names wins.
 * @throws SipParseError 400 "Bad Request: malformed parameters" on an empty
 *   name or value, a non-token name, an unterminated quoted string or junk.
 */
export function parseParams(s: string): Record<string, string | null> {
  const out = dict<string | null>();
  let i = skipWs(s, 0);
  if (i >= s.length) return out;
  if (s.charCodeAt(i) === 0x3b) i++;
  for (;;) {
    i = skipWs(s, i);
    const ns = i;
    while (i < s.length && isTokenChar(s.charCodeAt(i))) i++;
    if (i === ns) throw bad('parameters');
    const name = s.slice(ns, i).toLowerCase();
    i = skipWs(s, i);
    let value: string | null = null;
    if (i < s.length && s.charCodeAt(i) === 0x3d) {
      i = skipWs(s, i + 1);
      if (i < s.length && s.charCodeAt(i) === 0x22) {
        const e = endOfQuoted(s, i);
        if (e < 0) throw bad('parameters');
        value = s.slice(i, e);
        i = e;
      } else {
        const vs = i;
        while (i < s.length && !endsValue(s.charCodeAt(i))) i++;
        if (i === vs) throw bad('parameters');
        value = s.slice(vs, i);
      }
      i = skipWs(s, i);
    }
    if (!Object.hasOwn(out, name)) out[name] = value;
    if (i >= s.length) return out;
    if (s.charCodeAt(i) !== 0x3b) throw bad('parameters');
    i++;
  }
}

function bad(what: string): SipParseError {
  return new SipParseError(400, `Bad Request: malformed ${what}`);
}

function formatParams(params: Record<string, string | null>): string {
  let s = '';
  for (const k of Object.keys(params)) {
    const v = params[k];
    s += v === null ? `;${k}` : `;${k}=${v}`;
  }
  return s;
}

/**
 * Parse one via-parm (RFC 3261 §20.42, §25.1): `sent-protocol LWS sent-by
 * *( SEMI via-params )`; LWS around "/" and ":" allowed. The protocol must be
 * SIP/2.0 (case-insensitive); any transport token is accepted (RFC 4475
 * §3.1.1.10). IPv6 sent-by must be bracketed (RFC 5118 §4.5); received may be
 * either form.
 * @throws SipParseError 400 "Bad Request: malformed Via".
 */
export function parseVia(value: string): Via {
  const s = value;
  let i = skipWs(s, 0);
  const readToken = (): string => {
    const st = i;
    while (i < s.length && isTokenChar(s.charCodeAt(i))) i++;
    if (i === st) throw bad('Via');
    return s.slice(st, i);
  };
  const slash = (): void => {
    i = skipWs(s, i);
    if (s.charCodeAt(i) !== 0x2f) throw bad('Via');
    i = skipWs(s, i + 1);
  };
  const proto = readToken();
  slash();
  const version = readToken();
  slash();
  const transport = readToken().toUpperCase();
  if (proto.toUpperCase() !== 'SIP' || version !== '2.0') throw bad('Via');
  const ws = i;
  i = skipWs(s, i);
  if (i === ws) throw bad('Via');
  // sent-by = host [ COLON port ]
  const hs = i;
  if (s.charCodeAt(i) === 0x5b) {
    const close = s.indexOf(']', i);
    if (close < 0) throw bad('Via');
    i = close + 1;
  } else {
    while (i < s.length) {
      const c = s.charCodeAt(i);
      if (c === 0x3a || c === 0x3b || isWs(c)) break;
      i++;
    }
  }
  const host = s.slice(hs, i);
  if (!isValidHost(host)) throw bad('Via');
  i = skipWs(s, i);
  let port: number | undefined;
  if (s.charCodeAt(i) === 0x3a) {
    i = skipWs(s, i + 1);
    const ps = i;
    while (i < s.length && s.charCodeAt(i) >= 0x30 && s.charCodeAt(i) <= 0x39) i++;
    port = parsePort(s.slice(ps, i));
    if (port === undefined) throw bad('Via');
    i = skipWs(s, i);
  }
  let params: Record<string, string | null>;
  if (i >= s.length) params = dict();
  else {
    if (s.charCodeAt(i) !== 0x3b) throw bad('Via');
    try {
      params = parseParams(s.slice(i));
    } catch {
      throw bad('Via');
    }
  }
  const via: Via = { transport, host, params };
  if (port !== undefined) via.port = port;
  return via;
}

/** Format a Via value: `SIP/2.0/UDP host:port;branch=...;rport=5060;received=...` (params in stored order). */
export function formatVia(v: Via): string {
  return `SIP/2.0/${v.transport} ${v.host}${v.port === undefined ? '' : `:${v.port}`}${formatParams(v.params)}`;
}

/**
 * Parse a name-addr (`[display-name] <uri>`) or addr-spec (`uri`) followed by
 * header parameters (RFC 3261 §20.10, §25.1). For the addr-spec form every
 * `;` parameter belongs to the header, and the URI may not contain `,` or `?`
 * (§20.10; RFC 4475 §3.1.2.13). The URI itself is not parsed (use parseUri),
 * only checked to be `scheme ":" ...` without whitespace (RFC 4475 §3.1.2.14).
 * A token display name must be tokens and LWS (RFC 4475 §3.1.2.15).
 * @throws SipParseError 400 "Bad Request: malformed name-addr".
 */
export function parseNameAddr(value: string): NameAddr {
  const s = value;
  let i = skipWs(s, 0);
  let displayName: string | undefined;
  let uri: string;
  let rest: string;
  if (s.charCodeAt(i) === 0x22) {
    const e = endOfQuoted(s, i);
    if (e < 0) throw bad('name-addr');
    displayName = s.slice(i, e);
    i = skipWs(s, e);
    if (s.charCodeAt(i) !== 0x3c) throw bad('name-addr');
  } else {
    const lt = s.indexOf('<', i);
    if (lt >= 0) {
      const dn = s.slice(i, lt).trim();
      for (let j = 0; j < dn.length; j++) {
        const c = dn.charCodeAt(j);
        if (!(isTokenChar(c) || c === 0x20 || c === 0x09 || c >= 0x80)) throw bad('name-addr');
      }
      if (dn) displayName = dn;
      i = lt;
    }
  }
  if (s.charCodeAt(i) === 0x3c) {
    const gt = s.indexOf('>', i + 1);
    if (gt < 0) throw bad('name-addr');
    uri = s.slice(i + 1, gt);
    rest = s.slice(gt + 1);
  } else {
    let e = i;
    while (e < s.length && s.charCodeAt(e) !== 0x3b) e++;
    uri = s.slice(i, e).trimEnd();
    rest = s.slice(e);
    if (uri.indexOf('?') >= 0 || uri.indexOf(',') >= 0) throw bad('name-addr');
  }
  checkUriText(uri);
  let params: Record<string, string | null>;
  const r = skipWs(rest, 0);
  if (r >= rest.length) params = dict();
  else {
    if (rest.charCodeAt(r) !== 0x3b) throw bad('name-addr');
    try {
      params = parseParams(rest);
    } catch {
      throw bad('name-addr');
    }
  }
  const out: NameAddr = { uri, params };
  if (displayName !== undefined) out.displayName = displayName;
  return out;
}

/** `scheme ":" 1*non-space` check, cheap and without parsing the URI. */
function checkUriText(uri: string): void {
  const colon = uri.indexOf(':');
  if (colon <= 0 || colon === uri.length - 1) throw bad('name-addr');
  const c0 = uri.charCodeAt(0) | 0x20;
  if (c0 < 0x61 || c0 > 0x7a) throw bad('name-addr');
  for (let j = 0; j < uri.length; j++) {
    const c = uri.charCodeAt(j);
    if (c <= 0x20 || c === 0x7f || c === 0x3c || c === 0x3e || c === 0x22) throw bad('name-addr');
  }
}

/** Format a name-addr, always with `<>`: `"Alice" <sip:a@example.com>;tag=1`. */
export function formatNameAddr(n: NameAddr): string {
  return `${n.displayName === undefined ? '' : `${n.displayName} `}<${n.uri}>${formatParams(n.params)}`;
}

/**
 * Parse a CSeq value (RFC 3261 §20.16): `1*DIGIT LWS Method`, the number below 2**31.
 * @returns `{ seq, method }`, method case-sensitive.
 * @throws SipParseError 400 "Bad Request: malformed CSeq".
 */
export function parseCSeq(value: string): { seq: number; method: string } {
  const s = value;
  let i = skipWs(s, 0);
  const ds = i;
  let seq = 0;
  while (i < s.length) {
    const c = s.charCodeAt(i);
    if (c < 0x30 || c > 0x39) break;
    seq = seq * 10 + (c - 0x30);
    i++;
    if (i - ds > 10) throw bad('CSeq');
  }
  if (i === ds || seq >= 2 ** 31) throw bad('CSeq');
  const ws = i;
  i = skipWs(s, i);
  if (i === ws) throw bad('CSeq');
  const ms = i;
  while (i < s.length && isTokenChar(s.charCodeAt(i))) i++;
  if (i === ms || skipWs(s, i) !== s.length) throw bad('CSeq');
  return { seq, method: s.slice(ms, i) };
}

/** The `tag` parameter of a From/To value (RFC 3261 §19.3), or undefined when absent or the value is malformed. */
export function getTag(value: string): string | undefined {
  try {
    const t = parseNameAddr(value).params.tag;
    return t === null ? undefined : t;
  } catch {
    return undefined;
  }
}
