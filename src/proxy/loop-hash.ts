/**
 * The loop-detection hash of RFC 3261 §16.6 step 8.
 */
import { hash } from 'node:crypto';
import { getHeader, getHeaderValues, type SipRequest } from '../sip/message.js';

/** The parts of a request that processing may change (strict-route fix-up, own Route removal, §16.4), as received. */
export interface LoopHashInputs {
  uri: string;
  routes: readonly string[];
}

/**
 * The loop-detection hash of RFC 3261 §16.6 step 8: over the Request-URI as
 * received, the From and To tags, Call-ID, CSeq number, Route,
 * Proxy-Require and Proxy-Authorization. 10 characters of base64url
 * SHA-1. A request that comes back with the same values has looped; one
 * whose Request-URI changed (retargeted) is a spiral. `asReceived`, when
 * given, replaces the request's current Request-URI and Route values.
 */
export function loopHash(req: SipRequest, fromTag: string | undefined, toTag: string | undefined, asReceived?: LoopHashInputs): string {
  // Each part followed by a NUL, hashed in one call.
  const input =
    `${asReceived?.uri ?? req.uri}\0${fromTag ?? ''}\0${toTag ?? ''}\0${getHeader(req, 'call-id') ?? ''}\0` +
    `${(getHeader(req, 'cseq') ?? '').trim().split(/\s+/)[0]}\0${(asReceived?.routes ?? getHeaderValues(req, 'route')).join(',')}\0` +
    `${getHeaderValues(req, 'proxy-require').join(',')}\0${getHeaderValues(req, 'proxy-authorization').join(',')}\0`;
  return hash('sha1', input, 'base64url').slice(0, 10);
}
