import type { SipHeader, SipRequest } from '../sip/message.js';
import { createResponse } from '../sip/response.js';
import { SipError } from '../sip/errors.js';
import { isChallenge, type ServerTransaction } from '../transaction/server-transaction.js';
import { newRegisterContext, type RegisterContext, type RegistrarOptions } from './steps/register-context.js';
import { REGISTER_STEPS } from './steps/index.js';

export type { RegistrarOptions } from './steps/register-context.js';

/**
 * Returns the REGISTER handler (RFC 3261 §10.3): runs the steps of
 * {@link REGISTER_STEPS} in order until one answers. In short: digest
 * authentication (401), the authenticated user must own the To AOR (403),
 * `Contact: *` with `Expires: 0` removes every binding, each contact gets its
 * expiry from its `expires` parameter, the Expires header or the default,
 * Call-ID/CSeq ordering is enforced (500 for an out-of-order REGISTER, step
 * 6), and the 200 lists every current binding with its remaining expiry and a
 * Date header. A SipError thrown by a step (malformed header) is answered
 * with its status; anything else with 500.
 *
 * The handler answers before it returns when no step had to wait (a
 * challenge, a refusal), and returns a promise only from the first step that
 * did (the store commit, a directory lookup): no promise and no turn of the
 * event loop for the steps that answer at once.
 */
export function createRegistrar(opts: RegistrarOptions): (req: SipRequest, st: ServerTransaction) => void | Promise<void> {
  const log = opts.logger.child({ component: 'registrar' });
  const nowS = opts.nowS ?? (() => Math.floor(Date.now() / 1000));
  return (req, st) => runSteps(newRegisterContext(req, st, opts, log, nowS()), 0);
}

/** Run the steps from index `from` until one answers; a promise once a step returned one. */
function runSteps(ctx: RegisterContext, from: number): void | Promise<void> {
  try {
    for (let i = from; i < REGISTER_STEPS.length; i++) {
      const result = REGISTER_STEPS[i](ctx);
      if (result instanceof Promise) {
        return result.then(
          (answer) => (answer ? reply(ctx, answer.status, answer.reason, answer.headers) : runSteps(ctx, i + 1)),
          (err: unknown) => failed(ctx, err),
        );
      }
      if (result) return reply(ctx, result.status, result.reason, result.headers);
    }
  } catch (err) {
    return failed(ctx, err);
  }
}

/** Answer a step's SipError with its status, anything else with 500 (logged). */
function failed(ctx: RegisterContext, err: unknown): void {
  if (err instanceof SipError) return reply(ctx, err.status, err.reason, [...err.headers]);
  ctx.log.error({ err }, 'REGISTER failed');
  reply(ctx, 500, 'Server Internal Error');
}

/** Send the answer; a 401 challenge statelessly (RFC 3261 §8.2.7: nothing is held for it, see ServerTransaction.respondStateless). */
function reply(ctx: RegisterContext, status: number, reason: string, headers: SipHeader[] = []): void {
  const { st } = ctx;
  if (isChallenge(status)) return st.respondStateless(createResponse(ctx.req, status, { reason, headers, toTag: st.challengeTag }));
  st.respond(createResponse(ctx.req, status, { reason, headers, toTag: status > 100 ? 'reg' + Date.now().toString(36) : undefined }));
}
