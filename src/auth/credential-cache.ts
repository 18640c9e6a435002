/**
 * An in-memory cache of digest credentials in front of any {@link UserSource}
 * (the SQLite store, a directory), so that a REGISTER or INVITE does not read
 * the user's row on every request.
 *
 * - Bounded: at most `maxEntries` answers, least recently used dropped first
 *   (README defaults table: `sip.auth.credential_cache_entries`).
 * - Negative answers are cached too: an unknown user costs the same as a known
 *   one on a hit (one Map lookup) and on a miss (the source's own lookup,
 *   which for the store does equal work for both), so caching keeps the
 *   equal-work property of `lookupHa1` (bench/auth-timing.mjs measures it).
 * - Invalidation by generation: when `generation` is given (the store's users
 *   generation counter, bumped by SQLite triggers on every change to users and
 *   phones, also by `rtcedge user passwd/del/add` and the import running in
 *   another process), it is read at most every `pollMs` ms, on lookups, and a
 *   changed value clears the whole cache. A change is therefore seen within
 *   `pollMs` ms of its commit, by every process sharing the file.
 * - Invalidation by age: with `ttlMs`, an answer older than that is asked again
 *   (for sources that have no generation).
 *
 * Keys and values are copies ({@link detachString}) so an entry never pins the
 * header text a username was sliced from. Source errors (e.g.
 * UserSourceUnavailableError) are never cached and pass through.
 */
import type { DigestAlgorithm } from './digest.js';
import type { Awaitable, UserSource } from './user-source.js';
import { detachString } from '../sip/detach.js';

/** Default most answers cached (~200 bytes each: key, HA1 hex, Map slot). */
export const DEFAULT_CREDENTIAL_CACHE_ENTRIES = 20_000;
/** How often (ms) at most the users generation of the store is read to notice changes made by other processes. */
export const USERS_GENERATION_POLL_MS = 500;

/** Options of {@link cachedUserSource}. */
export interface CredentialCacheOptions {
  /** Most answers kept; 0 turns the cache off (every lookup goes to the source). */
  maxEntries: number;
  /** Reads a counter that changes whenever users change (e.g. SqliteStore.usersGeneration). */
  generation?: () => number;
  /** Poll interval of `generation`, ms; default {@link USERS_GENERATION_POLL_MS}. */
  pollMs?: number;
  /** Lifetime of an answer, ms; default: no age limit. */
  ttlMs?: number;
  /** Monotonic clock, ms; default performance.now. */
  nowMs?: () => number;
}

interface Entry {
  value: string | boolean | undefined;
  /** When the answer was read, ms (for ttlMs). */
  atMs: number;
}

/**
 * The users of `source`, answered from memory when known (see the module
 * comment). `lookupHa1` and `userExists` are cached; `lookupUserhash` (TURN,
 * USERHASH only) goes to the source. `close()` clears the cache and closes
 * the source.
 * @throws RangeError when `maxEntries` is negative or not an integer.
 */
export function cachedUserSource(source: UserSource, opts: CredentialCacheOptions): UserSource & { readonly size: number; clear(): void } {
  if (!Number.isInteger(opts.maxEntries) || opts.maxEntries < 0) throw new RangeError('maxEntries must be a non-negative integer');
  const nowMs = opts.nowMs ?? (() => performance.now());
  const pollMs = opts.pollMs ?? USERS_GENERATION_POLL_MS;
  const entries = new Map<string, Entry>();
  let generation = opts.generation?.();
  let polledMs = nowMs();
  /** Bumped by every clear, so an answer read before a clear is not stored after it. */
  let epoch = 0;

  const clear = () => {
    entries.clear();
    epoch++;
  };
  const poll = (now: number) => {
    if (!opts.generation || now - polledMs < pollMs) return;
    polledMs = now;
    const g = opts.generation();
    if (g !== generation) {
      generation = g;
      clear();
    }
  };
  /** A hit is answered at once (no promise: one REGISTER would otherwise wait on it); a miss as the source answers. */
  const cached = <T extends string | boolean | undefined>(key: string, load: () => Awaitable<T>): Awaitable<T> => {
    if (opts.maxEntries === 0) return load();
    const now = nowMs();
    poll(now);
    const hit = entries.get(key);
    if (hit !== undefined && (opts.ttlMs === undefined || now - hit.atMs < opts.ttlMs)) {
      entries.delete(key); // re-insert: most recently used last
      entries.set(key, hit);
      return hit.value as T;
    }
    const startEpoch = epoch;
    const keep = (value: T): T => {
      if (epoch === startEpoch) {
        if (hit !== undefined) entries.delete(key);
        entries.set(detachString(key), { value: typeof value === 'string' ? detachString(value) : value, atMs: now });
        if (entries.size > opts.maxEntries) entries.delete(entries.keys().next().value!);
      }
      return value;
    };
    const value = load();
    return value instanceof Promise ? value.then(keep) : keep(value);
  };

  return {
    lookupHa1: (username, realm, alg: DigestAlgorithm) =>
      cached(`h\0${alg}\0${realm}\0${username}`, () => source.lookupHa1(username, realm, alg)),
    userExists: (username, domain) => cached(`e\0${domain}\0${username}`, () => source.userExists(username, domain)),
    lookupUserhash: (hash, realm) => source.lookupUserhash(hash, realm),
    close: async () => {
      clear();
      await source.close();
    },
    get size() {
      return entries.size;
    },
    clear,
  };
}
