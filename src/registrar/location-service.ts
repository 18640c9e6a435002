import type { Logger } from '../log.js';
import type { Awaitable } from '../auth/user-source.js';
import { SipError } from '../sip/errors.js';
import { StoreError } from '../store/errors.js';
import type { BindingChange, BindingRecord, BindingStore, HeldAor, ReadBackCause } from '../store/index.js';
import type { BindingReplication } from './binding-replication.js';
import type { ReadThroughSource } from './read-through-source.js';

/** The order of an AOR's bindings for a target set: highest q first (absent: 1.0), then most recently updated. */
export function bindingOrder(a: BindingRecord, b: BindingRecord): number {
  return (b.q ?? 1) - (a.q ?? 1) || b.updatedAt - a.updatedAt;
}

/** AORs a purge walks per event-loop turn. */
export const PURGE_SLICE_AORS = 1000;

/**
 * Seconds a cached binding must still have before its expiry for a put of the
 * same contact to count as a refresh of a binding the store indexes already
 * (read-through: {@link HeldAor.indexed}); closer to its end the store may
 * have expired it by the time the commit arrives.
 */
const REFRESH_MARGIN_S = 2;

/** Bindings read through a shared store into a bounded cache instead of held in full (several nodes on Redis). */
export interface ReadThroughOptions {
  source: ReadThroughSource;
  /** AORs kept at most (least recently used dropped first); as many contact URIs known to have no binding. */
  maxAors: number;
}

/** A read or commit under way for one AOR or contact URI; `spoiled` once what it reads may already be stale. */
interface Watch {
  spoiled: boolean;
  /** A commit's (a newer commit of the AOR does not spoil it: see LocationService.latestCommit). */
  commit?: true;
}

function aorOf(c: BindingChange): string {
  return c.op === 'put' ? c.binding.aor : c.aor;
}

