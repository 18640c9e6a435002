/**
 * Header values parsed once per message (RFC 3261 §20): the top Via, the
 * Request-URI, From, To (and their URIs) and CSeq, as the parser, the
 * transport (Via `received`/`rport`), the transaction layer (keys, response
 * destination), the proxy and the registrar all read them.
 *
 * The parsed form is kept on the message ({@link SipMessage.parsed}) beside
 * the text it was parsed from, and used again only while that text is still
 * the message's (the same string: a header edit replaces the field, a new
 * Request-URI replaces `uri`), so an edited message is parsed again and never
 * answers from a stale parse. Parsed forms are shared between the messages
 * that carry the same text (a clone, a response built from its request), so
 * they are read-only: copy before changing (e.g. `{ ...via, params: { ...via.params } }`).
 *
 * A value that does not parse is not kept: each call throws again.
 */
import { firstListElement, getHeader, nameIs, type SipMessage, type SipRequest } from './message.js';
import { parseCSeq, parseNameAddr, parseVia, type NameAddr, type Via } from './headers.js';
import { parseUri, type SipUri } from './uri.js';
import { SipParseError } from './errors.js';

/** A parsed form as shared: its properties and their records must not be changed. */
export type Frozen<T> = { readonly [K in keyof T]: T[K] extends object ? Readonly<T[K]> : T[K] };

/** CSeq (RFC 3261 §20.16): sequence number and method. */
export interface CSeq {
  seq: number;
  method: string;
}

/**
 * What one message's header values parsed to, each beside the exact text it
 * came from (`viaField` is the whole first Via field value, which may hold
 * several via-parms; `via` is its first).
 */
export interface ParsedHeaders {
  viaField?: string;
  via?: Frozen<Via>;
  uriText?: string;
  uri?: Frozen<SipUri>;
  fromText?: string;
  from?: Frozen<NameAddr>;
  fromUri?: Frozen<SipUri>;
  toText?: string;
  to?: Frozen<NameAddr>;
  toUri?: Frozen<SipUri>;
  cseqText?: string;
  cseq?: Frozen<CSeq>;
}

/** A cache with every slot empty (one shape for all messages). */
export function emptyParsedHeaders(): ParsedHeaders {
  return {
    viaField: undefined,
    via: undefined,
    uriText: undefined,
    uri: undefined,
    fromText: undefined,
    from: undefined,
    fromUri: undefined,
    toText: undefined,
    to: undefined,
    toUri: undefined,
    cseqText: undefined,
    cseq: undefined,
  };
}

function cache(msg: SipMessage): ParsedHeaders {
  return (msg.parsed ??= emptyParsedHeaders());
}

/** The value of the first `via` field, or undefined; no allocation. */
function firstViaField(msg: SipMessage): string | undefined {
  const headers = msg.headers;
  for (let i = 0; i < headers.length; i++) if (nameIs(headers[i].name, 'via')) return headers[i].value;
  return undefined;
}

/**
 * The top via-parm of a message (RFC 3261 §20.42), parsed once per Via text.
 * @throws SipParseError 400 "Bad Request: missing Via" without Via, "Bad Request: malformed Via" when malformed.
 */
export function topVia(msg: SipMessage): Frozen<Via> {
  const field = firstViaField(msg);
  if (!field) throw new SipParseError(400, 'Bad Request: missing Via');
  const c = cache(msg);
  if (c.viaField === field && c.via) return c.via;
  const via = parseVia(firstListElement(field) ?? '');
  c.viaField = field;
  c.via = via;
  return via;
}

/**
 * Record that the first Via field of `msg` now reads `field`, whose first via-parm is `via` (the
 * transport layer's `received`/`rport` stamp), so that it is not parsed again.
 */
export function noteTopVia(msg: SipMessage, field: string, via: Frozen<Via>): void {
  const c = cache(msg);
  c.viaField = field;
  c.via = via;
}

/**
 * The Request-URI parsed (RFC 3261 §19.1), once per Request-URI text.
 * @throws SipParseError 400 when malformed, 416 for a scheme other than sip, sips, tel.
 */
export function requestUri(req: SipRequest): Frozen<SipUri> {
  const c = cache(req);
  if (c.uriText === req.uri && c.uri) return c.uri;
  const uri = parseUri(req.uri);
  c.uriText = req.uri;
  c.uri = uri;
  return uri;
}

/**
 * The From header (RFC 3261 §20.20) parsed, once per From text.
 * @throws SipParseError 400 when absent ("malformed name-addr" of the empty value) or malformed.
 */
export function fromHeader(msg: SipMessage): Frozen<NameAddr> {
  return nameAddrOf(msg, FROM);
}

/**
 * The To header (RFC 3261 §20.39) parsed, once per To text.
 * @throws SipParseError 400 when absent or malformed.
 */
export function toHeader(msg: SipMessage): Frozen<NameAddr> {
  return nameAddrOf(msg, TO);
}

/** The URI of the From header parsed (RFC 3261 §19.1). @throws SipParseError as {@link fromHeader} and parseUri. */
export function fromUri(msg: SipMessage): Frozen<SipUri> {
  return uriOf(msg, FROM);
}

/** The URI of the To header parsed (RFC 3261 §19.1). @throws SipParseError as {@link toHeader} and parseUri. */
export function toUri(msg: SipMessage): Frozen<SipUri> {
  return uriOf(msg, TO);
}

/** Where a name-addr header's text, parsed form and parsed URI are kept in {@link ParsedHeaders}. */
interface NameAddrSlots {
  header: 'from' | 'to';
  text: 'fromText' | 'toText';
  value: 'from' | 'to';
  uri: 'fromUri' | 'toUri';
}
const FROM: NameAddrSlots = { header: 'from', text: 'fromText', value: 'from', uri: 'fromUri' };
const TO: NameAddrSlots = { header: 'to', text: 'toText', value: 'to', uri: 'toUri' };

function nameAddrOf(msg: SipMessage, slots: NameAddrSlots): Frozen<NameAddr> {
  const text = getHeader(msg, slots.header) ?? '';
  const c = cache(msg);
  const known = c[slots.value];
  if (known && c[slots.text] === text) return known;
  const na = parseNameAddr(text);
  c[slots.text] = text;
  c[slots.value] = na;
  c[slots.uri] = undefined;
  return na;
}

function uriOf(msg: SipMessage, slots: NameAddrSlots): Frozen<SipUri> {
  const na = nameAddrOf(msg, slots);
  const c = cache(msg);
  return (c[slots.uri] ??= parseUri(na.uri));
}

/** The `tag` of the To header, or undefined when it has none or To is absent or malformed (RFC 3261 §19.3). */
export function toTag(msg: SipMessage): string | undefined {
  try {
    return toHeader(msg).params.tag ?? undefined;
  } catch {
    return undefined;
  }
}

/**
 * CSeq parsed (RFC 3261 §20.16), once per CSeq text.
 * @throws SipParseError 400 "Bad Request: malformed CSeq" when absent or malformed.
 */
export function cseqOf(msg: SipMessage): Frozen<CSeq> {
  const text = getHeader(msg, 'cseq') ?? '';
  const c = cache(msg);
  if (c.cseqText === text && c.cseq) return c.cseq;
  const cseq = parseCSeq(text);
  c.cseqText = text;
  c.cseq = cseq;
  return cseq;
}
