import { getHeader } from '../../sip/message.js';
import { parseNameAddr } from '../../sip/headers.js';
import { parseUri } from '../../sip/uri.js';
import type { RegisterContext, RegisterReply } from './register-context.js';

/**
 * §10.3 step 5: the AOR is the To URI, which must be a SIP or SIPS URI (400,
 * RFC 4475 §3.3.4) naming a user of a served domain (404). A port in it means
 * nothing. Done before authentication, so a malformed REGISTER gets its 400
 * without a challenge.
 */
export function addressOfRecord(ctx: RegisterContext): RegisterReply | undefined {
  const to = parseNameAddr(getHeader(ctx.req, 'to') ?? '');
  if (!/^sips?:/i.test(to.uri)) return { status: 400, reason: 'Bad Request: To is not a SIP or SIPS URI' };
  const aor = ctx.opts.domains.aorOf(parseUri(to.uri), true);
  if (!aor) return { status: 404, reason: 'Not Found' };
  ctx.aor = aor;
  return undefined;
}
