import type { Logger } from '../log.js';
import type { BindingChange, BindingRecord, BindingStore } from '../store/index.js';
import type { BindingReplication } from './binding-replication.js';

/** The order of an AOR's bindings for a target set: highest q first (absent: 1.0), then most recently updated. */
export function bindingOrder(a: BindingRecord, b: BindingRecord): number {
  return (b.q ?? 1) - (a.q ?? 1) || b.updatedAt - a.updatedAt;
}

/** AORs a purge walks per event-loop turn. */
export const PURGE_SLICE_AORS = 1000;

/**
 * The location service (RFC 3261 §10.2, §16.5): bindings of AORs to contact
 * addresses, held in memory for lookups and written to the store in batches:
 * the changes made during one turn of the event loop are committed together
 * in one SQLite transaction right after it (and on stop()); {@link committed}
 * lets the registrar answer 200 only once its change is stored, so a restart
 * loses nothing that was acknowledged.
 *
 * Expired bindings are never returned and are purged from memory and store
 * every `purgeIntervalMs` (default 30 000 ms).
 *
 * With a {@link BindingReplication} (several workers or nodes on one store),
 * each commit is announced to the others before {@link committed} resolves:
 * the changes themselves when the replication carries them (workers of one
 * machine, applied to memory by {@link applyRemote}), else the AORs, which
 * the others read again from the store.
 */
export class LocationService {
  private readonly byAor = new Map<string, BindingRecord[]>();
  /** Contact URI → binding, for requests whose Request-URI is a registered contact. */
  private readonly byContact = new Map<string, BindingRecord>();
  private purgeTimer: NodeJS.Timeout | undefined;
  private flushScheduled: NodeJS.Immediate | undefined;
  private readonly pending: BindingChange[] = [];
  private waiting: { resolve: () => void; reject: (err: unknown) => void }[] = [];
  /** The last commit (and announcement) still under way, for {@link committed}; resolves to its failure, if any. */
  private inFlight: Promise<unknown> | undefined;
  private readonly log: Logger;
  /** The purge under way, if any (stop() waits for it). */
  private purging: Promise<number> | undefined;
  private stopping = false;

  /**
   * @param store where bindings are kept durably.
   * @param nowS clock, unix time in s.
   * @param replication the other location services on the same store, if any.
   */
  constructor(
    private readonly store: BindingStore,
    logger: Logger,
    private readonly nowS: () => number = () => Math.floor(Date.now() / 1000),
    private readonly replication?: BindingReplication,
  ) {
    this.log = logger.child({ component: 'location' });
    replication?.onRemoteChange((aors) => this.reload(aors));
    replication?.onRemoteChanges?.((changes) => this.applyRemote(changes));
  }

  /**
   * Load every unexpired binding from the store and start the purge timer.
   * With a synchronous store (SQLite) the bindings are loaded when this returns.
   */
  async start(purgeIntervalMs = 30_000): Promise<void> {
    const removed = this.store.deleteExpiredBindings(this.nowS());
    if (removed instanceof Promise) await removed;
    const all = this.store.allBindings();
    for (const b of all instanceof Promise ? await all : all) this.insert(b);
    this.log.info({ aors: this.byAor.size }, 'bindings loaded');
    this.purgeTimer = setInterval(() => void this.purge(), purgeIntervalMs);
    this.purgeTimer.unref();
  }

  /** Stop the purge timer (a purge under way ends after its current slice) and commit every queued change. */
  async stop(): Promise<void> {
    if (this.purgeTimer) clearInterval(this.purgeTimer);
    this.stopping = true;
    await this.purging;
    return this.flush();
  }

