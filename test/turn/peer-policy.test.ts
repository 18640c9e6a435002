import { describe, expect, it } from 'vitest';
import { REFUSED_SPECIAL_PURPOSE as refused } from './special-purpose-table.js';
import { DEFAULT_DENIED_IPV4, DEFAULT_DENIED_IPV6, effectivePeerBytes, GLOBAL_SPECIAL_PURPOSE, PeerPolicy } from '../../src/turn/peer-policy.js';
import { createRestCredentials, parseRestUsername, restApiPassword } from '../../src/turn/rest-credentials.js';

describe('PeerPolicy defaults', () => {
  // Pure-function checks: no packet is sent, so a few global addresses stand for public peers here.
  const p = new PeerPolicy({ allowLoopbackPeers: false, ownAddresses: ['1.2.3.5', '0.0.0.0'], relayAddresses: ['1.2.3.9'] });
  it.each([
    '127.0.0.1', '127.9.9.9', '0.1.2.3', '10.1.1.1', '172.16.0.1', '172.31.255.255', '192.168.1.1', '100.64.0.1', '100.127.255.255',
    '169.254.1.1', '224.0.0.1', '239.255.255.250', '255.255.255.255', '::', '::1', 'fe80::1', 'febf::1', 'fc00::1', 'fd12:3456::1', 'ff02::1',
    // IPv4 inside IPv6: mapped, compatible, NAT64, 6to4.
    '::ffff:127.0.0.1', '::ffff:10.0.0.1', '::192.168.0.1', '64:ff9b::7f00:1', '64:ff9b::10.0.0.1', '2002:c0a8:101::1',
    // the server itself
    '1.2.3.5', '::ffff:1.2.3.5', 'not-an-ip',
    // IPv4-mapped is not globally reachable even for a public IPv4 address.
    '::ffff:8.8.8.8',
  ])('refuses %s', (a) => expect(p.allows(a)).toBe(false));
  it.each(['172.32.0.1', '100.128.0.1', '8.8.8.8', '2606:4700::1111', '64:ff9b::808:808', '2002:808:808::1', '1.2.3.9'])('allows %s', (a) =>
    expect(p.allows(a)).toBe(true),
  );
  it('unwraps embedded IPv4 forms', () => {
    expect([...effectivePeerBytes('64:ff9b::c000:201')!]).toEqual([192, 0, 2, 1]);
    expect([...effectivePeerBytes('::ffff:1.2.3.4')!]).toEqual([1, 2, 3, 4]);
    expect(effectivePeerBytes('::1')!.length).toBe(16);
    expect([...effectivePeerBytes('::ffff:0:127.0.0.1')!]).toEqual([127, 0, 0, 1]);
    expect([...effectivePeerBytes('64:ff9b:1::a00:1')!]).toEqual([10, 0, 0, 1]);
    expect([...effectivePeerBytes('::10.0.0.1')!]).toEqual([10, 0, 0, 1]);
    expect([...effectivePeerBytes('2002:a00:1::1')!]).toEqual([10, 0, 0, 1]);
  });
});

/**
 * RFC 6890 special-purpose registries (IANA, as of 2025): one address inside
 * every range that is not globally reachable, and the globally reachable
 * entries nested in them. Each row: [range, an address in it].
 */
describe('PeerPolicy: IANA special-purpose ranges (RFC 6890)', () => {
  const p = new PeerPolicy({ allowLoopbackPeers: false });
  it.each(refused)('refuses %s (%s)', (_range, a) => expect(p.allows(a)).toBe(false));
  const allowed: Array<[string, string]> = [
    ['192.0.0.9/32 PCP anycast', '192.0.0.9'], ['192.0.0.10/32 TURN anycast', '192.0.0.10'], ['2001:1::1/128', '2001:1::1'], ['2001:1::2/128', '2001:1::2'],
    ['2001:3::/32 AMT', '2001:3::1'], ['2001:4:112::/48 AS112', '2001:4:112::1'], ['2001:20::/28 ORCHIDv2', '2001:20::1'], ['2001:30::/28', '2001:30::1'],
    ['64:ff9b::/96 of a global IPv4', '64:ff9b::808:808'], ['192.31.196.0/24 AS112', '192.31.196.1'], ['192.52.193.0/24 AMT', '192.52.193.1'],
    ['192.175.48.0/24 AS112', '192.175.48.1'], ['2620:4f:8000::/48 AS112', '2620:4f:8000::1'],
  ];
  it.each(allowed)('allows the globally reachable %s (%s)', (_range, a) => expect(p.allows(a)).toBe(true));
  it('every default list entry parses and is covered by a row above', () => {
    for (const r of [...DEFAULT_DENIED_IPV4, ...DEFAULT_DENIED_IPV6]) expect(refused.some(([name]) => name.startsWith(r)), r).toBe(true);
    for (const r of GLOBAL_SPECIAL_PURPOSE) expect(p.allows(r.split('/')[0]!), r).toBe(true);
  });
});

