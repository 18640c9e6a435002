import { createHmac } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { hmacSha256 } from '../../src/auth/hmac-sha256.js';

const reference = (key: Buffer, data: Buffer, text: string) => createHmac('sha256', key).update(data).update(text).digest();

describe('hmacSha256', () => {
  it('gives the RFC 4231 test case 2 value (key "Jefe")', () => {
    const mac = hmacSha256(Buffer.from('Jefe'), Buffer.alloc(0), 'what do ya want for nothing?');
    expect(mac.toString('hex')).toBe('5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843');
  });

  it('gives the RFC 4231 test case 6 value (a 131-byte key, hashed first)', () => {
    const mac = hmacSha256(Buffer.alloc(131, 0xaa), Buffer.from('Test Using Larger Than Block-Size Key - Hash Key First'));
    expect(mac.toString('hex')).toBe('60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54');
  });

  it('equals createHmac for any key, data and text (keys of 0 to 100 bytes, text with non-ASCII characters)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), fc.uint8Array({ maxLength: 200 }), fc.string({ unit: 'grapheme', maxLength: 40 }), (k, d, text) => {
        const key = Buffer.from(k);
        const data = Buffer.from(d);
        expect(hmacSha256(key, data, text).equals(reference(key, data, text))).toBe(true);
        // Again with the key's blocks cached.
        expect(hmacSha256(key, data, text).equals(reference(key, data, text))).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it('keeps the blocks of several keys apart (alternating keys of the same length)', () => {
    const a = Buffer.alloc(32, 1);
    const b = Buffer.alloc(32, 2);
    const data = Buffer.from('signed bytes');
    for (let i = 0; i < 3; i++) {
      expect(hmacSha256(a, data).equals(reference(a, data, ''))).toBe(true);
      expect(hmacSha256(b, data).equals(reference(b, data, ''))).toBe(true);
    }
  });
});
