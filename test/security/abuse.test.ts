import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log.js';
import { AddressSet, AddressSetError } from '../../src/security/address-set.js';
import { AuthFailureGuard } from '../../src/security/auth-failures.js';
import { BanList } from '../../src/security/ban-list.js';
import { TokenBucketLimiter, WindowCounter } from '../../src/security/rate-limiter.js';
import { ScannerFilter } from '../../src/security/scanner-filter.js';
import { SourceGate } from '../../src/security/source-gate.js';
import type { SipMessage } from '../../src/sip/message.js';
import type { Inbound } from '../../src/transport/types.js';

function inbound(address: string, userAgent?: string, flowId?: string): Inbound {
  const msg: SipMessage = {
    kind: 'request',
    method: 'OPTIONS',
    uri: 'sip:example.test',
    headers: userAgent ? [{ name: 'User-Agent', value: userAgent }] : [],
    body: Buffer.alloc(0),
  } as SipMessage;
  return { msg, source: { transport: flowId ? 'tcp' : 'udp', remoteAddress: address, remotePort: 5060, localAddress: '127.0.0.1', localPort: 5060, flowId } };
}

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

describe('AddressSet', () => {
  it('matches addresses and prefixes of both families, IPv4-mapped as IPv4', () => {
    const s = new AddressSet(['127.0.0.0/8', '::1', '2001:db8::/32', '192.0.2.7']);
    expect(s.has('127.1.2.3')).toBe(true);
    expect(s.has('::ffff:127.0.0.1')).toBe(true);
    expect(s.has('128.0.0.1')).toBe(false);
    expect(s.has('::1')).toBe(true);
    expect(s.has('[::1]')).toBe(true);
    expect(s.has('::2')).toBe(false);
    expect(s.has('2001:db8:ffff::1')).toBe(true);
    expect(s.has('2001:db9::1')).toBe(false);
    expect(s.has('192.0.2.7')).toBe(true);
    expect(s.has('192.0.2.8')).toBe(false);
    expect(s.has('not an address')).toBe(false);
    expect(new AddressSet([]).has('127.0.0.1')).toBe(false);
    expect(() => new AddressSet(['10.0.0.0/33'])).toThrow(AddressSetError);
    expect(() => new AddressSet(['example.test'])).toThrow(AddressSetError);
  });
});

describe('ScannerFilter', () => {
  it('matches User-Agent substrings case-insensitively; sipsak passes; an empty list matches nothing', () => {
    const f = new ScannerFilter();
    expect(f.matchesUserAgent('friendly-scanner')).toBe(true);
    expect(f.matchesUserAgent('VaxSIPUserAgent/3.1')).toBe(true);
    expect(f.matchesUserAgent('sipcli/v1.8')).toBe(true);
    expect(f.matchesUserAgent('sipsak 0.9.8.1')).toBe(false);
    expect(f.matchesUserAgent('baresip v1.0.0 (x86_64/linux)')).toBe(false);
    expect(f.matchesUserAgent(undefined)).toBe(false);
    expect(new ScannerFilter([]).matchesUserAgent('friendly-scanner')).toBe(false);
    expect(new ScannerFilter(['MyBot']).matchesUserAgent('xx mybot yy')).toBe(true);
  });
});

describe('BanList and SourceGate', () => {
  function setup(exempt: string[] = [], nowMs = { t: 0 }) {
    const changes: number[] = [];
    const bans = new BanList({ logger: silentLogger, nowMs: () => nowMs.t, onChange: (b) => changes.push(b.length) });
    const dropped: string[] = [];
    const gate = new SourceGate({
      bans,
      exempt: new AddressSet(exempt),
      requestsPerSecond: 10,
      burst: 5,
      banSeconds: 60,
      scanners: new ScannerFilter(),
      logger: silentLogger,
      onDroppedBanned: (s) => dropped.push(s.flowId ?? s.remoteAddress),
      nowMs: () => nowMs.t,
    });
    return { bans, gate, nowMs, changes, dropped };
  }

  it('bans a source over its rate, drops it until the ban ends, and leaves others alone', () => {
    const { bans, gate, nowMs, changes, dropped } = setup();
    const results = Array.from({ length: 8 }, () => gate.admit(inbound('192.0.2.1')));
    expect(results).toEqual([true, true, true, true, true, false, false, false]);
    expect(bans.list().map((b) => [b.address, b.reason, b.until])).toEqual([['192.0.2.1', 'request-rate', 60_000]]);
    expect(bans.totalBans).toBe(1);
    expect(bans.droppedMessages).toBe(2);
    expect(dropped).toHaveLength(3);
    expect(gate.admit(inbound('192.0.2.2'))).toBe(true);
    nowMs.t = 59_999;
    expect(gate.admit(inbound('192.0.2.1'))).toBe(false);
    nowMs.t = 60_000;
    expect(gate.admit(inbound('192.0.2.1'))).toBe(true);
    expect(bans.list()).toEqual([]);
    expect(changes).toEqual([1, 0]);
  });

  it('never bans exempt sources, and lifts a ban placed on one', () => {
    const { bans, gate } = setup(['192.0.2.0/24']);
    for (let i = 0; i < 50; i++) expect(gate.admit(inbound('192.0.2.9'))).toBe(true);
    bans.ban('192.0.2.9', 60, 'manual');
    expect(gate.admit(inbound('192.0.2.9'))).toBe(true);
    expect(bans.list()).toEqual([]);
  });

  it('drops scanner requests silently without banning; a banned stream source reports its flow', () => {
    const { bans, gate, dropped } = setup();
    expect(gate.admit(inbound('198.51.100.1', 'friendly-scanner'))).toBe(false);
    expect(gate.scannerDrops).toBe(1);
    expect(bans.list()).toEqual([]);
    bans.ban('198.51.100.2', 10, 'auth-failures');
    expect(gate.admit(inbound('198.51.100.2', undefined, 'tcp-7'))).toBe(false);
    expect(dropped).toEqual(['tcp-7']);
  });

  it('a second ban keeps the later expiry and counts the address history', () => {
    const { bans } = setup();
    bans.ban('203.0.113.5', 600, 'auth-failures', {}, 0);
    const b = bans.ban('203.0.113.5', 60, 'request-rate', {}, 1000);
    expect(b.until).toBe(600_000);
    bans.unban('203.0.113.5');
    expect(bans.ban('203.0.113.5', 60, 'request-rate', {}, 2000).count).toBe(2);
  });
});

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
