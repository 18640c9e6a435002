import { CONTINUE, reply, type RequestContext, type RequestProcessor } from '../request-context.js';

/**
 * Call admission: a new INVITE of an authenticated local user passes the
 * per-user call policy (concurrent calls, attempts per minute;
 * security/call-limits); a refusal is answered with the policy's response.
 * The policy may answer later (a promise: with several SIP workers, the
 * worker counting the user's calls is asked; with a Redis store, the limits
 * counted across nodes).
 */
export const callAdmission: RequestProcessor = {
  name: 'call-admission',
  process(ctx: RequestContext) {
    if (ctx.req.method !== 'INVITE' || !ctx.username || !ctx.env.admitCall) return CONTINUE;
    const refusal = ctx.env.admitCall(ctx.username, ctx.transaction);
    if (refusal instanceof Promise) return refusal.then((r) => (r ? reply(r.status, r.reason, r.headers) : CONTINUE));
    return refusal ? reply(refusal.status, refusal.reason, refusal.headers) : CONTINUE;
  },
};