  /**
   * Commit queued changes now, in one transaction, then name their AORs to the
   * replication (if any); {@link committed} waiters resolve after both, or
   * reject with the store's error when the commit failed (the changes then
   * stay in memory only, until the next {@link resync}). Never rejects itself.
   */
  flush(): Promise<void> {
    if (this.flushScheduled) clearImmediate(this.flushScheduled);
    this.flushScheduled = undefined;
    const changes = this.pending.splice(0);
    const waiting = this.waiting;
    this.waiting = [];
    const settle = (err?: unknown): unknown => {
      for (const w of waiting) if (err === undefined) w.resolve();
      else w.reject(err);
      return err;
    };
    if (changes.length === 0) {
      settle();
      return Promise.resolve();
    }
    const failed = (err: unknown): unknown => {
      this.log.error({ err: err instanceof Error ? err.message : err, changes: changes.length }, 'writing bindings to the store failed');
      return err ?? new Error('store failed');
    };
    const announce = async (): Promise<undefined> => {
      const r = this.replication;
      if (r?.announceChanges) await r.announceChanges(changes);
      else await r?.announce([...new Set(changes.map((c) => (c.op === 'put' ? c.binding.aor : c.aor)))]);
      return undefined;
    };
    let done: void | Promise<void>;
    try {
      done = this.store.commitBindings(changes);
    } catch (err) {
      settle(failed(err));
      return Promise.resolve();
    }
    if (!(done instanceof Promise) && !this.replication) {
      settle();
      return Promise.resolve();
    }
    const flight: Promise<unknown> = Promise.resolve(done)
      .then(announce, failed)
      .then(settle)
      .finally(() => {
        if (this.inFlight === flight) this.inFlight = undefined;
      });
    this.inFlight = flight;
    return flight.then(() => undefined);
  }

  /**
   * Resolves once every change made so far is committed to the store (and
   * announced to the replication); rejects with the store's error (e.g.
   * StoreError 'unavailable') when that commit failed.
   */
  committed(): Promise<void> {
    if (this.pending.length === 0 && !this.flushScheduled) {
      return (this.inFlight ?? Promise.resolve(undefined)).then((err) => {
        if (err !== undefined) throw err;
      });
    }
    return new Promise((resolve, reject) => this.waiting.push({ resolve, reject }));
  }

  /**
   * Read every binding again from the store and replace the ones in memory
   * (after a shared store came back: announcements may have been missed,
   * commits may have failed); changes queued but not yet committed are kept.
   * @throws the store's error; memory is unchanged then.
   */
  async resync(): Promise<void> {
    const got = this.store.allBindings();
    const all = got instanceof Promise ? await got : got;
    this.byAor.clear();
    this.byContact.clear();
    for (const b of all) this.insert(b);
    this.applyToMemory(this.pending);
    this.log.info({ aors: this.byAor.size }, 'bindings read again from the store');
  }

  /**
   * Read the bindings of `aors` again from the store (another worker or node
   * changed them); AORs without bindings there are dropped from memory.
   */
  async reload(aors: readonly string[]): Promise<void> {
    for (const aor of aors) {
      const got = this.store.listBindings(aor);
      const fresh = got instanceof Promise ? await got : got;
      for (const b of this.byAor.get(aor) ?? []) this.unindex(b);
      this.byAor.delete(aor);
      for (const b of fresh) this.insert(b);
    }
  }

  /**
   * Replace the bindings of `aor` in memory by `bindings`, as another worker
   * or node committed them (the replication carried them; nothing is read).
   */
  replaceFromRemote(aor: string, bindings: readonly BindingRecord[]): void {
    this.forget(aor);
    for (const b of bindings) this.insert(b);
  }

  /**
   * Apply changes another worker committed to the store, as it carried them
   * (in its commit order), to memory only: nothing is read or written. This
   * service's own changes not yet handed to the store are applied again after
   * them, since they reach the store after them (the same contact changed
   * through two workers at once ends as the store has it).
   */
  applyRemote(changes: readonly BindingChange[]): void {
    this.applyToMemory(changes);
    this.applyToMemory(this.pending);
  }

  private applyToMemory(changes: readonly BindingChange[]): void {
    for (const c of changes) {
      if (c.op === 'put') this.insert(c.binding);
      else this.forget(c.aor, c.op === 'delete' ? c.contactUri : undefined);
    }
  }

  private write(change: BindingChange): void {
    this.pending.push(change);
    if (!this.flushScheduled) this.flushScheduled = setImmediate(() => void this.flush());
  }

  /** Unexpired bindings of an AOR, highest q first (q absent counts as 1.0), then most recently updated. */
  lookup(aor: string): BindingRecord[] {
    const nowS = this.nowS();
    const list = (this.byAor.get(aor) ?? []).filter((b) => b.expires > nowS);
    return list.sort(bindingOrder);
  }

