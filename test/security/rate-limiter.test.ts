/** Token buckets and fixed windows per key (security/rate-limiter.ts), with a fake clock. */
import { describe, expect, it } from 'vitest';
import { TokenBucketLimiter, WindowCounter } from '../../src/security/rate-limiter.js';

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
});
