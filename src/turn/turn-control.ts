/**
 * The TURN control plane (RFC 8656) and STUN Binding (RFC 8489 §3): takes
 * packets received from clients and from peers, keeps allocations,
 * permissions and channels, and says what to send. It imports no socket
 * module: relay sockets come in through `openRelay`, so the same control
 * plane drives the native and the TypeScript data plane. Policies are
 * functions passed in: authentication (`getKey`, turn-auth.ts), peer
 * permission (`peerAllowed`, peer-policy.ts) and quotas (`quota`, quota.ts).
 * TCP allocations (RFC 6062) are in tcp-allocation.ts, relaying in
 * relaying.ts.
 */
import { randomBytes } from 'node:crypto';
import { type Logger, silentLogger } from '../log.js';
import type { IpFamily } from '../security/ip-address.js';
import {
  decodeAddressFamily,
  decodeChannelNumber,
  decodeEvenPort,
  decodeRequestedTransport,
  decodeUint32,
  decodeXorAddress,
  encodeAddressErrorCode,
  encodeUint32,
  encodeXorAddress,
  isComprehensionRequired,
  type TransportAddress,
} from '../stun/stun-attributes.js';
import { verifyFingerprint } from '../stun/stun-integrity.js';
import {
  AttributeType as A,
  decodeStunMessage,
  encodeStunMessage,
  getAttribute,
  getAttributes,
  looksLikeStun,
  type StunAttribute,
  type StunMessage,
  StunMethod,
} from '../stun/stun-message.js';
import { Allocation, AllocationTable, type RelayHandle } from './allocation.js';
import { ChallengeLimit } from './challenge-limit.js';
import { isValidChannelNumber, looksLikeChannelData } from './channel-data.js';
import { type FiveTuple, fiveTupleKey, isDatagramTransport } from './five-tuple.js';
import { PeerPolicy } from './peer-policy.js';
import { allocationQuota, type QuotaHandler, quotaName } from './quota.js';
import { newRelayCounters, peerToClient, type RelayContext, type RelayCounters, relayClientChannelData, relaySendIndication } from './relaying.js';
import { DEFAULT_MAX_PERMISSIONS } from './permission.js';
import { PROTOCOL_TCP, tcpAllocateFamily, type TcpConnectionCounts, TcpConnections, type TcpRelayOps } from './tcp-allocation.js';
import { TransactionCache } from './transaction-cache.js';
import { type AuthOk, TurnAuthenticator, type TurnAuthOptions } from './turn-auth.js';
import { TurnError } from './turn-error.js';
import { attr, TurnResponder } from './turn-response.js';

export { NONCE_COOKIE, type AuthHandler } from './turn-auth.js';
export { PROTOCOL_TCP, TCP_CONNECTION_TIMEOUT_MS, type TcpRelayOps } from './tcp-allocation.js';
export type { QuotaHandler } from './quota.js';

/** UDP's IP protocol number (RFC 8656 §7.2 REQUESTED-TRANSPORT). */
export const PROTOCOL_UDP = 17;

/** How long a port reserved by EVEN-PORT's R bit waits for its RESERVATION-TOKEN, ms (RFC 8656 §7.2 suggests about 30 s). */
export const RESERVATION_MS = 30_000;

/** Comprehension-required attributes understood in TURN requests; others get 420 (RFC 8489 §6.3.1). */
const KNOWN_TURN_ATTRIBUTES = new Set<number>([
  A.Username, A.MessageIntegrity, A.MessageIntegritySha256, A.Realm, A.Nonce, A.ChannelNumber, A.Lifetime,
  A.XorPeerAddress, A.Data, A.RequestedAddressFamily, A.EvenPort, A.RequestedTransport, A.DontFragment,
  A.ReservationToken, A.PasswordAlgorithm, A.Userhash, A.ConnectionId,
]);
/** Comprehension-required attributes understood in Binding requests (incl. ICE, RFC 8445 §16.1). */
const KNOWN_BINDING_ATTRIBUTES = new Set<number>([
  A.Username, A.MessageIntegrity, A.MessageIntegritySha256, A.Realm, A.Nonce, A.Priority, A.UseCandidate,
]);

/** The peer permission policy (pion/turn's PermissionHandler): may a relay send to / accept from IP `address`? */
export type PermissionHandler = (address: string) => boolean;

