/**
 * The TURN control plane (RFC 8656) and STUN Binding (RFC 8489 §3): takes
 * packets received from clients and from peers, keeps allocations,
 * permissions, channels and long-term credential checks, and says what to
 * send. It imports no socket module: relay sockets come in through
 * `openRelay`, so the same control plane can drive a native data plane.
 */
import { randomBytes } from 'node:crypto';
import { type Logger, silentLogger } from '../log.js';
import { Allocation, AllocationTable, type RelayHandle } from './allocation.js';
import { decodeChannelData, encodeChannelData, isValidChannelNumber, looksLikeChannelData } from './channel-data.js';
import { type FiveTuple, fiveTupleKey, isDatagramTransport } from './five-tuple.js';
import { checkNonce, createNonce } from '../auth/nonce.js';
import { type IpFamily } from '../security/ip-address.js';
import { PeerPolicy } from './peer-policy.js';
import { parseRestUsername, restApiPassword } from './rest-credentials.js';
import {
  decodeChannelNumber,
  decodeAddressFamily,
  decodeEvenPort,
  decodePasswordAlgorithms,
  decodeRequestedTransport,
  decodeText,
  decodeUint32,
  decodeXorAddress,
  encodeAddressErrorCode,
  encodeErrorCode,
  encodePasswordAlgorithms,
  encodeUint32,
  encodeUnknownAttributes,
  encodeXorAddress,
  isComprehensionRequired,
  PASSWORD_ALGORITHM,
  type PasswordAlgorithmName,
  type TransportAddress,
} from '../stun/stun-attributes.js';
import { longTermKey, longTermKeySha256, userhash, verifyFingerprint, verifyMessageIntegrity, verifyMessageIntegritySha256 } from '../stun/stun-integrity.js';
import { TokenBucketLimiter } from '../security/rate-limiter.js';
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
import { TurnError } from './turn-error.js';

/** UDP's IP protocol number (RFC 8656 §7.2 REQUESTED-TRANSPORT). */
export const PROTOCOL_UDP = 17;
/** TCP's IP protocol number: a TCP allocation (RFC 6062 §5.1). */
export const PROTOCOL_TCP = 6;

/** How long a port reserved by EVEN-PORT's R bit waits for its RESERVATION-TOKEN, ms (RFC 8656 §7.2 suggests about 30 s). */
export const RESERVATION_MS = 30_000;

/**
 * Nonce cookie announcing RFC 8489 security features (§9.2): "obMatJos2" then
 * base64 of 24 feature bits; here bit 0 (password algorithms) and bit 1
 * (username anonymity) = 0xC00000 = "wAAA".
 */
export const NONCE_COOKIE = 'obMatJos2wAAA';

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

/** What the control plane asks of the socket side when it needs a relayed transport address. */
export interface RelayRequest {
  /** Port must be even (EVEN-PORT, RFC 8656 §7.2). */
  evenPort: boolean;
  /** Address family of the relayed transport address; undefined = IPv4. */
  family?: IpFamily;
  /** Exactly this port (the one after an R-bit reservation); undefined = any free port. */
  port?: number;
}

/** How long a peer data connection waits for its ConnectionBind, and a Connect for the peer, ms (RFC 6062 §5.2-5.3: 30 s). */
export const TCP_CONNECTION_TIMEOUT_MS = 30_000;

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
  bindBy: number | undefined;
}

