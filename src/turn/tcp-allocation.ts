/**
 * TCP allocations (RFC 6062): Connect (§5.2) opens a TCP connection from the
 * relayed address to a peer, a peer connecting to the relayed address is
 * offered to the client with ConnectionAttempt (§5.3), and ConnectionBind on a
 * new client data connection (§5.4) ties the two together. This module keeps
 * the peer data connections by CONNECTION-ID; the sockets live behind
 * TcpRelayOps (turn-server.ts).
 */
import { randomBytes } from 'node:crypto';
import { decodeAddressFamily, encodeUint32, encodeXorAddress, type TransportAddress } from '../stun/stun-attributes.js';
import { AttributeType as A, encodeStunMessage, getAttribute, type StunMessage, StunMethod } from '../stun/stun-message.js';
import type { IpFamily } from '../security/ip-address.js';
import type { Allocation, RelayHandle } from './allocation.js';
import { type FiveTuple, isDatagramTransport } from './five-tuple.js';
import { attr } from './turn-response.js';
import { TurnError } from './turn-error.js';

/** TCP's IP protocol number: a TCP allocation (RFC 6062 §5.1). */
export const PROTOCOL_TCP = 6;

/** How long a peer data connection waits for its ConnectionBind, and a Connect for the peer, ms (RFC 6062 §5.2-5.3: 30 s). */
export const TCP_CONNECTION_TIMEOUT_MS = 30_000;

/**
 * Bounds on the peer data connections of one TCP allocation (RFC 6062 leaves
 * them to the server). A Connect beyond either gets 508 Insufficient Capacity
 * (RFC 8656 §18: a capacity limit was reached; 446 is for a second
 * connection to the same peer), and a peer connecting beyond either is closed
 * without a ConnectionAttempt.
 */
export interface TcpConnectionLimits {
  /** Peer data connections per allocation, bound or waiting; default 256 (coturn's peer endpoints per allocation). */
  perAllocation: number;
  /** Of those, connections waiting for their ConnectionBind (and Connects in progress); default 32. */
  pendingPerAllocation: number;
}

/** The default TcpConnectionLimits (`turn.tcp_connections_per_allocation`, `turn.tcp_pending_per_allocation`). */
export const DEFAULT_TCP_CONNECTION_LIMITS: TcpConnectionLimits = { perAllocation: 256, pendingPerAllocation: 32 };

/** Counts of TcpConnections: live peer data connections, those waiting for ConnectionBind, and those refused at the limits. */
export interface TcpConnectionCounts {
  tcpConnections: number;
  tcpConnectionsPending: number;
  tcpConnectionsRefused: number;
}

/**
 * The socket side of TCP allocations (RFC 6062). Connection ids are chosen by
 * the control plane; the socket side keeps one peer TCP connection per id.
 */
export interface TcpRelayOps {
  /** Opens a TCP listening socket on a relayed transport address (its `send` is unused). Rejects with TurnError(440/508). */
  openTcpRelay(req: { family?: IpFamily }): Promise<RelayHandle>;
  /** Opens a TCP connection from `relay`'s address to `peer` under `connectionId`; rejects when it fails or takes 30 s (-> 447). */
  connect(relay: RelayHandle, peer: TransportAddress, connectionId: number): Promise<void>;
  /** The ConnectionBind on client data connection `data` succeeded: after the response, splice it with peer connection `connectionId`. */
  bind(connectionId: number, data: FiveTuple): void;
  /** Closes peer connection `connectionId` (timed out, allocation deleted). Idempotent. */
  close(connectionId: number): void;
}

/** One peer data connection of a TCP allocation (RFC 6062 §5). */
interface TcpConnection {
  id: number;
  allocation: Allocation;
  peer: TransportAddress;
  /** Waiting for ConnectionBind until this time (ms); undefined once bound. */
  bindByMs: number | undefined;
}

