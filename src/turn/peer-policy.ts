/**
 * Which peer addresses a client may reach through a relay (RFC 8656 §21.2.3,
 * §9: a server should refuse peers it must not talk to). Refused peers get
 * 403 Forbidden in CreatePermission, ChannelBind and Connect (RFC 6062 §5.2),
 * and Send indications and ChannelData toward them are dropped.
 *
 * IPv6 forms that carry an IPv4 address are judged by that IPv4 address:
 * IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible (::a.b.c.d), NAT64
 * (64:ff9b::/96, RFC 6052) and 6to4 (2002:AABB:CCDD::/48, RFC 3056).
 */
import { parseIp } from './ip-address.js';

/** Default-refused IPv4 prefixes: this network, private, CGNAT, loopback, link-local, multicast, reserved and broadcast. */
export const DEFAULT_DENIED_IPV4: readonly string[] = [
  '0.0.0.0/8', '10.0.0.0/8', '100.64.0.0/10', '127.0.0.0/8', '169.254.0.0/16', '172.16.0.0/12', '192.168.0.0/16',
  '224.0.0.0/4', '240.0.0.0/4',
];
/** Default-refused IPv6 prefixes: unspecified, loopback, link-local, unique local, multicast. */
export const DEFAULT_DENIED_IPV6: readonly string[] = ['::/128', '::1/128', 'fe80::/10', 'fc00::/7', 'ff00::/8'];

/** A CIDR prefix as bytes and a length in bits. */
interface Prefix {
  bytes: Buffer;
  bits: number;
}

/** Parses `a.b.c.d/n`, `x::y/n` or a bare address. @throws RangeError naming the entry. */
export function parsePrefix(entry: string): Prefix {
  const [addr = '', len, extra] = entry.trim().split('/');
  const p = parseIp(addr);
  const width = p?.family === 'IPv4' ? 32 : 128;
  if (!p || extra !== undefined || (len !== undefined && (!/^\d{1,3}$/.test(len) || Number(len) > width))) {
    throw new RangeError(`not an IP address or CIDR prefix: ${entry}`);
  }
  return { bytes: p.bytes, bits: len === undefined ? width : Number(len) };
}

function inPrefix(bytes: Buffer, p: Prefix): boolean {
  if (bytes.length !== p.bytes.length) return false;
  const full = p.bits >> 3;
  for (let i = 0; i < full; i++) if (bytes[i] !== p.bytes[i]) return false;
  const rest = p.bits & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return (bytes[full]! & mask) === (p.bytes[full]! & mask);
}

/** A list of CIDR prefixes matched against address bytes (4 or 16). */
export class PrefixList {
  private readonly prefixes: Prefix[];
  /** @throws RangeError naming the first entry that is not an address or prefix. */
  constructor(private readonly entries: readonly string[]) {
    this.prefixes = entries.map(parsePrefix);
  }
  /** True when `bytes` lies in one of the prefixes. O(entries). */
  has(bytes: Buffer): boolean {
    return this.find(bytes) !== undefined;
  }
  /** The first entry (as written) `bytes` lies in, or undefined. O(entries). */
  find(bytes: Buffer): string | undefined {
    const i = this.prefixes.findIndex((p) => inPrefix(bytes, p));
    return i < 0 ? undefined : this.entries[i];
  }
}

/**
 * The address a packet to `address` really reaches: IPv4 bytes for the
 * IPv4-embedding IPv6 forms listed above, else the address's own bytes;
 * undefined for text that is not an IP address.
 */
export function effectivePeerBytes(address: string): Buffer | undefined {
  const p = parseIp(address);
  if (!p) return undefined;
  if (p.family === 'IPv4') return p.bytes;
  const b = p.bytes;
  const zero = (from: number, to: number) => b.subarray(from, to).every((x) => x === 0);
  if (zero(0, 10) && b[10] === 0xff && b[11] === 0xff) return b.subarray(12, 16);
  // IPv4-compatible ::a.b.c.d, but not :: and ::1.
  if (zero(0, 12) && !(zero(12, 15) && b[15]! <= 1)) return b.subarray(12, 16);
  if (b.readUInt32BE(0) === 0x0064ff9b && zero(4, 12)) return b.subarray(12, 16);
  if (b.readUInt16BE(0) === 0x2002) return b.subarray(2, 6);
  return b;
}

