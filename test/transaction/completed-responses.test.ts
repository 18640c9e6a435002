/**
 * The Timer J log of completed non-INVITE server transactions: bytes and
 * destination come back exactly, entries expire oldest first, response chunks
 * are released once their entries expired, large responses and re-added keys
 * are handled.
 */
import { describe, expect, it } from 'vitest';
import { CompletedResponses, completedKeyHash, MAX_INTERNED, SPARE_CHUNKS } from '../../src/transaction/completed-responses.js';

const dest = (port: number) => ({ transport: 'udp' as const, address: '127.0.0.1', port });
const wire = (i: number, size = 400) => Buffer.from(`SIP/2.0 200 OK\r\nCSeq: ${i} REGISTER\r\n`.padEnd(size, 'x'));

describe('CompletedResponses', () => {
  it('returns each response and destination until its deadline, then forgets it, oldest first', () => {
    const c = new CompletedResponses();
    try {
      for (let i = 0; i < 5000; i++) c.add(`k${i}`, wire(i), dest(5000 + (i % 7)), 1000 + i);
      expect(c.size).toBe(5000);
      for (const i of [0, 1, 2499, 4999]) {
        const e = c.get(`k${i}`)!;
        expect(e.wire.equals(wire(i))).toBe(true);
        expect(e.dest).toEqual(dest(5000 + (i % 7)));
      }
      // Chunks are mapped pages (a resizable ArrayBuffer's backing store), not malloc'd: see pageBuffer.
      const chunks = (c as unknown as { chunks: Buffer[] }).chunks;
      expect((chunks[0]!.buffer as ArrayBuffer & { resizable: boolean }).resizable).toBe(true);
      // What get returns is a copy, not a view of a chunk that may be written again.
      expect((c.get('k0')!.wire.buffer as ArrayBuffer & { resizable: boolean }).resizable).toBe(false);
      const chunksBefore = c.chunkBytes;
      expect(chunksBefore).toBeGreaterThanOrEqual(5000 * 400);
      c.expire(1000 + 2999);
      expect(c.size).toBe(2000);
      expect(c.get('k2999')).toBeUndefined();
      expect(c.get('k3000')!.wire.equals(wire(3000))).toBe(true);
      expect(c.chunkBytes).toBeLessThan(chunksBefore);
      c.expire(10_000);
      expect(c.size).toBe(0);
      expect(c.chunkBytes).toBe(0);
      expect(c.get('k4999')).toBeUndefined();
      // Usable again after emptying.
      c.add('again', wire(1), dest(1), 20_000);
      expect(c.get('again')!.wire.equals(wire(1))).toBe(true);
    } finally {
      c.clear();
    }
  });

  it('keeps entries right while the ring wraps, doubles and halves, and returns to its smallest size when emptied', () => {
    const c = new CompletedResponses();
    try {
      const min = c.capacity;
      // A sliding window: 700 live entries, added and expired many times round the ring.
      for (let i = 0; i < 5000; i++) {
        c.add(`w${i}`, wire(i, 100 + (i % 50)), dest(i % 65536), i);
        c.expire(i - 700);
        if (i % 97 === 0 && i >= 699) expect(c.get(`w${i - 699}`)!.wire.equals(wire(i - 699, 100 + ((i - 699) % 50)))).toBe(true);
        if (i % 97 === 0 && i >= 700) expect(c.get(`w${i - 700}`)).toBeUndefined();
      }
      expect(c.size).toBe(700);
      expect(c.capacity).toBe(min);
      // Grow to 8 × the smallest ring with entries wrapped round it, then check every one.
      for (let i = 5000; i < 5000 + 7 * min; i++) c.add(`w${i}`, wire(i, 100 + (i % 50)), dest(i % 65536), i);
      expect(c.capacity).toBe(8 * min);
      for (let i = 4300; i < 5000 + 7 * min; i += 13) {
        const e = c.get(`w${i}`)!;
        expect(e.wire.equals(wire(i, 100 + (i % 50)))).toBe(true);
        expect(e.dest).toEqual(dest(i % 65536));
      }
      // Three quarters expired: the ring halves, the rest is intact.
      const last = 5000 + 7 * min - 1;
      c.expire(last - min);
      expect(c.size).toBe(min);
      expect(c.capacity).toBe(4 * min);
      expect(c.get(`w${last - min}`)).toBeUndefined();
      expect(c.get(`w${last - min + 1}`)!.wire.equals(wire(last - min + 1, 100 + ((last - min + 1) % 50)))).toBe(true);
      expect(c.get(`w${last}`)!.dest).toEqual(dest(last % 65536));
      c.expire(last);
      expect(c.size).toBe(0);
      expect(c.capacity).toBe(min);
      expect(c.chunkBytes).toBe(0);
    } finally {
      c.clear();
    }
  });

  it('writes emptied chunks again (a few kept, none once the log is empty), and what get returned stays intact', () => {
    const c = new CompletedResponses();
    try {
      // 400-byte responses plus 5–6-byte keys: ~645 per 256 KiB chunk, so 6,000 entries fill ~10 chunks.
      for (let i = 0; i < 6000; i++) c.add(`k${i}`, wire(i), dest(i % 65536), i);
      const held = c.get('k10')!;
      c.expire(4999);
      expect(c.size).toBe(1000);
      expect(c.spareBytes).toBe(SPARE_CHUNKS * 256 * 1024);
      expect(held.wire.equals(wire(10))).toBe(true);
      // New entries go into the spare chunks (over the expired entries' bytes) and read back exactly.
      for (let i = 6000; i < 8000; i++) c.add(`k${i}`, wire(i, 300 + (i % 90)), dest(i % 65536), i);
      expect(c.spareBytes).toBeLessThan(SPARE_CHUNKS * 256 * 1024);
      expect(held.wire.equals(wire(10))).toBe(true);
      for (let i = 5000; i < 8000; i += 7) {
        const e = c.get(`k${i}`)!;
        expect(e.wire.equals(i < 6000 ? wire(i) : wire(i, 300 + (i % 90)))).toBe(true);
        expect(e.dest).toEqual(dest(i % 65536));
      }
      for (let i = 0; i < 5000; i += 13) expect(c.get(`k${i}`)).toBeUndefined();
      c.expire(10_000);
      expect(c.size).toBe(0);
      expect(c.chunkBytes).toBe(0);
      expect(c.spareBytes).toBe(0);
    } finally {
      c.clear();
    }
  });

  it('keeps a response larger than a chunk in one piece, between small ones', () => {
    const c = new CompletedResponses();
    try {
      c.add('a', wire(1), dest(1), 1);
      c.add('big', wire(2, 300_000), dest(2), 2);
      c.add('b', wire(3), dest(3), 3);
      expect(c.get('a')!.wire.equals(wire(1))).toBe(true);
      expect(c.get('big')!.wire.equals(wire(2, 300_000))).toBe(true);
      expect(c.get('b')!.wire.equals(wire(3))).toBe(true);
      c.expire(2);
      expect(c.get('big')).toBeUndefined();
      expect(c.get('b')!.wire.equals(wire(3))).toBe(true);
    } finally {
      c.clear();
    }
  });

  it('a key added again answers with the newer response and outlives the older entry', () => {
    const c = new CompletedResponses();
    try {
      c.add('k', wire(1), dest(1), 10);
      c.add('k', wire(2), dest(2), 20);
      expect(c.get('k')!.wire.equals(wire(2))).toBe(true);
      c.expire(15);
      expect(c.get('k')!.dest.port).toBe(2);
      c.expire(25);
      expect(c.get('k')).toBeUndefined();
    } finally {
      c.clear();
    }
  });

  it('holds at most maxEntries: each entry past them releases the oldest early, counted, and its chunk goes once empty', () => {
    const c = new CompletedResponses(20, 1000);
    try {
      // 400-byte responses: 655 to a 256 KiB chunk, so 3000 entries fill 5 chunks.
      for (let i = 0; i < 3000; i++) c.add(`k${i}`, wire(i), dest(i % 65536), 1_000_000 + i);
      expect(c.size).toBe(1000);
      expect(c.releasedEarly).toBe(2000);
      expect(c.get('k1999')).toBeUndefined();
      expect(c.get('k2000')!.wire.equals(wire(2000))).toBe(true);
      expect(c.get('k2999')!.dest).toEqual(dest(2999));
      // Only the chunks holding entries 2000..2999 are left.
      expect(c.chunkBytes).toBeLessThanOrEqual(3 * 256 * 1024);
      // Timer J still runs for the rest; nothing more counted as early.
      c.expire(1_000_000 + 2999);
      expect(c.size).toBe(0);
      expect(c.releasedEarly).toBe(2000);
    } finally {
      c.clear();
    }
    expect(() => new CompletedResponses(20, 0)).toThrow(RangeError);
  });
});

