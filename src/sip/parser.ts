/**
 * SIP message parser (RFC 3261 §7, §18.3, §25; RFC 4475 torture cases).
 *
 * Works on bytes: each line of the header section is decoded as UTF-8 on its
 * own, the body is copied out of the input (it may hold NUL and 8-bit bytes),
 * so nothing of the parsed message pins the input datagram or the text of
 * other header lines. Header fields
 * are kept raw (name as written, value unfolded and trimmed); only what the
 * message-level checks need is parsed further: the Request-URI (sip/sips),
 * CSeq, Max-Forwards, Content-Length, the top Via, From and To. Hand-written
 * scanning, linear in the input, no regular expressions.
 */
import { SipParseError } from './errors.js';
import { firstListElement, nameIs, type SipHeader, type SipMessage, type SipRequest, type SipResponse } from './message.js';
import { isToken, isTokenChar, parseCSeq, parseNameAddr, parseVia } from './headers.js';
import { parseUri, type SipUri } from './uri.js';
import { copyBytes, EMPTY_BODY } from './detach.js';
import { emptyParsedHeaders } from './parsed-headers.js';

/** Size limits applied while parsing; every size an attacker controls is bounded. */
export interface ParseLimits {
  /** Largest whole message (header section + body), bytes. Over it: 413. */
  maxMessageBytes: number;
  /** Most header fields (after unfolding). Over it: 400. */
  maxHeaders: number;
  /** Longest physical line of the start line or header section, bytes (without CRLF). Over it: 400. */
  maxLineBytes: number;
}

/** 65535 bytes (largest UDP payload), 256 header fields, 8192-byte lines. */
export const DEFAULT_LIMITS: ParseLimits = { maxMessageBytes: 65535, maxHeaders: 256, maxLineBytes: 8192 };

const CR = 0x0d;
const LF = 0x0a;

/** The header fields the message-level checks read, by index (full names, lowercase). */
const KNOWN = ['via', 'from', 'to', 'call-id', 'cseq', 'content-length', 'max-forwards'] as const;
const VIA = 0;
const FROM = 1;
const TO = 2;
const CALL_ID = 3;
const CSEQ = 4;
const CONTENT_LENGTH = 5;
const MAX_FORWARDS = 6;
/** Header fields that may appear once only (RFC 3261 §7.3.1, RFC 4475 §3.3.8, §3.3.9), in the order they are checked. */
const SINGLE = [FROM, TO, CALL_ID, CSEQ, CONTENT_LENGTH, MAX_FORWARDS];
/** Header fields every message must have, in the order they are checked. */
const REQUIRED = [VIA, FROM, TO, CALL_ID, CSEQ];

/** Index in {@link KNOWN} of a header name as written (any case, compact forms), or -1. No allocation. */
function knownIndex(name: string): number {
  if (name.length === 1) {
    switch (name.charCodeAt(0) | 0x20) {
      case 0x76: return VIA; // v
      case 0x66: return FROM; // f
      case 0x74: return TO; // t
      case 0x69: return CALL_ID; // i
      case 0x6c: return CONTENT_LENGTH; // l
      default: return -1;
    }
  }
  for (let k = 0; k < KNOWN.length; k++) if (nameIs(name, KNOWN[k])) return k;
  return -1;
}

/**
 * Scratch state of one parse (parsing is synchronous and never nested, so one set serves every
 * message): where each line of the header section starts and ends, and per known header field
 * how many there are and the first one's value.
 */
const lineStarts: number[] = [];
const lineEnds: number[] = [];
const counts = new Int32Array(KNOWN.length);
const firstValues: (string | undefined)[] = new Array(KNOWN.length).fill(undefined);

function bad(what: string, partial?: SipMessage): SipParseError {
  return new SipParseError(400, `Bad Request: ${what}`, partial);
}

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x09;
}

/** SP, HTAB or a stray CR: what is trimmed around header names and values. */
function isLws(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === CR;
}

