import { CONTINUE, forwardTo, reply, type RequestContext, type RequestProcessor } from '../request-context.js';

/**
 * Responsibility (RFC 3261 §16.5: "if the domain of the Request-URI is one
 * for which the element is responsible"): a Request-URI that is an AOR of
 * ours goes on to the location lookup. One in a served domain that names no
 * user gets 404. One in another domain is forwarded as it is, for
 * authenticated local senders only (403 Relaying denied otherwise).
 */
export const responsibility: RequestProcessor = {
  name: 'responsibility',
  process(ctx: RequestContext) {
    if (ctx.aor) return CONTINUE;
    if (ctx.env.domains.isLocal(ctx.ruri.host)) return reply(404, 'Not Found');
    if (!ctx.fromLocal) return reply(403, 'Relaying denied');
    return forwardTo({ uri: ctx.req.uri });
  },
};
