/**
 * Locating SIP servers (RFC 3263 §4) for a SIP or SIPS URI: which transport,
 * address and port to send a request to, in the order to try them.
 *
 * TARGET is the `maddr` parameter when present, else the host (§4).
 * - §4.1 transport: the `transport` parameter when present; else for a numeric
 *   TARGET or an explicit port, UDP for sip: and TLS (over TCP) for sips:; else
 *   NAPTR records of TARGET, keeping services we support (SIPS+D2T, SIP+D2T,
 *   SIP+D2U, and RFC 7118's SIP+D2W / SIPS+D2W) and, for sips:, only SIPS+
 *   services, ordered by order then preference, flag "s"; with no usable NAPTR,
 *   SRV queries `_sips._tcp`, `_sip._tcp`, `_sip._udp` (sips: only the first)
 *   in that preference order; with none, A/AAAA of TARGET.
 * - §4.2 port and address: a numeric TARGET is the address; an explicit port
 *   means A/AAAA of TARGET with that port; otherwise SRV records (RFC 2782
 *   priority and weighted random order, see srv-order.ts) give target and port,
 *   each target resolved to its A then AAAA addresses; with no SRV, A/AAAA of
 *   TARGET with port 5060, or 5061 for TLS and WSS (RFC 3261 §19.1.2).
 * - §4.3 failover: every address is a separate target; the caller tries them
 *   in order and reports failures to {@link FailedTargets}, which this module
 *   consults to skip targets that failed recently.
 *
 * All NAPTR records (not only the first usable one) contribute targets, so a
 * domain that publishes TLS and UDP falls back to UDP when no TLS target
 * answers; callers that must keep TLS (sips:, `federation.require_tls`) pass
 * only `tls` in `transports`.
 *
 * Every target carries `tlsName`: TARGET as written in the URI (before any
 * NAPTR/SRV), the identity a TLS client verifies (RFC 5922 §4, §7).
 */
import { isIP } from 'node:net';
import type { SipUri } from '../sip/uri.js';
import { SipError } from '../sip/errors.js';
import type { TransportName } from '../transport/types.js';
import type { FailedTargets } from './failed-targets.js';
import { DnsLookupError, normalizeDnsName, type AddressRecord, type DnsLookup, type NaptrRecord } from './resolver.js';
import { orderSrvRecords } from './srv-order.js';

/** One place to send a request: transport, IP address (IPv6 without brackets), port, and the domain its TLS certificate must name. */
export interface SipTarget {
  transport: TransportName;
  address: string;
  port: number;
  /** RFC 5922: the SIP domain (or address) the peer certificate is checked against. */
  tlsName: string;
}

/** Options of {@link locateSipServers}. */
export interface LocateOptions {
  /** The resolver (normally a DnsResolver). */
  dns: DnsLookup;
  /** Transports we can send over; default udp, tcp, tls. Targets of other transports are left out. */
  transports?: readonly TransportName[];
  /** IP families we can send to; default [4, 6]. Within one host, A answers come before AAAA unless `preferIpv6`. */
  families?: readonly (4 | 6)[];
  preferIpv6?: boolean;
  /** Failed-target table (RFC 3263 §4.3); targets it names are skipped. */
  failed?: FailedTargets;
  /** Random numbers in [0, 1) for SRV weights; default Math.random. */
  random?: () => number;
  /** Bound on the targets produced (default 20). */
  maxTargets?: number;
}

/** NAPTR services of RFC 3263 §4.1 and RFC 7118 §10.1, with the transport and SRV prefix each names. */
const NAPTR_SERVICES: Record<string, { transport: TransportName; secure: boolean }> = {
  'sips+d2t': { transport: 'tls', secure: true },
  'sip+d2t': { transport: 'tcp', secure: false },
  'sip+d2u': { transport: 'udp', secure: false },
  'sips+d2w': { transport: 'wss', secure: true },
  'sip+d2w': { transport: 'ws', secure: false },
};

/** SRV owner-name prefix for a transport when no NAPTR named one (RFC 3263 §4.1, RFC 7118). */
const SRV_PREFIX: Record<TransportName, string> = {
  tls: '_sips._tcp',
  tcp: '_sip._tcp',
  udp: '_sip._udp',
  wss: '_sips._ws',
  ws: '_sip._ws',
};

/** Transports tried with SRV when no NAPTR record was usable, in our order of preference (§4.1). */
const SRV_FALLBACK: readonly TransportName[] = ['tls', 'tcp', 'udp'];