/** True when `buf[start, end)` is a non-empty token (RFC 3261 §25.1). */
function isTokenBytes(buf: Buffer, start: number, end: number): boolean {
  if (end === start) return false;
  for (let i = start; i < end; i++) if (!isTokenChar(buf[i])) return false;
  return true;
}

/**
 * Header names as most user agents write them, by length: a name whose bytes are one of these is
 * that shared string, not a new one per field (a REGISTER has a dozen fields).
 */
const COMMON_NAMES: string[][] = [];
for (const name of [
  'Via', 'From', 'To', 'Call-ID', 'CSeq', 'Contact', 'Max-Forwards', 'Expires', 'User-Agent', 'Content-Length',
  'Content-Type', 'Authorization', 'Proxy-Authorization', 'Allow', 'Supported', 'Require', 'Route', 'Record-Route',
  'Path', 'Event', 'Accept', 'Subject', 'Date', 'Server', 'Timestamp', 'Session-Expires', 'Min-SE', 'P-Asserted-Identity',
  'Privacy', 'Reason', 'Refer-To', 'Referred-By', 'Allow-Events', 'Organization', 'Call-Info', 'Alert-Info',
  'v', 'f', 't', 'i', 'm', 'l', 'c', 'k', 's', 'o', 'u', 'r', 'b', 'x',
]) {
  (COMMON_NAMES[name.length] ??= []).push(name);
}

/** The header name in `buf[start, end)` (token characters, so ASCII): a shared string for a common spelling. */
function headerName(buf: Buffer, start: number, end: number): string {
  const candidates = COMMON_NAMES[end - start];
  if (candidates) {
    for (const name of candidates) {
      let i = 0;
      while (i < name.length && name.charCodeAt(i) === buf[start + i]) i++;
      if (i === name.length) return name;
    }
  }
  return buf.toString('latin1', start, end);
}

/** Trim SP and HTAB (and stray CR) at both ends. */
function trimLws(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && (isSpace(s.charCodeAt(a)) || s.charCodeAt(a) === CR)) a++;
  while (b > a && (isSpace(s.charCodeAt(b - 1)) || s.charCodeAt(b - 1) === CR)) b--;
  return a === 0 && b === s.length ? s : s.slice(a, b);
}

/** 1*DIGIT with at most `maxDigits` digits; returns the value or -1. */
function digits(s: string, maxDigits: number): number {
  if (s.length === 0 || s.length > maxDigits) return -1;
  let v = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return -1;
    v = v * 10 + (c - 0x30);
  }
  return v;
}

/** `SIP/1*DIGIT.1*DIGIT` → 'ok' for 2.0, 'other' for another version, 'bad' otherwise (case-insensitive). */
function checkVersion(v: string): 'ok' | 'other' | 'bad' {
  if (v.length < 7 || v.slice(0, 4).toUpperCase() !== 'SIP/') return 'bad';
  const dot = v.indexOf('.', 4);
  if (dot < 0 || digits(v.slice(4, dot), 5) < 0 || digits(v.slice(dot + 1), 5) < 0) return 'bad';
  return v.slice(4) === '2.0' ? 'ok' : 'other';
}

/** True when the Request-URI is `scheme ":" 1*non-space` (RFC 3261 §25.1 absoluteURI, loosely). */
function isAbsoluteUri(uri: string, colon: number): boolean {
  if (colon <= 0 || colon === uri.length - 1) return false;
  const c0 = uri.charCodeAt(0) | 0x20;
  if (c0 < 0x61 || c0 > 0x7a) return false;
  for (let i = 1; i < colon; i++) {
    const c = uri.charCodeAt(i);
    const ok = (c >= 0x30 && c <= 0x39) || ((c | 0x20) >= 0x61 && (c | 0x20) <= 0x7a) || c === 0x2b || c === 0x2d || c === 0x2e;
    if (!ok) return false;
  }
  for (let i = colon + 1; i < uri.length; i++) {
    const c = uri.charCodeAt(i);
    if (c <= 0x20 || c === 0x7f || c === 0x3c || c === 0x3e || c === 0x22) return false;
  }
  return true;
}

