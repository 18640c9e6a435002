/**
 * A set of IP addresses and CIDR prefixes (`127.0.0.0/8`, `::1`, `2001:db8::/32`),
 * for the sources exempt from abuse limits.
 */
import { isIP } from 'node:net';

/** Error for an entry that is neither an IP address nor a CIDR prefix; maps to a configuration error. */
export class AddressSetError extends Error {
  constructor(readonly entry: string) {
    super(`not an IP address or CIDR prefix: ${entry}`);
    this.name = 'AddressSetError';
  }
}

interface Prefix {
  v6: boolean;
  bits: bigint;
  mask: bigint;
}

/** Matches addresses against a list of addresses and prefixes. IPv4-mapped IPv6 addresses match as IPv4. */
export class AddressSet {
  private readonly prefixes: Prefix[];

  /** @throws AddressSetError naming the first bad entry. */
  constructor(entries: readonly string[]) {
    this.prefixes = entries.map(parsePrefix);
  }

  /** True when no entry was given. */
  get empty(): boolean {
    return this.prefixes.length === 0;
  }

  /** True when `address` (IPv4 or IPv6, optionally in brackets) lies in one of the entries. O(entries). */
  has(address: string): boolean {
    if (this.prefixes.length === 0) return false;
    const parsed = parseAddress(address);
    if (!parsed) return false;
    return this.prefixes.some((p) => p.v6 === parsed.v6 && (parsed.bits & p.mask) === p.bits);
  }
}

function parsePrefix(entry: string): Prefix {
  const [addr, len, extra] = entry.trim().split('/');
  if (extra !== undefined) throw new AddressSetError(entry);
  const parsed = parseAddress(addr);
  if (!parsed) throw new AddressSetError(entry);
  const width = parsed.v6 ? 128 : 32;
  let n = width;
  if (len !== undefined) {
    if (!/^\d{1,3}$/.test(len) || Number(len) > width) throw new AddressSetError(entry);
    n = Number(len);
  }
  const mask = n === 0 ? 0n : ((1n << BigInt(n)) - 1n) << BigInt(width - n);
  return { v6: parsed.v6, bits: parsed.bits & mask, mask };
}

function parseAddress(a: string): { v6: boolean; bits: bigint } | undefined {
  let s = a.startsWith('[') && a.endsWith(']') ? a.slice(1, -1) : a;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(s);
  if (mapped) s = mapped[1];
  const kind = isIP(s);
  if (kind === 4) {
    const bits = s.split('.').reduce((acc, o) => (acc << 8n) | BigInt(Number(o)), 0n);
    return { v6: false, bits };
  }
  if (kind !== 6) return undefined;
  const zone = s.indexOf('%');
  if (zone >= 0) s = s.slice(0, zone);
  let groups: string[];
  let tail: string[] = [];
  if (s.includes('.')) {
    // Embedded IPv4 in the last 32 bits.
    const lastColon = s.lastIndexOf(':');
    const v4 = s.slice(lastColon + 1).split('.').map(Number);
    s = s.slice(0, lastColon + 1) + ((v4[0] << 8) | v4[1]).toString(16) + ':' + ((v4[2] << 8) | v4[3]).toString(16);
  }
  const dbl = s.indexOf('::');
  if (dbl >= 0) {
    const head = s.slice(0, dbl) ? s.slice(0, dbl).split(':') : [];
    tail = s.slice(dbl + 2) ? s.slice(dbl + 2).split(':') : [];
    groups = [...head, ...new Array<string>(8 - head.length - tail.length).fill('0'), ...tail];
  } else {
    groups = s.split(':');
  }
  const bits = groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n);
  return { v6: true, bits };
}