describe('a retransmitted request over UDP after the final response', () => {
  it('gets the same final response again, byte for byte, from the completed transaction', async () => {
    const { mkdtempSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dgram = await import('node:dgram');
    const { parseConfig } = await import('../../src/config/load.js');
    const { startServer } = await import('../../src/server.js');
    const { silentLogger } = await import('../../src/log.js');
    const PORT = 28465;
    const dir = mkdtempSync(join(tmpdir(), 'rtcedge-completed-'));
    const server = await startServer(
      parseConfig({
        data_dir: dir,
        domains: ['example.test'],
        log: { level: 'silent', summary_interval: 0 },
        sip: { listen: [{ transport: 'udp', host: '127.0.0.1', port: PORT }] },
        turn: { enabled: false },
      }),
      silentLogger,
    );
    const sock = dgram.createSocket('udp4');
    try {
      await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
      const port = sock.address().port;
      const got: Buffer[] = [];
      sock.on('message', (m) => got.push(m));
      const req = Buffer.from(
        `OPTIONS sip:127.0.0.1:${PORT} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:${port};branch=z9hG4bKretrans1;rport\r\n` +
          `Max-Forwards: 70\r\nFrom: <sip:probe@example.test>;tag=r1\r\nTo: <sip:127.0.0.1:${PORT}>\r\n` +
          `Call-ID: retrans1@127.0.0.1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n`,
      );
      const waitFor = async (n: number) => {
        for (let i = 0; i < 100 && got.length < n; i++) await new Promise((r) => setTimeout(r, 20));
      };
      sock.send(req, PORT, '127.0.0.1');
      await waitFor(1);
      sock.send(req, PORT, '127.0.0.1');
      await waitFor(2);
      expect(got).toHaveLength(2);
      expect(got[0]!.toString('latin1')).toMatch(/^SIP\/2\.0 200 /);
      expect(got[1]!.equals(got[0]!)).toBe(true);
    } finally {
      sock.close();
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('CompletedResponses keys whose hashes collide', () => {
  it('keeps both entries apart, answers each with its own response, and forgets each at its own time', () => {
    // Two keys with the same 30-bit hash (found by search: ~40,000 keys give a pair).
    const seen = new Map<number, string>();
    let pair: [string, string] | undefined;
    for (let n = 0; !pair; n++) {
      const k = `z9hG4bK${n}|127.0.0.1:5060|REGISTER`;
      const other = seen.get(completedKeyHash(k));
      if (other !== undefined) pair = [other, k];
      else seen.set(completedKeyHash(k), k);
    }
    const [a, b] = pair;
    const c = new CompletedResponses();
    try {
      c.add(a, wire(1), dest(1), 10);
      c.add('x', wire(2), dest(2), 15);
      c.add(b, wire(3), dest(3), 20);
      expect(c.get(a)!.wire.equals(wire(1))).toBe(true);
      expect(c.get(b)!.wire.equals(wire(3))).toBe(true);
      expect(c.get(`${a}!`)).toBeUndefined();
      c.expire(10);
      expect(c.get(a)).toBeUndefined();
      expect(c.get(b)!.dest).toEqual(dest(3));
      // The newer one expires first in this order: the older one is still found.
      c.add(a, wire(4), dest(4), 30);
      c.expire(20);
      expect(c.get(b)).toBeUndefined();
      expect(c.get(a)!.wire.equals(wire(4))).toBe(true);
      expect(c.has(a)).toBe(true);
      c.expire(30);
      expect(c.size).toBe(0);
      expect(c.has(a)).toBe(false);
    } finally {
      c.clear();
    }
  });

  it('interns at most MAX_INTERNED destination addresses, emptied when full; every destination still comes back exactly', () => {
    const c = new CompletedResponses();
    try {
      const address = (i: number) => `10.${(i >> 16) & 0xff}.${(i >> 8) & 0xff}.${i & 0xff}`;
      const n = 2 * MAX_INTERNED + 10;
      let most = 0;
      for (let i = 0; i < n; i++) {
        c.add(`k${i}`, wire(i, 100), { transport: 'udp', address: address(i), port: 5060 }, 1000);
        most = Math.max(most, c.internedAddresses);
        if (i === MAX_INTERNED - 1) expect(c.internedAddresses).toBe(MAX_INTERNED);
        if (i === MAX_INTERNED) expect(c.internedAddresses).toBe(1); // emptied, then the new address interned
      }
      expect(most).toBe(MAX_INTERNED);
      // An address seen again takes no more room.
      const before = c.internedAddresses;
      c.add('again', wire(0, 100), { transport: 'udp', address: address(n - 1), port: 5060 }, 1000);
      expect(c.internedAddresses).toBe(before);
      for (const i of [0, MAX_INTERNED - 1, MAX_INTERNED, n - 1]) expect(c.get(`k${i}`)!.dest).toEqual({ transport: 'udp', address: address(i), port: 5060 });
      expect(c.size).toBe(n + 1);
    } finally {
      c.clear();
    }
  });
});
