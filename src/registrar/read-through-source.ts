/**
 * Where a location service reads bindings through, instead of holding every
 * binding (several nodes on one Redis: store/redis-tracking.ts): reads that
 * may be kept in a bounded cache because the store tells the node when they
 * change (Redis client-side caching), and commits that return what they
 * wrote.
 */
import type { BindingChange, BindingRecord, CommittedAor, HeldAor, ReadBackCause } from '../store/index.js';

/** Bindings read through the store (as RedisStore.readTracked). */
export interface ReadBindings {
  /** The AOR's bindings in first-added order, expired ones possibly among them. */
  bindings: BindingRecord[];
  /** False when they changed between being read and being watched: use once, do not keep. */
  cacheable: boolean;
}

/** A store read through, with invalidation; every method may reject with StoreError 'unavailable' (carrying retryAfterS). */
export interface ReadThroughSource {
  /** The bindings of `aor`, read and watched from now on. */
  readTracked(aor: string): Promise<ReadBindings>;
  /** The AOR whose unexpired binding has `contactUri`, or undefined; watched from now on. */
  aorOfContact(contactUri: string): Promise<string | undefined>;
  /**
   * Commit `changes` (all or nothing) and resolve with each changed AOR after
   * it, watched; AORs left out may not be kept. `held`: the version of each
   * AOR the cache holds (and whether the commit only refreshes bindings it
   * holds), so that what the cache holds need not be read back; `unheld`: why
   * each AOR not in `held` is not (counted by the store, for the bench).
   */
  commitAndRead(changes: readonly BindingChange[], held?: ReadonlyMap<string, HeldAor>, unheld?: ReadonlyMap<string, ReadBackCause>): Promise<Map<string, CommittedAor>>;
  /** Changes whenever watching was lost or started again: a read answered under another epoch must not be kept. */
  readonly epoch: number;
  /** True while reads may be kept (the store delivers invalidations). */
  readonly active: boolean;
}
