import { lookup } from 'node:dns/promises';
import net from 'node:net';
import type { SipUri } from '../sip/uri.js';
import { SipError } from '../sip/errors.js';
import { locateSipServers } from '../dns/server-location.js';
import type { Destination, TransportName } from '../transport/types.js';
import type { Federation } from './federation.js';

/**
 * The transport, address and port to send a request to for a URI whose host
 * is an address or one of our names (the next hop: top Route or Request-URI,
 * RFC 3261 §16.6 step 7, §18.1.1, RFC 3263 §4 for explicit ports and numeric
 * hosts): `maddr` overrides the host, `transport` picks the transport (`sips`
 * implies TLS), the port defaults to 5060 (5061 for TLS). A host name is
 * resolved with the system resolver (A/AAAA).
 *
 * @throws SipError 416 for a scheme other than sip/sips, 503 when the host does not resolve
 *   or names a transport this server has no listener for.
 */
export async function resolveUri(uri: SipUri, available: (t: TransportName) => boolean): Promise<Destination> {
  const known = resolveNumericUri(uri, available);
  if (known !== undefined) return known;
  const host = hostOf(uri);
  const { transport, port } = transportAndPort(uri, available);
  try {
    const { address } = await lookup(host);
    return { transport, address, port };
  } catch {
    throw new SipError(503, `Service Unavailable: cannot resolve ${host}`);
  }
}

/**
 * {@link resolveUri} without waiting, for a URI whose host (or `maddr`) is an
 * IP address: the destination, or undefined when the host is a name to look up.
 *
 * @throws SipError as resolveUri: 416 for a scheme other than sip/sips, 503 for a transport without listener.
 */
export function resolveNumericUri(uri: SipUri, available: (t: TransportName) => boolean): Destination | undefined {
  const { transport, port } = transportAndPort(uri, available);
  const host = hostOf(uri);
  return net.isIP(host) ? { transport, address: host, port } : undefined;
}

/** The transport and port of {@link resolveUri}. @throws SipError 416, 503 as resolveUri. */
function transportAndPort(uri: SipUri, available: (t: TransportName) => boolean): { transport: TransportName; port: number } {
  if (uri.scheme !== 'sip' && uri.scheme !== 'sips') throw new SipError(416, 'Unsupported URI Scheme');
  const tp = (uri.params.transport ?? '').toLowerCase();
  let transport: TransportName = uri.scheme === 'sips' || tp === 'tls' ? 'tls' : tp === 'tcp' ? 'tcp' : 'udp';
  if (tp === 'ws' || tp === 'wss' || tp === 'sctp') throw new SipError(503, `Service Unavailable: transport ${tp} not supported`);
  if (!available(transport)) {
    if (transport === 'udp' && available('tcp')) transport = 'tcp';
    else throw new SipError(503, `Service Unavailable: no ${transport} listener`);
  }
  return { transport, port: uri.port ?? (transport === 'tls' ? 5061 : 5060) };
}

/** TARGET of RFC 3263 §4: `maddr`, else the host, without IPv6 brackets. */
function hostOf(uri: SipUri): string {
  return (uri.params.maddr ?? uri.host).replace(/^\[|\]$/g, '');
}

/** What {@link nextHops} needs to know about this server. */
export interface NextHopOptions {
  /** True when we have a listener (and so can send) over that transport. */
  available(t: TransportName): boolean;
  /** True when a host is one of our domains or addresses. */
  isOurHost(host: string): boolean;
  /** DNS and policy for other domains; without it every host is resolved with A/AAAA ({@link resolveUri}). */
  federation?: Federation;
}

/**
 * The next hops for a URI, in the order to try them (RFC 3263 §4.3 failover):
 * - a numeric host or one of our names: the one destination of {@link resolveUri};
 * - a host of another domain: RFC 3263 server location (NAPTR, SRV, A/AAAA;
 *   explicit ports skip NAPTR/SRV, src/dns/server-location.ts) over the
 *   transports we have listeners for, TLS only for `sips:` and under
 *   `federation.require_tls` (RFC 5922, RFC 5630); every TLS destination
 *   carries `tlsName` (the domain its certificate must name). Targets that
 *   failed in the last `dns.failed_target_seconds` are skipped.
 *
 * @throws SipError 416 (scheme), 503 (no target, DNS failure, every target failed recently).
 */
export async function* nextHops(uri: SipUri, opts: NextHopOptions): AsyncGenerator<Destination, void, undefined> {
  const host = hostOf(uri);
  const fed = opts.federation;
  if (!fed || net.isIP(host) || opts.isOurHost(host)) {
    yield await resolveUri(uri, opts.available);
    return;
  }
  const secure = uri.scheme === 'sips' || fed.requireTls;
  const transports = (['tls', 'tcp', 'udp'] as const).filter((t) => opts.available(t) && (!secure || t === 'tls'));
  if (transports.length === 0) throw new SipError(503, 'Service Unavailable: no TLS listener to reach other domains');
  let any = false;
  for await (const t of locateSipServers(uri, { dns: fed.dns, transports, failed: fed.failedTargets })) {
    any = true;
    yield { transport: t.transport, address: t.address, port: t.port, ...(t.transport === 'tls' ? { tlsName: t.tlsName } : {}) };
  }
  if (!any) throw new SipError(503, `Service Unavailable: cannot resolve ${host}`);
}
