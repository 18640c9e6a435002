/** Exempt addresses and CIDR prefixes (security/address-set.ts). */
import { describe, expect, it } from 'vitest';
import { AddressSet, AddressSetError } from '../../src/security/address-set.js';

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