/** Options of the control plane. Lifetimes in s. */
export interface TurnControlOptions {
  realm: string;
  defaultLifetime: number;
  maxLifetime: number;
  nonceTtl: number;
  nonceSecret: Buffer;
  /** Allow peers on 127.0.0.0/8 and ::1 (ignored when `peerPolicy` is given). */
  allowLoopbackPeers: boolean;
  /** Which peers are allowed; default: the built-in deny list with `allowLoopbackPeers`. */
  peerPolicy?: PeerPolicy;
  /**
   * Long-term key of a user (RFC 8489 §9.2.2): for 'MD5' (the default when
   * `algorithm` is undefined) MD5(username ":" realm ":" password), 16 bytes;
   * for 'SHA-256' SHA-256 of the same, 32 bytes. Undefined = unknown user or
   * no key for that algorithm.
   */
  getKey(username: string, realm: string, algorithm?: PasswordAlgorithmName): Promise<Buffer | undefined>;
  /** USERHASH (SHA-256(username ":" realm)) -> username, for clients hiding their name (RFC 8489 §9.2.4); optional. */
  resolveUserhash?(hash: Buffer, realm: string): Promise<string | undefined>;
  /** Password algorithms offered, most preferred first (RFC 8489 §9.2.3); default ['MD5'] (no security-feature nonce). */
  passwordAlgorithms?: PasswordAlgorithmName[];
  /** Shared secrets of the TURN REST API scheme (username "EXPIRY:user"), newest first; default none. */
  authSecrets?: readonly (string | Buffer)[];
  /**
   * Opens a UDP relay socket for `req`. Rejects with TurnError(440) when the
   * family has no relay address, TurnError(508) when no port is free.
   */
  openRelay(req: RelayRequest): Promise<RelayHandle>;
  /** TCP relays (RFC 6062); undefined: REQUESTED-TRANSPORT TCP gets 442. */
  tcp?: TcpRelayOps;
  /** Families with a relay address; default ['IPv4']. Others get 440 (RFC 8656 §7.2). */
  relayFamilies?: IpFamily[];
  /** Most allocations per user, 0 = no limit; default 10 (486 above, RFC 8656 §7.2). */
  maxAllocationsPerUser?: number;
  /** Most allocations in all, 0 = no limit; default 1000 (486 above). */
  maxAllocations?: number;
  /** Per-allocation relay bandwidth cap, bytes/s of payload both ways; 0 = none (default). Excess is dropped and counted. */
  bandwidthLimit?: number;
  /** Unauthenticated error answers (401, 438) per second per source IP; 0 = no limit; default 20. Excess is dropped. */
  challengeRate?: number;
  software?: string;
  logger?: Logger;
  /** Clock, ms. Default Date.now. */
  now?: () => number;
}

/** A packet the server must send to a client 5-tuple. */
export interface ClientDelivery {
  fiveTuple: FiveTuple;
  data: Buffer;
}

/** Counters of the control plane. */
export interface TurnControlStats {
  /** Live allocations. */
  allocations: number;
  /** Packets and payload bytes relayed, both directions. */
  packetsRelayed: number;
  bytesRelayed: number;
  /** Packets and payload bytes dropped by the bandwidth cap. */
  packetsDropped: number;
  bytesDropped: number;
  /** Unauthenticated error answers not sent because of `challengeRate`. */
  challengesSuppressed: number;
}

interface AuthOk {
  username: string;
  key: Buffer;
  integrity: 'sha1' | 'sha256';
}

interface Reservation {
  relay: RelayHandle;
  expiresAt: number;
}

function attr(type: number, value: Buffer): StunAttribute {
  return { type, value };
}

/** Control plane state: allocations, reservations and counters; one per server. */
export class TurnControl {
  private readonly allocations = new AllocationTable();
  private readonly pending = new Map<string, { transactionId: Buffer; result: Promise<Buffer | undefined> }>();
  private readonly reservations = new Map<string, Reservation>();
  private readonly connections = new Map<number, TcpConnection>();
  /** Allocations that relay over TCP (RFC 6062). */
  private readonly tcpAllocations = new WeakSet<Allocation>();
  /** Allocations (live and being created) per quota user, and in all. */
  private readonly perUser = new Map<string, number>();
  private total = 0;
  /** USERHASH hex -> username, learnt from successful authentications (bounded). */
  private readonly userhashes = new Map<string, string>();
  private readonly challengeLimiter: TokenBucketLimiter | undefined;
  private readonly policy: PeerPolicy;
  private readonly algorithms: PasswordAlgorithmName[];
  private readonly securityFeatures: boolean;
  private readonly log: Logger;
  private readonly now: () => number;
  private packets = 0;
  private bytes = 0;
  private droppedPackets = 0;
  private droppedBytes = 0;
  private suppressed = 0;
  private stopped = false;

  /** @throws RangeError on an empty `passwordAlgorithms` list. */
  constructor(private readonly opts: TurnControlOptions) {
    this.log = (opts.logger ?? silentLogger).child({ component: 'turn-control' });
    this.now = opts.now ?? Date.now;
    this.policy = opts.peerPolicy ?? new PeerPolicy({ allowLoopbackPeers: opts.allowLoopbackPeers });
    this.algorithms = opts.passwordAlgorithms ?? ['MD5'];
    if (this.algorithms.length === 0) throw new RangeError('passwordAlgorithms must not be empty');
    this.securityFeatures = this.algorithms.some((a) => a !== 'MD5');
    const rate = opts.challengeRate ?? 20;
    this.challengeLimiter = rate > 0 ? new TokenBucketLimiter({ ratePerSecond: rate, burst: rate }) : undefined;
  }

