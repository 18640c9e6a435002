/** RFC 2782 ordering of SRV records, the bounded TTL cache and the failed-target table (pure, no DNS). */
import { describe, expect, it } from 'vitest';
import { orderSrvRecords } from '../../src/dns/srv-order.js';
import { TtlCache } from '../../src/dns/ttl-cache.js';
import { FailedTargets } from '../../src/dns/failed-targets.js';
import type { SrvRecord } from '../../src/dns/resolver.js';

const srv = (priority: number, weight: number, target: string): SrvRecord => ({ priority, weight, port: 5060, target });

describe('orderSrvRecords (RFC 2782)', () => {
  it('puts lower priorities first whatever the weights', () => {
    const out = orderSrvRecords([srv(20, 100, 'c'), srv(10, 0, 'a'), srv(15, 5, 'b')], () => 0.99);
    expect(out.map((r) => r.target)).toEqual(['a', 'b', 'c']);
  });

  it('picks by running sum: a number in [0, sum] selects the first record whose running sum reaches it', () => {
    const recs = [srv(10, 90, 'heavy'), srv(10, 10, 'light')];
    // sum 100: pick = floor(r * 101); 0..90 → heavy, 91..100 → light.
    expect(orderSrvRecords(recs, () => 90 / 101).map((r) => r.target)).toEqual(['heavy', 'light']);
    expect(orderSrvRecords(recs, () => 91 / 101).map((r) => r.target)).toEqual(['light', 'heavy']);
  });

  it('gives zero-weight records a chance only when the pick is 0, and orders all-zero groups', () => {
    const recs = [srv(10, 50, 'w'), srv(10, 0, 'z')];
    expect(orderSrvRecords(recs, () => 0).map((r) => r.target)).toEqual(['z', 'w']);
    expect(orderSrvRecords(recs, () => 0.5).map((r) => r.target)).toEqual(['w', 'z']);
    expect(orderSrvRecords([srv(1, 0, 'x'), srv(1, 0, 'y')], () => 0.7)).toHaveLength(2);
  });

  it('treats a lone "." target as "service not available"', () => {
    expect(orderSrvRecords([srv(0, 0, '')])).toEqual([]);
    expect(orderSrvRecords([srv(0, 0, ''), srv(1, 0, 'a')]).map((r) => r.target)).toEqual(['a']);
  });
});

describe('TtlCache', () => {
  it('expires entries at their TTL and holds at most maxEntries (least recently used evicted)', () => {
    let now = 0;
    const c = new TtlCache<string, number>(2, () => now);
    c.set('a', 1, 1000);
    c.set('b', 2, 1000);
    expect(c.get('a')).toBe(1); // a is now the most recently used
    c.set('c', 3, 1000);
    expect(c.size).toBe(2);
    expect(c.get('b')).toBeUndefined();
    expect(c.get('a')).toBe(1);
    now = 1000;
    expect(c.get('a')).toBeUndefined();
    c.set('d', 4, 0);
    expect(c.get('d')).toBeUndefined();
    expect(() => new TtlCache(0)).toThrow(RangeError);
  });
});

describe('FailedTargets (RFC 3263 §4.3)', () => {
  it('remembers a failure for failed_target_seconds, bounded, and forgets it when the target answers', () => {
    let now = 0;
    const f = new FailedTargets(30, 2, () => now);
    const a = { transport: 'tls' as const, address: '127.0.0.2', port: 5061 };
    f.markFailed(a, 'ECONNREFUSED');
    expect(f.failure(a)).toBe('ECONNREFUSED');
    expect(f.failure({ ...a, transport: 'tcp' })).toBeUndefined();
    now = 29_999;
    expect(f.failure(a)).toBe('ECONNREFUSED');
    now = 30_000;
    expect(f.failure(a)).toBeUndefined();
    f.markFailed(a, '503');
    f.markAlive(a);
    expect(f.failure(a)).toBeUndefined();
    for (let i = 0; i < 5; i++) f.markFailed({ ...a, port: i }, 'x');
    expect(f.failure({ ...a, port: 0 })).toBeUndefined();
    expect(f.failure({ ...a, port: 4 })).toBe('x');
    expect(new FailedTargets(0, 2).failure(a)).toBeUndefined();
  });
});
