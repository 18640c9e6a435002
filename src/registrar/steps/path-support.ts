import { getHeader } from '../../sip/message.js';
import type { RegisterContext, RegisterReply } from './register-context.js';

/**
 * RFC 3327 §5.3 (Path at the registrar): a REGISTER that carries Path from a
 * UA that did not list `path` in Supported is refused with 420 Bad Extension
 * and `Unsupported: path`, storing nothing: the UA would not learn the route
 * its registration took, and the registrar does not route through proxies the
 * UA cannot know of. With `path` in Supported the Path is stored as the
 * binding's route set and echoed in the 200 (bindings-response).
 */
export function pathSupport(ctx: RegisterContext): RegisterReply | undefined {
  if (getHeader(ctx.req, 'path') === undefined || ctx.supported.includes('path')) return undefined;
  return { status: 420, reason: 'Bad Extension', headers: [{ name: 'Unsupported', value: 'path' }] };
}
