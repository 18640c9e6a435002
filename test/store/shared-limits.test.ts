/**
 * The bounded tables a node keeps beside the Redis store's shared counts
 * (docs/LIMITS.md): the calls whose end it follows (store/redis-calls.ts
 * SharedCallOwners) and the shared bans it already applied (store/redis-abuse.ts
 * KnownSharedBans).
 */
import { describe, expect, it } from 'vitest';
import { KnownSharedBans, MAX_SHARED_BANS } from '../../src/store/redis-abuse.js';
import { MAX_SHARED_CALLS, SharedCallOwners } from '../../src/store/redis-calls.js';

describe('SharedCallOwners', () => {
  it('follows at most MAX_SHARED_CALLS calls; the oldest is forgotten (its end is then not reported here)', () => {
    const owners = new SharedCallOwners();
    let most = 0;
    for (let i = 0; i <= MAX_SHARED_CALLS; i++) {
      owners.add(`c${i}`, `user${i % 7}`);
      most = Math.max(most, owners.size);
    }
    expect(most).toBe(MAX_SHARED_CALLS);
    expect(owners.take('c0')).toBeUndefined();
    expect(owners.take('c1')).toBe('user1');
    expect(owners.take('c1')).toBeUndefined(); // taken once
    expect(owners.take(`c${MAX_SHARED_CALLS}`)).toBe(`user${MAX_SHARED_CALLS % 7}`);
    expect(owners.size).toBe(MAX_SHARED_CALLS - 2);
    // A call followed again takes no more room and forgets nothing.
    owners.add('c2', 'user2');
    owners.add('n1', 'nina');
    owners.add('n2', 'nina');
    expect(owners.size).toBe(MAX_SHARED_CALLS);
    expect(owners.take('c2')).toBe('user2');
    expect(owners.take('c3')).toBe('user3');
  });
});

describe('KnownSharedBans', () => {
  it('knows at most MAX_SHARED_BANS bans: when full the expired ones are dropped, and all when none is', () => {
    const now = 1_000_000_000;
    const bans = new KnownSharedBans();
    const address = (i: number) => `10.${(i >> 16) & 0xff}.${(i >> 8) & 0xff}.${i & 0xff}`;
    // Full: every third ban expired.
    let most = 0;
    for (let i = 0; i < MAX_SHARED_BANS; i++) {
      bans.remember(address(i), i % 3 === 0 ? now - 1 : now + 600_000, now);
      most = Math.max(most, bans.size);
    }
    expect(most).toBe(MAX_SHARED_BANS);
    expect(bans.isKnown(address(0), now - 1)).toBe(true);
    // One more: the expired are dropped, the others kept.
    bans.remember('192.0.2.1', now + 600_000, now);
    const expired = Math.ceil(MAX_SHARED_BANS / 3);
    expect(bans.size).toBe(MAX_SHARED_BANS - expired + 1);
    expect(bans.isKnown(address(0), now - 1)).toBe(false);
    expect(bans.isKnown(address(1), now + 600_000)).toBe(true);
    expect(bans.isKnown(address(1), now + 601_001)).toBe(false); // a longer ban is news
    expect(bans.isKnown('192.0.2.1', now + 600_000)).toBe(true);
    // Full again with none expired: all are forgotten, the new one kept.
    for (let i = 0; bans.size < MAX_SHARED_BANS; i++) bans.remember(`172.16.${(i >> 8) & 0xff}.${i & 0xff}:${i}`, now + 600_000, now);
    expect(bans.size).toBe(MAX_SHARED_BANS);
    bans.remember(address(1), now + 600_000, now); // held already: nothing dropped
    expect(bans.size).toBe(MAX_SHARED_BANS);
    bans.remember('198.51.100.1', now + 600_000, now);
    expect(bans.size).toBe(1);
    expect(bans.isKnown('198.51.100.1', now + 600_000)).toBe(true);
    expect(bans.isKnown(address(1), now + 600_000)).toBe(false);
  });
});
