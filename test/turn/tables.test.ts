import { describe, expect, it } from 'vitest';
import { Allocation, AllocationTable, type RelayHandle } from '../../src/turn/allocation.js';
import { CHANNEL_COOLDOWN_MS, CHANNEL_LIFETIME_MS, ChannelTable } from '../../src/turn/channel-binding.js';
import { formatIp, parseIPv6 } from '../../src/security/ip-address.js';
import { checkNonce, createNonce } from '../../src/auth/nonce.js';
import { isPeerAllowed } from '../../src/turn/peer-policy.js';
import { PERMISSION_LIFETIME_MS, PermissionTable } from '../../src/turn/permission.js';
import { TurnError } from '../../src/turn/turn-error.js';
import { TRANSACTION_CACHE_TTL_MS, TransactionCache } from '../../src/turn/transaction-cache.js';
import type { FiveTuple } from '../../src/turn/five-tuple.js';

const peer = (address: string, port: number) => ({ family: 'IPv4' as const, address, port });

describe('PermissionTable (RFC 8656 §9)', () => {
  it('keys by IP, lives 300 s, refreshes', () => {
    const t = new PermissionTable();
    t.install('192.0.2.1', 1000);
    expect(PERMISSION_LIFETIME_MS).toBe(300_000);
    expect(t.has('192.0.2.1', 1000 + 299_999)).toBe(true);
    expect(t.has('192.0.2.1', 1000 + 300_000)).toBe(false);
    t.install('192.0.2.1', 200_000);
    expect(t.has('192.0.2.1', 400_000)).toBe(true);
    expect(t.has('192.0.2.2', 400_000)).toBe(false);
    expect(t.sweep(500_000)).toBe(1);
    expect(t.size).toBe(0);
  });
});

describe('ChannelTable (RFC 8656 §12)', () => {
  it('binds, refreshes, and refuses conflicts with 400', () => {
    const t = new ChannelTable();
    t.bind(0x4000, peer('192.0.2.1', 5000), 0);
    t.bind(0x4000, peer('192.0.2.1', 5000), 100_000);
    expect(t.getByChannel(0x4000, 100_000 + CHANNEL_LIFETIME_MS - 1)?.peer.port).toBe(5000);
    expect(t.getByPeer('192.0.2.1', 5000, 0)?.channel).toBe(0x4000);
    const code = (f: () => void) => {
      try {
        f();
      } catch (e) {
        return (e as TurnError).status;
      }
      return 0;
    };
    expect(code(() => t.bind(0x4000, peer('192.0.2.1', 5001), 0))).toBe(400);
    expect(code(() => t.bind(0x4001, peer('192.0.2.1', 5000), 0))).toBe(400);
    expect(code(() => t.bind(0x3fff, peer('192.0.2.9', 1), 0))).toBe(400);
    expect(code(() => t.bind(0x8000, peer('192.0.2.9', 1), 0))).toBe(400);
    expect(code(() => t.bind(0x7fff, peer('192.0.2.9', 1), 0))).toBe(0);
  });
  it('expires after 600 s and keeps the number reserved for 300 s more', () => {
    const t = new ChannelTable();
    t.bind(0x4000, peer('192.0.2.1', 5000), 0);
    expect(t.getByChannel(0x4000, CHANNEL_LIFETIME_MS)).toBeUndefined();
    expect(() => t.bind(0x4000, peer('192.0.2.2', 5000), CHANNEL_LIFETIME_MS + 1)).toThrow(TurnError);
    expect(t.sweep(CHANNEL_LIFETIME_MS + CHANNEL_COOLDOWN_MS)).toBe(1);
    t.bind(0x4000, peer('192.0.2.2', 5000), CHANNEL_LIFETIME_MS + CHANNEL_COOLDOWN_MS);
    expect(t.getByChannel(0x4000, CHANNEL_LIFETIME_MS + CHANNEL_COOLDOWN_MS)?.peer.address).toBe('192.0.2.2');
  });
});

