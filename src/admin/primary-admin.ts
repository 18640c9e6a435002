/**
 * The admin API of an instance with several SIP workers, in the primary
 * (which holds the admin listener but no location service):
 *
 * - registrations are listed from the store (every worker commits there
 *   before answering a REGISTER, so the store is the whole truth);
 * - a binding removal is committed to the store, then every worker is told
 *   to read that AOR again ({@link LOCATION_RELOAD_OP}), so none keeps routing
 *   to a removed contact;
 * - `reload` runs in the primary (TURN certificates, log level) and in every
 *   worker ({@link RELOAD_OP}).
 *
 * {@link workerAdminHandlers} is the worker side (for `answerControl`).
 */
import type { Registry } from 'prom-client';
import type { BindingRecord, BindingStore } from '../store/index.js';
import { metricsHandlers } from './cluster-metrics.js';
import type { AdminContext } from './admin-server.js';
import type { ControlHandlers, WorkerAnswer, WorkerControl } from './worker-control.js';

/** Workers read these AORs again from the store (`{ aors: string[] }` → how many). */
export const LOCATION_RELOAD_OP = 'location.reload';
/** Workers reload what can change without a restart (→ what they reloaded, string[]). */
export const RELOAD_OP = 'reload';
/** How long the primary waits for every worker's answer to an admin operation, ms. */
export const ADMIN_WORKER_TIMEOUT_MS = 5000;
/** AORs one {@link LOCATION_RELOAD_OP} may name. */
const MAX_RELOAD_AORS = 1000;

/** Throws naming the workers that failed, when any did. */
function requireAll(answers: WorkerAnswer[], what: string): void {
  const failed = answers.filter((a) => !a.ok);
  if (failed.length === 0) return;
  const detail = failed.map((a) => `worker ${a.worker}: ${a.ok ? '' : a.error}`).join('; ');
  throw new Error(`${what} (${detail})`);
}

/**
 * The admin API's registrations, read from the store, removals sent on to the workers.
 * @param nowS clock, unix time in s (expired bindings are not listed).
 * Removals throw an Error naming the workers that did not read the AOR again in time
 * (the bindings are gone from the store; those workers still route to them until they do).
 */
export function primaryRegistrations(
  store: BindingStore,
  workers: WorkerControl,
  nowS: () => number = () => Math.floor(Date.now() / 1000),
): AdminContext['registrations'] {
  const live = async (aor: string): Promise<BindingRecord[]> => (await store.listBindings(aor)).filter((b) => b.expires > nowS());
  const removeThen = async (aor: string, change: Parameters<BindingStore['commitBindings']>[0][number], removed: number): Promise<number> => {
    await store.commitBindings([change]);
    requireAll(await workers.ask(LOCATION_RELOAD_OP, { aors: [aor] }, ADMIN_WORKER_TIMEOUT_MS), `bindings of ${aor} removed from the store, but not every worker read them again`);
    return removed;
  };
  return {
    async aors() {
      const now = nowS();
      return [...new Set((await store.allBindings()).filter((b) => b.expires > now).map((b) => b.aor))].sort();
    },
    async lookup(aor) {
      return (await live(aor)).sort((a, b) => (b.q ?? 1) - (a.q ?? 1) || b.updatedAt - a.updatedAt);
    },
    async remove(aor, contactUri) {
      const had = (await live(aor)).some((b) => b.contactUri === contactUri);
      return (await removeThen(aor, { op: 'delete', aor, contactUri }, had ? 1 : 0)) === 1;
    },
    async removeAll(aor) {
      return removeThen(aor, { op: 'deleteAll', aor }, (await live(aor)).length);
    },
  };
}

/**
 * The admin API's reload: the primary's own (`own`), then every worker's.
 * Resolves with everything reloaded anywhere (e.g. `["log.level", "sip.tls"]`).
 * @throws what `own` throws (a bad configuration file: nothing is sent to the workers), or an
 *   Error naming the workers whose reload failed or did not answer.
 */
export function primaryReload(own: () => Promise<string[]>, workers: WorkerControl): () => Promise<string[]> {
  return async () => {
    const reloaded = new Set(await own());
    const answers = await workers.ask(RELOAD_OP, null, ADMIN_WORKER_TIMEOUT_MS);
    for (const a of answers) if (a.ok && Array.isArray(a.value)) for (const k of a.value) if (typeof k === 'string') reloaded.add(k);
    requireAll(answers, 'reload failed in a worker');
    return [...reloaded].sort();
  };
}

/** What a worker answers the primary's admin operations from. */
export interface WorkerAdminParts {
  /** The worker's location service (registrar/location-service.ts). */
  location: { reload(aors: readonly string[]): Promise<void> };
  /** The worker's own reload (RunningServer.reload). */
  reload(): Promise<string[]>;
  /** The worker's metrics registry (ServerMetrics.registry). */
  registry: Registry;
}

/** The worker's handlers of the primary's admin operations and metrics scrapes (for `answerControl`). */
export function workerAdminHandlers(parts: WorkerAdminParts): ControlHandlers {
  return {
    ...metricsHandlers(parts.registry),
    [LOCATION_RELOAD_OP]: async (payload) => {
      const aors = (payload as { aors?: unknown } | null)?.aors;
      if (!Array.isArray(aors) || aors.length > MAX_RELOAD_AORS || !aors.every((a) => typeof a === 'string')) {
        throw new Error(`${LOCATION_RELOAD_OP} needs { aors: string[] } (at most ${MAX_RELOAD_AORS})`);
      }
      await parts.location.reload(aors);
      return aors.length;
    },
    [RELOAD_OP]: () => parts.reload(),
  };
}
