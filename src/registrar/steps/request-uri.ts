import { requestUri } from '../../sip/parsed-headers.js';
import type { RegisterContext, RegisterReply } from './register-context.js';

/**
 * §10.3 step 1: the Request-URI must name a domain this registrar serves,
 * else 404 (this server does not proxy REGISTERs to other domains).
 */
export function requestUriDomain(ctx: RegisterContext): RegisterReply | undefined {
  if (!ctx.opts.domains.isLocal(requestUri(ctx.req).host)) return { status: 404, reason: 'Not Found: domain not served here' };
  return undefined;
}
