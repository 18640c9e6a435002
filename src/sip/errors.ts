/**
 * Errors of the SIP layer. Each carries the SIP final response it maps to
 * (status code and reason phrase, RFC 3261 §21), so the caller can answer a
 * request it could not accept without knowing why it failed.
 */
import type { SipMessage } from './message.js';

/** An error that maps to a SIP final response: `status` 300–699 and its reason phrase. */
export class SipError extends Error {
  readonly status: number;
  readonly reason: string;
  /** Header fields the response carries (e.g. Retry-After with a 503, RFC 3261 §21.5.4). */
  readonly headers: readonly { name: string; value: string }[];

  /**
   * @param status SIP status code the error maps to (e.g. 400, 505).
   * @param reason Reason phrase to send, e.g. `"Bad Request: missing Call-ID"`.
   * @param headers header fields of the response, e.g. `[{ name: 'Retry-After', value: '5' }]`.
   */
  constructor(status: number, reason: string, headers: readonly { name: string; value: string }[] = []) {
    super(`${status} ${reason}`);
    this.name = 'SipError';
    this.status = status;
    this.reason = reason;
    this.headers = headers;
  }
}

/**
 * A message (or a URI / header value) that does not follow the grammar of
 * RFC 3261 §25. Status 400 normally; 505 for a SIP-Version other than 2.0;
 * 413 for a message over the size limit.
 *
 * `partial` is the message as far as it parsed (start line and raw header
 * fields) when that is enough to build a response (a request with Via and CSeq
 * present; the response then copies whichever of From, To and Call-ID exist,
 * RFC 4475 §3.3.1); otherwise undefined and the transport drops the message
 * silently (RFC 3261 §18.2.1, §18.3).
 */
export class SipParseError extends SipError {
  readonly partial?: SipMessage;

  constructor(status: number, reason: string, partial?: SipMessage) {
    super(status, reason);
    this.name = 'SipParseError';
    if (partial) this.partial = partial;
  }
}

/** Shorthand for a 400 parse error: `bad('malformed CSeq')` → 400 "Bad Request: malformed CSeq". */
export function badRequest(what: string, partial?: SipMessage): SipParseError {
  return new SipParseError(400, `Bad Request: ${what}`, partial);
}
