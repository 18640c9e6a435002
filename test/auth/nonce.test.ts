import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  checkNonce,
  createNonce,
  ISSUED_NONCES_PER_GENERATION,
  NonceCountTracker,
  nonceCountKey,
  nonceIssuer,
  nonceTimestamp,
  wasIssued,
} from '../../src/auth/nonce.js';

const secret = Buffer.from('000102030405060708090a0b0c0d0e0f', 'hex');
const T0 = 1_700_000_000_000;

describe('createNonce', () => {
  it('is base64url of timestamp || issuer || counter || first 16 bytes of HMAC-SHA256(timestamp || issuer || counter)', () => {
    const signed = Buffer.alloc(16);
    signed.writeBigUInt64BE(BigInt(T0));
    signed[8] = 7;
    Buffer.from('11223344556677', 'hex').copy(signed, 9);
    const expected = Buffer.concat([signed, createHmac('sha256', secret).update(signed).digest().subarray(0, 16)]).toString('base64url');
    const n = createNonce(secret, T0, { issuer: 7, counter: 0x11223344556677 });
    expect(n).toBe(expected);
    expect(n).toHaveLength(43);
    expect(n).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(nonceTimestamp(n)).toBe(T0);
    expect(nonceIssuer(n)).toBe(7);
  });

  it('differs per time, per secret, per issuer and per counter', () => {
    const c = { counter: 5 };
    expect(createNonce(secret, T0, c)).not.toBe(createNonce(secret, T0 + 1, c));
    expect(createNonce(secret, T0, c)).not.toBe(createNonce(Buffer.from('other'), T0, c));
    expect(createNonce(secret, T0, c)).not.toBe(createNonce(secret, T0, { ...c, issuer: 1 }));
    expect(createNonce(secret, T0, c)).not.toBe(createNonce(secret, T0, { counter: 6 }));
  });

  it('differs for two challenges issued in the same millisecond (the counter moves on), issuer 0 by default', () => {
    const a = createNonce(secret, T0);
    const b = createNonce(secret, T0);
    expect(a).not.toBe(b);
    expect(nonceIssuer(a)).toBe(0);
    expect(checkNonce(secret, a, 30, T0)).toBe('valid');
    expect(checkNonce(secret, b, 30, T0)).toBe('valid');
    const raw = (n: string) => Buffer.from(n, 'base64url');
    // The low 32 bits of the counter moved on by one (the high 24 bits carry past 2^32 - 1).
    const low = (n: string) => raw(n).readUInt32BE(12);
    expect((low(b) - low(a) + 2 ** 32) % 2 ** 32).toBe(1);
  });

  it('refuses an issuer outside 0..255 and a negative time', () => {
    expect(() => createNonce(secret, T0, { issuer: 256 })).toThrow(RangeError);
    expect(() => createNonce(secret, T0, { issuer: -1 })).toThrow(RangeError);
    expect(() => createNonce(secret, -1)).toThrow(RangeError);
    expect(createNonce(secret, T0, { issuer: 255 })).toHaveLength(43);
  });

  it('nonceIssuer and nonceTimestamp give undefined for text not shaped like a nonce', () => {
    expect(nonceIssuer('short')).toBeUndefined();
    expect(nonceIssuer('!'.repeat(43))).toBeUndefined();
    expect(nonceTimestamp('!'.repeat(43))).toBeUndefined();
  });
});

