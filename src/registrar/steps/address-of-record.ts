import { toHeader, toUri } from '../../sip/parsed-headers.js';
import type { RegisterContext, RegisterReply } from './register-context.js';

/**
 * §10.3 step 5: the AOR is the To URI, which must be a SIP or SIPS URI (400,
 * RFC 4475 §3.3.4) naming a user of a served domain (404). A port in it means
 * nothing. Done before authentication, so a malformed REGISTER gets its 400
 * without a challenge.
 */
export function addressOfRecord(ctx: RegisterContext): RegisterReply | undefined {
  const to = toHeader(ctx.req);
  if (!isSipUriText(to.uri)) return { status: 400, reason: 'Bad Request: To is not a SIP or SIPS URI' };
  const aor = ctx.opts.domains.aorOf(toUri(ctx.req), true);
  if (!aor) return { status: 404, reason: 'Not Found' };
  ctx.aor = aor;
  return undefined;
}

/** True when a URI's text starts `sip:` or `sips:` (scheme case-insensitive). */
function isSipUriText(uri: string): boolean {
  const colon = uri.indexOf(':');
  if (colon !== 3 && colon !== 4) return false;
  const s = uri.charCodeAt(0) | 0x20;
  const i = uri.charCodeAt(1) | 0x20;
  const p = uri.charCodeAt(2) | 0x20;
  return s === 0x73 && i === 0x69 && p === 0x70 && (colon === 3 || (uri.charCodeAt(3) | 0x20) === 0x73);
}