/** What the control plane asks of the socket side when it needs a relayed transport address. */
export interface RelayRequest {
  /** Port must be even (EVEN-PORT, RFC 8656 §7.2). */
  evenPort: boolean;
  /** Address family of the relayed transport address; undefined = IPv4. */
  family?: IpFamily;
  /** Exactly this port (the one after an R-bit reservation); undefined = any free port. */
  port?: number;
}

/**
 * Protocol settings and policies, shared by TurnServer and TurnControl (one
 * options object flows from the configuration to the control plane); the
 * authentication ones (realm, nonces, `getKey`, USERHASH, algorithms, REST
 * secrets) are TurnAuthOptions.
 */
export interface TurnPolicyOptions extends TurnAuthOptions {
  /** Allocation lifetime without LIFETIME, s (RFC 8656 §2.2: 600); also the shortest granted. */
  defaultLifetimeS: number;
  /** Longest allocation lifetime granted, s. */
  maxLifetimeS: number;
  /** Which peers relays may talk to; default: the built-in deny list (peer-policy.ts) with `allowLoopbackPeers`. */
  peerAllowed?: PermissionHandler;
  /** Allow peers on 127.0.0.0/8 and ::1 under the default `peerAllowed`; default false. */
  allowLoopbackPeers?: boolean;
  /** Allocation quotas; default allocationQuota() with the two limits below. */
  quota?: QuotaHandler;
  /** Most allocations per user, 0 = no limit; default 10 (486 above, RFC 8656 §7.2). Used by the default `quota`. */
  maxAllocationsPerUser?: number;
  /** Most allocations in all, 0 = no limit; default 1000 (486 above). Used by the default `quota`. */
  maxAllocations?: number;
  /** Peer data connections per TCP allocation (RFC 6062), bound or waiting; default 256. A Connect beyond gets 508, a peer beyond is closed. */
  maxTcpConnectionsPerAllocation?: number;
  /** Peer data connections per TCP allocation waiting for their ConnectionBind; default 32 (508 / closed beyond, as above). */
  maxPendingTcpConnectionsPerAllocation?: number;
  /** Permissions (peer IP addresses) per allocation; default 1024. A CreatePermission or ChannelBind that would add more gets 508. */
  maxPermissionsPerAllocation?: number;
  /** Per-allocation relay bandwidth cap, bytes/s of payload both ways; 0 = none (default). Excess is dropped and counted. */
  bandwidthLimitBytesPerS?: number;
  /** Unauthenticated answers (401, 438, 400) per second per client 5-tuple; 0 = no limit; default 20. Excess is dropped. */
  challengeRatePerS?: number;
  /** Unauthenticated answers per second per source address (all ports); 0 = no limit; default 1000. */
  challengeAddressRatePerS?: number;
  /** Sources never held back by the challenge limits (IP text -> true), e.g. the SIP security exempt_sources. */
  challengeExempt?: (address: string) => boolean;
  software?: string;
  logger?: Logger;
  /** Clock, ms. Default Date.now. */
  nowMs?: () => number;
}

/** Options of the control plane: the policy options and the socket side's entry points. */
export interface TurnControlOptions extends TurnPolicyOptions {
  /**
   * Opens a UDP relay socket for `req`. Rejects with TurnError(440) when the
   * family has no relay address, TurnError(508) when no port is free.
   */
  openRelay(req: RelayRequest): Promise<RelayHandle>;
  /** TCP relays (RFC 6062); undefined: REQUESTED-TRANSPORT TCP gets 442. */
  tcp?: TcpRelayOps;
  /** Families with a relay address; default ['IPv4']. Others get 440 (RFC 8656 §7.2). */
  relayFamilies?: IpFamily[];
}

/** A packet the server must send to a client 5-tuple. */
export interface ClientDelivery {
  fiveTuple: FiveTuple;
  data: Buffer;
}

/** Counters of the control plane. */
export interface TurnControlStats extends RelayCounters, TcpConnectionCounts {
  /** Live allocations. */
  allocations: number;
  /** Permissions over all allocations (RFC 8656 §9). */
  permissions: number;
  /** Channel bindings over all allocations (RFC 8656 §12). */
  channels: number;
  /** Unauthenticated answers not sent because of the challenge limits. */
  challengesSuppressed: number;
  /** Requests answered from the transaction cache (retransmissions). */
  retransmissionsAnswered: number;
}

interface Reservation {
  relay: RelayHandle;
  expiresAtMs: number;
}

