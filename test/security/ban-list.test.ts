/** The ban list (security/ban-list.ts), with a fake clock: expiry, the later of two bans, address history, the bound. */
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log.js';
import { BanList } from '../../src/security/ban-list.js';

describe('BanList', () => {
  it('a ban lasts durationS from nowMs and ends by itself, telling onChange both times', () => {
    const changes: string[][] = [];
    const bans = new BanList({ logger: silentLogger, nowMs: () => 0, onChange: (b) => changes.push(b.map((x) => x.address)) });
    const b = bans.ban('192.0.2.1', 30, 'request-rate');
    expect(b).toMatchObject({ address: '192.0.2.1', reason: 'request-rate', since: 0, until: 30_000, count: 1 });
    expect(bans.isBanned('192.0.2.1', 29_999)).toBe(true);
    expect(bans.isBanned('192.0.2.1', 30_000)).toBe(false);
    expect(changes).toEqual([['192.0.2.1'], []]);
  });

  it('a second ban keeps the later expiry and counts the address history', () => {
    const bans = new BanList({ logger: silentLogger });
    bans.ban('203.0.113.5', 600, 'auth-failures', {}, 0);
    const b = bans.ban('203.0.113.5', 60, 'request-rate', {}, 1000);
    expect(b.until).toBe(600_000);
    bans.unban('203.0.113.5');
    expect(bans.ban('203.0.113.5', 60, 'request-rate', {}, 2000).count).toBe(2);
  });

  it('holds at most maxEntries bans: the oldest is lifted first', () => {
    const bans = new BanList({ logger: silentLogger, maxEntries: 3, nowMs: () => 0 });
    for (const a of ['192.0.2.1', '192.0.2.2', '192.0.2.3', '192.0.2.4']) bans.ban(a, 60, 'request-rate');
    expect(bans.list().map((b) => b.address).sort()).toEqual(['192.0.2.2', '192.0.2.3', '192.0.2.4']);
  });

  it('keeps the ban history of at most maxEntries addresses: when full it is emptied, and counts start again', () => {
    const bans = new BanList({ logger: silentLogger, maxEntries: 3, nowMs: () => 0 });
    expect(bans.ban('192.0.2.1', 60, 'request-rate').count).toBe(1);
    bans.unban('192.0.2.1');
    expect(bans.ban('192.0.2.1', 60, 'request-rate').count).toBe(2);
    bans.ban('192.0.2.2', 60, 'request-rate');
    bans.ban('192.0.2.3', 60, 'request-rate');
    // A fourth address: the history (three addresses) is emptied first.
    expect(bans.ban('192.0.2.4', 60, 'request-rate').count).toBe(1);
    bans.unban('192.0.2.2');
    expect(bans.ban('192.0.2.2', 60, 'request-rate').count).toBe(1);
    expect(bans.list()).toHaveLength(3);
  });
});
