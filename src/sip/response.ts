/**
 * Building responses to requests (RFC 3261 §8.2.6) and the default reason
 * phrases of §21.
 */
import { nameIs, type SipHeader, type SipRequest, type SipResponse } from './message.js';
import { getTag } from './headers.js';
import { EMPTY_BODY } from './detach.js';
import { noteTopVia } from './parsed-headers.js';

const PHRASES: Record<number, string> = {
  100: 'Trying',
  180: 'Ringing',
  181: 'Call Is Being Forwarded',
  182: 'Queued',
  183: 'Session Progress',
  199: 'Early Dialog Terminated',
  200: 'OK',
  202: 'Accepted',
  204: 'No Notification',
  300: 'Multiple Choices',
  301: 'Moved Permanently',
  302: 'Moved Temporarily',
  305: 'Use Proxy',
  380: 'Alternative Service',
  400: 'Bad Request',
  401: 'Unauthorized',
  402: 'Payment Required',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  406: 'Not Acceptable',
  407: 'Proxy Authentication Required',
  408: 'Request Timeout',
  410: 'Gone',
  412: 'Conditional Request Failed',
  413: 'Request Entity Too Large',
  414: 'Request-URI Too Long',
  415: 'Unsupported Media Type',
  416: 'Unsupported URI Scheme',
  417: 'Unknown Resource-Priority',
  420: 'Bad Extension',
  421: 'Extension Required',
  422: 'Session Interval Too Small',
  423: 'Interval Too Brief',
  428: 'Use Identity Header',
  429: 'Provide Referrer Identity',
  430: 'Flow Failed',
  433: 'Anonymity Disallowed',
  436: 'Bad Identity-Info',
  437: 'Unsupported Certificate',
  438: 'Invalid Identity Header',
  439: 'First Hop Lacks Outbound Support',
  440: 'Max-Breadth Exceeded',
  469: 'Bad Info Package',
  470: 'Consent Needed',
  480: 'Temporarily Unavailable',
  481: 'Call/Transaction Does Not Exist',
  482: 'Loop Detected',
  483: 'Too Many Hops',
  484: 'Address Incomplete',
  485: 'Ambiguous',
  486: 'Busy Here',
  487: 'Request Terminated',
  488: 'Not Acceptable Here',
  489: 'Bad Event',
  491: 'Request Pending',
  493: 'Undecipherable',
  494: 'Security Agreement Required',
  500: 'Server Internal Error',
  501: 'Not Implemented',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Server Time-out',
  505: 'Version Not Supported',
  513: 'Message Too Large',
  555: 'Push Notification Service Not Supported',
  580: 'Precondition Failure',
  600: 'Busy Everywhere',
  603: 'Decline',
  604: 'Does Not Exist Anywhere',
  606: 'Not Acceptable',
  607: 'Unwanted',
  608: 'Rejected',
};

const CLASS: Record<number, string> = {
  1: 'Provisional',
  2: 'Successful',
  3: 'Redirection',
  4: 'Request Failure',
  5: 'Server Failure',
  6: 'Global Failure',
};

/**
 * Default reason phrase of a status code (RFC 3261 §21 and later RFCs), e.g.
 * 404 → "Not Found". An unknown code gets its class name ("Request Failure"
 * for 4xx, §21.4), or "Unknown" outside 100–699.
 */
export function reasonPhrase(status: number): string {
  return PHRASES[status] ?? CLASS[Math.floor(status / 100)] ?? 'Unknown';
}

/**
 * Build a response to `req` (RFC 3261 §8.2.6.2).
 *
 * Copies every Via field (same order, values untouched), From, To, Call-ID and
 * CSeq, with the names in full form (Via, From, To, Call-ID, CSeq). When
 * `opts.toTag` is given, `status` > 100 and the To has no tag yet, `;tag=<toTag>`
 * is appended to To. A 100 Trying also copies Timestamp (§8.2.6.1). Then come
 * `opts.headers` in order; the body is `opts.body` (empty by default), and the
 * serializer sets Content-Length.
 *
 * @param status 100–699.
 * @param opts.reason reason phrase; default {@link reasonPhrase}(status).
 */
export function createResponse(
  req: SipRequest,
  status: number,
  opts: { reason?: string; toTag?: string; headers?: SipHeader[]; body?: Buffer } = {},
): SipResponse {
  const headers: SipHeader[] = [];
  const copied = status === 100 ? COPIED_100 : COPIED;
  let firstVia: string | undefined;
  for (const h of req.headers) {
    const k = copiedIndex(h.name, copied);
    if (k < 0) continue;
    let value = h.value;
    if (k === TO && opts.toTag !== undefined && status > 100 && tagOf(req, value) === undefined) {
      value = `${value};tag=${opts.toTag}`;
    }
    if (k === VIA) firstVia ??= value;
    // A field already written this way is shared (fields are read-only, SipHeader).
    headers.push(value === h.value && h.name === FULL_NAMES[k] ? h : { name: FULL_NAMES[k], value });
  }
  if (opts.headers) for (const h of opts.headers) headers.push({ name: h.name, value: h.value });
  const res: SipResponse = {
    kind: 'response',
    status,
    reason: opts.reason ?? reasonPhrase(status),
    headers,
    body: opts.body ?? EMPTY_BODY,
  };
  // The response's top Via is the request's: its parsed form goes along (sip/parsed-headers.ts).
  const parsed = req.parsed;
  if (parsed?.via && firstVia !== undefined && parsed.viaField === firstVia) noteTopVia(res, firstVia, parsed.via);
  return res;
}

/** The header fields a response copies from its request (§8.2.6.2), by index, lowercase full names; Timestamp for 100 only (§8.2.6.1). */
const COPIED = ['via', 'from', 'to', 'call-id', 'cseq'];
const COPIED_100 = [...COPIED, 'timestamp'];
/** Their names as written in responses. */
const FULL_NAMES = ['Via', 'From', 'To', 'Call-ID', 'CSeq', 'Timestamp'];
const VIA = 0;
const TO = 2;

/** Index in `copied` of a header name as written (any case, compact forms), or -1. No allocation for full-form names. */
function copiedIndex(name: string, copied: readonly string[]): number {
  for (let k = 0; k < copied.length; k++) if (nameIs(name, copied[k])) return k;
  return -1;
}

/** The tag of To value `value` of `req`: from its parsed To when that is the one (sip/parsed-headers.ts), else parsed here. */
function tagOf(req: SipRequest, value: string): string | undefined {
  const parsed = req.parsed;
  if (parsed?.to && parsed.toText === value) return parsed.to.params.tag ?? undefined;
  return getTag(value);
}

const CLASS_LABELS = ['0xx', '1xx', '2xx', '3xx', '4xx', '5xx', '6xx'];

/** Status class label of a status code, `1xx` .. `6xx` (RFC 3261 §7.2); `0xx` for none. No allocation: it runs per final response. */
export function statusClass(status: number): string {
  return CLASS_LABELS[Math.floor(status / 100)] ?? `${Math.floor(status / 100)}xx`;
}