/** Control plane state: allocations, reservations and counters; one per server. */
export class TurnControl {
  private readonly allocations = new AllocationTable();
  private readonly pending = new Map<string, { transactionId: Buffer; result: Promise<Buffer | undefined> }>();
  private readonly reservations = new Map<string, Reservation>();
  private readonly tcp: TcpConnections | undefined;
  private readonly auth: TurnAuthenticator;
  private readonly quota: QuotaHandler;
  private readonly challenges: ChallengeLimit;
  private readonly answered = new TransactionCache();
  private readonly responder: TurnResponder;
  private readonly relayContext: RelayContext;
  private readonly peerAllowed: PermissionHandler;
  private readonly log: Logger;
  private readonly nowMs: () => number;
  private retransmissions = 0;
  private stopped = false;
  private readonly maxPermissions: number;

  /** @throws RangeError on an empty `passwordAlgorithms` list. */
  constructor(private readonly opts: TurnControlOptions) {
    this.log = (opts.logger ?? silentLogger).child({ component: 'turn-control' });
    this.nowMs = opts.nowMs ?? Date.now;
    this.auth = new TurnAuthenticator(opts, this.log);
    const policy = opts.peerAllowed ? undefined : new PeerPolicy({ allowLoopbackPeers: opts.allowLoopbackPeers ?? false });
    this.peerAllowed = opts.peerAllowed ?? ((a) => policy!.allows(a));
    this.quota = opts.quota ?? allocationQuota(opts);
    this.challenges = new ChallengeLimit({
      ratePerS: opts.challengeRatePerS ?? 20,
      addressRatePerS: opts.challengeAddressRatePerS ?? 1000,
      exempt: opts.challengeExempt,
    });
    this.responder = new TurnResponder(opts.software);
    this.maxPermissions = opts.maxPermissionsPerAllocation ?? DEFAULT_MAX_PERMISSIONS;
    this.relayContext = { counters: newRelayCounters(), bandwidthLimitBytesPerS: opts.bandwidthLimitBytesPerS ?? 0, peerAllowed: this.peerAllowed };
    this.tcp = opts.tcp
      ? new TcpConnections(opts.tcp, {
          ...(opts.maxTcpConnectionsPerAllocation !== undefined && { perAllocation: opts.maxTcpConnectionsPerAllocation }),
          ...(opts.maxPendingTcpConnectionsPerAllocation !== undefined && { pendingPerAllocation: opts.maxPendingTcpConnectionsPerAllocation }),
        })
      : undefined;
  }

  /** Counters: live allocations, permissions and channels; packets and payload bytes relayed (in total and each way), drops. */
  stats(): TurnControlStats {
    return {
      allocations: this.allocations.size,
      ...this.allocations.bindingCounts(),
      ...this.relayContext.counters,
      challengesSuppressed: this.challenges.suppressed,
      retransmissionsAnswered: this.retransmissions,
      ...(this.tcp?.counts() ?? { tcpConnections: 0, tcpConnectionsPending: 0, tcpConnectionsRefused: 0 }),
    };
  }

  /** The allocation of a 5-tuple, if any (for inspection and tests). */
  getAllocation(t: FiveTuple): Allocation | undefined {
    return this.allocations.get(t);
  }

  /**
   * Handles one STUN message or ChannelData message from a client (a whole
   * UDP datagram, or one framed message from a TCP/TLS stream). Returns the
   * response to send back on the same 5-tuple, or undefined (indications,
   * ChannelData, silently discarded input, rate-limited challenges). A
   * retransmitted UDP or DTLS request gets the answer of the first. Never rejects.
   */
  async handleClientPacket(ft: FiveTuple, buf: Buffer): Promise<Buffer | undefined> {
    try {
      if (looksLikeChannelData(buf)) {
        const a = this.allocations.get(ft);
        if (a) relayClientChannelData(this.relayContext, a, buf, this.nowMs());
        return undefined;
      }
      if (!looksLikeStun(buf)) return undefined;
      let msg: StunMessage;
      try {
        msg = decodeStunMessage(buf);
      } catch (e) {
        return this.badFrame(ft, buf, e);
      }
      if (getAttribute(msg, A.Fingerprint) && !verifyFingerprint(buf)) return undefined; // RFC 8489 §7.3: discard
      if (msg.class === 'indication') {
        const a = msg.method === StunMethod.Send ? this.allocations.get(ft) : undefined;
        if (a) relaySendIndication(this.relayContext, a, msg, this.nowMs());
        return undefined;
      }
      if (msg.class !== 'request') return undefined;
      if (!isDatagramTransport(ft.transport) || msg.method === StunMethod.Binding) return await this.handleRequest(ft, msg, buf);
      // Over UDP and DTLS a lost answer makes the client retransmit (RFC 8489 §6.2.1): it gets the same answer, uncounted.
      const now = this.nowMs();
      const earlier = this.answered.get(ft, msg.transactionId, now);
      if (earlier) {
        this.retransmissions++;
        return await earlier;
      }
      const answer = this.handleRequest(ft, msg, buf);
      this.answered.put(ft, msg.transactionId, answer, now);
      return await answer;
    } catch (e) {
      this.log.warn({ err: e }, 'unexpected error handling client packet');
      return undefined;
    }
  }