  /** Counters: live allocations, packets and payload bytes relayed in both directions, drops. */
  stats(): TurnControlStats {
    return {
      allocations: this.allocations.size,
      packetsRelayed: this.packets,
      bytesRelayed: this.bytes,
      packetsDropped: this.droppedPackets,
      bytesDropped: this.droppedBytes,
      challengesSuppressed: this.suppressed,
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
   * ChannelData, silently discarded input, rate-limited challenges). Never rejects.
   */
  async handleClientPacket(ft: FiveTuple, buf: Buffer): Promise<Buffer | undefined> {
    try {
      if (looksLikeChannelData(buf)) {
        this.handleClientChannelData(ft, buf);
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
        if (msg.method === StunMethod.Send) this.handleSend(ft, msg);
        return undefined;
      }
      if (msg.class !== 'request') return undefined;
      return await this.handleRequest(ft, msg, buf);
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
    const now = this.now();
    if (a.isExpired(now) || !a.permissions.has(peer.address, now)) return undefined;
    if (data.length > 0xffff - 64) return undefined;
    if (!this.admit(a, data.length, now)) return undefined;
    const ch = a.channels.getByPeer(peer.address, peer.port, now);
    let out: Buffer;
    if (ch) out = encodeChannelData(ch.channel, data, !isDatagramTransport(a.fiveTuple.transport));
    else {
      const transactionId = randomBytes(12);
      out = encodeStunMessage({
        method: StunMethod.Data,
        class: 'indication',
        transactionId,
        attributes: [attr(A.XorPeerAddress, encodeXorAddress(peer, transactionId)), attr(A.Data, data)],
      });
    }
    this.packets++;
    this.bytes += data.length;
    return { fiveTuple: a.fiveTuple, data: out };
  }

  /** True if `peer` (IP text) may be reached through a relay under the peer policy. */
  peerAllowed(peer: string): boolean {
    return this.policy.allows(peer);
  }

  /** Deletes the allocation of a 5-tuple (its TCP/TLS connection closed, RFC 8656 §3.1). */
  closeFiveTuple(ft: FiveTuple): void {
    const a = this.allocations.get(ft);
    if (a) this.deleteAllocation(a, 'connection closed');
  }

  /** Expires allocations, permissions, channels and port reservations whose time has passed, closing relays. Call about once a second. */
  sweep(): void {
    const now = this.now();
    for (const a of this.allocations.sweep(now)) {
      this.release(a.quotaUser);
      a.closeRelays();
      this.log.debug({ relay: a.relay.relayed }, 'allocation expired');
    }
    for (const c of this.connections.values()) {
      if (c.bindBy !== undefined && c.bindBy <= now) this.closeConnection(c);
    }
    for (const [token, r] of this.reservations) {
      if (r.expiresAt <= now) {
        this.reservations.delete(token);
        r.relay.close();
      }
    }
  }

  /** Deletes every allocation and reservation and closes every relay; later requests are ignored. */
  stop(): void {
    this.stopped = true;
    for (const a of this.allocations.all()) this.deleteAllocation(a, 'server stopping');
    for (const r of this.reservations.values()) r.relay.close();
    this.reservations.clear();
  }

  private closeConnection(c: TcpConnection): void {
    if (this.connections.get(c.id) !== c) return;
    this.connections.delete(c.id);
    this.opts.tcp?.close(c.id);
  }

  /**
   * A peer opened a TCP connection to relayed address `relayed` (RFC 6062
   * §5.3). If its allocation is a TCP one and a permission exists for the
   * peer, returns the new connection id and the ConnectionAttempt indication
   * for the client; else undefined and the caller closes the connection.
   */
  handlePeerConnection(relayed: { address: string; port: number }, peer: TransportAddress): { connectionId: number; delivery: ClientDelivery } | undefined {
    const a = this.allocations.getByRelay(relayed);
    const now = this.now();
    if (!a || !this.tcpAllocations.has(a) || a.isExpired(now) || !a.permissions.has(peer.address, now) || !this.policy.allows(peer.address)) return undefined;
    const id = this.newConnectionId();
    this.connections.set(id, { id, allocation: a, peer, bindBy: now + TCP_CONNECTION_TIMEOUT_MS });
    const transactionId = randomBytes(12);
    const data = encodeStunMessage({
      method: StunMethod.ConnectionAttempt,
      class: 'indication',
      transactionId,
      attributes: [attr(A.XorPeerAddress, encodeXorAddress(peer, transactionId)), attr(A.ConnectionId, encodeUint32(id))],
    });
    return { connectionId: id, delivery: { fiveTuple: a.fiveTuple, data } };
  }

  /** The peer side of connection `connectionId` closed: forget it. */
  peerConnectionClosed(connectionId: number): void {
    this.connections.delete(connectionId);
  }

  private newConnectionId(): number {
    for (;;) {
      const id = randomBytes(4).readUInt32BE(0);
      if (id !== 0 && !this.connections.has(id)) return id;
    }
  }

  private deleteAllocation(a: Allocation, why: string): void {
    for (const c of [...this.connections.values()]) if (c.allocation === a) this.closeConnection(c);
    if (this.allocations.remove(a)) {
      this.release(a.quotaUser);
      a.closeRelays();
      this.log.debug({ relay: a.relay.relayed, why }, 'allocation deleted');
    }
  }

  /** Counts one allocation against the quotas of `user`; throws TurnError(486) when a quota is reached (RFC 8656 §7.2). */
  private claim(user: string): void {
    const perUser = this.opts.maxAllocationsPerUser ?? 10;
    const max = this.opts.maxAllocations ?? 1000;
    const n = this.perUser.get(user) ?? 0;
    if ((perUser > 0 && n >= perUser) || (max > 0 && this.total >= max)) throw new TurnError(486);
    this.perUser.set(user, n + 1);
    this.total++;
  }

  private release(user: string): void {
    const n = (this.perUser.get(user) ?? 1) - 1;
    if (n <= 0) this.perUser.delete(user);
    else this.perUser.set(user, n);
    this.total = Math.max(0, this.total - 1);
  }

  /** Bandwidth cap of one allocation; counts drops. */
  private admit(a: Allocation, bytes: number, now: number): boolean {
    if (a.admitBytes(bytes, this.opts.bandwidthLimit ?? 0, now)) return true;
    this.droppedPackets++;
    this.droppedBytes += bytes;
    return false;
  }

  /** True if an unauthenticated error answer may go to this client now (`challengeRate`). */
  private mayChallenge(ft: FiveTuple): boolean {
    if (!this.challengeLimiter || this.challengeLimiter.take(ft.clientAddress, this.now())) return true;
    this.suppressed++;
    return false;
  }

  private badFrame(ft: FiveTuple, buf: Buffer, e: unknown): Buffer | undefined {
    // Answer 400 only when the header names a request and the transaction id is readable.
    if (buf.length < 20) return undefined;
    const type = buf.readUInt16BE(0);
    if ((type & 0x0110) !== 0) return undefined;
    if (!this.mayChallenge(ft)) return undefined;
    const method = (type & 0x000f) | ((type & 0x00e0) >> 1) | ((type & 0x3e00) >> 2);
    this.log.debug({ err: (e as Error).message }, 'malformed STUN request');
    return this.errorResponse({ method, class: 'request', transactionId: Buffer.from(buf.subarray(8, 20)), attributes: [] }, new TurnError(400), undefined, false);
  }

  private async handleRequest(ft: FiveTuple, msg: StunMessage, raw: Buffer): Promise<Buffer | undefined> {
    if (this.stopped) return undefined;
    const fingerprint = getAttribute(msg, A.Fingerprint) !== undefined;
    if (msg.method === StunMethod.Binding) {
      const unknown = this.unknownAttributes(msg, KNOWN_BINDING_ATTRIBUTES);
      if (unknown.length) return this.errorResponse(msg, new TurnError(420, undefined, unknown), undefined, fingerprint);
      return this.successResponse(msg, [this.xorMapped(ft, msg)], undefined, fingerprint);
    }
    const turnMethods: number[] = [
      StunMethod.Allocate, StunMethod.Refresh, StunMethod.CreatePermission, StunMethod.ChannelBind, StunMethod.Connect, StunMethod.ConnectionBind,
    ];
    if (!turnMethods.includes(msg.method)) {
      return this.mayChallenge(ft) ? this.errorResponse(msg, new TurnError(400, 'Bad Request: unknown method'), undefined, true) : undefined;
    }

    const checked = await this.authenticate(ft, msg, raw);
    if ('response' in checked) return checked.response;
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
        return this.errorResponse(msg, e, auth, true);
      }
      if ((e as Error).name === 'StunDecodeError') return this.errorResponse(msg, new TurnError(400, `Bad Request: ${(e as Error).message}`), auth, true);
      throw e;
    }
  }

