/**
 * The 5-tuple that identifies an allocation: client IP and port, server IP
 * and port, transport protocol (RFC 8656 §2, §3).
 */

/** Client-to-server transport of a 5-tuple: UDP, TCP, TLS over TCP (RFC 8656 §3.1, port 5349), or DTLS over UDP (RFC 7350). */
export type ClientTransport = 'udp' | 'tcp' | 'tls' | 'dtls';

/** True for the datagram transports (UDP, DTLS): no stream framing or ChannelData padding (RFC 8656 §12.5), no TCP allocations (RFC 6062). */
export function isDatagramTransport(t: ClientTransport): boolean {
  return t === 'udp' || t === 'dtls';
}

/** A client 5-tuple as seen by the server. Addresses are IP text without brackets. */
export interface FiveTuple {
  transport: ClientTransport;
  clientAddress: string;
  clientPort: number;
  serverAddress: string;
  serverPort: number;
}

/** Stable string key for maps: "udp|client-ip|port|server-ip|port". */
export function fiveTupleKey(t: FiveTuple): string {
  return `${t.transport}|${t.clientAddress}|${t.clientPort}|${t.serverAddress}|${t.serverPort}`;
}
