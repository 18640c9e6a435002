import { CONTINUE, forwardTo, reply, type RequestContext, type RequestProcessor } from '../request-context.js';
import { authenticateRelay } from './authentication.js';

/**
 * Routing by Route and recorded routes (RFC 3261 §16.4, §12.2; RFC 5626
 * §5.3): a request that still has a Route, whose Request-URI is a registered
 * contact, whose own Route entry carried a flow token, or that is in a dialog
 * (To tag) towards something other than an AOR of ours goes where it points,
 * as one target. It passes unauthenticated only along a route this proxy
 * recorded (in a dialog, an own Route entry was removed) or to a registered
 * contact; anything else must come from an authenticated local user
 * (no open relay). An in-dialog request to an AOR of ours
 * (`sip:bob@127.0.0.1`) is looked up like any other.
 *
 * A request outside a dialog whose last own Route entry named a flow that is
 * gone, with no Route left, gets 430 Flow Failed once it passed the relay
 * check (RFC 5626 §5.3): it came through a Path this node added for a binding
 * over that flow (another node of a shared store, or an edge proxy's
 * registrar), and the UA behind it can only be reached over that flow. The
 * sender tries the UA's other flows or waits for it to register again. In a
 * dialog such a request goes on to its Request-URI, the remote target, as
 * before.
 */
export const recordedRoute: RequestProcessor = {
  name: 'recorded-route',
  async process(ctx: RequestContext) {
    const { req, flow } = ctx;
    const hasRoute = ctx.hasRoute;
    const found = hasRoute ? undefined : ctx.env.location.findByContact(req.uri);
    const binding = found instanceof Promise ? await found : found;
    if (!(hasRoute || binding || flow || (ctx.toTag && !ctx.aor))) return CONTINUE;
    const recorded = !!ctx.toTag && ctx.removedRoutes > 0;
    if (!recorded && !binding) {
      const refused = await authenticateRelay(ctx);
      if (refused) return refused;
    }
    if (flow && !hasRoute && !ctx.toTag && !ctx.env.flowAlive(flow)) return reply(430, 'Flow Failed');
    return forwardTo({ uri: req.uri, binding, flow });
  },
};
