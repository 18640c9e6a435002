import { getHeaderValues, nameIs, type SipRequest } from '../../sip/message.js';
import { parseVia } from '../../sip/headers.js';
import { MAGIC_COOKIE } from '../../sip/branch.js';
import { CONTINUE, reply, type RequestContext, type RequestProcessor } from '../request-context.js';

export { loopHash } from '../loop-hash.js';

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

/** A branch this server may have made: the magic cookie, a 10-character loop hash and a dot (branch.ts). */
const HASHED_BRANCH = new RegExp(`branch=${MAGIC_COOKIE}[A-Za-z0-9_-]{10}\\.`, 'i');

/**
 * True when a Via field holds a branch of our shape. The pattern has no comma, so a match in a field
 * is a match in one of its via-parms: the fields are not split (this runs for every request).
 */
function hasHashedBranch(req: SipRequest): boolean {
  for (const h of req.headers) if (nameIs(h.name, 'via') && HASHED_BRANCH.test(h.value)) return true;
  return false;
}

/**
 * Loop detection (RFC 3261 §16.3 step 4): notes the parts of the request as
 * received that later processors may change, so the context's loop hash
 * (every branch's Via carries it, §16.6 step 8) is that of the request as
 * received whenever it is first needed, and answers 482 Loop Detected when
 * one of our own Vias already carries it. The hash is computed here only when
 * a Via has a branch of our shape: a request handled here (REGISTER, OPTIONS)
 * or refused before forwarding never needs it.
 */
export const loopDetection: RequestProcessor = {
  name: 'loop-detection',
  process(ctx: RequestContext) {
    ctx.noteLoopHashInputs();
    if (!hasHashedBranch(ctx.req)) return CONTINUE;
    if (detectLoop(ctx.req, ctx.loopHash, ctx.env.isOurSentBy)) return reply(482, 'Loop Detected');
    return CONTINUE;
  },
};
