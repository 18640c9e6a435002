import { createHash } from 'node:crypto';
import { getHeader, getHeaderValues, type SipRequest } from '../../sip/message.js';
import { parseVia } from '../../sip/headers.js';
import { MAGIC_COOKIE } from '../../sip/branch.js';
import { CONTINUE, reply, type RequestContext, type RequestProcessor } from '../request-context.js';

/**
 * The loop-detection hash of RFC 3261 §16.6 step 8: over the Request-URI as
 * received, the From and To tags, Call-ID, CSeq number, Route,
 * Proxy-Require and Proxy-Authorization. 10 characters of base64url
 * SHA-1. A request that comes back with the same values has looped; one
 * whose Request-URI changed (retargeted) is a spiral.
 */
export function loopHash(req: SipRequest, fromTag: string | undefined, toTag: string | undefined): string {
  const h = createHash('sha1');
  for (const part of [
    req.uri,
    fromTag ?? '',
    toTag ?? '',
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

/**
 * Loop detection (RFC 3261 §16.3 step 4): computes the request's loop hash
 * (kept in the context: every branch's Via carries it, §16.6 step 8) and
 * answers 482 Loop Detected when one of our own Vias already carries it.
 */
export const loopDetection: RequestProcessor = {
  name: 'loop-detection',
  process(ctx: RequestContext) {
    ctx.loopHash = loopHash(ctx.req, ctx.fromTag, ctx.toTag);
    if (detectLoop(ctx.req, ctx.loopHash, ctx.env.isOurSentBy)) return reply(482, 'Loop Detected');
    return CONTINUE;
  },
};
