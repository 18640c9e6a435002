import { CONTINUE, reply, type RequestContext, type RequestProcessor } from '../request-context.js';

/** Methods that go on at Max-Forwards zero: this server may answer them itself. */
const AT_ZERO = new Set(['OPTIONS', 'REGISTER', 'CANCEL']);

/**
 * Max-Forwards (RFC 3261 §16.3 step 3): a request whose Max-Forwards is zero
 * must not be forwarded: 483 Too Many Hops. OPTIONS and REGISTER go on, as
 * this server may be their final recipient (§11, §10.3: local-handling answers
 * them); should one of them still be forwarded, forwarding answers 483. A
 * CANCEL goes on too: it is answered here and never forwarded (§16.10).
 * A missing Max-Forwards counts as 70.
 */
export const maxForwards: RequestProcessor = {
  name: 'max-forwards',
  process(ctx: RequestContext) {
    if (!(ctx.maxForwards <= 0)) return CONTINUE;
    if (AT_ZERO.has(ctx.req.method)) return CONTINUE;
    return reply(483, 'Too Many Hops');
  },
};