/** Policy settings. Every list holds addresses or CIDR prefixes. */
export interface PeerPolicyOptions {
  /** Allow 127.0.0.0/8 and ::1 (tests and single-host set-ups). */
  allowLoopbackPeers: boolean;
  /** Allowed even when refused by default, by `deniedPeers` or as own addresses (`turn.allowed_peers`). */
  allowedPeers?: readonly string[];
  /** Refused in addition to the defaults (`turn.denied_peers`). */
  deniedPeers?: readonly string[];
  /** The server's own addresses (listeners, interfaces): refused as peers. */
  ownAddresses?: readonly string[];
  /** Relayed transport addresses' IPs: allowed as peers (client-to-client through this server) although own. */
  relayAddresses?: readonly string[];
  /** Told which rule refused a peer (e.g. `default-denied 10.0.0.0/8`), at most 10 times a second; for an info log line. */
  onRefused?: (address: string, rule: string) => void;
}

/** Decides which peers a relay may talk to. Immutable. */
export class PeerPolicy {
  private readonly defaults = new PrefixList([...DEFAULT_DENIED_IPV4, ...DEFAULT_DENIED_IPV6]);
  private readonly loopback = new PrefixList(['127.0.0.0/8', '::1/128']);
  private readonly allowed: PrefixList;
  private readonly denied: PrefixList;
  private readonly own: PrefixList;
  private readonly relays: PrefixList;

  /** @throws RangeError naming a list entry that is not an address or prefix. */
  constructor(private readonly opts: PeerPolicyOptions) {
    this.allowed = new PrefixList(opts.allowedPeers ?? []);
    this.denied = new PrefixList(opts.deniedPeers ?? []);
    this.own = new PrefixList((opts.ownAddresses ?? []).filter((a) => !isWildcard(a)));
    this.relays = new PrefixList(opts.relayAddresses ?? []);
  }

  /**
   * True if a relay may send to / accept from IP `address` (text, IPv4 or
   * IPv6). Order: not an IP -> refused; `allowedPeers` -> allowed; loopback
   * with `allowLoopbackPeers` -> allowed; `deniedPeers`, the default ranges
   * and own addresses (other than relay addresses) -> refused; else allowed.
   * Lists are matched against the address as written and its IPv4 form.
   */
  allows(address: string): boolean {
    const rule = this.refusedBy(address);
    if (rule !== undefined && this.opts.onRefused && this.reportBudget()) this.opts.onRefused(address, rule);
    return rule === undefined;
  }

  /** The rule refusing `address` (`not an IP address`, `turn.denied_peers 203.0.113.0/24`, `default-denied 10.0.0.0/8`, `own address`), or undefined when allowed. */
  refusedBy(address: string): string | undefined {
    const raw = parseIp(address)?.bytes;
    const eff = effectivePeerBytes(address);
    if (!raw || !eff) return 'not an IP address';
    const any = (l: PrefixList) => l.find(eff) ?? l.find(raw);
    if (any(this.allowed)) return undefined;
    if (this.opts.allowLoopbackPeers && any(this.loopback)) return undefined;
    const denied = any(this.denied);
    if (denied) return `turn.denied_peers ${denied}`;
    const byDefault = any(this.defaults);
    if (byDefault) return `default-denied ${byDefault} (turn.allowed_peers or turn.allow_loopback_peers allow it)`;
    if (any(this.own) && !any(this.relays)) return 'own address';
    return undefined;
  }

  private reportWindowMs = 0;
  private reportsInWindow = 0;
  /** At most 10 refusal reports per second (Send indications to a refused peer are refused per packet). */
  private reportBudget(nowMs = Date.now()): boolean {
    if (nowMs - this.reportWindowMs >= 1000) {
      this.reportWindowMs = nowMs;
      this.reportsInWindow = 0;
    }
    return this.reportsInWindow++ < 10;
  }
}

function isWildcard(a: string): boolean {
  return a === '0.0.0.0' || a === '::';
}

/**
 * The default policy with only the loopback switch (kept for callers that
 * have no lists): see {@link PeerPolicy.allows}.
 */
export function isPeerAllowed(address: string, opts: PeerPolicyOptions): boolean {
  return new PeerPolicy(opts).allows(address);
}