function isSecure(t: TransportName): boolean {
  return t === 'tls' || t === 'wss';
}

function defaultPort(t: TransportName): number {
  return isSecure(t) ? 5061 : 5060;
}

/**
 * The transport named by the `transport` URI parameter (§4.1), for a sips:
 * URI the secure variant. undefined when absent.
 *
 * @throws SipError 503 for a transport we cannot name (e.g. `sctp`), 400 for
 *   sips: with `transport=udp` (TLS needs a reliable transport, RFC 3261 §26.2.2).
 */
function explicitTransport(uri: SipUri): TransportName | undefined {
  const raw = uri.params.transport;
  if (raw === undefined || raw === null) return undefined;
  const tp = raw.toLowerCase();
  const sips = uri.scheme === 'sips';
  switch (tp) {
    case 'udp':
      if (sips) throw new SipError(400, 'Bad Request: sips: URI with transport=udp');
      return 'udp';
    case 'tcp':
      return sips ? 'tls' : 'tcp';
    case 'tls':
      return 'tls';
    case 'ws':
      return sips ? 'wss' : 'ws';
    case 'wss':
      return 'wss';
    default:
      throw new SipError(503, `Service Unavailable: transport ${tp} not supported`);
  }
}

/**
 * The transport when neither the URI nor DNS names one (§4.1: numeric host,
 * explicit port, or no NAPTR/SRV): TLS for sips:, else UDP, or TCP (then TLS)
 * when we cannot send UDP.
 */
function implicitTransport(sips: boolean, transports: ReadonlySet<TransportName>): TransportName {
  if (sips) return 'tls';
  return transports.has('udp') ? 'udp' : transports.has('tcp') ? 'tcp' : 'tls';
}

/**
 * The NAPTR records of RFC 3263 §4.1 we can use, best first: services we know
 * and support, SIPS+ only for sips:, flag "s", a replacement present.
 */
export function usableSipNaptr(records: readonly NaptrRecord[], sips: boolean, transports: ReadonlySet<TransportName>): NaptrRecord[] {
  return records
    .filter((r) => {
      const svc = NAPTR_SERVICES[r.service.toLowerCase()];
      return svc !== undefined && (!sips || svc.secure) && transports.has(svc.transport) && r.flags.toLowerCase() === 's' && r.replacement !== '';
    })
    .sort((a, b) => a.order - b.order || a.preference - b.preference);
}

/**
 * The targets for `uri` in the order to try them (see the module comment), as
 * an async iterator: DNS is asked only as far as the caller reads, so the
 * first target is available after the first answers. Targets that the failed
 * table names are skipped; duplicates are produced once.
 *
 * @throws SipError 416 for a scheme other than sip/sips; 400/503 for a bad
 *   `transport` parameter (see explicitTransport); 503 when every target found
 *   is in the failed table; DnsLookupError (503) when the DNS servers could
 *   not answer and no target was found.
 */