/**
 * Parse one SIP message from `buf` (RFC 3261 §7).
 *
 * - Leading CRLFs are skipped (§7.5); CRLF or bare LF end lines; folded lines
 *   (§7.3.1) are joined with one space; LWS around the header colon is allowed.
 * - Body: exactly Content-Length bytes (`Content-Length` or `l`); extra bytes
 *   after it are ignored (§18.3, a datagram); without Content-Length the body
 *   is the rest of the buffer. A message without the blank line ends at the
 *   end of the buffer.
 * - Checks: SIP-Version 2.0 (505 for a request with another version), status
 *   code 100–699, request method a token, Request-URI (sip/sips URIs fully,
 *   other schemes as `scheme ":" non-space`), Via, From, To, Call-ID and CSeq
 *   present and From/To/Call-ID/CSeq/Content-Length/Max-Forwards at most once,
 *   CSeq `number method` below 2**31 with the request's method, Max-Forwards
 *   0–255, Content-Length digits, the top Via and the From and To values well
 *   formed.
 *
 * @param buf one message (a datagram, or the bytes a StreamFramer emitted).
 * @param limits size limits, default {@link DEFAULT_LIMITS}.
 * @throws SipParseError and nothing else: 413 "Message Too Large"; 505 "Version
 *   Not Supported"; 400 "Bad Request: <problem>". Its `partial` holds the
 *   request as far as parsed when Via and CSeq are present.
 */
export function parseMessage(buf: Buffer, limits: ParseLimits = DEFAULT_LIMITS): SipMessage {
  try {
    return parse(buf, limits);
  } catch (e) {
    if (e instanceof SipParseError) throw e;
    throw bad('unparseable message');
  }
}