/**
 * Checks an Allocate with REQUESTED-TRANSPORT TCP (RFC 6062 §5.1): only over
 * TCP/TLS, without DONT-FRAGMENT, EVEN-PORT, RESERVATION-TOKEN or
 * ADDITIONAL-ADDRESS-FAMILY (400), in a family with a relay address (440).
 * Returns the family of the relayed address.
 */
export function tcpAllocateFamily(ft: FiveTuple, msg: StunMessage, relayFamilies: readonly IpFamily[]): IpFamily {
  if (isDatagramTransport(ft.transport)) throw new TurnError(400, 'Bad Request: TCP allocations need a TCP or TLS connection');
  for (const t of [A.DontFragment, A.EvenPort, A.ReservationToken, A.AdditionalAddressFamily]) {
    if (getAttribute(msg, t)) throw new TurnError(400, 'Bad Request: attribute not allowed in a TCP Allocate');
  }
  const famAttr = getAttribute(msg, A.RequestedAddressFamily);
  const family = famAttr ? decodeAddressFamily(famAttr.value) : 'IPv4';
  if (!family || !relayFamilies.includes(family)) throw new TurnError(440);
  return family;
}

/**
 * The peer data connections of every TCP allocation of a server, at most
 * `limits.perAllocation` per allocation (so at most that many times the
 * allocations in all).
 */
export class TcpConnections {
  private readonly connections = new Map<number, TcpConnection>();
  /** Allocations that relay over TCP, with their connections by id. */
  private readonly tcpAllocations = new WeakMap<Allocation, Map<number, TcpConnection>>();
  private readonly limits: TcpConnectionLimits;
  private pending = 0;
  private refused = 0;

  constructor(
    readonly ops: TcpRelayOps,
    limits: Partial<TcpConnectionLimits> = {},
  ) {
    this.limits = { ...DEFAULT_TCP_CONNECTION_LIMITS, ...limits };
  }

  /** Marks `a` as a TCP allocation. */
  add(a: Allocation): void {
    if (!this.tcpAllocations.has(a)) this.tcpAllocations.set(a, new Map());
  }

  /** Live and waiting connections, and the Connects and peer connections refused at the limits so far. */
  counts(): TcpConnectionCounts {
    return { tcpConnections: this.connections.size, tcpConnectionsPending: this.pending, tcpConnectionsRefused: this.refused };
  }

  /** True if `a` relays over TCP. */
  has(a: Allocation): boolean {
    return this.tcpAllocations.has(a);
  }

  /**
   * Connect (RFC 6062 §5.2) from allocation `a` to `peer` (already checked
   * against the peer policy): resolves with the new CONNECTION-ID; rejects
   * with TurnError 400 (not a TCP allocation), 446 (a connection to that peer
   * exists), 508 (the allocation holds `limits.perAllocation` connections, or
   * `limits.pendingPerAllocation` wait for ConnectionBind) or 447 (connecting
   * failed or timed out).
   */
  async connect(a: Allocation, peer: TransportAddress, nowMs: () => number): Promise<number> {
    const own = this.tcpAllocations.get(a);
    if (!own) throw new TurnError(400, 'Bad Request: not a TCP allocation');
    for (const c of own.values()) {
      if (c.peer.address === peer.address && c.peer.port === peer.port) throw new TurnError(446);
    }
    const full = this.whichLimit(own);
    if (full) {
      this.refused++;
      throw new TurnError(508, `Insufficient Capacity: ${full}`);
    }
    const conn = this.track({ id: this.newConnectionId(), allocation: a, peer, bindByMs: nowMs() + TCP_CONNECTION_TIMEOUT_MS * 2 }, own);
    const id = conn.id;
    try {
      await this.ops.connect(a.relay, peer, id);
    } catch {
      this.close(conn);
      throw new TurnError(447);
    }
    if (this.connections.get(id) !== conn) throw new TurnError(447);
    conn.bindByMs = nowMs() + TCP_CONNECTION_TIMEOUT_MS;
    return id;
  }

