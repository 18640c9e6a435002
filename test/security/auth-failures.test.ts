/** Failed-authentication bans and user locks (security/auth-failures.ts), with a fake clock. */
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log.js';
import { AddressSet } from '../../src/security/address-set.js';
import { AuthFailureGuard } from '../../src/security/auth-failures.js';
import { BanList } from '../../src/security/ban-list.js';

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
