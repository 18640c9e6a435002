/**
 * IP address text <-> bytes, without node:net, so the protocol core stays
 * free of socket modules. IPv6 text output follows RFC 5952 (lowercase, the
 * longest run of two or more zero groups compressed to "::").
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

/** Strips an IPv4-mapped IPv6 prefix ("::ffff:1.2.3.4" -> "1.2.3.4"); other text is returned as is. */
export function unmapIPv4(text: string): string {
  const m = /^::ffff:([0-9]{1,3}(?:\.[0-9]{1,3}){3})$/i.exec(text);
  return m ? m[1]! : text;
}
