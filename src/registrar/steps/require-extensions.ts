import { getHeaderValues, type SipRequest } from '../../sip/message.js';
import type { RegisterContext, RegisterReply } from './register-context.js';

/** Option tags this server implements as registrar and UAS (RFC 3327 path, RFC 5626 outbound, RFC 5627 gruu). */
export const SUPPORTED_EXTENSIONS = ['path', 'outbound', 'gruu'];

/** The option tags of a request's Require that this server does not support (RFC 3261 §8.2.2.3). */
export function unsupportedExtensions(req: SipRequest): string[] {
  return getHeaderValues(req, 'require').filter((o) => !SUPPORTED_EXTENSIONS.includes(o.toLowerCase()));
}

/** §10.3 step 2: a Require with an extension we do not support gets 420 Bad Extension listing it in Unsupported (§8.2.2.3). */
export function requireExtensions(ctx: RegisterContext): RegisterReply | undefined {
  const unsupported = unsupportedExtensions(ctx.req);
  if (unsupported.length) return { status: 420, reason: 'Bad Extension', headers: [{ name: 'Unsupported', value: unsupported.join(', ') }] };
  return undefined;
}