  /**
   * Long-term credential check (RFC 8489 §9.2.4) with PASSWORD-ALGORITHM,
   * MESSAGE-INTEGRITY-SHA256 and USERHASH, and REST API names when
   * `authSecrets` are set. Returns the user, key and integrity kind, or the
   * error response to send (undefined when rate-limited: nothing is sent).
   * Nothing is stored for a client before it authenticates.
   */
  private async authenticate(ft: FiveTuple, msg: StunMessage, raw: Buffer): Promise<AuthOk | { response: Buffer | undefined }> {
    // Nonces are bound to the client IP address only, so a client opening further connections (RFC 6062 data
    // connections, several transports) can reuse its nonce.
    const client = ft.clientAddress;
    const challenge = (status: number): { response: Buffer | undefined } => {
      if (!this.mayChallenge(ft)) return { response: undefined };
      const nonce = (this.securityFeatures ? NONCE_COOKIE : '') + createNonce(this.opts.nonceSecret, this.now(), { context: client });
      const extra = [attr(A.Realm, Buffer.from(this.opts.realm, 'utf8')), attr(A.Nonce, Buffer.from(nonce, 'ascii'))];
      if (this.securityFeatures) extra.push(attr(A.PasswordAlgorithms, this.offeredAlgorithms()));
      return { response: this.errorResponse(msg, new TurnError(status), undefined, true, extra) };
    };
    const fail = (err: TurnError): { response: Buffer | undefined } => ({
      response: this.mayChallenge(ft) ? this.errorResponse(msg, err, undefined, true) : undefined,
    });
    const mi = getAttribute(msg, A.MessageIntegrity);
    const mi256 = getAttribute(msg, A.MessageIntegritySha256);
    if (!mi && !mi256) return challenge(401);
    const u = getAttribute(msg, A.Username);
    const uh = getAttribute(msg, A.Userhash);
    const r = getAttribute(msg, A.Realm);
    const n = getAttribute(msg, A.Nonce);
    if ((!u && !uh) || !r || !n) return fail(new TurnError(400, 'Bad Request: USERNAME or USERHASH, REALM and NONCE required'));
    let realm: string;
    let nonce: string;
    try {
      realm = decodeText(r.value);
      nonce = decodeText(n.value);
    } catch {
      return fail(new TurnError(400));
    }
    if (this.securityFeatures) {
      if (!nonce.startsWith(NONCE_COOKIE)) return challenge(438);
      nonce = nonce.slice(NONCE_COOKIE.length);
    }
    if (checkNonce(this.opts.nonceSecret, nonce, this.opts.nonceTtl, this.now(), client) !== 'valid') return challenge(438);
    if (realm !== this.opts.realm) return challenge(401);

    // Password algorithm (RFC 8489 §9.2.4 step 3).
    let algorithm: PasswordAlgorithmName = 'MD5';
    if (this.securityFeatures) {
      const pa = getAttribute(msg, A.PasswordAlgorithm);
      const pas = getAttribute(msg, A.PasswordAlgorithms);
      if (pa || pas) {
        if (!pa || !pas || !pas.value.equals(this.offeredAlgorithms())) return fail(new TurnError(400, 'Bad Request: PASSWORD-ALGORITHMS does not match'));
        let chosen: number | undefined;
        try {
          chosen = decodePasswordAlgorithms(pa.value)[0];
        } catch {
          return fail(new TurnError(400));
        }
        const name = this.algorithms.find((x) => PASSWORD_ALGORITHM[x] === chosen);
        if (!name) return fail(new TurnError(400, 'Bad Request: PASSWORD-ALGORITHM not offered'));
        algorithm = name;
      } else if (!this.algorithms.includes('MD5')) return fail(new TurnError(400, 'Bad Request: PASSWORD-ALGORITHM required'));
    }

    let username: string | undefined;
    try {
      if (u) username = decodeText(u.value, 513);
      else username = await this.resolveUserhash(uh!.value, realm);
    } catch (e) {
      if ((e as Error).name === 'StunDecodeError') return fail(new TurnError(400));
      this.log.warn({ err: e }, 'resolveUserhash failed');
      return fail(new TurnError(500));
    }
    if (username === undefined) return challenge(401);

    let keys: Buffer[];
    try {
      keys = await this.keysFor(username, realm, algorithm);
    } catch (e) {
      this.log.warn({ err: e }, 'getKey failed');
      return fail(new TurnError(500));
    }
    const integrity = mi256 ? 'sha256' : 'sha1';
    const key = keys.find((k) => (integrity === 'sha256' ? verifyMessageIntegritySha256(raw, k) : verifyMessageIntegrity(raw, k)));
    if (!key) {
      this.log.debug({ username, client }, 'TURN authentication failed');
      return challenge(401);
    }
    if (u) this.rememberUserhash(username, realm);
    return { username, key, integrity };
  }

