import { unsupportedExtensions } from '../../registrar/steps/require-extensions.js';
import { CONTINUE, reply, type Outcome, type RequestContext, type RequestProcessor } from '../request-context.js';

/** Methods this server proxies or answers (sent in Allow). */
export const ALLOWED_METHODS = ['INVITE', 'ACK', 'BYE', 'CANCEL', 'OPTIONS', 'MESSAGE', 'INFO', 'UPDATE', 'REFER', 'NOTIFY', 'SUBSCRIBE', 'PRACK', 'REGISTER'];

const HANDLED: Outcome = { kind: 'handled' };
/** The outcome once the registrar answered (one function and one object for every REGISTER). */
const handled = (): Outcome => HANDLED;

/**
 * Local handling (RFC 3261 §16.4 end: no Route is left and the Request-URI
 * names this server itself): the server is the UAS. A REGISTER to a served
 * domain goes to the registrar (§10.3); other requests first get 420 Bad
 * Extension for a Require this server does not support (§8.2.2.3); OPTIONS
 * gets 200 with Allow, Accept and Accept-Language (§11.2); anything else 404.
 */
export const localHandling: RequestProcessor = {
  name: 'local-handling',
  process(ctx: RequestContext) {
    const { req } = ctx;
    if (ctx.hasRoute) return CONTINUE;
    const ruri = ctx.ruri;
    const addressedToUs = !ruri.user && ctx.isUs(ruri);
    if (!(addressedToUs || req.method === 'REGISTER') || !ctx.env.domains.isLocal(ruri.host)) return CONTINUE;
    if (req.method === 'REGISTER') {
      const done = ctx.env.register(req, ctx.transaction);
      return done instanceof Promise ? done.then(handled) : HANDLED;
    }
    const unsupported = unsupportedExtensions(req);
    if (unsupported.length) return reply(420, 'Bad Extension', [{ name: 'Unsupported', value: unsupported.join(', ') }]);
    if (req.method === 'OPTIONS') {
      return reply(200, 'OK', [
        { name: 'Allow', value: ALLOWED_METHODS.join(', ') },
        { name: 'Accept', value: 'application/sdp' },
        { name: 'Accept-Language', value: 'en' },
      ]);
    }
    return reply(404, 'Not Found');
  },
};
