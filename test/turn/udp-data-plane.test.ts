/** The one place that decides which UDP data plane runs (udp-data-plane.ts), and the bounded retransmission cache. */
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log.js';
import type { FiveTuple } from '../../src/turn/five-tuple.js';
import { loadNativeAddon } from '../../src/turn/native-addon.js';
import { TRANSACTION_CACHE_TTL_MS, TransactionCache } from '../../src/turn/transaction-cache.js';
import { chooseUdpDataPlane } from '../../src/turn/udp-data-plane.js';

describe('chooseUdpDataPlane', () => {
  const addonLoads = !('error' in loadNativeAddon());
  it('runs typescript when asked, or when a bandwidth cap is set and nothing is asked', () => {
    expect(chooseUdpDataPlane({ requested: 'typescript', bandwidthCapped: false }, silentLogger)).toBe('typescript');
    expect(chooseUdpDataPlane({ requested: 'typescript', bandwidthCapped: true }, silentLogger)).toBe('typescript');
    expect(chooseUdpDataPlane({ bandwidthCapped: true }, silentLogger)).toBe('typescript');
  });
  it('refuses native with a bandwidth cap, naming the keys', () => {
    expect(() => chooseUdpDataPlane({ requested: 'native', bandwidthCapped: true }, silentLogger)).toThrow(/turn\.bandwidth_limit.*turn\.data_plane/);
  });
  it('runs native by default when the addon loads', () => {
    expect(chooseUdpDataPlane({ bandwidthCapped: false }, silentLogger)).toBe(addonLoads ? 'native' : 'typescript');
    if (addonLoads) expect(chooseUdpDataPlane({ requested: 'native', bandwidthCapped: false }, silentLogger)).toBe('native');
  });
});

describe('TransactionCache (RFC 8489 §6.3.1 retransmissions)', () => {
  const ft = (port: number): FiveTuple => ({ transport: 'udp', clientAddress: '127.0.0.1', clientPort: port, serverAddress: '127.0.0.1', serverPort: 3478 });
  const tid = Buffer.alloc(12, 7);
  it('answers the same 5-tuple and transaction id until 40 s, then forgets', async () => {
    const c = new TransactionCache();
    c.put(ft(1), tid, Promise.resolve(Buffer.from('answer')), 0);
    expect((await c.get(ft(1), tid, TRANSACTION_CACHE_TTL_MS - 1))?.toString()).toBe('answer');
    expect(c.get(ft(2), tid, 1)).toBeUndefined();
    expect(c.get(ft(1), Buffer.alloc(12, 8), 1)).toBeUndefined();
    expect(c.get(ft(1), tid, TRANSACTION_CACHE_TTL_MS)).toBeUndefined();
    expect(c.size).toBe(0);
  });
  it('holds at most maxEntries, forgetting the oldest; sweep drops expired ones', () => {
    const c = new TransactionCache(3);
    for (let p = 1; p <= 5; p++) c.put(ft(p), tid, Promise.resolve(Buffer.from([p])), p);
    expect(c.size).toBe(3);
    expect(c.get(ft(1), tid, 10)).toBeUndefined();
    expect(c.get(ft(5), tid, 10)).toBeDefined();
    c.sweep(TRANSACTION_CACHE_TTL_MS + 4);
    expect(c.size).toBe(1);
  });
  it('forgets an answer that was not sent, so the retransmission is processed again', async () => {
    const c = new TransactionCache();
    c.put(ft(1), tid, Promise.resolve(undefined), 0);
    await new Promise((r) => setImmediate(r));
    expect(c.get(ft(1), tid, 1)).toBeUndefined();
  });
});