describe('checkNonce', () => {
  const n = createNonce(secret, T0);
  it('valid within ttl, including exactly at ttl', () => {
    expect(checkNonce(secret, n, 30, T0)).toBe('valid');
    expect(checkNonce(secret, n, 30, T0 + 30_000)).toBe('valid');
  });
  it('stale after ttl', () => {
    expect(checkNonce(secret, n, 30, T0 + 30_001)).toBe('stale');
    expect(checkNonce(secret, n, 30, T0 + 86_400_000)).toBe('stale');
  });
  it('invalid with another secret', () => {
    expect(checkNonce(Buffer.from('another secret'), n, 30, T0)).toBe('invalid');
  });
  it('invalid when any character is changed', () => {
    for (let i = 0; i < n.length; i++) {
      const c = n[i] === 'A' ? 'B' : 'A';
      const t = n.slice(0, i) + c + n.slice(i + 1);
      expect(checkNonce(secret, t, 30, T0), `position ${i}`).toBe('invalid');
    }
  });
  it('invalid when the timestamp is moved forward to extend its life', () => {
    const raw = Buffer.from(n, 'base64url');
    raw.writeBigUInt64BE(BigInt(T0 + 3_600_000), 0);
    expect(checkNonce(secret, raw.toString('base64url'), 30, T0 + 3_600_000)).toBe('invalid');
  });
  it('invalid when dated in the future beyond 5 s', () => {
    const f = createNonce(secret, T0 + 5_001);
    expect(checkNonce(secret, f, 30, T0)).toBe('invalid');
    expect(checkNonce(secret, createNonce(secret, T0 + 5_000), 30, T0)).toBe('valid');
  });
  it('invalid for malformed input', () => {
    expect(checkNonce(secret, '', 30, T0)).toBe('invalid');
    expect(checkNonce(secret, n + 'A', 30, T0)).toBe('invalid');
    expect(checkNonce(secret, n.slice(1), 30, T0)).toBe('invalid');
    expect(checkNonce(secret, n.slice(0, 42) + ',', 30, T0)).toBe('invalid');
    expect(checkNonce(secret, n.slice(0, 31) + '+', 30, T0)).toBe('invalid');
    expect(checkNonce(secret, n.slice(0, 30) + '==', 30, T0)).toBe('invalid');
  });
});

describe('nonces issued lately (checked without their MAC)', () => {
  const own = Buffer.from('a secret of these tests only, 32b', 'utf8');
  const verdicts = (nonce: string, context = '') => [
    checkNonce(own, nonce, 30, T0 + 1_000, context),
    checkNonce(own, nonce, 30, T0 + 31_001, context),
    checkNonce(own, nonce, 30, T0 - 6_000, context),
  ];

  it('held for the secret and context they were made with, and checked alike whether held or not', () => {
    const held = createNonce(own, T0, { counter: 42, context: '192.0.2.1:5000' });
    expect(wasIssued(own, held, '192.0.2.1:5000')).toBe(true);
    expect(wasIssued(own, held, '192.0.2.1:5001')).toBe(false);
    expect(wasIssued(secret, held, '192.0.2.1:5000')).toBe(false);
    expect(verdicts(held, '192.0.2.1:5000')).toEqual(['valid', 'stale', 'invalid']);
    // Another context or another secret: the MAC decides, and it does not match.
    expect(checkNonce(own, held, 30, T0 + 1_000, '192.0.2.1:5001')).toBe('invalid');
    expect(checkNonce(secret, held, 30, T0 + 1_000, '192.0.2.1:5000')).toBe('invalid');
    // A nonce one character away from a held one is not held, and its MAC fails.
    const other = held.slice(0, 20) + (held[20] === 'A' ? 'B' : 'A') + held.slice(21);
    expect(wasIssued(own, other, '192.0.2.1:5000')).toBe(false);
    expect(checkNonce(own, other, 30, T0 + 1_000, '192.0.2.1:5000')).toBe('invalid');
  });

  it('forgets all but the last two generations, and a forgotten nonce is still checked by its MAC', () => {
    const first = createNonce(own, T0, { counter: 7 });
    expect(wasIssued(own, first, '')).toBe(true);
    for (let i = 0; i < 2 * ISSUED_NONCES_PER_GENERATION; i++) createNonce(own, T0, { counter: 1000 + i });
    expect(wasIssued(own, first, '')).toBe(false);
    expect(wasIssued(own, createNonce(own, T0, { counter: 999 }), '')).toBe(true);
    expect(verdicts(first)).toEqual(['valid', 'stale', 'invalid']);
    // The same nonce made again (a retransmitted request's challenge) is held again.
    expect(createNonce(own, T0, { counter: 7 })).toBe(first);
    expect(wasIssued(own, first, '')).toBe(true);
    expect(verdicts(first)).toEqual(['valid', 'stale', 'invalid']);
  });
});

