/**
 * The SIP message model (RFC 3261 §7).
 *
 * A message keeps its header fields as an ordered list of raw name/value pairs,
 * exactly as they came off the wire (after unfolding, §7.3.1). Only the headers
 * routing needs are ever parsed further, on demand, by the grammar functions in
 * `headers.ts` and `uri.ts`; everything else is re-emitted untouched.
 */

import type { ParsedHeaders } from './parsed-headers.js';

/**
 * One header field line: `name` as written on the wire (may be compact, e.g. `v`), `value` trimmed, unfolded.
 * Read-only: an edit replaces the field in its message's list, so copies (cloneMessage) share fields.
 */
export interface SipHeader {
  readonly name: string;
  readonly value: string;
}

interface MessageBase {
  /** Header fields in wire order. */
  headers: SipHeader[];
  /** Message body, exactly Content-Length bytes (empty Buffer when none). */
  body: Buffer;
  /**
   * Header values already parsed, each beside the text it came from (sip/parsed-headers.ts
   * reads and fills it; never serialized). Absent until something is parsed.
   */
  parsed?: ParsedHeaders;
}

/** A request: `METHOD Request-URI SIP/2.0` (RFC 3261 §7.1). */
export interface SipRequest extends MessageBase {
  kind: 'request';
  /** Method token, case-sensitive (§7.1): `INVITE`, `REGISTER`, ... */
  method: string;
  /** Request-URI as written on the wire. */
  uri: string;
}

/** A response: `SIP/2.0 Status-Code Reason-Phrase` (RFC 3261 §7.2). */
export interface SipResponse extends MessageBase {
  kind: 'response';
  /** Status code 100–699. */
  status: number;
  /** Reason phrase, possibly empty. */
  reason: string;
}

export type SipMessage = SipRequest | SipResponse;

/** Compact header forms (RFC 3261 §7.3.3 and the IANA registry) to their full lowercase names. */
const COMPACT: Record<string, string> = {
  a: 'accept-contact',
  b: 'referred-by',
  c: 'content-type',
  d: 'request-disposition',
  e: 'content-encoding',
  f: 'from',
  i: 'call-id',
  j: 'reject-contact',
  k: 'supported',
  l: 'content-length',
  m: 'contact',
  n: 'identity-info',
  o: 'event',
  r: 'refer-to',
  s: 'subject',
  t: 'to',
  u: 'allow-events',
  v: 'via',
  x: 'session-expires',
  y: 'identity',
};

/**
 * Header names whose values are never comma-separated lists, so a comma inside
 * them is data (RFC 3261 §7.3.1 exceptions, plus the credential headers).
 */
const NOT_LIST = new Set([
  'www-authenticate',
  'authorization',
  'proxy-authenticate',
  'proxy-authorization',
  'authentication-info',
  'date',
  'call-id',
  'cseq',
  'from',
  'to',
  'content-length',
  'content-type',
  'max-forwards',
  'expires',
  'min-expires',
  'subject',
  'user-agent',
  'server',
  'organization',
  'timestamp',
  'retry-after',
]);

/** Canonical names of header names as code and most user agents write them, so looking them up lowercases nothing. */
const CANONICAL = new Map<string, string>();
for (const name of [
  'Via', 'From', 'To', 'Call-ID', 'CSeq', 'Contact', 'Max-Forwards', 'Expires', 'Min-Expires', 'User-Agent', 'Server',
  'Content-Length', 'Content-Type', 'Authorization', 'Proxy-Authorization', 'WWW-Authenticate', 'Proxy-Authenticate',
  'Allow', 'Supported', 'Require', 'Proxy-Require', 'Unsupported', 'Route', 'Record-Route', 'Path', 'Date', 'Timestamp',
  'Retry-After', 'Flow-Timer', 'Event', 'Accept', 'Subject', 'Reason',
]) {
  CANONICAL.set(name, name.toLowerCase());
  CANONICAL.set(name.toLowerCase(), name.toLowerCase());
}

/** Canonical (lowercase, full-form) name of a header: `V` → `via`, `Call-ID` → `call-id`. */
export function canonicalName(name: string): string {
  const known = CANONICAL.get(name);
  if (known !== undefined) return known;
  const lower = name.toLowerCase();
  return lower.length === 1 ? COMPACT[lower] ?? lower : lower;
}

/**
 * True when header name `name` (as written, any case, compact or full) is the
 * header whose canonical name is `want`. No allocation for full-form names:
 * header lookups run over every field of every message.
 */
export function nameIs(name: string, want: string): boolean {
  if (name.length === 1) return canonicalName(name) === want;
  if (name.length !== want.length) return false;
  for (let i = 0; i < name.length; i++) {
    let c = name.charCodeAt(i);
    if (c >= 0x41 && c <= 0x5a) c += 0x20;
    if (c !== want.charCodeAt(i)) return false;
  }
  return true;
}

/** First value of header `name` (any case, compact forms match), or undefined. Whole field value, not split at commas. */
export function getHeader(msg: SipMessage, name: string): string | undefined {
  const want = canonicalName(name);
  for (const h of msg.headers) {
    if (nameIs(h.name, want)) return h.value;
  }
  return undefined;
}

/** True when the message has at least one `name` header field. */
export function hasHeader(msg: SipMessage, name: string): boolean {
  return getHeader(msg, name) !== undefined;
}