  /**
   * Handles a UDP datagram that arrived on relayed address `relayed` from
   * `peer` (RFC 8656 §10.3, §12.6): if a permission exists, returns a
   * ChannelData (channel bound; padded over TCP/TLS) or a Data indication for
   * the client; else undefined (also when the bandwidth cap drops it).
   */
  handlePeerPacket(relayed: { address: string; port: number }, peer: TransportAddress, data: Buffer): ClientDelivery | undefined {
    const a = this.allocations.getByRelay(relayed);
    if (!a) return undefined;
    const out = peerToClient(this.relayContext, a, peer, data, this.nowMs());
    return out && { fiveTuple: a.fiveTuple, data: out };
  }

  /** True if `peer` (IP text) may be reached through a relay under the peer policy. */
  isPeerAllowed(peer: string): boolean {
    return this.peerAllowed(peer);
  }

  /** Deletes the allocation of a 5-tuple (its TCP/TLS connection closed, RFC 8656 §3.1). */
  closeFiveTuple(ft: FiveTuple): void {
    const a = this.allocations.get(ft);
    if (a) this.deleteAllocation(a, 'connection closed');
  }

  /** Expires allocations, permissions, channels, port reservations, unbound TCP connections and cached answers; closes relays. Call about once a second. */
  sweep(): void {
    const now = this.nowMs();
    for (const a of this.allocations.sweep(now)) {
      this.quota.release(a.quotaUser);
      this.tcp?.closeAllOf(a);
      a.closeRelays();
      this.log.debug({ relay: a.relay.relayed }, 'allocation expired');
    }
    this.tcp?.sweep(now);
    for (const [token, r] of this.reservations) {
      if (r.expiresAtMs <= now) {
        this.reservations.delete(token);
        r.relay.close();
      }
    }
    this.answered.sweep(now);
  }

  /** Deletes every allocation and reservation and closes every relay; later requests are ignored. */
  stop(): void {
    this.stopped = true;
    for (const a of this.allocations.all()) this.deleteAllocation(a, 'server stopping');
    for (const r of this.reservations.values()) r.relay.close();
    this.reservations.clear();
  }

  /**
   * A peer opened a TCP connection to relayed address `relayed` (RFC 6062
   * §5.3). If its allocation is a TCP one and a permission exists for the
   * peer, and the allocation is under its TCP connection limits, returns the
   * new connection id and the ConnectionAttempt indication for the client;
   * else undefined and the caller closes the connection.
   */
  handlePeerConnection(relayed: { address: string; port: number }, peer: TransportAddress): { connectionId: number; delivery: ClientDelivery } | undefined {
    const a = this.allocations.getByRelay(relayed);
    const now = this.nowMs();
    if (!a || !this.tcp?.has(a) || a.isExpired(now) || !a.permissions.has(peer.address, now) || !this.peerAllowed(peer.address)) return undefined;
    const attempt = this.tcp.peerConnected(a, peer, now);
    return attempt && { connectionId: attempt.connectionId, delivery: { fiveTuple: a.fiveTuple, data: attempt.indication } };
  }

  /** The peer side of connection `connectionId` closed: forget it. */
  peerConnectionClosed(connectionId: number): void {
    this.tcp?.peerClosed(connectionId);
  }

  private deleteAllocation(a: Allocation, why: string): void {
    this.tcp?.closeAllOf(a);
    if (this.allocations.remove(a)) {
      this.quota.release(a.quotaUser);
      a.closeRelays();
      this.log.debug({ relay: a.relay.relayed, why }, 'allocation deleted');
    }
  }

  /** Counts one allocation against the quotas of `user`; throws TurnError(486) when a quota is reached (RFC 8656 §7.2). */
  private claim(user: string): void {
    if (!this.quota.claim(user)) throw new TurnError(486);
  }