  /**
   * ConnectionBind (RFC 6062 §5.4) of data connection `ft` by `username` for
   * CONNECTION-ID `connectionId`: 400 when unknown or expired, 441 when the
   * allocation belongs to another user. On success the socket side is told
   * to splice after the response.
   */
  bind(ft: FiveTuple, connectionId: number, username: string, nowMs: number): void {
    const c = this.connections.get(connectionId);
    if (!c || c.bindByMs === undefined || c.bindByMs <= nowMs) throw new TurnError(400, 'Bad Request: unknown CONNECTION-ID');
    if (c.allocation.username !== username) throw new TurnError(441);
    c.bindByMs = undefined;
    this.pending--;
    this.ops.bind(c.id, ft);
  }

  /**
   * A peer connected to TCP allocation `a` (RFC 6062 §5.3; permission and
   * policy already checked): a new CONNECTION-ID and the ConnectionAttempt
   * indication for the client; undefined when `a` is not a TCP allocation or
   * is at one of its limits (the caller closes the peer's connection).
   */
  peerConnected(a: Allocation, peer: TransportAddress, nowMs: number): { connectionId: number; indication: Buffer } | undefined {
    const own = this.tcpAllocations.get(a);
    if (!own) return undefined;
    if (this.whichLimit(own)) {
      this.refused++;
      return undefined;
    }
    const id = this.track({ id: this.newConnectionId(), allocation: a, peer, bindByMs: nowMs + TCP_CONNECTION_TIMEOUT_MS }, own).id;
    const transactionId = randomBytes(12);
    const indication = encodeStunMessage({
      method: StunMethod.ConnectionAttempt,
      class: 'indication',
      transactionId,
      attributes: [attr(A.XorPeerAddress, encodeXorAddress(peer, transactionId)), attr(A.ConnectionId, encodeUint32(id))],
    });
    return { connectionId: id, indication };
  }

  /** The peer side of connection `connectionId` closed: forget it. */
  peerClosed(connectionId: number): void {
    const c = this.connections.get(connectionId);
    if (c) this.forget(c);
  }

  /** Closes every connection of allocation `a` (deleted). */
  closeAllOf(a: Allocation): void {
    const own = this.tcpAllocations.get(a);
    if (own) for (const c of [...own.values()]) this.close(c);
  }

  /** Closes connections still waiting for ConnectionBind at `nowMs`. */
  sweep(nowMs: number): void {
    for (const c of [...this.connections.values()]) if (c.bindByMs !== undefined && c.bindByMs <= nowMs) this.close(c);
  }

  private close(c: TcpConnection): void {
    if (this.connections.get(c.id) !== c) return;
    this.forget(c);
    this.ops.close(c.id);
  }

  /** Which limit of TcpConnectionLimits an allocation with connections `own` is at, if any. */
  private whichLimit(own: Map<number, TcpConnection>): string | undefined {
    if (own.size >= this.limits.perAllocation) return `${this.limits.perAllocation} TCP connections in this allocation`;
    let waiting = 0;
    for (const c of own.values()) if (c.bindByMs !== undefined) waiting++;
    if (waiting >= this.limits.pendingPerAllocation) return `${this.limits.pendingPerAllocation} TCP connections wait for ConnectionBind`;
    return undefined;
  }

  private track(c: TcpConnection, own: Map<number, TcpConnection>): TcpConnection {
    this.connections.set(c.id, c);
    own.set(c.id, c);
    this.pending++;
    return c;
  }

  private forget(c: TcpConnection): void {
    if (this.connections.get(c.id) !== c) return;
    this.connections.delete(c.id);
    this.tcpAllocations.get(c.allocation)?.delete(c.id);
    if (c.bindByMs !== undefined) this.pending--;
  }

  private newConnectionId(): number {
    for (;;) {
      const id = randomBytes(4).readUInt32BE(0);
      if (id !== 0 && !this.connections.has(id)) return id;
    }
  }
}
