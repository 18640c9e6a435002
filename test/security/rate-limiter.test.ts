/** Token buckets and fixed windows per key (security/rate-limiter.ts), with a fake clock. */
import { describe, expect, it } from 'vitest';
import { RATE_LIMITER_MAX_KEYS, TokenBucketLimiter, WindowCounter } from '../../src/security/rate-limiter.js';

describe('TokenBucketLimiter', () => {
  it('allows the burst, then the sustained rate', () => {
    const l = new TokenBucketLimiter({ ratePerSecond: 10, burst: 3 });
    expect([l.take('a', 0), l.take('a', 0), l.take('a', 0), l.take('a', 0)]).toEqual([true, true, true, false]);
    expect(l.take('b', 0)).toBe(true); // keys are independent
    expect(l.take('a', 50)).toBe(false); // half a token
    expect(l.take('a', 100)).toBe(true);
    expect(l.take('a', 100)).toBe(false);
    expect(l.take('a', 10_000)).toBe(true); // refilled, capped at the burst
    expect([l.take('a', 10_000), l.take('a', 10_000), l.take('a', 10_000)]).toEqual([true, true, false]);
  });

  it('stays bounded: the oldest key is forgotten', () => {
    const l = new TokenBucketLimiter({ ratePerSecond: 1, burst: 1, maxKeys: 100 });
    for (let i = 0; i < 1000; i++) l.take(`k${i}`, 0);
    expect(l.size).toBe(100);
    expect(() => new TokenBucketLimiter({ ratePerSecond: 0, burst: 1 })).toThrow(RangeError);
  });
});

describe('WindowCounter', () => {
  it('counts per window and restarts after it', () => {
    const c = new WindowCounter({ windowMs: 1000 });
    expect([c.add('u', 0), c.add('u', 500), c.add('u', 999)]).toEqual([1, 2, 3]);
    expect(c.remainingMs('u', 400)).toBe(600);
    expect(c.count('u', 1000)).toBe(0);
    expect(c.add('u', 1000)).toBe(1);
  });

  it('remembers at most RATE_LIMITER_MAX_KEYS keys by default: the oldest key is forgotten, its count starts again', () => {
    const c = new WindowCounter({ windowMs: 60_000 });
    let most = 0;
    for (let i = 0; i <= RATE_LIMITER_MAX_KEYS; i++) {
      c.add(`k${i}`, 0);
      most = Math.max(most, c.size);
    }
    expect(most).toBe(RATE_LIMITER_MAX_KEYS);
    expect(c.count('k0', 1)).toBe(0);
    expect(c.count('k1', 1)).toBe(1);
    expect(c.add(`k${RATE_LIMITER_MAX_KEYS}`, 1)).toBe(2);
    // A key counted again in its window takes no more room.
    expect(c.size).toBe(RATE_LIMITER_MAX_KEYS);
  });
});

describe('TokenBucketLimiter default bound', () => {
  it('remembers at most RATE_LIMITER_MAX_KEYS keys: the oldest forgotten gets a full bucket again', () => {
    const l = new TokenBucketLimiter({ ratePerSecond: 1, burst: 1 });
    let most = 0;
    for (let i = 0; i <= RATE_LIMITER_MAX_KEYS; i++) {
      l.take(`k${i}`, 0);
      most = Math.max(most, l.size);
    }
    expect(most).toBe(RATE_LIMITER_MAX_KEYS);
    expect(l.take('k1', 0)).toBe(false); // still remembered: its token is spent
    expect(l.take('k0', 0)).toBe(true); // forgotten: a new bucket
    expect(l.size).toBe(RATE_LIMITER_MAX_KEYS);
  });
});