  /** An unauthenticated error answer, or undefined when the challenge limits hold it back. */
  private unauthenticated(ft: FiveTuple, req: Pick<StunMessage, 'method' | 'transactionId'>, err: TurnError, fingerprint: boolean, extra?: StunAttribute[]): Buffer | undefined {
    if (!this.challenges.mayAnswer(ft, this.nowMs())) return undefined;
    return this.responder.error(req, err, undefined, fingerprint, extra);
  }

  private badFrame(ft: FiveTuple, buf: Buffer, e: unknown): Buffer | undefined {
    // Answer 400 only when the header names a request and the transaction id is readable.
    if (buf.length < 20) return undefined;
    const type = buf.readUInt16BE(0);
    if ((type & 0x0110) !== 0) return undefined;
    const method = (type & 0x000f) | ((type & 0x00e0) >> 1) | ((type & 0x3e00) >> 2);
    this.log.debug({ err: (e as Error).message }, 'malformed STUN request');
    return this.unauthenticated(ft, { method, transactionId: Buffer.from(buf.subarray(8, 20)) }, new TurnError(400), false);
  }

  private async handleRequest(ft: FiveTuple, msg: StunMessage, raw: Buffer): Promise<Buffer | undefined> {
    if (this.stopped) return undefined;
    const fingerprint = getAttribute(msg, A.Fingerprint) !== undefined;
    if (msg.method === StunMethod.Binding) {
      const unknown = this.unknownAttributes(msg, KNOWN_BINDING_ATTRIBUTES);
      if (unknown.length) return this.responder.error(msg, new TurnError(420, undefined, unknown), undefined, fingerprint);
      return this.responder.success(msg, [this.xorMapped(ft, msg)], undefined, fingerprint);
    }
    const turnMethods: number[] = [
      StunMethod.Allocate, StunMethod.Refresh, StunMethod.CreatePermission, StunMethod.ChannelBind, StunMethod.Connect, StunMethod.ConnectionBind,
    ];
    if (!turnMethods.includes(msg.method)) return this.unauthenticated(ft, msg, new TurnError(400, 'Bad Request: unknown method'), true);

    const checked = await this.auth.authenticate(ft, msg, raw, this.nowMs());
    if ('refusal' in checked) {
      const extra = checked.challenge ? this.auth.challengeAttributes(ft, this.nowMs()) : undefined;
      return this.unauthenticated(ft, msg, checked.refusal, true, extra);
    }
    const auth = checked;
    try {
      const unknown = this.unknownAttributes(msg, KNOWN_TURN_ATTRIBUTES);
      if (unknown.length) throw new TurnError(420, undefined, unknown);
      switch (msg.method) {
        case StunMethod.Allocate:
          return await this.allocate(ft, msg, auth);
        case StunMethod.Refresh:
          return this.refresh(ft, msg, auth);
        case StunMethod.CreatePermission:
          return this.createPermission(ft, msg, auth);
        case StunMethod.Connect:
          return await this.connect(ft, msg, auth);
        case StunMethod.ConnectionBind:
          return this.connectionBind(ft, msg, auth);
        default:
          return this.channelBind(ft, msg, auth);
      }
    } catch (e) {
      if (e instanceof TurnError) {
        this.log.debug({ status: e.status, reason: e.message, method: msg.method, client: fiveTupleKey(ft) }, 'TURN request refused');
        return this.responder.error(msg, e, auth, true);
      }
      if ((e as Error).name === 'StunDecodeError') return this.responder.error(msg, new TurnError(400, `Bad Request: ${(e as Error).message}`), auth, true);
      throw e;
    }
  }

  private unknownAttributes(msg: StunMessage, known: Set<number>): number[] {
    const out: number[] = [];
    for (const a of msg.attributes) if (isComprehensionRequired(a.type) && !known.has(a.type) && !out.includes(a.type)) out.push(a.type);
    return out;
  }

  /** Lifetime granted, s: LIFETIME clamped to [defaultLifetimeS, maxLifetimeS]; 0 stays 0 (delete). */
  private lifetimeSFrom(msg: StunMessage): number {
    const l = getAttribute(msg, A.Lifetime);
    if (!l) return this.opts.defaultLifetimeS;
    const requested = decodeUint32(l.value);
    if (requested === 0) return 0;
    return Math.max(this.opts.defaultLifetimeS, Math.min(requested, this.opts.maxLifetimeS));
  }

