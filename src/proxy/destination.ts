import { lookup } from 'node:dns/promises';
import net from 'node:net';
import type { SipUri } from '../sip/uri.js';
import { SipError } from '../sip/errors.js';
import type { Destination, TransportName } from '../transport/types.js';

/**
 * The transport, address and port to send a request to for a URI (the next hop:
 * top Route or Request-URI, RFC 3261 §16.6 step 7, §18.1.1, RFC 3263 §4 for
 * explicit ports and numeric hosts): `maddr` overrides the host, `transport`
 * picks the transport (`sips` implies TLS), the port defaults to 5060 (5061
 * for TLS). A host name is resolved with the system resolver (A/AAAA).
 *
 * @throws SipError 416 for a scheme other than sip/sips, 503 when the host does not resolve
 *   or names a transport this server has no listener for.
 */
export async function resolveUri(uri: SipUri, available: (t: TransportName) => boolean): Promise<Destination> {
  if (uri.scheme !== 'sip' && uri.scheme !== 'sips') throw new SipError(416, 'Unsupported URI Scheme');
  const tp = (uri.params.transport ?? '').toLowerCase();
  let transport: TransportName = uri.scheme === 'sips' || tp === 'tls' ? 'tls' : tp === 'tcp' ? 'tcp' : 'udp';
  if (tp === 'ws' || tp === 'wss' || tp === 'sctp') throw new SipError(503, `Service Unavailable: transport ${tp} not supported`);
  if (!available(transport)) {
    if (transport === 'udp' && available('tcp')) transport = 'tcp';
    else throw new SipError(503, `Service Unavailable: no ${transport} listener`);
  }
  const host = (uri.params.maddr ?? uri.host).replace(/^\[|\]$/g, '');
  const port = uri.port ?? (transport === 'tls' ? 5061 : 5060);
  if (net.isIP(host)) return { transport, address: host, port };
  try {
    const { address } = await lookup(host);
    return { transport, address, port };
  } catch {
    throw new SipError(503, `Service Unavailable: cannot resolve ${host}`);
  }
}
