/** Failed-authentication bans and user locks (security/auth-failures.ts), with a fake clock. */
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log.js';
import { AddressSet } from '../../src/security/address-set.js';
import { AuthFailureGuard, DEFAULT_KNOWN_ADDRESSES_PER_USER, MAX_KNOWN_USERS, MAX_USER_LOCKS } from '../../src/security/auth-failures.js';
import { BanList } from '../../src/security/ban-list.js';
import { ownerOf, SECURITY_CHANNELS } from '../../src/security/worker-peers.js';
import { recordingPeers } from '../helpers/recording-peers.js';

describe('AuthFailureGuard', () => {
  it('bans a source after per_source failures and locks a user for unknown addresses only', () => {
    const nowMs = { t: 0 };
    const bans = new BanList({ logger: silentLogger, nowMs: () => nowMs.t });
    const g = new AuthFailureGuard({ bans, exempt: new AddressSet([]), perSource: 3, perUser: 4, windowSeconds: 60, banSeconds: 600, logger: silentLogger, nowMs: () => nowMs.t });
    g.succeeded('alice', '192.0.2.50');
    g.failed('alice', '192.0.2.1');
    g.failed('alice', '192.0.2.1');
    expect(bans.isBanned('192.0.2.1')).toBe(false);
    g.failed('alice', '192.0.2.1');
    expect(bans.list().map((b) => [b.address, b.reason, b.until])).toEqual([['192.0.2.1', 'auth-failures', 600_000]]);
    expect(g.isLocked('alice', '192.0.2.99')).toBe(false);
    g.failed('alice', '192.0.2.2');
    expect(g.isLocked('alice', '192.0.2.99')).toBe(true);
    expect(g.isLocked('alice', '192.0.2.50')).toBe(false); // known address
    expect(g.isLocked('bob', '192.0.2.99')).toBe(false);
    nowMs.t = 60_000; // the window ended
    expect(g.isLocked('alice', '192.0.2.99')).toBe(false);
  });
});

describe('AuthFailureGuard bounds (docs/LIMITS.md)', () => {
  it('remembers known addresses of at most MAX_KNOWN_USERS users (the one remembered longest ago forgotten) and DEFAULT_KNOWN_ADDRESSES_PER_USER per user', () => {
    const bans = new BanList({ logger: silentLogger });
    const g = new AuthFailureGuard({ bans, exempt: new AddressSet([]), perSource: 0, perUser: 1, windowSeconds: 60, banSeconds: 600, logger: silentLogger });
    let most = 0;
    for (let i = 0; i <= MAX_KNOWN_USERS; i++) {
      g.succeeded(`u${i}`, '192.0.2.1');
      most = Math.max(most, g.sizes.knownUsers);
    }
    expect(most).toBe(MAX_KNOWN_USERS);
    expect(g.sizes.knownUsers).toBe(MAX_KNOWN_USERS);
    // Lock the first, second and last user: only the first has lost its known address.
    for (const u of ['u0', 'u1', `u${MAX_KNOWN_USERS}`]) g.failed(u, '198.51.100.1');
    expect(g.isLocked('u0', '192.0.2.1')).toBe(true);
    expect(g.isLocked('u1', '192.0.2.1')).toBe(false);
    expect(g.isLocked(`u${MAX_KNOWN_USERS}`, '192.0.2.1')).toBe(false);

    // Per user: the most recent addresses are kept, the oldest dropped.
    for (let i = 0; i <= DEFAULT_KNOWN_ADDRESSES_PER_USER; i++) g.succeeded('u1', `203.0.113.${i}`);
    expect(g.isLocked('u1', '203.0.113.0')).toBe(true);
    for (let i = 1; i <= DEFAULT_KNOWN_ADDRESSES_PER_USER; i++) expect(g.isLocked('u1', `203.0.113.${i}`)).toBe(false);
    expect(g.isLocked('u1', '192.0.2.1')).toBe(true);
    expect(g.sizes.knownUsers).toBe(MAX_KNOWN_USERS);
  });

  it('keeps at most MAX_USER_LOCKS locks broadcast by other workers; the oldest is forgotten', async () => {
    const peers = recordingPeers(0, 2);
    const g = new AuthFailureGuard({ bans: new BanList({ logger: silentLogger }), exempt: new AddressSet([]), perSource: 0, perUser: 1, windowSeconds: 60, banSeconds: 600, logger: silentLogger, peers });
    const users: string[] = [];
    for (let i = 0; users.length <= MAX_USER_LOCKS; i++) if (ownerOf(`l${i}`, 2) === 1) users.push(`l${i}`);
    const until = Date.now() + 3_600_000;
    let most = 0;
    for (const user of users) {
      peers.deliver(1, SECURITY_CHANNELS.userLocked, { user, untilMs: until });
      most = Math.max(most, g.sizes.locks);
    }
    expect(most).toBe(MAX_USER_LOCKS);
    expect(g.sizes.locks).toBe(MAX_USER_LOCKS);
    // The first lock is forgotten: not locked here, and the owner is not asked.
    expect(g.isLocked(users[0]!, '192.0.2.1')).toBe(false);
    // The others hold: the owner (answering "not known") is asked, and the attempt is refused.
    expect(await g.isLocked(users[1]!, '192.0.2.1')).toBe(true);
    expect(await g.isLocked(users[MAX_USER_LOCKS]!, '192.0.2.1')).toBe(true);
    // A lock heard again for a held user takes no more room.
    peers.deliver(1, SECURITY_CHANNELS.userLocked, { user: users[1], untilMs: until });
    expect(g.sizes.locks).toBe(MAX_USER_LOCKS);
    expect(await g.isLocked(users[2]!, '192.0.2.1')).toBe(true);
  });
});
