/**
 * A set of IP addresses and CIDR prefixes (`127.0.0.0/8`, `::1`, `2001:db8::/32`),
 * for the sources exempt from abuse limits. Parsing and matching are those of
 * the one IP module, src/security/ip-address.ts.
 */
import { CidrError, CidrList, parseHostIp } from './ip-address.js';

/** Error for an entry that is neither an IP address nor a CIDR prefix; maps to a configuration error. */
export class AddressSetError extends Error {
  constructor(readonly entry: string) {
    super(`not an IP address or CIDR prefix: ${entry}`);
    this.name = 'AddressSetError';
  }
}

/** Most addresses whose answer {@link AddressSet.has} remembers (the memo is emptied when it holds this many). */
export const MEMO_ENTRIES = 1024;

/** Matches addresses against a list of addresses and prefixes. IPv4-mapped IPv6 addresses match as IPv4. */
export class AddressSet {
  private readonly list: CidrList;
  /** Answers of {@link has} by address text (the gate asks per message); cleared when it reaches MEMO_ENTRIES. */
  private readonly memo = new Map<string, boolean>();

  /** @throws AddressSetError naming the first bad entry. */
  constructor(entries: readonly string[]) {
    try {
      this.list = new CidrList(entries);
    } catch (e) {
      if (e instanceof CidrError) throw new AddressSetError(e.entry);
      throw e;
    }
  }

  /** Addresses whose answer is remembered now, 0 ≤ n ≤ {@link MEMO_ENTRIES}. */
  get memoSize(): number {
    return this.memo.size;
  }

  /** True when no entry was given. */
  get empty(): boolean {
    return this.list.size === 0;
  }

  /** True when `address` (IPv4 or IPv6, optionally in brackets or with a zone id) lies in one of the entries. O(entries). */
  has(address: string): boolean {
    if (this.list.size === 0) return false;
    let known = this.memo.get(address);
    if (known === undefined) {
      known = this.match(address);
      if (this.memo.size >= MEMO_ENTRIES) this.memo.clear();
      this.memo.set(address, known);
    }
    return known;
  }

  private match(address: string): boolean {
    const p = parseHostIp(address);
    if (!p) return false;
    const b = p.bytes;
    // An IPv4-mapped address (::ffff:a.b.c.d) is the IPv4 address a dual-stack socket reports.
    const mapped = b.length === 16 && b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff;
    return this.list.has(mapped ? b.subarray(12, 16) : b);
  }
}
