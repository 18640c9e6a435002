import type { AuthOutcome } from '../../auth/request-authenticator.js';
import type { RegisterContext, RegisterReply } from './register-context.js';

/**
 * §10.3 steps 3 and 4: the sender is authenticated (401 with a digest
 * challenge, or a verified client certificate), and the authenticated user
 * must own the AOR (403 otherwise: one user may not register another's AOR).
 */
export function authorization(ctx: RegisterContext): RegisterReply | undefined | Promise<RegisterReply | undefined> {
  const outcome = ctx.opts.authenticate(ctx.req, 'www', ctx.st.source);
  // A promise only while the credentials are looked up elsewhere: most REGISTERs go on at once.
  return outcome instanceof Promise ? outcome.then((o) => owner(ctx, o)) : owner(ctx, outcome);
}

/** The reply for a failed authentication, 403 when the user is not the AOR's, else nothing (go on). */
function owner(ctx: RegisterContext, outcome: AuthOutcome): RegisterReply | undefined {
  if (!outcome.ok) return { status: outcome.status, reason: outcome.reason, headers: outcome.headers };
  const userOfAor = ctx.aor.slice(4, ctx.aor.lastIndexOf('@'));
  if (outcome.username !== userOfAor) {
    ctx.log.info({ user: outcome.username, aor: ctx.aor }, 'REGISTER for an AOR the user does not own');
    return { status: 403, reason: 'Forbidden' };
  }
  return undefined;
}