  /** Allocate (RFC 8656 §7.2). */
  private async allocate(ft: FiveTuple, msg: StunMessage, auth: AuthOk): Promise<Buffer | undefined> {
    const existing = this.allocations.get(ft);
    if (existing) {
      if (existing.allocateTransactionId.equals(msg.transactionId) && existing.allocateResponse) return existing.allocateResponse;
      throw new TurnError(437);
    }
    const key = fiveTupleKey(ft);
    const inFlight = this.pending.get(key);
    if (inFlight) {
      if (inFlight.transactionId.equals(msg.transactionId)) return inFlight.result;
      throw new TurnError(437);
    }
    const result = this.createAllocation(ft, msg, auth);
    this.pending.set(key, { transactionId: msg.transactionId, result });
    try {
      return await result;
    } finally {
      this.pending.delete(key);
    }
  }

  private async createAllocation(ft: FiveTuple, msg: StunMessage, auth: AuthOk): Promise<Buffer> {
    const rt = getAttribute(msg, A.RequestedTransport);
    if (!rt) throw new TurnError(400, 'Bad Request: REQUESTED-TRANSPORT missing');
    const protocol = decodeRequestedTransport(rt.value);
    if (protocol === PROTOCOL_TCP) return this.createTcpAllocation(ft, msg, auth);
    if (protocol !== PROTOCOL_UDP) throw new TurnError(442);
    const evenAttr = getAttribute(msg, A.EvenPort);
    const even = evenAttr ? decodeEvenPort(evenAttr.value) : undefined;
    const tokenAttr = getAttribute(msg, A.ReservationToken);
    const famAttr = getAttribute(msg, A.RequestedAddressFamily);
    const addAttr = getAttribute(msg, A.AdditionalAddressFamily);
    if (tokenAttr && (evenAttr || famAttr || addAttr)) throw new TurnError(400, 'Bad Request: RESERVATION-TOKEN with EVEN-PORT or an address family');
    if (famAttr && addAttr) throw new TurnError(400, 'Bad Request: REQUESTED-ADDRESS-FAMILY with ADDITIONAL-ADDRESS-FAMILY');
    if (addAttr && even?.reserve) throw new TurnError(400, 'Bad Request: ADDITIONAL-ADDRESS-FAMILY with EVEN-PORT R bit');
    let family: IpFamily = 'IPv4';
    if (famAttr) {
      const f = decodeAddressFamily(famAttr.value);
      if (!f) throw new TurnError(440);
      family = f;
    }
    let dual = false;
    if (addAttr) {
      if (decodeAddressFamily(addAttr.value) !== 'IPv6') throw new TurnError(400, 'Bad Request: ADDITIONAL-ADDRESS-FAMILY must be IPv6');
      dual = true;
    }
    const families = this.opts.relayFamilies ?? ['IPv4'];
    if (!tokenAttr && !families.includes(family)) throw new TurnError(440);
    let lifetimeS = this.lifetimeSFrom(msg);
    if (lifetimeS === 0) lifetimeS = this.opts.defaultLifetimeS;

    let reservation: Reservation | undefined;
    if (tokenAttr) {
      const t = tokenAttr.value.toString('hex');
      reservation = this.reservations.get(t);
      if (!reservation || reservation.expiresAtMs <= this.nowMs()) throw new TurnError(508, 'Insufficient Capacity: unknown or expired RESERVATION-TOKEN');
    }
    const user = quotaName(auth.username, this.opts.authSecrets);
    this.claim(user);
    const opened: RelayHandle[] = [];
    let token: Buffer | undefined;
    let addressError: StunAttribute | undefined;
    try {
      if (reservation) {
        this.reservations.delete(tokenAttr!.value.toString('hex'));
        opened.push(reservation.relay);
      } else if (even?.reserve) {
        const pair = await this.openPair(family);
        opened.push(pair.relay);
        token = randomBytes(8);
        this.reservations.set(token.toString('hex'), { relay: pair.next, expiresAtMs: this.nowMs() + RESERVATION_MS });
      } else {
        opened.push(await this.opts.openRelay({ evenPort: even !== undefined, family }));
      }
      if (dual) {
        if (!families.includes('IPv6')) addressError = attr(A.AddressErrorCode, encodeAddressErrorCode('IPv6', 440, 'Address Family not Supported'));
        else {
          try {
            opened.push(await this.opts.openRelay({ evenPort: false, family: 'IPv6' }));
          } catch (e) {
            const status = e instanceof TurnError ? e.status : 508;
            addressError = attr(A.AddressErrorCode, encodeAddressErrorCode('IPv6', status, e instanceof TurnError ? e.message : 'Insufficient Capacity'));
          }
        }
      }
      if (this.stopped || this.allocations.get(ft)) throw new TurnError(this.stopped ? 508 : 437);
    } catch (e) {
      for (const r of opened) r.close();
      this.quota.release(user);
      throw e;
    }
    const [relay, ...extra] = opened as [RelayHandle, ...RelayHandle[]];
    const a = new Allocation(ft, auth.username, relay, lifetimeS, this.nowMs(), msg.transactionId, undefined, extra);
    a.quotaUser = user;
    const attrs = a.relays.map((r) => attr(A.XorRelayedAddress, encodeXorAddress(r.relayed, msg.transactionId)));
    attrs.push(attr(A.Lifetime, encodeUint32(lifetimeS)));
    if (token) attrs.push(attr(A.ReservationToken, token));
    if (addressError) attrs.push(addressError);
    attrs.push(this.xorMapped(ft, msg));
    const response = this.responder.success(msg, attrs, auth, true);
    a.allocateResponse = response;
    this.allocations.add(a);
    this.log.debug({ username: auth.username, relays: a.relays.map((r) => r.relayed), lifetimeS }, 'allocation created');
    return response;
  }

