import type { PeerCertificateLike } from '../auth/domain-certificate.js';
import type { SipMessage } from '../sip/message.js';

/** SIP transports rtcedge listens on (RFC 3261 §18, RFC 7118 for ws/wss). */
export type TransportName = 'udp' | 'tcp' | 'tls' | 'ws' | 'wss';

/** True for WebSocket transports, which carry one SIP message per frame and cannot be dialled out to (RFC 7118 §5). */
export function isWebSocket(t: TransportName): boolean {
  return t === 'ws' || t === 'wss';
}

/**
 * A connection carrying SIP (a flow, RFC 5626 §3): TCP, TLS or WebSocket.
 * Identified by `id`; `closed` once either side closed it.
 */
export interface Flow {
  readonly id: string;
  readonly transport: TransportName;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  readonly closed: boolean;
  /** Write one serialized message (or keepalive bytes); false when the flow is closed. */
  write(data: Buffer): boolean;
  /** Close gracefully. */
  close(): void;
}

/** True for connection-oriented (reliable) transports: TCP, TLS, WS, WSS (§18.3, RFC 7118). */
export function isStream(t: TransportName): boolean {
  return t !== 'udp';
}

/**
 * Where a message came from: the 5-tuple of the datagram or connection, and for
 * streams the id of the flow (connection) it arrived on, so that responses and
 * later requests can go back over the same connection (RFC 3261 §18.2.2, RFC 5626 §5.3).
 */
export interface Source {
  transport: TransportName;
  remoteAddress: string;
  remotePort: number;
  localAddress: string;
  localPort: number;
  /** Stream connection id; undefined for UDP. */
  flowId?: string;
  /**
   * Identities (`sip:user@host`) named by the client certificate of a TLS/WSS
   * flow, set only when the certificate chain verified against `sip.tls.ca`.
   */
  tlsIdentities?: string[];
  /**
   * The peer certificate of a TLS/WSS flow, set only when its chain verified
   * (against `sip.tls.ca`, `federation.ca` or the system CAs): what a peer
   * domain is checked against (RFC 5922 §7, see dns/domain-certificate.ts).
   */
  tlsPeerCertificate?: PeerCertificateLike;
}

/**
 * Where to send a message: an address, port and transport, optionally pinned to
 * an existing flow (used when alive, otherwise a new connection is opened).
 */
export interface Destination {
  transport: TransportName;
  address: string;
  port: number;
  flowId?: string;
  /**
   * TLS to another domain (RFC 5922 §4, §7): the SIP domain the server's
   * certificate must name; the chain must verify against the federation CAs
   * and SNI carries it. A connection that fails either check is never used,
   * and an open flow is reused only when its verified certificate names it.
   */
  tlsName?: string;
  /** Our domain whose certificate our TLS client presents (RFC 5922 §7); default the default certificate. */
  localDomain?: string;
}

/** A message that arrived, with its origin. */
export interface Inbound {
  msg: SipMessage;
  source: Source;
}

/** One configured listener. */
export interface ListenSpec {
  transport: TransportName;
  host: string;
  /** 0 picks a free port. */
  port: number;
  /**
   * TLS/WSS only: ask the client for a certificate (`optional`), insist on a
   * verified one (`required`: the handshake fails without), or not at all
   * (`none`). Without CA certificates, `optional` acts as `none`. Default `none`.
   */
  clientCert?: 'none' | 'optional' | 'required';
}

/** A bound listener, with the port the OS gave it and the host to advertise in Via/Record-Route. */
export interface BoundListener {
  transport: TransportName;
  address: string;
  port: number;
  advertisedHost: string;
}

/** "address:port", with IPv6 addresses in brackets. */
export function formatHostPort(address: string, port: number): string {
  return address.includes(':') && !address.startsWith('[') ? `[${address}]:${port}` : `${address}:${port}`;
}