/**
 * Every value of header `name`, in order, with comma-separated lists split into
 * elements (RFC 3261 §7.3.1). Commas inside double quotes or `<...>` do not split.
 * Headers that are not lists (Authorization, Date, ...) come back one value per field.
 * Read-only: a message without the header gets one shared empty array.
 */
export function getHeaderValues(msg: SipMessage, name: string): readonly string[] {
  const want = canonicalName(name);
  let out: string[] | undefined;
  let list: boolean | undefined;
  let push: ((element: string) => boolean) | undefined;
  for (const h of msg.headers) {
    if (!nameIs(h.name, want)) continue;
    list ??= !NOT_LIST.has(want);
    const values = (out ??= []);
    if (!list || h.value.indexOf(',') < 0) {
      // One element (or a header that is no list): no splitting, as scanList would give it.
      if (!list) values.push(h.value);
      else if (h.value.length) values.push(h.value.trim());
      continue;
    }
    scanList(h.value, (push ??= (element) => {
      values.push(element);
      return false;
    }));
  }
  return out ?? NO_VALUES;
}

/** What {@link getHeaderValues} gives for a header the message does not have (shared, frozen). */
const NO_VALUES: readonly string[] = Object.freeze([]);

/**
 * Walk the elements of a list header value (top-level commas, outside quotes
 * and angle brackets), trimmed, empty ones skipped, calling `take` for each
 * until it returns true. A value without commas is one element as it is
 * (trimmed; the empty value has none).
 */
function scanList(value: string, take: (element: string) => boolean): void {
  if (value.indexOf(',') < 0) {
    if (value.length) take(value.trim());
    return;
  }
  let depth = 0;
  let quoted = false;
  let start = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (quoted) {
      if (c === 0x5c) i++; // backslash escape inside quoted-string
      else if (c === 0x22) quoted = false;
    } else if (c === 0x22) quoted = true;
    else if (c === 0x3c) depth++;
    else if (c === 0x3e) depth = Math.max(0, depth - 1);
    else if (c === 0x2c && depth === 0) {
      const part = value.slice(start, i).trim();
      if (part && take(part)) return;
      start = i + 1;
    }
  }
  const last = value.slice(start).trim();
  if (last) take(last);
}

/**
 * The first element of a list header value (the top Via of a Via field), trimmed, as
 * `splitList(value)[0]` gives it but without splitting the rest; undefined when there is none.
 */
export function firstListElement(value: string): string | undefined {
  let first: string | undefined;
  scanList(value, (element) => {
    first = element;
    return true;
  });
  return first;
}

/** Split a header value at top-level commas (outside quotes and angle brackets); trims and drops empty elements. */
export function splitList(value: string): string[] {
  const out: string[] = [];
  scanList(value, (element) => {
    out.push(element);
    return false;
  });
  return out;
}

/** Replace every `name` field by one field `name: value` at the position of the first (or at the end). */
export function setHeader(msg: SipMessage, name: string, value: string): void {
  const want = canonicalName(name);
  const idx = msg.headers.findIndex((h) => nameIs(h.name, want));
  removeHeaders(msg, name);
  if (idx < 0) msg.headers.push({ name, value });
  else msg.headers.splice(Math.min(idx, msg.headers.length), 0, { name, value });
}

/** Insert a field before all others of the same name (or at the top when there is none): Via, Record-Route. */
export function prependHeader(msg: SipMessage, name: string, value: string): void {
  const want = canonicalName(name);
  const idx = msg.headers.findIndex((h) => nameIs(h.name, want));
  msg.headers.splice(idx < 0 ? 0 : idx, 0, { name, value });
}

/** Append a field after all others. */
export function appendHeader(msg: SipMessage, name: string, value: string): void {
  msg.headers.push({ name, value });
}

/** Remove every `name` field; returns how many were removed. */
export function removeHeaders(msg: SipMessage, name: string): number {
  const want = canonicalName(name);
  const before = msg.headers.length;
  msg.headers = msg.headers.filter((h) => !nameIs(h.name, want));
  return before - msg.headers.length;
}

/**
 * Remove the first element of a list header (the top Via, the top Route), whether
 * it stands alone in its field or first in a comma-separated field. Returns it.
 */
export function removeFirstValue(msg: SipMessage, name: string): string | undefined {
  const want = canonicalName(name);
  const idx = msg.headers.findIndex((h) => nameIs(h.name, want));
  if (idx < 0) return undefined;
  const parts = splitList(msg.headers[idx].value);
  const first = parts.shift();
  if (parts.length === 0) msg.headers.splice(idx, 1);
  else msg.headers[idx] = { name: msg.headers[idx].name, value: parts.join(', ') };
  return first;
}

/**
 * Copy whose header list can be changed without touching `msg`'s: a new array of the same header
 * fields (a field is never changed in place: {@link SipHeader} is read-only, edits replace it),
 * the same body (never mutated in place either) and a copy of the parsed-header cache (whose
 * parsed forms are read-only and are used only while their text is unchanged).
 */
export function cloneMessage<T extends SipMessage>(msg: T): T {
  return { ...msg, headers: msg.headers.slice(), parsed: msg.parsed && { ...msg.parsed } };
}