  /** Allocate with REQUESTED-TRANSPORT TCP (RFC 6062 §5.1). */
  private async createTcpAllocation(ft: FiveTuple, msg: StunMessage, auth: AuthOk): Promise<Buffer> {
    const tcp = this.tcp;
    if (!tcp) throw new TurnError(442);
    const family = tcpAllocateFamily(ft, msg, this.opts.relayFamilies ?? ['IPv4']);
    let lifetimeS = this.lifetimeSFrom(msg);
    if (lifetimeS === 0) lifetimeS = this.opts.defaultLifetimeS;
    const user = quotaName(auth.username, this.opts.authSecrets);
    this.claim(user);
    let relay: RelayHandle;
    try {
      relay = await tcp.ops.openTcpRelay({ family });
      if (this.stopped || this.allocations.get(ft)) {
        relay.close();
        throw new TurnError(this.stopped ? 508 : 437);
      }
    } catch (e) {
      this.quota.release(user);
      throw e;
    }
    const a = new Allocation(ft, auth.username, relay, lifetimeS, this.nowMs(), msg.transactionId);
    a.quotaUser = user;
    tcp.add(a);
    const response = this.responder.success(
      msg,
      [attr(A.XorRelayedAddress, encodeXorAddress(relay.relayed, msg.transactionId)), attr(A.Lifetime, encodeUint32(lifetimeS)), this.xorMapped(ft, msg)],
      auth,
      true,
    );
    a.allocateResponse = response;
    this.allocations.add(a);
    return response;
  }

  /** Connect (RFC 6062 §5.2): opens a TCP connection to the peer and answers with its CONNECTION-ID; 446 if one exists, 508 at the allocation's limits, 447 on failure. */
  private async connect(ft: FiveTuple, msg: StunMessage, auth: AuthOk): Promise<Buffer> {
    const a = this.ownAllocation(ft, auth);
    if (!this.tcp?.has(a)) throw new TurnError(400, 'Bad Request: not a TCP allocation');
    const pa = getAttribute(msg, A.XorPeerAddress);
    if (!pa) throw new TurnError(400, 'Bad Request: XOR-PEER-ADDRESS missing');
    const id = await this.tcp.connect(a, this.peerFrom(pa, msg, a), this.nowMs);
    return this.responder.success(msg, [attr(A.ConnectionId, encodeUint32(id))], auth, true);
  }

  /**
   * ConnectionBind (RFC 6062 §5.4) on a new client data connection: ties it
   * to the peer connection named by CONNECTION-ID; after the success
   * response the connection carries only application data.
   */
  private connectionBind(ft: FiveTuple, msg: StunMessage, auth: AuthOk): Buffer {
    if (isDatagramTransport(ft.transport)) throw new TurnError(400, 'Bad Request: ConnectionBind needs a TCP or TLS connection');
    if (this.allocations.get(ft)) throw new TurnError(400, 'Bad Request: connection holds an allocation');
    const ci = getAttribute(msg, A.ConnectionId);
    if (!ci) throw new TurnError(400, 'Bad Request: CONNECTION-ID missing');
    if (!this.tcp) throw new TurnError(400, 'Bad Request: unknown CONNECTION-ID');
    this.tcp.bind(ft, decodeUint32(ci.value), auth.username, this.nowMs());
    // The last STUN message on a data connection is kept minimal (no SOFTWARE); application data follows it.
    return encodeStunMessage({ method: msg.method, class: 'success', transactionId: msg.transactionId, attributes: [] }, { integrityKey: auth.key, integrity: auth.integrity, fingerprint: true });
  }

