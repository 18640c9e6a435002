import type { RegisterContext, RegisterReply } from './register-context.js';

/**
 * §10.3 step 6, before the contacts are looked at: the AOR's current
 * bindings, at once when the location service holds them, else read through
 * the shared store (one Redis read on a cache miss; a store that cannot be
 * reached rejects with SipError 503 and Retry-After). The later steps compare
 * the contacts against them (ordering, Outbound flows, the binding limit).
 */
export function currentBindings(ctx: RegisterContext): undefined | Promise<RegisterReply | undefined> {
  const got = ctx.opts.location.read(ctx.aor);
  if (!(got instanceof Promise)) {
    ctx.existing = got;
    return undefined;
  }
  return got.then((bindings) => {
    ctx.existing = bindings;
    return undefined;
  });
}
