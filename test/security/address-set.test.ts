/** Exempt addresses and CIDR prefixes (security/address-set.ts). */
import { describe, expect, it } from 'vitest';
import { AddressSet, AddressSetError, MEMO_ENTRIES } from '../../src/security/address-set.js';

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

  it('remembers the answers of at most MEMO_ENTRIES addresses, emptied when full; answers stay right past the bound', () => {
    const s = new AddressSet(['10.0.0.0/16']);
    let most = 0;
    for (let i = 0; i < 3 * MEMO_ENTRIES; i++) {
      const inside = i % 2 === 0;
      const address = inside ? `10.0.${(i >> 8) & 0xff}.${i & 0xff}` : `10.1.${(i >> 8) & 0xff}.${i & 0xff}`;
      expect(s.has(address)).toBe(inside);
      most = Math.max(most, s.memoSize);
      if (i === MEMO_ENTRIES - 1) expect(s.memoSize).toBe(MEMO_ENTRIES);
      if (i === MEMO_ENTRIES) expect(s.memoSize).toBe(1); // emptied, then the new answer kept
    }
    expect(most).toBe(MEMO_ENTRIES);
    expect(s.has('10.0.0.0')).toBe(true);
    expect(s.has('192.0.2.1')).toBe(false);
  });
});
