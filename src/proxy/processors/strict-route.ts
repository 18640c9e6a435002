import { getHeaderValues, prependHeader } from '../../sip/message.js';
import { parseNameAddr } from '../../sip/headers.js';
import type { SipUri } from '../../sip/uri.js';
import { CONTINUE, type RequestContext, type RequestProcessor } from '../request-context.js';

/**
 * Strict-route fix-up (RFC 3261 §16.4): a Request-URI that is a URI this
 * proxy put in a Record-Route (our host and port, `lr`, no user part) means
 * the previous hop was a strict router: the last Route value becomes the
 * Request-URI again and is removed from Route. A malformed Request-URI is left
 * for later processors to refuse.
 */
export const strictRoute: RequestProcessor = {
  name: 'strict-route',
  process(ctx: RequestContext) {
    let ruri: SipUri;
    try {
      ruri = ctx.ruri;
    } catch {
      return CONTINUE;
    }
    if (ruri.user || !('lr' in ruri.params) || !ctx.isUs(ruri)) return CONTINUE;
    const req = ctx.req;
    const routes = getHeaderValues(req, 'route');
    if (!routes.length) return CONTINUE;
    req.uri = parseNameAddr(routes[routes.length - 1]).uri;
    const kept = routes.slice(0, -1);
    req.headers = req.headers.filter((h) => h.name.toLowerCase() !== 'route');
    for (const r of kept.reverse()) prependHeader(req, 'Route', r);
    return CONTINUE;
  },
};
