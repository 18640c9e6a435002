import { createHash } from 'node:crypto';
import { getHeader, getHeaderValues, type SipRequest } from '../sip/message.js';
import { getTag, parseVia } from '../sip/headers.js';
import { MAGIC_COOKIE } from '../transaction/timers.js';

/**
 * The loop-detection hash of RFC 3261 §16.6 step 8: over the Request-URI as
 * received, the From and To tags, Call-ID, CSeq number, Route,
 * Proxy-Require and Proxy-Authorization. 10 characters of base64url
 * SHA-1. A request that comes back with the same values has looped; one
 * whose Request-URI changed (retargeted) is a spiral.
 */
export function loopHash(req: SipRequest): string {
  const h = createHash('sha1');
  for (const part of [
    req.uri,
    getTag(getHeader(req, 'from') ?? '') ?? '',
    getTag(getHeader(req, 'to') ?? '') ?? '',
    getHeader(req, 'call-id') ?? '',
    (getHeader(req, 'cseq') ?? '').trim().split(/\s+/)[0],
    getHeaderValues(req, 'route').join(','),
    getHeaderValues(req, 'proxy-require').join(','),
    getHeaderValues(req, 'proxy-authorization').join(','),
  ]) {
    h.update(part);
    h.update('\0');
  }
  return h.digest('base64url').slice(0, 10);
}

/**
 * §16.3 step 4: true when a Via this server inserted (its sent-by is ours) carries
 * a branch made from `hash`, i.e. the same request already passed through here.
 */
export function detectLoop(req: SipRequest, hash: string, isOurs: (host: string, port?: number) => boolean): boolean {
  const prefix = `${MAGIC_COOKIE}${hash}.`;
  for (const v of getHeaderValues(req, 'via')) {
    if (!v.includes(prefix)) continue;
    try {
      const via = parseVia(v);
      if (via.params.branch?.startsWith(prefix) && isOurs(via.host, via.port)) return true;
    } catch {
      continue;
    }
  }
  return false;
}
