import type { Logger } from '../log.js';
import type { BindingRecord, SqliteStore } from '../store/index.js';

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
 */
export class LocationService {
  private readonly byAor = new Map<string, BindingRecord[]>();
  /** Contact URI → binding, for requests whose Request-URI is a registered contact. */
  private readonly byContact = new Map<string, BindingRecord>();
  private purgeTimer: NodeJS.Timeout | undefined;
  private flushScheduled: NodeJS.Immediate | undefined;
  private readonly pending: (() => void)[] = [];
  private waiting: (() => void)[] = [];
  private readonly log: Logger;

  constructor(
    private readonly store: SqliteStore,
    logger: Logger,
    private readonly nowS: () => number = () => Math.floor(Date.now() / 1000),
  ) {
    this.log = logger.child({ component: 'location' });
  }

  /** Load every unexpired binding from the store and start the purge timer. */
  start(purgeIntervalMs = 30_000): void {
    this.store.deleteExpiredBindings(this.nowS());
    for (const b of this.store.allBindings()) this.insert(b);
    this.log.info({ aors: this.byAor.size }, 'bindings loaded');
    this.purgeTimer = setInterval(() => this.purge(), purgeIntervalMs);
    this.purgeTimer.unref();
  }

  /** Stop the purge timer and commit every queued change. */
  stop(): void {
    if (this.purgeTimer) clearInterval(this.purgeTimer);
    this.flush();
  }

  /** Commit queued changes now, in one transaction. */
  flush(): void {
    if (this.flushScheduled) clearImmediate(this.flushScheduled);
    this.flushScheduled = undefined;
    const ops = this.pending.splice(0);
    const waiting = this.waiting;
    this.waiting = [];
    if (ops.length) {
      try {
        this.store.inTransaction(() => {
          for (const op of ops) op();
        });
      } catch (err) {
        this.log.error({ err, changes: ops.length }, 'writing bindings to the store failed');
      }
    }
    for (const w of waiting) w();
  }

  /** Resolves once every change made so far is committed to the store. */
  committed(): Promise<void> {
    if (this.pending.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  private write(op: () => void): void {
    this.pending.push(op);
    if (!this.flushScheduled) this.flushScheduled = setImmediate(() => this.flush());
  }

  /** Unexpired bindings of an AOR, highest q first (q absent counts as 1.0), then most recently updated. */
  lookup(aor: string): BindingRecord[] {
    const nowS = this.nowS();
    const list = (this.byAor.get(aor) ?? []).filter((b) => b.expires > nowS);
    return list.sort((a, b) => (b.q ?? 1) - (a.q ?? 1) || b.updatedAt - a.updatedAt);
  }

  /** The unexpired binding whose contact URI is `contactUri` (exact string), across all AORs; one Map lookup. */
  findByContact(contactUri: string): BindingRecord | undefined {
    const b = this.byContact.get(contactUri);
    return b && b.expires > this.nowS() ? b : undefined;
  }

  /** AORs with bindings in memory, sorted (expired bindings not yet purged count); for the admin API and metrics. */
  aors(): string[] {
    return [...this.byAor.keys()].sort();
  }

  /** Add or replace a binding (same AOR and contact URI). */
  put(b: BindingRecord): void {
    this.write(() => this.store.putBinding(b));
    this.insert(b);
  }

  /** Remove one binding; true when it existed. */
  remove(aor: string, contactUri: string): boolean {
    this.write(() => this.store.deleteBinding(aor, contactUri));
    const list = this.byAor.get(aor);
    if (!list) return false;
    const i = list.findIndex((b) => b.contactUri === contactUri);
    if (i < 0) return false;
    this.unindex(list[i]);
    list.splice(i, 1);
    if (list.length === 0) this.byAor.delete(aor);
    return true;
  }

  /** Remove every binding of an AOR; returns how many. */
  removeAll(aor: string): number {
    this.write(() => this.store.deleteBindings(aor));
    const list = this.byAor.get(aor) ?? [];
    for (const b of list) this.unindex(b);
    this.byAor.delete(aor);
    return list.length;
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

  private purge(): void {
    const nowS = this.nowS();
    for (const [aor, list] of this.byAor) {
      for (const b of list) if (b.expires <= nowS) this.unindex(b);
      const live = list.filter((b) => b.expires > nowS);
      if (live.length === 0) this.byAor.delete(aor);
      else this.byAor.set(aor, live);
    }
    this.flush();
    const n = this.store.deleteExpiredBindings(nowS);
    if (n) this.log.debug({ removed: n }, 'expired bindings purged');
  }
}
