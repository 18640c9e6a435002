import { createHmac } from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { secretKeyOf } from '../../src/auth/secret-key.js';

describe('secretKeyOf', () => {
  test('HMAC-SHA256 under the key object gives RFC 4231 §4.3 test case 2, as the Buffer itself does', () => {
    const secret = Buffer.from('Jefe');
    const expected = '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843';
    expect(createHmac('sha256', secretKeyOf(secret)).update('what do ya want for nothing?').digest('hex')).toBe(expected);
    expect(createHmac('sha256', secret).update('what do ya want for nothing?').digest('hex')).toBe(expected);
  });

  test('one key object per secret Buffer; another Buffer with other bytes gets its own', () => {
    const a = Buffer.alloc(32, 1);
    const b = Buffer.alloc(32, 2);
    expect(secretKeyOf(a)).toBe(secretKeyOf(a));
    expect(secretKeyOf(b)).not.toBe(secretKeyOf(a));
    expect(secretKeyOf(b).export().equals(b)).toBe(true);
    expect(secretKeyOf(a).export().equals(a)).toBe(true);
  });
});
