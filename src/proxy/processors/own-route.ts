import { getHeaderValues, removeFirstValue } from '../../sip/message.js';
import { parseNameAddr } from '../../sip/headers.js';
import { parseUri, type SipUri } from '../../sip/uri.js';
import { decodeFlowToken, looksLikeFlowToken } from '../flow-token.js';
import { CONTINUE, reply, type RequestContext, type RequestProcessor } from '../request-context.js';

/** At most this many own Route entries are removed from one request (two after double Record-Route). */
const MAX_OWN_ROUTES = 4;

/**
 * Own-route removal (RFC 3261 §16.4): every top Route entry that names this
 * server (one, or two after double Record-Route, RFC 5658) is removed. The
 * context records how many were removed and the flow named by the flow token
 * (RFC 5626 §5.2) of the last one, when it carried a valid one.
 *
 * Answers 403 when an own entry carries a user part in the shape of a flow
 * token whose MAC does not verify (a token changed on the way, or made under
 * another secret: RFC 5626 §5.3 "tampered with"). Other user parts are
 * ignored.
 */
export const ownRoute: RequestProcessor = {
  name: 'own-route',
  process(ctx: RequestContext) {
    for (let i = 0; i < MAX_OWN_ROUTES; i++) {
      const top = getHeaderValues(ctx.req, 'route')[0];
      if (!top) break;
      let uri: SipUri;
      try {
        uri = parseUri(parseNameAddr(top).uri);
      } catch {
        break;
      }
      if (!ctx.isUs(uri)) break;
      ctx.flow = uri.user ? decodeFlowToken(uri.user, ctx.env.flowTokenSecret) : undefined;
      if (!ctx.flow && uri.user && looksLikeFlowToken(uri.user)) return reply(403, 'Forbidden: invalid flow token');
      removeFirstValue(ctx.req, 'route');
      ctx.removedRoutes++;
    }
    return CONTINUE;
  },
};
