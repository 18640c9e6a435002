import type { ProxyEnv } from '../request-context.js';
import { CONTINUE, ownPathEntry, reply, type RequestContext, type RequestProcessor } from '../request-context.js';
import { targetGroups, type Target } from '../target-set.js';
import type { BindingRecord } from '../../store/index.js';
import type { Awaitable } from '../../auth/user-source.js';

/**
 * The target groups of an AOR from the location service (§16.5), highest q
 * first; empty without bindings. At once when the bindings are in memory, a
 * promise when they are read through the store (rejecting with SipError 503).
 */
export function bindingTargets(env: ProxyEnv, aor: string): Awaitable<Target[][]> {
  const got = env.location.read(aor);
  return got instanceof Promise ? got.then((bindings) => targetsOfBindings(env, bindings)) : targetsOfBindings(env, got);
}

/** Target groups of some bindings (target-set.ts: by q, an Outbound instance once), one target per binding. */
export function targetsOfBindings(env: ProxyEnv, bindings: BindingRecord[]): Target[][] {
  const judgedHere = (b: BindingRecord) => b.path.length === 0 || ownPathEntry(env, b) !== undefined;
  return targetGroups(bindings, env.flowAlive, judgedHere).map((g) => g.map((b) => ({ uri: b.contactUri, binding: b })));
}

/**
 * Location lookup (RFC 3261 §16.5, §10.2): the target set of the AOR the
 * Request-URI names, from its bindings (target-set.ts: by q, Outbound flows
 * once per instance). An unknown user gets 404; a known user without
 * bindings 480 Temporarily Unavailable, but only for authenticated local
 * senders: others get the same 404 as for an unknown user (no user
 * enumeration).
 */
export const locationLookup: RequestProcessor = {
  name: 'location-lookup',
  async process(ctx: RequestContext) {
    const aor = ctx.aor;
    if (!aor) return CONTINUE;
    const domain = aor.slice(aor.lastIndexOf('@') + 1);
    if (!(await ctx.env.userExists(ctx.ruri.user!, domain))) return reply(404, 'Not Found');
    const found = bindingTargets(ctx.env, aor);
    const targets = found instanceof Promise ? await found : found;
    if (targets.length === 0) return ctx.fromLocal ? reply(480, 'Temporarily Unavailable') : reply(404, 'Not Found');
    return { kind: 'forward', targets };
  },
};
