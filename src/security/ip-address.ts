/**
 * The one IP address module: text <-> bytes, CIDR prefixes and the IPv4
 * address an IPv6 address embeds. It imports no socket module (node:net), so
 * the STUN codec, the TURN peer policy and the SIP security address sets can
 * all use it. IPv6 text output follows RFC 5952 (lowercase, the longest run
 * of two or more zero groups compressed to "::").
 */

/** Address family of a STUN transport address (RFC 8489 §14.1: 0x01 IPv4, 0x02 IPv6). */
export type IpFamily = 'IPv4' | 'IPv6';

/** Parses dotted-quad IPv4 text into 4 bytes; undefined if the text is not an IPv4 address. */
export function parseIPv4(text: string): Buffer | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  const out = Buffer.alloc(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i]!;
    if (!/^[0-9]{1,3}$/.test(p)) return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    out[i] = n;
  }
  return out;
}

/**
 * Parses IPv6 text (with "::" compression and an optional trailing dotted
 * IPv4 part, no zone id) into 16 bytes; undefined if malformed.
 */
export function parseIPv6(text: string): Buffer | undefined {
  if (text.length > 45 || text.includes('%')) return undefined;
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const groups = (s: string): number[] | undefined => {
    if (s === '') return [];
    const out: number[] = [];
    const items = s.split(':');
    for (let i = 0; i < items.length; i++) {
      const it = items[i]!;
      if (i === items.length - 1 && it.includes('.')) {
        const v4 = parseIPv4(it);
        if (!v4) return undefined;
        out.push(v4.readUInt16BE(0), v4.readUInt16BE(2));
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(it)) return undefined;
        out.push(parseInt(it, 16));
      }
    }
    return out;
  };
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  if (!head || !tail) return undefined;
  const total = head.length + tail.length;
  if (halves.length === 2 ? total > 7 : total !== 8) return undefined;
  const all = [...head, ...new Array<number>(8 - total).fill(0), ...tail];
  const out = Buffer.alloc(16);
  all.forEach((g, i) => out.writeUInt16BE(g, i * 2));
  return out;
}

/** Parses IPv4 or IPv6 text; returns the bytes (4 or 16) and family, or undefined. */
export function parseIp(text: string): { family: IpFamily; bytes: Buffer } | undefined {
  const v4 = parseIPv4(text);
  if (v4) return { family: 'IPv4', bytes: v4 };
  const v6 = parseIPv6(text);
  if (v6) return { family: 'IPv6', bytes: v6 };
  return undefined;
}

/** Formats 4 or 16 address bytes as text (RFC 5952 for IPv6). Throws RangeError on other lengths. */
export function formatIp(bytes: Buffer): string {
  if (bytes.length === 4) return `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`;
  if (bytes.length !== 16) throw new RangeError(`IP address must be 4 or 16 bytes, got ${bytes.length}`);
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push(bytes.readUInt16BE(i * 2));
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) { bestStart = i; bestLen = j - i; }
    i = j;
  }
  const hex = g.map((x) => x.toString(16));
  if (bestLen < 2) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

/**
 * Parses address text as it appears in configuration and socket APIs:
 * brackets ("[::1]") and an IPv6 zone id ("fe80::1%eth0") are removed first.
 * Undefined if the rest is not an IPv4 or IPv6 address.
 */
export function parseHostIp(text: string): { family: IpFamily; bytes: Buffer } | undefined {
  let s = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text;
  const zone = s.indexOf('%');
  if (zone >= 0 && s.includes(':')) s = s.slice(0, zone);
  return parseIp(s);
}

/** A CIDR prefix: the address bytes (4 or 16) and the prefix length in bits. */
export interface CidrPrefix {
  bytes: Buffer;
  bits: number;
}

/** Error for text that is neither an IP address nor a CIDR prefix; carries the entry for a configuration error. */
export class CidrError extends RangeError {
  constructor(readonly entry: string) {
    super(`not an IP address or CIDR prefix: ${entry}`);
    this.name = 'CidrError';
  }
}