  /** The unexpired binding whose contact URI is `contactUri` (exact string), across all AORs; one Map lookup. */
  findByContact(contactUri: string): BindingRecord | undefined {
    const b = this.byContact.get(contactUri);
    return b && b.expires > this.nowS() ? b : undefined;
  }

  /**
   * AORs with at least one unexpired binding, and unexpired bindings, in one
   * pass over memory without copying or sorting (for metrics scrapes, which
   * must not pause the event loop in proportion to the AORs).
   */
  counts(): { aors: number; bindings: number } {
    const nowS = this.nowS();
    let aors = 0;
    let bindings = 0;
    for (const list of this.byAor.values()) {
      let live = 0;
      for (const b of list) if (b.expires > nowS) live++;
      bindings += live;
      if (live > 0) aors++;
    }
    return { aors, bindings };
  }

  /** AORs with bindings in memory, sorted (expired bindings not yet purged count); for the admin API. */
  aors(): string[] {
    return [...this.byAor.keys()].sort();
  }

  /** Add or replace a binding (same AOR and contact URI). */
  put(b: BindingRecord): void {
    this.write({ op: 'put', binding: b });
    this.insert(b);
  }

  /** Remove one binding; true when it existed. */
  remove(aor: string, contactUri: string): boolean {
    this.write({ op: 'delete', aor, contactUri });
    return this.forget(aor, contactUri) > 0;
  }

  /** Remove every binding of an AOR; returns how many. */
  removeAll(aor: string): number {
    this.write({ op: 'deleteAll', aor });
    return this.forget(aor);
  }

  /** Drop from memory the binding of `contactUri`, or every binding of the AOR; returns how many. */
  private forget(aor: string, contactUri?: string): number {
    const list = this.byAor.get(aor);
    if (!list) return 0;
    if (contactUri === undefined) {
      for (const b of list) this.unindex(b);
      this.byAor.delete(aor);
      return list.length;
    }
    const i = list.findIndex((b) => b.contactUri === contactUri);
    if (i < 0) return 0;
    this.unindex(list[i]);
    list.splice(i, 1);
    if (list.length === 0) this.byAor.delete(aor);
    return 1;
  }

  private insert(b: BindingRecord): void {
    const list = this.byAor.get(b.aor) ?? [];
    const i = list.findIndex((x) => x.contactUri === b.contactUri);
    if (i >= 0) list[i] = b;
    else list.push(b);
    this.byAor.set(b.aor, list);
    this.byContact.set(b.contactUri, b);
  }

  private unindex(b: BindingRecord): void {
    if (this.byContact.get(b.contactUri) === b) this.byContact.delete(b.contactUri);
  }

  /**
   * Drops expired bindings from memory, then from the store; resolves with
   * how many left memory. Runs every `purgeIntervalMs`; a call while one
   * runs resolves with 0. Memory is walked in slices of
   * {@link PURGE_SLICE_AORS} AORs, giving the event loop back between
   * slices, and lists are trimmed in place (no new arrays), so a purge over
   * many AORs neither pauses requests nor makes garbage in proportion to the
   * AORs. After stop() it ends at the next slice.
   */
  purge(): Promise<number> {
    if (this.purging) return Promise.resolve(0);
    const run = this.purgeExpired().finally(() => {
      this.purging = undefined;
    });
    this.purging = run;
    return run;
  }

  private async purgeExpired(): Promise<number> {
    const nowS = this.nowS();
    let removed = 0;
    let seen = 0;
    try {
      // Map iteration visits entries added or kept while it yields; deleted ones are skipped.
      for (const [aor, list] of this.byAor) {
        let kept = 0;
        for (const b of list) {
          if (b.expires > nowS) list[kept++] = b;
          else this.unindex(b);
        }
        removed += list.length - kept;
        list.length = kept;
        if (kept === 0) this.byAor.delete(aor);
        if (++seen % PURGE_SLICE_AORS === 0) {
          await new Promise((r) => setImmediate(r));
          if (this.stopping) return removed;
        }
      }
      await this.flush();
      const gone = this.store.deleteExpiredBindings(nowS);
      const n = gone instanceof Promise ? await gone : gone;
      if (n) this.log.debug({ removed: n }, 'expired bindings purged');
    } catch (err) {
      this.log.warn({ err }, 'purging expired bindings failed');
    }
    return removed;
  }
}