describe('AllocationTable', () => {
  it('indexes by 5-tuple and relayed address and sweeps expired allocations', () => {
    const relay: RelayHandle = { relayed: peer('127.0.0.1', 50000), send: () => undefined, close: () => undefined };
    const ft = { transport: 'udp' as const, clientAddress: '127.0.0.1', clientPort: 4000, serverAddress: '127.0.0.1', serverPort: 3478 };
    const t = new AllocationTable();
    const a = new Allocation(ft, 'alice', relay, 600, 0, Buffer.alloc(12));
    t.add(a);
    expect(t.get({ ...ft })).toBe(a);
    expect(t.getByRelay({ address: '127.0.0.1', port: 50000 })).toBe(a);
    expect(() => t.add(a)).toThrow();
    expect(t.sweep(599_999)).toEqual([]);
    expect(t.sweep(600_000)).toEqual([a]);
    expect(t.size).toBe(0);
    expect(t.getByRelay({ address: '127.0.0.1', port: 50000 })).toBeUndefined();
  });
});

describe('nonce', () => {
  const secret = Buffer.from('s');
  it('is valid for its client within the TTL, stale after, invalid elsewhere', () => {
    const n = createNonce(secret, 1_000_000, { context: 'udp:127.0.0.1:1' });
    expect(n).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(checkNonce(secret, n, 60, 1_000_000 + 60_000, 'udp:127.0.0.1:1')).toBe('valid');
    expect(checkNonce(secret, n, 60, 1_000_000 + 61_000, 'udp:127.0.0.1:1')).toBe('stale');
    expect(checkNonce(secret, n, 60, 1_000_000, 'udp:127.0.0.1:2')).toBe('invalid');
    expect(checkNonce(Buffer.from('t'), n, 60, 1_000_000, 'udp:127.0.0.1:1')).toBe('invalid');
    expect(checkNonce(secret, 'zz', 60, 1_000_000, 'udp:127.0.0.1:1')).toBe('invalid');
  });
});

describe('peer policy', () => {
  it('refuses loopback unless allowed, and always 0/8, multicast, broadcast, ::, ff00::/8', () => {
    const deny = { allowLoopbackPeers: false };
    const allow = { allowLoopbackPeers: true };
    expect(isPeerAllowed('127.0.0.1', deny)).toBe(false);
    expect(isPeerAllowed('127.5.5.5', allow)).toBe(true);
    expect(isPeerAllowed('::1', deny)).toBe(false);
    expect(isPeerAllowed('::1', allow)).toBe(true);
    expect(isPeerAllowed('::ffff:127.0.0.1', deny)).toBe(false);
    for (const a of ['0.0.0.0', '0.1.2.3', '224.0.0.1', '239.255.255.250', '255.255.255.255', '::', 'ff02::1', 'nonsense']) {
      expect(isPeerAllowed(a, allow)).toBe(false);
    }
    expect(isPeerAllowed('8.8.8.8', deny)).toBe(true);
    expect(isPeerAllowed('2606:4700::1111', deny)).toBe(true);
  });
});

describe('ip-address', () => {
  it('formats IPv6 per RFC 5952', () => {
    expect(formatIp(parseIPv6('2001:0db8:0000:0000:0000:0000:0000:0001')!)).toBe('2001:db8::1');
    expect(formatIp(parseIPv6('::')!)).toBe('::');
    expect(formatIp(parseIPv6('::ffff:1.2.3.4')!)).toBe('::ffff:102:304');
    expect(formatIp(parseIPv6('2001:db8:0:1:1:1:1:1')!)).toBe('2001:db8:0:1:1:1:1:1');
    expect(parseIPv6('1::2::3')).toBeUndefined();
  });
});

describe('TransactionCache (answers to retransmitted requests)', () => {
  it('holds at most maxEntries, dropping the oldest, and forgets an answer after 40 s', async () => {
    const cache = new TransactionCache(3);
    const ft = (port: number): FiveTuple => ({ transport: 'udp', clientAddress: '192.0.2.1', clientPort: port, serverAddress: '192.0.2.2', serverPort: 3478 });
    const tid = Buffer.alloc(12, 1);
    for (let p = 1; p <= 4; p++) cache.put(ft(p), tid, Promise.resolve(Buffer.from([p])), 0);
    expect(cache.size).toBe(3);
    expect(cache.get(ft(1), tid, 0)).toBeUndefined();
    expect(await cache.get(ft(4), tid, 0)).toEqual(Buffer.from([4]));
    expect(cache.get(ft(4), tid, TRANSACTION_CACHE_TTL_MS)).toBeUndefined();
  });
});
