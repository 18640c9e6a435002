/**
 * A bounded map whose entries expire: what the DNS resolver keeps answers in
 * (RFC 1035 §3.2.1 TTL, RFC 2308 negative caching) and what the failed-target
 * table of RFC 3263 §4.3 is built on.
 *
 * At most `maxEntries` entries: inserting one more evicts the least recently
 * used. Expired entries are dropped when read and when they reach the old end
 * of the map. Time comes from `nowMs` (ms) so tests can move it.
 */
export class TtlCache<K, V> {
  private readonly entries = new Map<K, { value: V; expiresAtMs: number }>();

  /**
   * @param maxEntries bound on the number of entries (>= 1).
   * @param nowMs clock in ms; default Date.now.
   */
  constructor(
    readonly maxEntries: number,
    private readonly nowMs: () => number = Date.now,
  ) {
    if (!Number.isInteger(maxEntries) || maxEntries < 1) throw new RangeError('maxEntries must be a whole number >= 1');
  }

  /** Number of entries held (expired ones included until they are swept). */
  get size(): number {
    return this.entries.size;
  }

  /** The live value for `key`, or undefined when absent or expired (then removed). Marks it recently used. */
  get(key: K): V | undefined {
    const e = this.entries.get(key);
    if (e === undefined) return undefined;
    if (e.expiresAtMs <= this.nowMs()) {
      this.entries.delete(key);
      return undefined;
    }
    this.entries.delete(key);
    this.entries.set(key, e);
    return e.value;
  }

  /** Keeps `value` for `ttlMs` ms (<= 0: not stored, and an older entry is removed). Evicts the least recently used entry when full. */
  set(key: K, value: V, ttlMs: number): void {
    this.entries.delete(key);
    if (!(ttlMs > 0)) return;
    const now = this.nowMs();
    while (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (oldest.done) break;
      this.entries.delete(oldest.value);
    }
    this.entries.set(key, { value, expiresAtMs: now + ttlMs });
  }

  /** Removes `key`. */
  delete(key: K): void {
    this.entries.delete(key);
  }

  /** Removes every entry. */
  clear(): void {
    this.entries.clear();
  }
}
