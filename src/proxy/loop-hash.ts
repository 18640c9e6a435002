/**
 * The loop-detection hash of RFC 3261 §16.6 step 8.
 */
import { createHash } from 'node:crypto';
import { getHeader, getHeaderValues, type SipRequest } from '../sip/message.js';

/** The parts of a request that processing may change (strict-route fix-up, own Route removal, §16.4), as received. */
export interface LoopHashInputs {
  uri: string;
  routes: string[];
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
  const h = createHash('sha1');
  for (const part of [
    asReceived?.uri ?? req.uri,
    fromTag ?? '',
    toTag ?? '',
    getHeader(req, 'call-id') ?? '',
    (getHeader(req, 'cseq') ?? '').trim().split(/\s+/)[0],
    (asReceived?.routes ?? getHeaderValues(req, 'route')).join(','),
    getHeaderValues(req, 'proxy-require').join(','),
    getHeaderValues(req, 'proxy-authorization').join(','),
  ]) {
    h.update(part);
    h.update('\0');
  }
  return h.digest('base64url').slice(0, 10);
}