function parse(buf: Buffer, limits: ParseLimits): SipMessage {
  const len = buf.length;
  if (len > limits.maxMessageBytes) throw new SipParseError(413, 'Message Too Large');
  let start = 0;
  while (start < len && (buf[start] === CR || buf[start] === LF)) start++;
  if (start === len) throw bad('empty message');

  // Byte pass: find the end of the header section, bound line lengths, note where each line's content ends.
  // Each line is then decoded on its own, so a header value is a slice of its own line only and never pins
  // the whole header text (or the datagram) for as long as something keeps the value (see detach.ts).
  lineStarts.length = 0;
  lineEnds.length = 0;
  let pos = start;
  let bodyStart = len;
  for (;;) {
    const lf = buf.indexOf(LF, pos);
    const lineEnd = lf < 0 ? len : lf;
    const contentEnd = lineEnd > pos && buf[lineEnd - 1] === CR ? lineEnd - 1 : lineEnd;
    if (contentEnd - pos > limits.maxLineBytes) throw bad('line too long');
    if (contentEnd === pos && pos !== start && lf >= 0) {
      bodyStart = lf + 1;
      break;
    }
    lineStarts.push(pos);
    lineEnds.push(contentEnd);
    if (lf < 0) break;
    pos = lf + 1;
    if (pos >= len) break;
  }

  // Start line.
  const startLine = trimCr(buf.toString('utf8', lineStarts[0], lineEnds[0]));

  // Header fields.
  const headers: SipHeader[] = [];
  let headerError: string | undefined;
  for (let li = 1; li < lineStarts.length; li++) {
    const ls = lineStarts[li];
    let le = lineEnds[li];
    if (le > ls && buf[le - 1] === CR) le--; // a stray CR before the line's own CRLF
    if (le === ls) continue;
    if (!isSpace(buf[ls])) {
      // name ":" value, read from the bytes: the name is ASCII (a token) and most often one of a few
      // spellings (a shared string), only the value is decoded. Splitting at the ASCII colon and
      // trimming ASCII LWS gives what decoding the whole line first would.
      let colon = ls;
      while (colon < le && buf[colon] !== 0x3a) colon++;
      let ns = ls;
      let ne = colon;
      while (ns < ne && isLws(buf[ns])) ns++;
      while (ne > ns && isLws(buf[ne - 1])) ne--;
      if (colon === le || !isTokenBytes(buf, ns, ne)) {
        headerError ??= 'malformed header field';
        continue;
      }
      if (headers.length >= limits.maxHeaders) throw bad('too many header fields');
      let vs = colon + 1;
      let ve = le;
      while (vs < ve && isLws(buf[vs])) vs++;
      while (ve > vs && isLws(buf[ve - 1])) ve--;
      headers.push({ name: headerName(buf, ns, ne), value: vs === ve ? '' : buf.toString('utf8', vs, ve) });
      continue;
    }
    const line = buf.toString('utf8', ls, le);
    {
      // Continuation of the previous field (§7.3.1).
      const prev = headers[headers.length - 1];
      if (!prev) {
        headerError ??= 'malformed header field';
        continue;
      }
      const more = trimLws(line);
      if (more) headers[headers.length - 1] = { name: prev.name, value: prev.value ? `${prev.value} ${more}` : more };
    }
  }
  counts.fill(0);
  firstValues.fill(undefined);
  for (let i = 0; i < headers.length; i++) {
    const k = knownIndex(headers[i].name);
    if (k < 0) continue;
    if (counts[k]++ === 0) firstValues[k] = headers[i].value;
  }

  const isResponse = startLine.length >= 4 && startLine.slice(0, 4).toUpperCase() === 'SIP/';
  let msg: SipMessage;
  let startError: SipParseError | undefined;
  let ruri: SipUri | undefined;
  if (isResponse) {
    // Status-Line = SIP-Version SP Status-Code SP Reason-Phrase (§7.2)
    const sp1 = startLine.indexOf(' ');
    const version = sp1 < 0 ? startLine : startLine.slice(0, sp1);
    if (checkVersion(version) !== 'ok') throw bad('unsupported SIP-Version in Status-Line');
    const rest = sp1 < 0 ? '' : startLine.slice(sp1 + 1);
    const sp2 = rest.indexOf(' ');
    const code = digits(sp2 < 0 ? rest : rest.slice(0, sp2), 3);
    if (code < 100 || code > 699 || (sp2 < 0 ? rest.length : sp2) !== 3) throw bad('malformed Status-Code');
    const res: SipResponse = { kind: 'response', status: code, reason: sp2 < 0 ? '' : rest.slice(sp2 + 1), headers, body: EMPTY_BODY };
    msg = res;
  } else {
    // Request-Line = Method SP Request-URI SP SIP-Version (§7.1)
    const sp1 = startLine.indexOf(' ');
    const sp2 = startLine.lastIndexOf(' ');
    if (sp1 <= 0 || sp2 === sp1) throw bad('malformed Request-Line');
    const method = startLine.slice(0, sp1);
    if (!isToken(method)) throw bad('malformed Request-Line');
    const uri = startLine.slice(sp1 + 1, sp2);
    const version = startLine.slice(sp2 + 1);
    const req: SipRequest = { kind: 'request', method, uri, headers, body: EMPTY_BODY };
    msg = req;
    const v = checkVersion(version);
    if (v === 'other') startError = new SipParseError(505, 'Version Not Supported');
    else if (v === 'bad') startError = bad('malformed Request-Line');
    else if (uri.length === 0 || uri.indexOf(' ') >= 0 || uri.indexOf('\t') >= 0) startError = bad('malformed Request-Line');
    else {
      const colon = uri.indexOf(':');
      const scheme = colon > 0 ? uri.slice(0, colon).toLowerCase() : '';
      if (scheme === 'sip' || scheme === 'sips') {
        try {
          const u = parseUri(uri);
          if (hasAny(u.headers)) startError = bad('malformed Request-URI');
          else ruri = u;
        } catch {
          startError = bad('malformed Request-URI');
        }
      } else if (!isAbsoluteUri(uri, colon)) startError = bad('malformed Request-URI');
    }
  }

  // A request can be answered as soon as it has a Via to answer to and a CSeq to match on (RFC 4475 §3.3.1:
  // a request missing Call-ID, From or To ideally gets a 400 too).
  const partial = msg.kind === 'request' && counts[VIA] > 0 && counts[CSEQ] > 0 ? msg : undefined;
  const fail = (what: string): SipParseError => bad(what, partial);

  // Body (§7.4.1, §18.3).
  const clValue = firstValues[CONTENT_LENGTH];
  let clError: string | undefined;
  if (clValue !== undefined) {
    const n = digits(clValue, 10);
    if (n < 0) clError = 'malformed Content-Length';
    else if (bodyStart + n > len) clError = 'Content-Length larger than message';
    else msg.body = copyBytes(buf, bodyStart, bodyStart + n);
  } else {
    msg.body = copyBytes(buf, bodyStart, len);
  }

  if (startError) {
    if (partial) throw new SipParseError(startError.status, startError.reason, partial);
    throw startError;
  }
  if (headerError) throw fail(headerError);
  for (const k of SINGLE) {
    if (counts[k] > 1) throw fail(`multiple ${DISPLAY[k]} header fields`);
  }
  if (clError) throw fail(clError);
  for (const k of REQUIRED) {
    if (counts[k] === 0) throw fail(`missing ${DISPLAY[k]}`);
  }
  const callId = firstValues[CALL_ID];
  if (!callId) throw fail('malformed Call-ID');
  const cseqText = firstValues[CSEQ]!;
  let cseq: { seq: number; method: string };
  try {
    cseq = parseCSeq(cseqText);
  } catch {
    throw fail('malformed CSeq');
  }
  if (msg.kind === 'request' && cseq.method !== msg.method) throw fail('CSeq method does not match Request-Line');
  const mf = firstValues[MAX_FORWARDS];
  if (mf !== undefined) {
    const n = digits(mf, 10);
    if (n < 0 || n > 255) throw fail('malformed Max-Forwards');
  }
  const viaField = firstValues[VIA]!;
  const topVia = firstListElement(viaField);
  let via;
  try {
    if (topVia === undefined) throw bad('malformed Via');
    via = parseVia(topVia);
  } catch {
    throw fail('malformed Via');
  }
  const fromText = firstValues[FROM]!;
  const toText = firstValues[TO]!;
  let from;
  let to;
  try {
    from = parseNameAddr(fromText);
  } catch {
    throw fail('malformed From');
  }
  try {
    to = parseNameAddr(toText);
  } catch {
    throw fail('malformed To');
  }
  // What was parsed here is kept for the layers above (sip/parsed-headers.ts).
  const parsed = emptyParsedHeaders();
  parsed.viaField = viaField;
  parsed.via = via;
  if (ruri && msg.kind === 'request') {
    parsed.uriText = msg.uri;
    parsed.uri = ruri;
  }
  parsed.fromText = fromText;
  parsed.from = from;
  parsed.toText = toText;
  parsed.to = to;
  parsed.cseqText = cseqText;
  parsed.cseq = cseq;
  msg.parsed = parsed;
  return msg;
}

/** True when a record has at least one own key. */
function hasAny(record: Record<string, string>): boolean {
  for (const _ in record) return true;
  return false;
}

function trimCr(s: string): string {
  return s.length > 0 && s.charCodeAt(s.length - 1) === CR ? s.slice(0, -1) : s;
}

/** Names of the {@link KNOWN} header fields as error messages write them. */
const DISPLAY = ['Via', 'From', 'To', 'Call-ID', 'CSeq', 'Content-Length', 'Max-Forwards'];
