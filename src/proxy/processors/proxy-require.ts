import { getHeaderValues } from '../../sip/message.js';
import { CONTINUE, reply, type RequestContext, type RequestProcessor } from '../request-context.js';

/**
 * Proxy-Require (RFC 3261 §16.3 step 5): this proxy supports no proxy
 * extension, so any option tag in Proxy-Require gets 420 Bad Extension with
 * the tags listed in Unsupported.
 */
export const proxyRequire: RequestProcessor = {
  name: 'proxy-require',
  process(ctx: RequestContext) {
    const tags = getHeaderValues(ctx.req, 'proxy-require');
    if (tags.length) return reply(420, 'Bad Extension', [{ name: 'Unsupported', value: tags.join(', ') }]);
    return CONTINUE;
  },
};
