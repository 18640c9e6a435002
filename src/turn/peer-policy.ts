/**
 * Which peer addresses a client may reach through a relay (RFC 8656 §21.2.3,
 * §9: a server should refuse peers it must not talk to). Refused peers get
 * 403 Forbidden in CreatePermission, ChannelBind and Connect (RFC 6062 §5.2),
 * and Send indications and ChannelData toward them are dropped.
 *
 * Refused by default: every range of the IANA IPv4 and IPv6 Special-Purpose
 * Address Registries (RFC 6890, updated by RFC 8190) that is not globally
 * reachable, multicast, and the deprecated site-local and IPv4-translated
 * ranges. IPv6 forms that carry an IPv4 address (see embeddedIPv4) are also
 * judged by that IPv4 address.
 */
import { CidrList, embeddedIPv4, parseIp } from '../security/ip-address.js';

/**
 * Default-refused IPv4 prefixes: the IPv4 Special-Purpose Address Registry
 * entries with "Globally Reachable" False or N/A, and multicast (RFC 5771).
 */
export const DEFAULT_DENIED_IPV4: readonly string[] = [
  '0.0.0.0/8', // "this network" (RFC 791)
  '10.0.0.0/8', // private-use (RFC 1918)
  '100.64.0.0/10', // shared address space, CGNAT (RFC 6598)
  '127.0.0.0/8', // loopback (RFC 1122)
  '169.254.0.0/16', // link-local (RFC 3927)
  '172.16.0.0/12', // private-use (RFC 1918)
  '192.0.0.0/24', // IETF protocol assignments (RFC 6890), incl. DS-Lite 192.0.0.0/29, NAT64 discovery 192.0.0.170/31
  '192.0.2.0/24', // TEST-NET-1, documentation (RFC 5737)
  '192.88.99.0/24', // deprecated 6to4 relay anycast (RFC 7526)
  '192.168.0.0/16', // private-use (RFC 1918)
  '198.18.0.0/15', // benchmarking (RFC 2544)
  '198.51.100.0/24', // TEST-NET-2 (RFC 5737)
  '203.0.113.0/24', // TEST-NET-3 (RFC 5737)
  '224.0.0.0/4', // multicast (RFC 5771)
  '240.0.0.0/4', // reserved (RFC 1112), incl. limited broadcast 255.255.255.255/32 (RFC 919)
];
/**
 * Default-refused IPv6 prefixes: the IPv6 Special-Purpose Address Registry
 * entries with "Globally Reachable" False or N/A, multicast, the deprecated
 * site-local range and the IPv4-translated form.
 */
export const DEFAULT_DENIED_IPV6: readonly string[] = [
  '::/128', // unspecified (RFC 4291)
  '::1/128', // loopback (RFC 4291)
  '::ffff:0:0/96', // IPv4-mapped (RFC 4291)
  '::ffff:0:0:0/96', // IPv4-translated (RFC 2765): reaches IPv4 through an SIIT translator
  '64:ff9b:1::/48', // local-use IPv4/IPv6 translation (RFC 8215)
  '100::/64', // discard-only (RFC 6666)
  '100:0:0:1::/64', // dummy IPv6 prefix (RFC 9780)
  '2001::/23', // IETF protocol assignments (RFC 2928), incl. Teredo 2001::/32, benchmarking 2001:2::/48, ORCHID 2001:10::/28
  '2001:db8::/32', // documentation (RFC 3849)
  '3fff::/20', // documentation (RFC 9637)
  '5f00::/16', // segment routing SIDs (RFC 9602)
  'fc00::/7', // unique local (RFC 4193)
  'fe80::/10', // link-local unicast (RFC 4291)
  'fec0::/10', // deprecated site-local (RFC 3879)
  'ff00::/8', // multicast (RFC 4291)
];
/**
 * Entries of the registries inside a refused prefix above that are globally
 * reachable, so not refused: PCP and TURN anycast, AMT, AS112, ORCHIDv2, drone remote ID.
 */
export const GLOBAL_SPECIAL_PURPOSE: readonly string[] = [
  '192.0.0.9/32', // PCP anycast (RFC 7723)
  '192.0.0.10/32', // TURN anycast (RFC 8155)
  '2001:1::1/128', // PCP anycast (RFC 7723)
  '2001:1::2/128', // TURN anycast (RFC 8155)
  '2001:1::3/128', // DNS-SD service registration protocol anycast (RFC 9665)
  '2001:3::/32', // AMT (RFC 7450)
  '2001:4:112::/48', // AS112-v6 (RFC 7535)
  '2001:20::/28', // ORCHIDv2 (RFC 7343)
  '2001:30::/28', // drone remote ID protocol entity tags (RFC 9374)
];

/**
 * The address a packet to `address` really reaches: the embedded IPv4 bytes
 * for the IPv4-embedding IPv6 forms (embeddedIPv4), else the address's own
 * bytes; undefined for text that is not an IP address.
 */
export function effectivePeerBytes(address: string): Buffer | undefined {
  const p = parseIp(address);
  if (!p) return undefined;
  if (p.family === 'IPv4') return p.bytes;
  return embeddedIPv4(p.bytes) ?? p.bytes;
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

/** Decides which peers a relay may talk to. Its lists are fixed; the only state is the refusal-report budget. */
export class PeerPolicy {
  private readonly defaults = new CidrList([...DEFAULT_DENIED_IPV4, ...DEFAULT_DENIED_IPV6]);
  private readonly globalSpecial = new CidrList(GLOBAL_SPECIAL_PURPOSE);
  private readonly loopback = new CidrList(['127.0.0.0/8', '::1/128']);
  private readonly allowed: CidrList;
  private readonly denied: CidrList;
  private readonly own: CidrList;
  private readonly relays: CidrList;

  /** @throws CidrError (a RangeError) naming a list entry that is not an address or prefix. */
  constructor(private readonly opts: PeerPolicyOptions) {
    this.allowed = new CidrList(opts.allowedPeers ?? []);
    this.denied = new CidrList(opts.deniedPeers ?? []);
    this.own = new CidrList((opts.ownAddresses ?? []).filter((a) => !isWildcard(a)));
    this.relays = new CidrList(opts.relayAddresses ?? []);
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
    const any = (l: CidrList) => l.find(eff) ?? l.find(raw);
    if (any(this.allowed)) return undefined;
    if (this.opts.allowLoopbackPeers && any(this.loopback)) return undefined;
    const denied = any(this.denied);
    if (denied) return `turn.denied_peers ${denied}`;
    const byDefault = (!this.globalSpecial.has(eff) && this.defaults.find(eff)) || (!this.globalSpecial.has(raw) && this.defaults.find(raw)) || undefined;
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
