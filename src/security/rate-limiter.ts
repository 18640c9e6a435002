/**
 * Per-key rate accounting for abuse resistance: a token bucket (requests per
 * second with a burst) and a fixed-window counter (events per window, e.g.
 * failed authentications per minute).
 *
 * Both keep one small record per key in a Map bounded by `maxKeys`: when full,
 * the oldest key (insertion order) is forgotten, so memory stays bounded under
 * a spoofed-source flood. Every operation is O(1).
 */

/** Keys a {@link TokenBucketLimiter} or {@link WindowCounter} remembers when `maxKeys` is not given. */
export const RATE_LIMITER_MAX_KEYS = 100_000;

/** Settings of a {@link TokenBucketLimiter}. */
export interface TokenBucketOptions {
  /** Tokens added per second (sustained rate, events/s); > 0. */
  ratePerSecond: number;
  /** Bucket size (events allowed at once after a quiet period); >= 1. */
  burst: number;
  /** Keys remembered at most; default {@link RATE_LIMITER_MAX_KEYS}. */
  maxKeys?: number;
}

interface Bucket {
  tokens: number;
  /** ms of the last refill. */
  lastMs: number;
}

/**
 * Token bucket per key (e.g. per source address). `take(key, nowMs)` spends one
 * token and returns false when the bucket is empty.
 */
export class TokenBucketLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly rate: number;
  private readonly burst: number;
  private readonly maxKeys: number;

  /** @throws RangeError when ratePerSecond <= 0 or burst < 1. */
  constructor(opts: TokenBucketOptions) {
    if (!(opts.ratePerSecond > 0)) throw new RangeError('ratePerSecond must be > 0');
    if (!(opts.burst >= 1)) throw new RangeError('burst must be >= 1');
    this.rate = opts.ratePerSecond / 1000;
    this.burst = opts.burst;
    this.maxKeys = opts.maxKeys ?? RATE_LIMITER_MAX_KEYS;
  }

  /**
   * Spend one token of `key` at time `nowMs` (ms since the epoch).
   * @returns true when a token was available, false when the key is over its rate.
   */
  take(key: string, nowMs: number): boolean {
    let b = this.buckets.get(key);
    if (!b) {
      if (this.buckets.size >= this.maxKeys) this.evictOldest();
      b = { tokens: this.burst, lastMs: nowMs };
      this.buckets.set(key, b);
    } else if (nowMs > b.lastMs) {
      b.tokens = Math.min(this.burst, b.tokens + (nowMs - b.lastMs) * this.rate);
      b.lastMs = nowMs;
    }
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  /** Forget a key (after a ban, so it starts with a full bucket when the ban ends). */
  reset(key: string): void {
    this.buckets.delete(key);
  }

  /** Number of keys remembered. */
  get size(): number {
    return this.buckets.size;
  }

  private evictOldest(): void {
    const first = this.buckets.keys().next();
    if (!first.done) this.buckets.delete(first.value);
  }
}

/** Settings of a {@link WindowCounter}. */
export interface WindowCounterOptions {
  /** Length of a counting window, ms; > 0. */
  windowMs: number;
  /** Keys remembered at most; default {@link RATE_LIMITER_MAX_KEYS}. */
  maxKeys?: number;
}

interface Window {
  startMs: number;
  count: number;
}

/**
 * Events per key in fixed windows of `windowMs`: `add(key, nowMs)` counts one and
 * returns the count of the current window (the window restarts at the first
 * event after it ended).
 */
export class WindowCounter {
  private readonly windows = new Map<string, Window>();
  private readonly windowMs: number;
  private readonly maxKeys: number;

  /** @throws RangeError when windowMs <= 0. */
  constructor(opts: WindowCounterOptions) {
    if (!(opts.windowMs > 0)) throw new RangeError('windowMs must be > 0');
    this.windowMs = opts.windowMs;
    this.maxKeys = opts.maxKeys ?? RATE_LIMITER_MAX_KEYS;
  }

  /** Count one event of `key` at `nowMs` (ms); returns the number in the current window, this one included. */
  add(key: string, nowMs: number): number {
    let w = this.windows.get(key);
    if (!w || nowMs - w.startMs >= this.windowMs) {
      if (w) this.windows.delete(key);
      else if (this.windows.size >= this.maxKeys) this.evictOldest();
      w = { startMs: nowMs, count: 0 };
      this.windows.set(key, w);
    }
    w.count += 1;
    return w.count;
  }

  /** Events of `key` in the window that is current at `nowMs` (0 when it ended). */
  count(key: string, nowMs: number): number {
    const w = this.windows.get(key);
    return w && nowMs - w.startMs < this.windowMs ? w.count : 0;
  }

  /** ms from `nowMs` until the current window of `key` ends (0 when none is open). */
  remainingMs(key: string, nowMs: number): number {
    const w = this.windows.get(key);
    return w ? Math.max(0, w.startMs + this.windowMs - nowMs) : 0;
  }

  /** Number of keys remembered. */
  get size(): number {
    return this.windows.size;
  }

  /** Forget a key. */
  reset(key: string): void {
    this.windows.delete(key);
  }

  private evictOldest(): void {
    const first = this.windows.keys().next();
    if (!first.done) this.windows.delete(first.value);
  }
}