  private offeredAlgorithms(): Buffer {
    return encodePasswordAlgorithms(this.algorithms.map((a) => PASSWORD_ALGORITHM[a]));
  }

  /** Candidate keys for a user: one per REST API secret for "EXPIRY:user" names that have not expired, else the stored key. */
  private async keysFor(username: string, realm: string, algorithm: PasswordAlgorithmName): Promise<Buffer[]> {
    const secrets = this.opts.authSecrets ?? [];
    const rest = secrets.length ? parseRestUsername(username) : undefined;
    if (rest) {
      if (rest.expires * 1000 < this.now()) return [];
      return secrets.map((s) => {
        const password = restApiPassword(s, username);
        return algorithm === 'SHA-256' ? longTermKeySha256(username, realm, password) : longTermKey(username, realm, password);
      });
    }
    const k = await this.opts.getKey(username, realm, algorithm);
    return k ? [k] : [];
  }

  private async resolveUserhash(hash: Buffer, realm: string): Promise<string | undefined> {
    const known = this.userhashes.get(hash.toString('hex'));
    if (known !== undefined) return known;
    return this.opts.resolveUserhash?.(hash, realm);
  }

  private rememberUserhash(username: string, realm: string): void {
    const h = userhash(username, realm).toString('hex');
    if (this.userhashes.has(h)) return;
    if (this.userhashes.size >= 10_000) this.userhashes.delete(this.userhashes.keys().next().value!);
    this.userhashes.set(h, username);
  }