describe('NonceCountTracker', () => {
  it('refuses an nc not above the highest seen for that nonce', () => {
    const t = new NonceCountTracker(10);
    expect(t.accept('a', 1)).toBe(true);
    expect(t.accept('a', 1)).toBe(false);
    expect(t.accept('a', 3)).toBe(true);
    expect(t.accept('a', 2)).toBe(false);
    expect(t.accept('a', 3)).toBe(false);
    expect(t.accept('a', 4)).toBe(true);
    expect(t.accept('b', 1)).toBe(true);
  });
  it('refuses nc < 1 and non-integers', () => {
    const t = new NonceCountTracker(10);
    expect(t.accept('a', 0)).toBe(false);
    expect(t.accept('a', -1)).toBe(false);
    expect(t.accept('a', 1.5)).toBe(false);
    expect(t.accept('a', Number.NaN)).toBe(false);
    expect(t.size).toBe(0);
  });
  it('keeps at most maxEntries, evicting the least recently used', () => {
    const t = new NonceCountTracker(2);
    t.accept('a', 1);
    t.accept('b', 1);
    t.accept('a', 2); // a is now most recent
    t.accept('c', 1); // evicts b
    expect(t.size).toBe(2);
    expect(t.accept('a', 2)).toBe(false); // still tracked
    expect(t.accept('c', 1)).toBe(false); // still tracked
    expect(t.accept('b', 1)).toBe(true); // forgotten, so accepted again
    expect(t.size).toBe(2);
  });
  it('rejects a bad maxEntries', () => {
    expect(() => new NonceCountTracker(0)).toThrow(RangeError);
  });
  it('tracks real nonces by their counter: each one separately, replays refused, at most maxEntries', () => {
    const t = new NonceCountTracker(1000);
    // Same millisecond, consecutive counters: different nonces, different entries.
    const nonces = Array.from({ length: 1500 }, () => createNonce(secret, T0));
    expect(new Set(nonces.map(nonceCountKey)).size).toBe(1500);
    for (const n of nonces) expect(t.accept(n, 1)).toBe(true);
    expect(t.size).toBe(1000);
    // The newest 1000 are remembered: their nc 1 is a replay, nc 2 is not.
    for (const n of nonces.slice(500)) expect(t.accept(n, 1)).toBe(false);
    for (const n of nonces.slice(500)) expect(t.accept(n, 2)).toBe(true);
    expect(t.size).toBe(1000);
    // The oldest were forgotten (least recently used first): accepted again.
    expect(t.accept(nonces[0]!, 1)).toBe(true);
  });
});

describe('nonceCountKey', () => {
  it("is a nonce's counter modulo 2^52, and 2^52 + a hash for any other string", () => {
    expect(nonceCountKey(createNonce(secret, T0, { counter: 5 }))).toBe(5);
    expect(nonceCountKey(createNonce(secret, T0 + 1, { counter: 5, issuer: 3 }))).toBe(5);
    expect(nonceCountKey(createNonce(secret, T0, { counter: 2 ** 52 + 7 }))).toBe(7);
    expect(nonceCountKey(createNonce(secret, T0, { counter: 2 ** 52 - 1 }))).toBe(2 ** 52 - 1);
    for (const other of ['a', 'b', '', 'x'.repeat(43)]) {
      const k = nonceCountKey(other);
      expect(k).toBeGreaterThanOrEqual(2 ** 52);
      expect(Number.isSafeInteger(k)).toBe(true);
    }
    expect(nonceCountKey('a')).not.toBe(nonceCountKey('b'));
  });
});