export async function* locateSipServers(uri: SipUri, opts: LocateOptions): AsyncGenerator<SipTarget, void, undefined> {
  if (uri.scheme !== 'sip' && uri.scheme !== 'sips') throw new SipError(416, 'Unsupported URI Scheme');
  const sips = uri.scheme === 'sips';
  const transports = new Set<TransportName>((opts.transports ?? ['udp', 'tcp', 'tls']).filter((t) => !sips || isSecure(t)));
  const families = opts.families ?? [4, 6];
  const maxTargets = opts.maxTargets ?? 20;
  const target = (uri.params.maddr ?? uri.host).replace(/^\[|\]$/g, '');
  const tlsName = normalizeDnsName(target);
  const seen = new Set<string>();
  let produced = 0;
  let skippedFailed = 0;
  let dnsError: DnsLookupError | undefined;

  /** Filters duplicates and failed targets; false once maxTargets were produced. */
  const admit = (t: SipTarget): boolean => {
    const key = `${t.transport} ${t.address} ${t.port}`;
    if (seen.has(key) || produced >= maxTargets) return false;
    seen.add(key);
    if (opts.failed?.failure(t) !== undefined) {
      skippedFailed++;
      return false;
    }
    produced++;
    return true;
  };
  const addressesOf = async (host: string): Promise<AddressRecord[]> => {
    const order = opts.preferIpv6 ? [6, 4] : [4, 6];
    const out: AddressRecord[] = [];
    for (const family of order as (4 | 6)[]) {
      if (!families.includes(family)) continue;
      try {
        out.push(...(await opts.dns.addresses(host, family)));
      } catch (err) {
        if (!(err instanceof DnsLookupError)) throw err;
        dnsError ??= err;
      }
    }
    return out;
  };
  const hostTargets = async function* (host: string, port: number, transport: TransportName): AsyncGenerator<SipTarget> {
    if (!transports.has(transport) || produced >= maxTargets) return;
    for (const a of await addressesOf(host)) {
      const t: SipTarget = { transport, address: a.address, port, tlsName };
      if (admit(t)) yield t;
    }
  };
  /** SRV at `name` (§4.2); true when it had records (even if none of them resolved). */
  const srvTargets = async function* (name: string, transport: TransportName): AsyncGenerator<SipTarget, boolean> {
    let records;
    try {
      records = await opts.dns.srv(name);
    } catch (err) {
      if (!(err instanceof DnsLookupError)) throw err;
      dnsError ??= err;
      return false;
    }
    if (records.length === 0) return false;
    for (const r of orderSrvRecords(records, opts.random)) yield* hostTargets(r.target, r.port, transport);
    return true;
  };

  const explicit = explicitTransport(uri);
  if (explicit !== undefined && !transports.has(explicit)) {
    throw new SipError(503, `Service Unavailable: no ${explicit} transport for ${target}`);
  }
  const family = isIP(target);
  if (family !== 0) {
    // §4.1/§4.2: numeric TARGET, no DNS.
    const transport = explicit ?? implicitTransport(sips, transports);
    if (!transports.has(transport)) throw new SipError(503, `Service Unavailable: no ${transport} transport for ${target}`);
    if (!families.includes(family as 4 | 6)) throw new SipError(503, `Service Unavailable: cannot send to IPv${family} ${target}`);
    const t: SipTarget = { transport, address: target, port: uri.port ?? defaultPort(transport), tlsName };
    if (admit(t)) yield t;
    return;
  }
  if (uri.port !== undefined) {
    // §4.2: explicit port, A/AAAA only.
    yield* hostTargets(target, uri.port, explicit ?? implicitTransport(sips, transports));
  } else if (explicit !== undefined) {
    // §4.2: transport given, SRV for it, then A/AAAA with the default port.
    if (!(yield* srvTargets(`${SRV_PREFIX[explicit]}.${tlsName}`, explicit))) {
      yield* hostTargets(target, defaultPort(explicit), explicit);
    }
  } else {
    let naptr: NaptrRecord[] = [];
    try {
      naptr = usableSipNaptr(await opts.dns.naptr(tlsName), sips, transports);
    } catch (err) {
      if (!(err instanceof DnsLookupError)) throw err;
      dnsError ??= err;
    }
    let anySrv = false;
    for (const r of naptr) {
      if (yield* srvTargets(r.replacement, NAPTR_SERVICES[r.service.toLowerCase()]!.transport)) anySrv = true;
    }
    if (naptr.length === 0) {
      for (const transport of SRV_FALLBACK) {
        if (!transports.has(transport)) continue;
        if (yield* srvTargets(`${SRV_PREFIX[transport]}.${tlsName}`, transport)) anySrv = true;
      }
    }
    if (!anySrv) {
      // §4.2: no SRV records: A/AAAA of TARGET with the default port, over the transport of the best
      // NAPTR record, else UDP for sip: (TCP when we have no UDP) and TLS for sips:.
      const transport = naptr[0] ? NAPTR_SERVICES[naptr[0].service.toLowerCase()]!.transport : implicitTransport(sips, transports);
      yield* hostTargets(target, defaultPort(transport), transport);
    }
  }
  if (produced === 0 && skippedFailed > 0) {
    throw new SipError(503, `Service Unavailable: every server of ${target} failed in the last seconds`);
  }
  if (produced === 0 && dnsError !== undefined) throw dnsError;
}

/**
 * Reads every target of {@link locateSipServers} into a list (bounded by
 * `maxTargets`).
 *
 * @throws SipError 503 "cannot resolve" when there is none; the errors of locateSipServers.
 */
export async function locateSipServerList(uri: SipUri, opts: LocateOptions): Promise<SipTarget[]> {
  const out: SipTarget[] = [];
  for await (const t of locateSipServers(uri, opts)) out.push(t);
  if (out.length === 0) throw new SipError(503, `Service Unavailable: cannot resolve ${uri.params.maddr ?? uri.host}`);
  return out;
}
