import { getHeader, getHeaderValues } from '../../sip/message.js';
import { cseqOf } from '../../sip/parsed-headers.js';
import { SipError } from '../../sip/errors.js';
import type { RegisterContext, RegisterReply } from './register-context.js';

/** delta-seconds (RFC 3261 §20.19): 1*DIGIT; larger than 2**32-1 is taken as that. @throws SipError 400 otherwise. */
export function parseExpiresS(v: string): number {
  const s = v.trim();
  if (!/^\d{1,10}$/.test(s)) throw new SipError(400, 'Bad Request: malformed expires');
  return Math.min(Number(s), 2 ** 32 - 1);
}

/**
 * §10.3 step 6 (reading): the Call-ID and CSeq number that order REGISTERs,
 * the Contact values, the Expires header (400 when malformed) and the
 * Supported option tags, read once for the steps that follow.
 */
export function registerHeaders(ctx: RegisterContext): RegisterReply | undefined {
  const { req } = ctx;
  ctx.callId = getHeader(req, 'call-id') ?? '';
  ctx.cseq = cseqOf(req).seq;
  ctx.contacts = getHeaderValues(req, 'contact');
  const expires = getHeader(req, 'expires');
  ctx.headerExpiresS = expires !== undefined ? parseExpiresS(expires) : undefined;
  ctx.supported = getHeaderValues(req, 'supported').map((v) => v.toLowerCase());
  return undefined;
}