  /** An even port P and P+1 (EVEN-PORT with the R bit, RFC 8656 §7.2); tries a bounded number of even ports, then 508. */
  private async openPair(family: IpFamily): Promise<{ relay: RelayHandle; next: RelayHandle }> {
    for (let i = 0; i < 16; i++) {
      const relay = await this.opts.openRelay({ evenPort: true, family });
      try {
        const next = await this.opts.openRelay({ evenPort: false, family, port: relay.relayed.port + 1 });
        return { relay, next };
      } catch {
        relay.close();
      }
    }
    throw new TurnError(508);
  }

  private ownAllocation(ft: FiveTuple, auth: AuthOk): Allocation {
    const a = this.allocations.get(ft);
    if (!a || a.isExpired(this.nowMs())) throw new TurnError(437);
    if (a.username !== auth.username) throw new TurnError(441);
    return a;
  }

  /** Refresh (RFC 8656 §8.2): LIFETIME 0 deletes the allocation; REQUESTED-ADDRESS-FAMILY must match one relayed address (else 443). */
  private refresh(ft: FiveTuple, msg: StunMessage, auth: AuthOk): Buffer {
    const a = this.ownAllocation(ft, auth);
    const fam = getAttribute(msg, A.RequestedAddressFamily);
    if (fam) {
      const f = decodeAddressFamily(fam.value);
      if (!f || !a.relayFor(f)) throw new TurnError(443);
    }
    const lifetimeS = this.lifetimeSFrom(msg);
    if (lifetimeS === 0) this.deleteAllocation(a, 'refresh with lifetime 0');
    else a.refresh(lifetimeS, this.nowMs());
    return this.responder.success(msg, [attr(A.Lifetime, encodeUint32(lifetimeS))], auth, true);
  }

  private peerFrom(a: StunAttribute, msg: StunMessage, alloc: Allocation): TransportAddress {
    const peer = decodeXorAddress(a.value, msg.transactionId);
    if (!alloc.relayFor(peer.family)) throw new TurnError(443);
    if (!this.peerAllowed(peer.address)) throw new TurnError(403, 'Forbidden: peer address not allowed');
    return peer;
  }

  /** CreatePermission (RFC 8656 §9.2): all XOR-PEER-ADDRESS values or none. */
  private createPermission(ft: FiveTuple, msg: StunMessage, auth: AuthOk): Buffer {
    const a = this.ownAllocation(ft, auth);
    const addrs = getAttributes(msg, A.XorPeerAddress);
    if (addrs.length === 0) throw new TurnError(400, 'Bad Request: XOR-PEER-ADDRESS missing');
    const peers = addrs.map((x) => this.peerFrom(x, msg, a));
    const now = this.nowMs();
    a.permissions.installAll(peers.map((p) => p.address), now, this.maxPermissions);
    return this.responder.success(msg, [], auth, true);
  }

  /** ChannelBind (RFC 8656 §11.2): binds or refreshes, and installs a permission for the peer. */
  private channelBind(ft: FiveTuple, msg: StunMessage, auth: AuthOk): Buffer {
    const a = this.ownAllocation(ft, auth);
    const cn = getAttribute(msg, A.ChannelNumber);
    const pa = getAttribute(msg, A.XorPeerAddress);
    if (!cn || !pa) throw new TurnError(400, 'Bad Request: CHANNEL-NUMBER and XOR-PEER-ADDRESS required');
    const channel = decodeChannelNumber(cn.value);
    if (!isValidChannelNumber(channel)) throw new TurnError(400, 'Bad Request: channel number out of range');
    const peer = this.peerFrom(pa, msg, a);
    const now = this.nowMs();
    a.permissions.checkRoom([peer.address], now, this.maxPermissions);
    a.channels.bind(channel, peer, now);
    a.permissions.install(peer.address, now);
    return this.responder.success(msg, [], auth, true);
  }

  private xorMapped(ft: FiveTuple, msg: StunMessage): StunAttribute {
    const family = ft.clientAddress.includes(':') ? 'IPv6' : 'IPv4';
    return attr(A.XorMappedAddress, encodeXorAddress({ family, address: ft.clientAddress, port: ft.clientPort }, msg.transactionId));
  }
}
