import { CONTINUE, reply, type RequestContext, type RequestProcessor } from '../request-context.js';

/**
 * Call admission: a new INVITE of an authenticated local user passes the
 * per-user call policy (concurrent calls, attempts per minute;
 * security/call-limits); a refusal is answered with the policy's response.
 */
export const callAdmission: RequestProcessor = {
  name: 'call-admission',
  process(ctx: RequestContext) {
    if (ctx.req.method !== 'INVITE' || !ctx.username || !ctx.env.admitCall) return CONTINUE;
    const refusal = ctx.env.admitCall(ctx.username, ctx.transaction);
    return refusal ? reply(refusal.status, refusal.reason, refusal.headers) : CONTINUE;
  },
};
