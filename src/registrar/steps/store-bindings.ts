import { StoreError } from '../../store/errors.js';
import type { RegisterContext, RegisterReply } from './register-context.js';

/**
 * §10.3 step 7, the limit: the AOR may hold at most `maxBindingsPerAor`
 * bindings after the changes; a REGISTER that would exceed it gets 403 and
 * changes nothing.
 */
export function bindingLimit(ctx: RegisterContext): RegisterReply | undefined {
  const after = new Set(ctx.existing.map((b) => b.contactUri));
  for (const c of ctx.changes) {
    if (c.record) after.add(c.contactUri);
    else after.delete(c.contactUri);
  }
  if (after.size > ctx.opts.maxBindingsPerAor) return { status: 403, reason: 'Forbidden: too many bindings' };
  return undefined;
}

/**
 * §10.3 step 7, the update: every change is applied to the location service
 * and the step waits until they are committed to the store, so the 200 is
 * sent only for bindings a restart keeps. A store that cannot be reached
 * (StoreError with retryAfterS) gives 503 with Retry-After (RFC 3261
 * §21.5.4); any other failed write 500.
 */
export async function storeBindings(ctx: RegisterContext): Promise<RegisterReply | undefined> {
  const { location } = ctx.opts;
  for (const c of ctx.changes) {
    if (c.record) location.put(c.record);
    else location.remove(ctx.aor, c.contactUri);
  }
  try {
    await location.committed();
  } catch (err) {
    // The store could not be written (a shared store down or failing over): the client registers again later.
    const retryAfterS = err instanceof StoreError ? err.retryAfterS : undefined;
    if (retryAfterS !== undefined) return { status: 503, reason: 'Service Unavailable: store unavailable', headers: [{ name: 'Retry-After', value: String(retryAfterS) }] };
    return { status: 500, reason: 'Server Internal Error: store not written' };
  }
  if (ctx.changes.length && ctx.log.isLevelEnabled('debug')) {
    const { source } = ctx.st;
    ctx.log.debug({ aor: ctx.aor, contacts: ctx.changes.map((c) => c.contactUri), source: `${source.transport}:${source.remoteAddress}:${source.remotePort}` }, 'bindings updated');
  }
  return undefined;
}