describe('PeerPolicy lists', () => {
  it('allow_loopback_peers admits loopback only', () => {
    const p = new PeerPolicy({ allowLoopbackPeers: true });
    expect(p.allows('127.0.0.1')).toBe(true);
    expect(p.allows('::1')).toBe(true);
    expect(p.allows('::ffff:127.0.0.1')).toBe(true);
    expect(p.allows('10.0.0.1')).toBe(false);
  });
  it('allowed_peers wins over the defaults and denied_peers; denied_peers adds to the defaults', () => {
    const p = new PeerPolicy({ allowLoopbackPeers: false, allowedPeers: ['10.1.0.0/16', '10.1.2.3'], deniedPeers: ['198.51.100.0/24', '10.1.2.0/24', '2001:db8::/32'] });
    expect(p.allows('10.1.5.5')).toBe(true);
    expect(p.allows('10.1.2.3')).toBe(true);
    expect(p.allows('::ffff:10.1.5.5')).toBe(true);
    expect(p.allows('10.2.0.1')).toBe(false);
    expect(p.allows('198.51.100.7')).toBe(false);
    expect(p.allows('198.51.101.7')).toBe(true);
    expect(p.allows('2001:db8:1::1')).toBe(false);
    expect(p.allows('2001:db9::1')).toBe(true);
  });
  it('rejects bad list entries', () => {
    expect(() => new PeerPolicy({ allowLoopbackPeers: false, deniedPeers: ['10.0.0.0/33'] })).toThrow(/10.0.0.0\/33/);
    expect(() => new PeerPolicy({ allowLoopbackPeers: false, allowedPeers: ['nope'] })).toThrow(RangeError);
  });
});

describe('TURN REST API credentials', () => {
  it('matches the HMAC-SHA1/base64 scheme', () => {
    // base64(HMAC-SHA1("secret", "1700000000:alice")), computed independently with openssl.
    expect(restApiPassword('secret', '1700000000:alice')).toBe('d8soP47RbdIKLDUOpnJPVQyq5Ts=');
    expect(restApiPassword(Buffer.from('secret'), '1700000000:alice')).toBe('d8soP47RbdIKLDUOpnJPVQyq5Ts=');
    const c = createRestCredentials('secret', 'alice', 3600, 1_700_000_000_000);
    expect(c).toEqual({ username: '1700003600:alice', password: restApiPassword('secret', '1700003600:alice'), expires: 1_700_003_600 });
    expect(c.password).toMatch(/^[A-Za-z0-9+/]{27}=$/);
  });
  it('parses EXPIRY and EXPIRY:user only', () => {
    expect(parseRestUsername('1700000000:alice')).toEqual({ expires: 1_700_000_000, user: 'alice' });
    expect(parseRestUsername('1700000000')).toEqual({ expires: 1_700_000_000, user: '' });
    expect(parseRestUsername('alice')).toBeUndefined();
    expect(parseRestUsername('alice:170')).toBeUndefined();
  });
  it('refuses a bad ttl', () => {
    expect(() => createRestCredentials('s', 'a', 0)).toThrow(RangeError);
  });
});

describe('refusal rule', () => {
  it('names the list entry that refused a peer and reports it', () => {
    const seen: string[] = [];
    const p = new PeerPolicy({ allowLoopbackPeers: false, deniedPeers: ['203.0.113.0/24'], onRefused: (a, rule) => seen.push(`${a} ${rule}`) });
    expect(p.refusedBy('203.0.113.9')).toBe('turn.denied_peers 203.0.113.0/24');
    expect(p.refusedBy('192.168.1.2')).toMatch(/^default-denied 192\.168\.0\.0\/16 /);
    expect(p.refusedBy('198.51.100.1')).toMatch(/^default-denied 198\.51\.100\.0\/24 /);
    expect(p.refusedBy('192.0.0.10')).toBeUndefined(); // TURN anycast: special-purpose but global (RFC 8155)
    expect(p.refusedBy('8.8.8.8')).toBeUndefined();
    expect(p.allows('127.0.0.1')).toBe(false);
    expect(seen).toEqual(['127.0.0.1 default-denied 127.0.0.0/8 (turn.allowed_peers or turn.allow_loopback_peers allow it)']);
  });
});
