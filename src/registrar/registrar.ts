import type { SipHeader, SipRequest } from '../sip/message.js';
import { createResponse } from '../sip/response.js';
import { SipError } from '../sip/errors.js';
import type { ServerTransaction } from '../transaction/server-transaction.js';
import { newRegisterContext, type RegistrarOptions } from './steps/register-context.js';
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
 */
export function createRegistrar(opts: RegistrarOptions): (req: SipRequest, st: ServerTransaction) => Promise<void> {
  const log = opts.logger.child({ component: 'registrar' });
  const nowS = opts.nowS ?? (() => Math.floor(Date.now() / 1000));

  return async (req, st) => {
    const reply = (status: number, reason: string, headers: SipHeader[] = []) =>
      st.respond(createResponse(req, status, { reason, headers, toTag: status > 100 ? 'reg' + Date.now().toString(36) : undefined }));
    const ctx = newRegisterContext(req, st, opts, log, nowS());
    try {
      for (const step of REGISTER_STEPS) {
        // Most steps answer at once: only a promise is awaited (an await costs a promise and a turn).
        const result = step(ctx);
        const answer = result instanceof Promise ? await result : result;
        if (answer) return reply(answer.status, answer.reason, answer.headers);
      }
    } catch (err) {
      if (err instanceof SipError) return reply(err.status, err.reason, [...err.headers]);
      log.error({ err }, 'REGISTER failed');
      reply(500, 'Server Internal Error');
    }
  };
}