  private unknownAttributes(msg: StunMessage, known: Set<number>): number[] {
    const out: number[] = [];
    for (const a of msg.attributes) if (isComprehensionRequired(a.type) && !known.has(a.type) && !out.includes(a.type)) out.push(a.type);
    return out;
  }

  private lifetimeFrom(msg: StunMessage): number {
    const l = getAttribute(msg, A.Lifetime);
    if (!l) return this.opts.defaultLifetime;
    const requested = decodeUint32(l.value);
    if (requested === 0) return 0;
    return Math.max(this.opts.defaultLifetime, Math.min(requested, this.opts.maxLifetime));
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
    let lifetime = this.lifetimeFrom(msg);
    if (lifetime === 0) lifetime = this.opts.defaultLifetime;

    let reservation: Reservation | undefined;
    if (tokenAttr) {
      const t = tokenAttr.value.toString('hex');
      reservation = this.reservations.get(t);
      if (!reservation || reservation.expiresAt <= this.now()) throw new TurnError(508, 'Insufficient Capacity: unknown or expired RESERVATION-TOKEN');
    }
    this.claim(quotaName(auth.username, this.opts.authSecrets));
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
        this.reservations.set(token.toString('hex'), { relay: pair.next, expiresAt: this.now() + RESERVATION_MS });
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
      this.release(quotaName(auth.username, this.opts.authSecrets));
      throw e;
    }
    const [relay, ...extra] = opened as [RelayHandle, ...RelayHandle[]];
    const a = new Allocation(ft, auth.username, relay, lifetime, this.now(), msg.transactionId, undefined, extra);
    a.quotaUser = quotaName(auth.username, this.opts.authSecrets);
    const attrs = a.relays.map((r) => attr(A.XorRelayedAddress, encodeXorAddress(r.relayed, msg.transactionId)));
    attrs.push(attr(A.Lifetime, encodeUint32(lifetime)));
    if (token) attrs.push(attr(A.ReservationToken, token));
    if (addressError) attrs.push(addressError);
    attrs.push(this.xorMapped(ft, msg));
    const response = this.successResponse(msg, attrs, auth, true);
    a.allocateResponse = response;
    this.allocations.add(a);
    this.log.debug({ username: auth.username, relays: a.relays.map((r) => r.relayed), lifetime }, 'allocation created');
    return response;
  }

  /** Allocate with REQUESTED-TRANSPORT TCP (RFC 6062 §5.1): only over TCP/TLS, without DONT-FRAGMENT, EVEN-PORT or RESERVATION-TOKEN. */
  private async createTcpAllocation(ft: FiveTuple, msg: StunMessage, auth: AuthOk): Promise<Buffer> {
    const tcp = this.opts.tcp;
    if (!tcp) throw new TurnError(442);
    if (isDatagramTransport(ft.transport)) throw new TurnError(400, 'Bad Request: TCP allocations need a TCP or TLS connection');
    for (const t of [A.DontFragment, A.EvenPort, A.ReservationToken, A.AdditionalAddressFamily]) {
      if (getAttribute(msg, t)) throw new TurnError(400, 'Bad Request: attribute not allowed in a TCP Allocate');
    }
    const famAttr = getAttribute(msg, A.RequestedAddressFamily);
    const family = famAttr ? decodeAddressFamily(famAttr.value) : 'IPv4';
    if (!family || !(this.opts.relayFamilies ?? ['IPv4']).includes(family)) throw new TurnError(440);
    let lifetime = this.lifetimeFrom(msg);
    if (lifetime === 0) lifetime = this.opts.defaultLifetime;
    const user = quotaName(auth.username, this.opts.authSecrets);
    this.claim(user);
    let relay: RelayHandle;
    try {
      relay = await tcp.openTcpRelay({ family });
      if (this.stopped || this.allocations.get(ft)) {
        relay.close();
        throw new TurnError(this.stopped ? 508 : 437);
      }
    } catch (e) {
      this.release(user);
      throw e;
    }
    const a = new Allocation(ft, auth.username, relay, lifetime, this.now(), msg.transactionId);
    a.quotaUser = user;
    this.tcpAllocations.add(a);
    const response = this.successResponse(
      msg,
      [attr(A.XorRelayedAddress, encodeXorAddress(relay.relayed, msg.transactionId)), attr(A.Lifetime, encodeUint32(lifetime)), this.xorMapped(ft, msg)],
      auth,
      true,
    );
    a.allocateResponse = response;
    this.allocations.add(a);
    return response;
  }

  /** Connect (RFC 6062 §5.2): opens a TCP connection to the peer and answers with its CONNECTION-ID; 446 if one exists, 447 on failure. */
  private async connect(ft: FiveTuple, msg: StunMessage, auth: AuthOk): Promise<Buffer> {
    const a = this.ownAllocation(ft, auth);
    if (!this.tcpAllocations.has(a)) throw new TurnError(400, 'Bad Request: not a TCP allocation');
    const pa = getAttribute(msg, A.XorPeerAddress);
    if (!pa) throw new TurnError(400, 'Bad Request: XOR-PEER-ADDRESS missing');
    const peer = this.peerFrom(pa, msg, a);
    for (const c of this.connections.values()) {
      if (c.allocation === a && c.peer.address === peer.address && c.peer.port === peer.port) throw new TurnError(446);
    }
    const id = this.newConnectionId();
    const conn: TcpConnection = { id, allocation: a, peer, bindBy: this.now() + TCP_CONNECTION_TIMEOUT_MS * 2 };
    this.connections.set(id, conn);
    try {
      await this.opts.tcp!.connect(a.relay, peer, id);
    } catch {
      this.closeConnection(conn);
      throw new TurnError(447);
    }
    if (this.connections.get(id) !== conn) throw new TurnError(447);
    conn.bindBy = this.now() + TCP_CONNECTION_TIMEOUT_MS;
    return this.successResponse(msg, [attr(A.ConnectionId, encodeUint32(id))], auth, true);
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
    const c = this.connections.get(decodeUint32(ci.value));
    if (!c || c.bindBy === undefined || c.bindBy <= this.now()) throw new TurnError(400, 'Bad Request: unknown CONNECTION-ID');
    if (c.allocation.username !== auth.username) throw new TurnError(441);
    c.bindBy = undefined;
    this.opts.tcp!.bind(c.id, ft);
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
    if (!a || a.isExpired(this.now())) throw new TurnError(437);
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
    const lifetime = this.lifetimeFrom(msg);
    if (lifetime === 0) this.deleteAllocation(a, 'refresh with lifetime 0');
    else a.refresh(lifetime, this.now());
    return this.successResponse(msg, [attr(A.Lifetime, encodeUint32(lifetime))], auth, true);
  }

  private peerFrom(a: StunAttribute, msg: StunMessage, alloc: Allocation): TransportAddress {
    const peer = decodeXorAddress(a.value, msg.transactionId);
    if (!alloc.relayFor(peer.family)) throw new TurnError(443);
    if (!this.policy.allows(peer.address)) throw new TurnError(403, 'Forbidden: peer address not allowed');
    return peer;
  }

  /** CreatePermission (RFC 8656 §9.2): all XOR-PEER-ADDRESS values or none. */
  private createPermission(ft: FiveTuple, msg: StunMessage, auth: AuthOk): Buffer {
    const a = this.ownAllocation(ft, auth);
    const addrs = getAttributes(msg, A.XorPeerAddress);
    if (addrs.length === 0) throw new TurnError(400, 'Bad Request: XOR-PEER-ADDRESS missing');
    const peers = addrs.map((x) => this.peerFrom(x, msg, a));
    const now = this.now();
    for (const p of peers) a.permissions.install(p.address, now);
    return this.successResponse(msg, [], auth, true);
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
    const now = this.now();
    a.channels.bind(channel, peer, now);
    a.permissions.install(peer.address, now);
    return this.successResponse(msg, [], auth, true);
  }

  /** Send indication (RFC 8656 §10.2): relays DATA to XOR-PEER-ADDRESS if permitted; otherwise silently dropped. */
  private handleSend(ft: FiveTuple, msg: StunMessage): void {
    const a = this.allocations.get(ft);
    if (!a) return;
    const now = this.now();
    if (a.isExpired(now)) return;
    const pa = getAttribute(msg, A.XorPeerAddress);
    const data = getAttribute(msg, A.Data);
    if (!pa || !data) return;
    let peer: TransportAddress;
    try {
      peer = decodeXorAddress(pa.value, msg.transactionId);
    } catch {
      return;
    }
    if (!a.permissions.has(peer.address, now)) return;
    this.relayToPeer(a, peer, data.value, now);
  }

  /** ChannelData from the client (RFC 8656 §12.5): relays to the bound peer; unbound channels are dropped. */
  private handleClientChannelData(ft: FiveTuple, buf: Buffer): void {
    const a = this.allocations.get(ft);
    if (!a) return;
    let cd;
    try {
      cd = decodeChannelData(buf);
    } catch {
      return;
    }
    const now = this.now();
    if (a.isExpired(now)) return;
    const b = a.channels.getByChannel(cd.channel, now);
    if (!b || !a.permissions.has(b.peer.address, now)) return;
    this.relayToPeer(a, b.peer, cd.data, now);
  }

  private relayToPeer(a: Allocation, peer: TransportAddress, data: Buffer, now: number): void {
    const relay = a.relayFor(peer.family);
    if (!relay || !this.policy.allows(peer.address)) return;
    if (!this.admit(a, data.length, now)) return;
    this.packets++;
    this.bytes += data.length;
    relay.send(peer, data);
  }

  private xorMapped(ft: FiveTuple, msg: StunMessage): StunAttribute {
    const family = ft.clientAddress.includes(':') ? 'IPv6' : 'IPv4';
    return attr(A.XorMappedAddress, encodeXorAddress({ family, address: ft.clientAddress, port: ft.clientPort }, msg.transactionId));
  }

  private softwareAttrs(): StunAttribute[] {
    return this.opts.software ? [attr(A.Software, Buffer.from(this.opts.software, 'utf8').subarray(0, 763))] : [];
  }

  private successResponse(req: StunMessage, attributes: StunAttribute[], auth: AuthOk | undefined, fingerprint: boolean): Buffer {
    return encodeStunMessage(
      { method: req.method, class: 'success', transactionId: req.transactionId, attributes: [...attributes, ...this.softwareAttrs()] },
      { integrityKey: auth?.key, integrity: auth?.integrity, fingerprint },
    );
  }

  private errorResponse(req: StunMessage, err: TurnError, auth: AuthOk | undefined, fingerprint: boolean, extra: StunAttribute[] = []): Buffer {
    const attributes = [attr(A.ErrorCode, encodeErrorCode(err.status, err.message)), ...extra];
    if (err.status === 420 && err.unknownAttributes.length) attributes.push(attr(A.UnknownAttributes, encodeUnknownAttributes(err.unknownAttributes)));
    return encodeStunMessage(
      { method: req.method, class: 'error', transactionId: req.transactionId, attributes: [...attributes, ...this.softwareAttrs()] },
      { integrityKey: auth?.key, integrity: auth?.integrity, fingerprint },
    );
  }
}

/** The name quotas count a user under: the user part of a REST API name ("EXPIRY:user") when secrets are set, else the username. */
function quotaName(username: string, secrets: readonly (string | Buffer)[] | undefined): string {
  if (!secrets?.length) return username;
  const rest = parseRestUsername(username);
  return rest ? rest.user : username;
}