/** Parses `a.b.c.d/n`, `x::y/n` or a bare address (= /32 or /128). @throws CidrError naming the entry. */
export function parseCidr(entry: string): CidrPrefix {
  const [addr = '', len, extra] = entry.trim().split('/');
  const p = parseHostIp(addr);
  const width = p?.family === 'IPv4' ? 32 : 128;
  if (!p || extra !== undefined || (len !== undefined && (!/^\d{1,3}$/.test(len) || Number(len) > width))) throw new CidrError(entry);
  return { bytes: p.bytes, bits: len === undefined ? width : Number(len) };
}

/** True when address bytes `bytes` lie in prefix `p` (an IPv4 address never matches an IPv6 prefix, nor the reverse). */
export function inCidr(bytes: Buffer, p: CidrPrefix): boolean {
  if (bytes.length !== p.bytes.length) return false;
  const full = p.bits >> 3;
  for (let i = 0; i < full; i++) if (bytes[i] !== p.bytes[i]) return false;
  const rest = p.bits & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return (bytes[full]! & mask) === (p.bytes[full]! & mask);
}

/** A list of CIDR prefixes matched against address bytes. Immutable. */
export class CidrList {
  private readonly prefixes: CidrPrefix[];
  /** @throws CidrError naming the first entry that is not an address or prefix. */
  constructor(private readonly entries: readonly string[]) {
    this.prefixes = entries.map(parseCidr);
  }
  /** Number of prefixes. */
  get size(): number {
    return this.prefixes.length;
  }
  /** True when `bytes` (4 or 16) lies in one of the prefixes. O(entries). */
  has(bytes: Buffer): boolean {
    for (const p of this.prefixes) if (inCidr(bytes, p)) return true;
    return false;
  }
  /** The first entry (as written) that `bytes` (4 or 16) lies in, or undefined. O(entries). */
  find(bytes: Buffer): string | undefined {
    for (let i = 0; i < this.prefixes.length; i++) if (inCidr(bytes, this.prefixes[i]!)) return this.entries[i];
    return undefined;
  }
}

/**
 * The IPv4 address (4 bytes) that IPv6 address bytes `b` (16) carry and that
 * a packet to it ends up reaching, or undefined when it carries none:
 * - IPv4-mapped ::ffff:a.b.c.d (RFC 4291 §2.5.5.2),
 * - IPv4-translated ::ffff:0:a.b.c.d (RFC 2765 §2.1, SIIT),
 * - IPv4-compatible ::a.b.c.d (RFC 4291 §2.5.5.1; not :: and ::1),
 * - NAT64 well-known prefix 64:ff9b::/96 (RFC 6052 §2.1),
 * - local-use NAT64 64:ff9b:1::/48 in its /96 form (RFC 8215),
 * - 6to4 2002:AABB:CCDD::/48 (RFC 3056 §2).
 */
export function embeddedIPv4(b: Buffer): Buffer | undefined {
  if (b.length !== 16) return undefined;
  const zero = (from: number, to: number): boolean => {
    for (let i = from; i < to; i++) if (b[i] !== 0) return false;
    return true;
  };
  if (zero(0, 10) && b[10] === 0xff && b[11] === 0xff) return b.subarray(12, 16);
  if (zero(0, 8) && b[8] === 0xff && b[9] === 0xff && b[10] === 0 && b[11] === 0) return b.subarray(12, 16);
  if (zero(0, 12) && !(zero(12, 15) && b[15]! <= 1)) return b.subarray(12, 16);
  if (b.readUInt32BE(0) === 0x0064ff9b && zero(4, 12)) return b.subarray(12, 16);
  if (b.readUInt32BE(0) === 0x0064ff9b && b.readUInt16BE(4) === 1 && zero(6, 12)) return b.subarray(12, 16);
  if (b.readUInt16BE(0) === 0x2002) return b.subarray(2, 6);
  return undefined;
}

/** Strips an IPv4-mapped IPv6 prefix ("::ffff:1.2.3.4" -> "1.2.3.4"); other text is returned as is. */
export function unmapIPv4(text: string): string {
  const m = /^::ffff:([0-9]{1,3}(?:\.[0-9]{1,3}){3})$/i.exec(text);
  return m ? m[1]! : text;
}
