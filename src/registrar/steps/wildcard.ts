import type { RegisterContext, RegisterReply } from './register-context.js';
import { dateHeader } from './bindings-response.js';

/**
 * §10.3 step 6, `Contact: *`: allowed only alone and with `Expires: 0` (400
 * otherwise); removes every binding of the AOR unless the Call-ID and CSeq
 * show an out-of-order request (500), and answers 200 once stored.
 */
export function wildcardContact(ctx: RegisterContext): RegisterReply | undefined | Promise<RegisterReply | undefined> {
  if (!ctx.contacts.some(isWildcard)) return undefined;
  return removeAll(ctx);
}

/** `*` (RFC 3261 §10.2.2), with or without surrounding LWS. */
function isWildcard(contact: string): boolean {
  return contact.trim() === '*';
}

async function removeAll(ctx: RegisterContext): Promise<RegisterReply | undefined> {
  const { contacts, opts, aor } = ctx;
  if (contacts.length !== 1) return { status: 400, reason: 'Bad Request: Contact * mixed with other contacts' };
  if (ctx.headerExpiresS !== 0) return { status: 400, reason: 'Bad Request: Contact * requires Expires: 0' };
  for (const b of ctx.existing) {
    if (b.callId === ctx.callId && ctx.cseq <= b.cseq) return { status: 500, reason: 'Server Internal Error: out-of-order REGISTER' };
  }
  const n = opts.location.removeAll(aor);
  await opts.location.committed();
  ctx.log.info({ aor, removed: n }, 'all bindings removed');
  return { status: 200, reason: 'OK', headers: [dateHeader(ctx.nowS)] };
}