/** A store that could not be reached, as the SIP answer it gets (503 with Retry-After, RFC 3261 §21.5.4); anything else unchanged. */
function asSipError(err: unknown): unknown {
  if (err instanceof StoreError && err.retryAfterS !== undefined) return new SipError(503, 'Service Unavailable: store unavailable', [{ name: 'Retry-After', value: String(err.retryAfterS) }]);
  return err;
}

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
 * With a {@link BindingReplication} (several SIP workers on one store),
 * each commit is announced to the others before {@link committed} resolves:
 * the changes themselves when the replication carries them (workers of one
 * machine, applied to memory by {@link applyRemote}), else the AORs, which
 * the others read again from the store.
 *
 * With {@link ReadThroughOptions} (several nodes on Redis) nothing is loaded:
 * {@link read} and {@link findByContact} answer from a bounded cache (LRU,
 * `maxAors`) and read through the source on a miss (a promise then); the
 * source tells which AORs and contacts another node changed
 * ({@link invalidate}) and when everything must go ({@link clearCache}). A
 * commit resolves once Redis has it (nothing waits for other nodes) and puts
 * the AORs' bindings as written in the cache. A read or commit under way when
 * its AOR is invalidated is used once and not kept (it may predate the change).
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
  /** Contact URIs the source said no binding has (read-through), oldest first. */
  private readonly noBinding = new Set<string>();
  /** AOR → its read through the source under way (read-through: one per AOR at a time). */
  private readonly fills = new Map<string, Promise<BindingRecord[]>>();
  private readonly aorWatches = new Map<string, Set<Watch>>();
  private readonly contactWatches = new Map<string, Set<Watch>>();
  /**
   * Read-through: the version each cached AOR was committed at by this node
   * (only AORs in the cache). An AOR read on a miss (new here, or dropped on
   * another node's commit) has none until its next commit answers one: that
   * commit reads it back in its own transaction, as another node may well be
   * changing it (with every node registering every user in turn, versions
   * kept from such reads sent 0.06 second transactions that add index
   * entries per REGISTER at two and three nodes, 0.02 without;
   * bench/RESULTS.md).
   */
  private readonly versions = new Map<string, number>();
  /** Read-through: puts that refresh a binding the cache held, unexpired (see {@link HeldAor.indexed}). */
  private readonly refreshes = new WeakSet<BindingChange>();
  /**
   * Read-through: AORs a commit's answer dropped from the cache since start,
   * by why: a change of the AOR was queued meanwhile (`pending`), a newer
   * commit or an invalidation came in (`spoiled`), tracking was lost
   * (`epoch`); their next commit reads them back. For the bench (logged at
   * stop on Redis, with RedisStore.readBacks).
   */
  readonly droppedAtAnswer = { pending: 0, spoiled: 0, epoch: 0 };
  /** Read-through: AORs with a commit under way, and how many. */
  private readonly committing = new Map<string, number>();
  /**
   * Read-through: per AOR with a commit under way, the version the store
   * will have after the last one sent when nothing else changes the AOR
   * meanwhile (known when that commit went with a held version: it plus
   * one). A commit of the AOR made while another is under way goes at this
   * version (commits of one connection run in Redis in the order sent), so
   * that a user registering again before the previous commit answered does
   * not read the AOR back; Redis's version tells when anything else came
   * in between. Bounded by the AORs with a commit under way.
   */
  private readonly expected = new Map<string, number>();
  /** Read-through: per AOR with a commit under way, the last one sent (its answer is the one kept). */
  private readonly latestCommit = new Map<string, object>();

  /**
   * @param store where bindings are kept durably.
   * @param nowS clock, unix time in s.
   * @param replication the other location services on the same store, if any.
   * @param cache read bindings through a source into a bounded cache instead of loading them all.
   */
  constructor(
    private readonly store: BindingStore,
    logger: Logger,
    private readonly nowS: () => number = () => Math.floor(Date.now() / 1000),
    private readonly replication?: BindingReplication,
    private readonly cache?: ReadThroughOptions,
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
    if (this.cache) {
      this.log.info({ maxAors: this.cache.maxAors }, 'bindings read through the store into a bounded cache');
    } else {
      const all = this.store.allBindings();
      for (const b of all instanceof Promise ? await all : all) this.insert(b);
      this.log.info({ aors: this.byAor.size }, 'bindings loaded');
    }
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
      done = this.cache ? this.commitThrough(changes, this.cache.source) : this.store.commitBindings(changes);
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
    if (this.cache) return this.clearCache();
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

  /**
   * Unexpired bindings of an AOR in memory, highest q first (q absent counts
   * as 1.0), then most recently updated; with read-through only what the
   * cache holds (see {@link read}).
   */
  lookup(aor: string): BindingRecord[] {
    const nowS = this.nowS();
    const list = (this.byAor.get(aor) ?? []).filter((b) => b.expires > nowS);
    return list.sort(bindingOrder);
  }

  /**
   * Unexpired bindings of an AOR as {@link lookup}, at once when in memory;
   * with read-through a promise on a cache miss, read from the source (and
   * kept), rejecting with SipError 503 (Retry-After) when the store cannot be
   * reached.
   */
  read(aor: string): Awaitable<BindingRecord[]> {
    if (!this.cache) return this.lookup(aor);
    const list = this.byAor.get(aor);
    if (!list) return this.fill(aor, this.cache.source);
    // Least recently used first: a hit moves the AOR to the end.
    this.byAor.delete(aor);
    this.byAor.set(aor, list);
    return this.lookup(aor);
  }

  /**
   * The unexpired binding whose contact URI is `contactUri` (exact string),
   * across all AORs; one Map lookup. With read-through a promise when the
   * cache knows nothing of the URI (one GET of its contact key, then the AOR
   * as {@link read}); URIs without a binding are remembered too (most
   * Request-URIs name an AOR, not a contact). Rejects as {@link read}.
   */
  findByContact(contactUri: string): Awaitable<BindingRecord | undefined> {
    const b = this.byContact.get(contactUri);
    if (b) return b.expires > this.nowS() ? b : undefined;
    if (!this.cache || this.noBinding.has(contactUri)) return undefined;
    return this.fillContact(contactUri, this.cache.source);
  }

  /** Read an AOR through the source; kept unless watching was lost or it was invalidated meanwhile. */
  private fill(aor: string, source: ReadThroughSource): Promise<BindingRecord[]> {
    const running = this.fills.get(aor);
    if (running) return running;
    const epoch = source.epoch;
    const watch = this.watch(this.aorWatches, aor);
    const filled = source
      .readTracked(aor)
      .then(
        ({ bindings, cacheable }) => {
          const pending = this.pending.some((c) => aorOf(c) === aor);
          if (cacheable && !pending && !watch.spoiled && epoch === source.epoch && source.active) {
            this.keep(aor, bindings, undefined);
            return this.lookup(aor);
          }
          const nowS = this.nowS();
          return bindings.filter((b) => b.expires > nowS).sort(bindingOrder);
        },
        (err: unknown) => {
          throw asSipError(err);
        },
      )
      .finally(() => {
        this.unwatch(this.aorWatches, aor, watch);
        if (this.fills.get(aor) === filled) this.fills.delete(aor);
      });
    this.fills.set(aor, filled);
    return filled;
  }

  private async fillContact(contactUri: string, source: ReadThroughSource): Promise<BindingRecord | undefined> {
    const epoch = source.epoch;
    const watch = this.watch(this.contactWatches, contactUri);
    let aor: string | undefined;
    try {
      aor = await source.aorOfContact(contactUri);
    } catch (err) {
      throw asSipError(err);
    } finally {
      this.unwatch(this.contactWatches, contactUri, watch);
    }
    if (aor === undefined) {
      if (!watch.spoiled && epoch === source.epoch && source.active) {
        if (this.noBinding.size >= this.cache!.maxAors) this.noBinding.delete(this.noBinding.values().next().value!);
        this.noBinding.add(contactUri);
      }
      return undefined;
    }
    const got = this.read(aor);
    return (got instanceof Promise ? await got : got).find((b) => b.contactUri === contactUri);
  }

  /** Put an AOR's bindings (at `version`, when known) in the cache (read-through), dropping the least recently used AOR past the bound. */
  private keep(aor: string, bindings: readonly BindingRecord[], version: number | undefined): void {
    this.forget(aor);
    while (this.byAor.size >= this.cache!.maxAors) this.forget(this.byAor.keys().next().value!);
    this.byAor.set(aor, []);
    for (const b of bindings) this.insert(b);
    if (version !== undefined) this.versions.set(aor, version);
  }

  /**
   * Commit through the source (read-through): reads of the AORs under way
   * were sent before this commit and are not kept; the AORs' bindings as
   * written are kept unless they changed again meanwhile. AORs the cache
   * holds at a known version go with it ({@link HeldAor}), so that the source
   * need not read back what the cache holds: when it reads nothing back, the
   * cache (which already has the commit's changes) is kept with the new
   * version. On failure the AORs leave the cache (it held the uncommitted
   * changes).
   */
  private commitThrough(changes: readonly BindingChange[], source: ReadThroughSource): Promise<void> {
    const aors = [...new Set(changes.map(aorOf))];
    // What the cache holds at a known version; with an earlier commit of the AOR under way, the version that
    // one will leave when it went with a held version (else unknown: read back).
    const held = new Map<string, HeldAor>();
    const unheld = new Map<string, ReadBackCause>();
    const token = {};
    for (const aor of aors) {
      const inFlight = this.committing.has(aor);
      const version = inFlight ? this.expected.get(aor) : this.versions.get(aor);
      if (version !== undefined) {
        held.set(aor, { version, indexed: true });
        this.expected.set(aor, version + 1);
      } else {
        unheld.set(aor, inFlight ? 'committing' : this.byAor.has(aor) ? 'unversioned' : 'uncached');
        this.expected.delete(aor);
      }
      this.committing.set(aor, (this.committing.get(aor) ?? 0) + 1);
      this.latestCommit.set(aor, token);
    }
    for (const c of changes) {
      const h = held.get(aorOf(c));
      if (h && !this.refreshes.has(c)) h.indexed = false;
    }
    // Reads of the AORs under way were sent before this commit: not kept (an earlier commit's answer is left to the latest).
    for (const aor of aors) this.spoil(this.aorWatches, aor, true);
    const watches = aors.map((aor) => {
      const w = this.watch(this.aorWatches, aor);
      w.commit = true;
      return w;
    });
    const epoch = source.epoch;
    return source
      .commitAndRead(changes, held, unheld)
      .then(
        (lists) => {
          aors.forEach((aor, i) => {
            const got = lists.get(aor);
            const spoiled = watches[i].spoiled || epoch !== source.epoch || !source.active;
            // A later commit of the AOR is under way and answers for both (it went at this one's version plus one,
            // or reads the AOR back): what the cache holds includes its changes, leave it to that answer.
            if (got && !spoiled && this.latestCommit.get(aor) !== token) return;
            const pending = this.pending.some((c) => aorOf(c) === aor);
            if (!got || spoiled || (got.bindings && pending)) {
              // Read back while a change of the AOR waits to be sent: the records lack it, and it is in the cache.
              this.droppedAtAnswer[spoiled ? (watches[i].spoiled ? 'spoiled' : 'epoch') : 'pending'] += 1;
              this.forget(aor);
            } else if (got.bindings) this.keep(aor, got.bindings, got.version);
            // Nothing read back: what the cache holds is what the store has (plus changes waiting to be sent, which
            // go at this version), unless it was dropped meanwhile.
            else if (this.byAor.has(aor)) this.versions.set(aor, got.version);
            else this.forget(aor);
          });
        },
        (err: unknown) => {
          for (const aor of aors) this.forget(aor);
          throw err;
        },
      )
      .finally(() =>
        aors.forEach((aor, i) => {
          this.unwatch(this.aorWatches, aor, watches[i]);
          const n = this.committing.get(aor)! - 1;
          if (n > 0) this.committing.set(aor, n);
          else {
            this.committing.delete(aor);
            this.expected.delete(aor);
            this.latestCommit.delete(aor);
          }
        }),
      );
  }

  /**
   * Another node changed the bindings of an AOR, or what a contact URI is
   * bound to (read-through): drop what the cache holds of it; a read of it
   * under way is not kept.
   */
  invalidate(what: { kind: 'aor'; aor: string } | { kind: 'contact'; contactUri: string }): void {
    if (what.kind === 'aor') {
      this.forget(what.aor);
      this.spoil(this.aorWatches, what.aor);
      return;
    }
    this.noBinding.delete(what.contactUri);
    const b = this.byContact.get(what.contactUri);
    if (b) this.forget(b.aor);
    this.spoil(this.contactWatches, what.contactUri);
  }

  /** Empty the cache (read-through: invalidations may have been missed); reads under way are not kept. */
  clearCache(): void {
    this.byAor.clear();
    this.versions.clear();
    this.byContact.clear();
    this.noBinding.clear();
    for (const set of this.aorWatches.values()) for (const w of set) w.spoiled = true;
    for (const set of this.contactWatches.values()) for (const w of set) w.spoiled = true;
    this.fills.clear();
  }

  private watch(map: Map<string, Set<Watch>>, key: string): Watch {
    const w: Watch = { spoiled: false };
    let set = map.get(key);
    if (!set) map.set(key, (set = new Set()));
    set.add(w);
    return w;
  }

  private unwatch(map: Map<string, Set<Watch>>, key: string, w: Watch): void {
    const set = map.get(key);
    if (!set) return;
    set.delete(w);
    if (set.size === 0) map.delete(key);
  }

  /**
   * Reads of `key` under way may be stale: not kept, and later reads do not share them (a new one is sent).
   * @param readsOnly leave commits' watches alone (a newer commit of the AOR, not a change from elsewhere).
   */
  private spoil(map: Map<string, Set<Watch>>, key: string, readsOnly = false): void {
    for (const w of map.get(key) ?? []) if (!readsOnly || !w.commit) w.spoiled = true;
    if (map === this.aorWatches) this.fills.delete(key);
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

  /**
   * Every unexpired binding, grouped by AOR (sorted) and ordered as
   * {@link lookup}, for the admin API: from memory, or with read-through from
   * the store itself (every node's AORs, not only this node's cache; one pass
   * over the store's bindings). Rejects as the store does when it cannot be
   * reached.
   */
  async registrations(): Promise<{ aor: string; bindings: BindingRecord[] }[]> {
    if (!this.cache) return this.aors().map((aor) => ({ aor, bindings: this.lookup(aor) })).filter((r) => r.bindings.length > 0);
    const nowS = this.nowS();
    const byAor = new Map<string, BindingRecord[]>();
    for (const b of await this.store.allBindings()) {
      if (b.expires <= nowS) continue;
      const list = byAor.get(b.aor);
      if (list) list.push(b);
      else byAor.set(b.aor, [b]);
    }
    return [...byAor.keys()].sort().map((aor) => ({ aor, bindings: byAor.get(aor)!.sort(bindingOrder) }));
  }

  /** Add or replace a binding (same AOR and contact URI); with read-through in memory only when the AOR is cached. */
  put(b: BindingRecord): void {
    const change: BindingChange = { op: 'put', binding: b };
    if (this.cache) {
      this.noBinding.delete(b.contactUri);
      const list = this.byAor.get(b.aor);
      if (!list) return this.write(change);
      const was = list.find((x) => x.contactUri === b.contactUri);
      if (was && was.expires > this.nowS() + REFRESH_MARGIN_S) this.refreshes.add(change);
    }
    this.write(change);
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
    if (contactUri === undefined) {
      this.versions.delete(aor);
      this.expected.delete(aor);
    }
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
    if (list.length === 0) {
      this.byAor.delete(aor);
      this.versions.delete(aor);
    }
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
        if (kept === 0) {
          this.byAor.delete(aor);
          this.versions.delete(aor);
        }
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
