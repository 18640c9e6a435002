import { CONTINUE, reply, type Outcome, type RequestContext, type RequestProcessor, type Verdict } from '../request-context.js';
import type { AuthOutcome } from '../../auth/request-authenticator.js';

/**
 * Authentication of a request routed onwards by its Route or Request-URI
 * (no open relay): senders of other domains get 403 Relaying denied; local
 * senders are challenged (407, RFC 3261 §22.3). Undefined when the sender
 * authenticated; else the outcome to answer with.
 */
export async function authenticateRelay(ctx: RequestContext): Promise<Outcome | undefined> {
  if (!ctx.fromLocal) return reply(403, 'Relaying denied');
  const outcome = await ctx.env.authenticate(ctx.req, 'proxy', ctx.source);
  if (!outcome.ok) return reply(outcome.status, outcome.reason, outcome.headers);
  ctx.username = outcome.username;
  return undefined;
}

/**
 * Authentication (RFC 3261 §16.3 step 6 Proxy-Authorization, §22.3): an
 * out-of-dialog request whose From is in a served domain must carry
 * credentials of that From user: 407 with a challenge when missing or wrong,
 * 403 when the authenticated user is not the From user. The user name is
 * kept in the context for call admission. Requests from other domains and
 * in-dialog requests (To tag) go on unauthenticated; scanners that put the
 * target's address in From are challenged before any lookup.
 */
export const authentication: RequestProcessor = {
  name: 'authentication',
  process(ctx: RequestContext) {
    if (!ctx.fromLocal || ctx.toTag) return CONTINUE;
    const outcome = ctx.env.authenticate(ctx.req, 'proxy', ctx.source);
    return outcome instanceof Promise ? outcome.then((o) => fromUser(ctx, o)) : fromUser(ctx, outcome);
  },
};

/** The verdict once authenticated: the challenge or refusal, 403 when the From user is not the authenticated one. */
function fromUser(ctx: RequestContext, outcome: AuthOutcome): Verdict {
  if (!outcome.ok) return reply(outcome.status, outcome.reason, outcome.headers);
  if (ctx.fromUri?.user !== outcome.username) return reply(403, 'Forbidden: From does not match the authenticated user');
  ctx.username = outcome.username;
  return CONTINUE;
}
