/**
 * The bounded tables a node keeps beside the Redis store's shared counts
 * (docs/LIMITS.md): the calls whose end it follows (store/redis-calls.ts
 * SharedCallOwners).
 */
import { describe, expect, it } from 'vitest';
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
