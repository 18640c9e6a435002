import { createResponse } from '../../sip/response.js';
import { CONTINUE, localTag, reply, type RequestContext, type RequestProcessor } from '../request-context.js';

/**
 * CANCEL (RFC 3261 §16.10): a CANCEL that matches no INVITE server transaction
 * gets 481; else 200 at once, then every pending branch of the INVITE's
 * response context is cancelled (their 487s become its final answer), or,
 * before any branch was forwarded, the INVITE itself gets 487 Request
 * Terminated. The CANCEL itself is never forwarded.
 */
export const cancel: RequestProcessor = {
  name: 'cancel',
  process(ctx: RequestContext) {
    if (ctx.req.method !== 'CANCEL') return CONTINUE;
    const invite = ctx.env.findInviteFor(ctx.req);
    if (!invite) return reply(481, 'Call/Transaction Does Not Exist');
    ctx.respond(200, 'OK');
    if (invite === 'final') return { kind: 'handled' }; // §9.2: the final response was sent, the CANCEL changes nothing
    (invite as { cancelled?: boolean }).cancelled = true;
    const rc = ctx.env.responseContextOf(invite);
    if (rc) rc.cancel();
    else if (!invite.finalSent) invite.respond(createResponse(invite.request, 487, { reason: 'Request Terminated', toTag: localTag(invite.request) }));
    return { kind: 'handled' };
  },
};
