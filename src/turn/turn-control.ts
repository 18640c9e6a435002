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
import { type FiveTuple, fiveTupleKey } from './five-tuple.js';
import { checkNonce, createNonce } from './nonce.js';
import { isPeerAllowed } from './peer-policy.js';
import {
  decodeChannelNumber,
  decodeEvenPort,
  decodeRequestedAddressFamily,
  decodeRequestedTransport,
  decodeText,
  decodeUint32,
  decodeXorAddress,
  encodeErrorCode,
  encodeUint32,
  encodeUnknownAttributes,
  encodeXorAddress,
  isComprehensionRequired,
  type TransportAddress,
} from './stun-attributes.js';
import { verifyFingerprint, verifyMessageIntegrity } from './stun-integrity.js';
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
} from './stun-message.js';
import { TurnError } from './turn-error.js';

/** UDP's IP protocol number, the only REQUESTED-TRANSPORT accepted (RFC 8656 §7.2). */
export const PROTOCOL_UDP = 17;

/** Comprehension-required attributes understood in TURN requests; others get 420 (RFC 8489 §6.3.1). */
const KNOWN_TURN_ATTRIBUTES = new Set<number>([
  A.Username, A.MessageIntegrity, A.MessageIntegritySha256, A.Realm, A.Nonce, A.ChannelNumber, A.Lifetime,
  A.XorPeerAddress, A.Data, A.RequestedAddressFamily, A.EvenPort, A.RequestedTransport, A.DontFragment,
]);
/** Comprehension-required attributes understood in Binding requests (incl. ICE, RFC 8445 §16.1). */
const KNOWN_BINDING_ATTRIBUTES = new Set<number>([
  A.Username, A.MessageIntegrity, A.MessageIntegritySha256, A.Realm, A.Nonce, A.Priority, A.UseCandidate,
]);

/** Options of the control plane. Lifetimes in s. */
export interface TurnControlOptions {
  realm: string;
  defaultLifetime: number;
  maxLifetime: number;
  nonceTtl: number;
  nonceSecret: Buffer;
  allowLoopbackPeers: boolean;
  /** Long-term key MD5(username ":" realm ":" password) (RFC 8489 §9.2.2); undefined = unknown user. */
  getKey(username: string, realm: string): Promise<Buffer | undefined>;
  /**
   * Opens a UDP relay socket on the relay address; with `evenPort` its port is even (RFC 8656 §7.2).
   * Rejects with TurnError(508) when no port is free.
   */
  openRelay(req: { evenPort: boolean }): Promise<RelayHandle>;
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

interface AuthOk {
  username: string;
  key: Buffer;
}

function attr(type: number, value: Buffer): StunAttribute {
  return { type, value };
}

/** Control plane state: allocations and counters; one per server. */
export class TurnControl {
  private readonly allocations = new AllocationTable();
  private readonly pending = new Map<string, { transactionId: Buffer; result: Promise<Buffer | undefined> }>();
  private readonly log: Logger;
  private readonly now: () => number;
  private packets = 0;
  private bytes = 0;
  private stopped = false;

  constructor(private readonly opts: TurnControlOptions) {
    this.log = (opts.logger ?? silentLogger).child({ component: 'turn-control' });
    this.now = opts.now ?? Date.now;
  }

  /** Counters: live allocations, packets and payload bytes relayed in both directions. */
  stats(): { allocations: number; packetsRelayed: number; bytesRelayed: number } {
    return { allocations: this.allocations.size, packetsRelayed: this.packets, bytesRelayed: this.bytes };
  }

  /** The allocation of a 5-tuple, if any (for inspection and tests). */
  getAllocation(t: FiveTuple): Allocation | undefined {
    return this.allocations.get(t);
  }

  /**
   * Handles one STUN message or ChannelData message from a client (a whole
   * UDP datagram, or one framed message from a TCP stream). Returns the
   * response to send back on the same 5-tuple, or undefined (indications,
   * ChannelData, silently discarded input). Never rejects.
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
        return this.badFrame(buf, e);
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
   * ChannelData (channel bound; padded over TCP) or a Data indication for the client; else undefined.
   */
  handlePeerPacket(relayed: { address: string; port: number }, peer: TransportAddress, data: Buffer): ClientDelivery | undefined {
    const a = this.allocations.getByRelay(relayed);
    if (!a) return undefined;
    const now = this.now();
    if (a.isExpired(now) || !a.permissions.has(peer.address, now)) return undefined;
    if (data.length > 0xffff - 64) return undefined;
    const ch = a.channels.getByPeer(peer.address, peer.port, now);
    let out: Buffer;
    if (ch) out = encodeChannelData(ch.channel, data, a.fiveTuple.transport === 'tcp');
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

  /** Deletes the allocation of a 5-tuple (its TCP connection closed, RFC 8656 §3.1). */
  closeFiveTuple(ft: FiveTuple): void {
    const a = this.allocations.get(ft);
    if (a) this.deleteAllocation(a, 'connection closed');
  }

  /** Expires allocations, permissions and channels whose time has passed, closing relays. Call about once a second. */
  sweep(): void {
    for (const a of this.allocations.sweep(this.now())) {
      a.relay.close();
      this.log.debug({ relay: a.relay.relayed }, 'allocation expired');
    }
  }

  /** Deletes every allocation and closes every relay; later requests are ignored. */
  stop(): void {
    this.stopped = true;
    for (const a of this.allocations.all()) this.deleteAllocation(a, 'server stopping');
  }

  private deleteAllocation(a: Allocation, why: string): void {
    if (this.allocations.remove(a)) {
      a.relay.close();
      this.log.debug({ relay: a.relay.relayed, why }, 'allocation deleted');
    }
  }

  private badFrame(buf: Buffer, e: unknown): Buffer | undefined {
    // Answer 400 only when the header names a request and the transaction id is readable.
    if (buf.length < 20) return undefined;
    const type = buf.readUInt16BE(0);
    if ((type & 0x0110) !== 0) return undefined;
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
    const turnMethods: number[] = [StunMethod.Allocate, StunMethod.Refresh, StunMethod.CreatePermission, StunMethod.ChannelBind];
    if (!turnMethods.includes(msg.method)) return this.errorResponse(msg, new TurnError(400, 'Bad Request: unknown method'), undefined, true);

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
        default:
          return this.channelBind(ft, msg, auth);
      }
    } catch (e) {
      if (e instanceof TurnError) return this.errorResponse(msg, e, auth.key, true);
      if ((e as Error).name === 'StunDecodeError') return this.errorResponse(msg, new TurnError(400, `Bad Request: ${(e as Error).message}`), auth.key, true);
      throw e;
    }
  }

  /** Long-term credential check (RFC 8489 §9.2.4). Returns the user and key, or the error response to send. */
  private async authenticate(ft: FiveTuple, msg: StunMessage, raw: Buffer): Promise<AuthOk | { response: Buffer }> {
    const client = `${ft.transport}:${ft.clientAddress}:${ft.clientPort}`;
    const challenge = (status: number): { response: Buffer } => ({
      response: this.errorResponse(msg, new TurnError(status), undefined, true, [
        attr(A.Realm, Buffer.from(this.opts.realm, 'utf8')),
        attr(A.Nonce, Buffer.from(createNonce(this.opts.nonceSecret, client, this.now()), 'ascii')),
      ]),
    });
    const fail = (err: TurnError): { response: Buffer } => ({ response: this.errorResponse(msg, err, undefined, true) });
    if (!getAttribute(msg, A.MessageIntegrity)) return challenge(401);
    const u = getAttribute(msg, A.Username);
    const r = getAttribute(msg, A.Realm);
    const n = getAttribute(msg, A.Nonce);
    if (!u || !r || !n) return fail(new TurnError(400, 'Bad Request: USERNAME, REALM and NONCE required'));
    let username: string;
    let realm: string;
    let nonce: string;
    try {
      username = decodeText(u.value, 513);
      realm = decodeText(r.value);
      nonce = decodeText(n.value);
    } catch {
      return fail(new TurnError(400));
    }
    if (checkNonce(nonce, this.opts.nonceSecret, client, this.now(), this.opts.nonceTtl) !== 'valid') return challenge(438);
    if (realm !== this.opts.realm) return challenge(401);
    let key: Buffer | undefined;
    try {
      key = await this.opts.getKey(username, realm);
    } catch (e) {
      this.log.warn({ err: e }, 'getKey failed');
      return fail(new TurnError(500));
    }
    if (!key || !verifyMessageIntegrity(raw, key)) {
      this.log.debug({ username, client }, 'TURN authentication failed');
      return challenge(401);
    }
    return { username, key };
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
    if (decodeRequestedTransport(rt.value) !== PROTOCOL_UDP) throw new TurnError(442);
    const evenPort = getAttribute(msg, A.EvenPort);
    if (evenPort) decodeEvenPort(evenPort.value);
    const fam = getAttribute(msg, A.RequestedAddressFamily);
    if (fam) {
      const f = decodeRequestedAddressFamily(fam.value);
      if (f !== 0x01) throw new TurnError(440);
    }
    let lifetime = this.lifetimeFrom(msg);
    if (lifetime === 0) lifetime = this.opts.defaultLifetime;
    const relay = await this.opts.openRelay({ evenPort: evenPort !== undefined });
    if (this.stopped || this.allocations.get(ft)) {
      relay.close();
      throw new TurnError(this.stopped ? 508 : 437);
    }
    const a = new Allocation(ft, auth.username, relay, lifetime, this.now(), msg.transactionId);
    const response = this.successResponse(
      msg,
      [
        attr(A.XorRelayedAddress, encodeXorAddress(relay.relayed, msg.transactionId)),
        attr(A.Lifetime, encodeUint32(lifetime)),
        this.xorMapped(ft, msg),
      ],
      auth.key,
      true,
    );
    a.allocateResponse = response;
    this.allocations.add(a);
    this.log.debug({ username: auth.username, relay: relay.relayed, lifetime }, 'allocation created');
    return response;
  }

  private ownAllocation(ft: FiveTuple, auth: AuthOk): Allocation {
    const a = this.allocations.get(ft);
    if (!a || a.isExpired(this.now())) throw new TurnError(437);
    if (a.username !== auth.username) throw new TurnError(441);
    return a;
  }

  /** Refresh (RFC 8656 §8.2): LIFETIME 0 deletes the allocation. */
  private refresh(ft: FiveTuple, msg: StunMessage, auth: AuthOk): Buffer {
    const a = this.ownAllocation(ft, auth);
    const fam = getAttribute(msg, A.RequestedAddressFamily);
    if (fam && decodeRequestedAddressFamily(fam.value) !== 0x01) throw new TurnError(443);
    const lifetime = this.lifetimeFrom(msg);
    if (lifetime === 0) this.deleteAllocation(a, 'refresh with lifetime 0');
    else a.refresh(lifetime, this.now());
    return this.successResponse(msg, [attr(A.Lifetime, encodeUint32(lifetime))], auth.key, true);
  }

  private peerFrom(a: StunAttribute, msg: StunMessage, alloc: Allocation): TransportAddress {
    const peer = decodeXorAddress(a.value, msg.transactionId);
    if (peer.family !== alloc.relay.relayed.family) throw new TurnError(443);
    if (!isPeerAllowed(peer.address, { allowLoopbackPeers: this.opts.allowLoopbackPeers })) throw new TurnError(403, 'Forbidden: peer address not allowed');
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
    return this.successResponse(msg, [], auth.key, true);
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
    return this.successResponse(msg, [], auth.key, true);
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
    this.relayToPeer(a, peer, data.value);
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
    this.relayToPeer(a, b.peer, cd.data);
  }

  private relayToPeer(a: Allocation, peer: TransportAddress, data: Buffer): void {
    if (!isPeerAllowed(peer.address, { allowLoopbackPeers: this.opts.allowLoopbackPeers })) return;
    this.packets++;
    this.bytes += data.length;
    a.relay.send(peer, data);
  }

  private xorMapped(ft: FiveTuple, msg: StunMessage): StunAttribute {
    const family = ft.clientAddress.includes(':') ? 'IPv6' : 'IPv4';
    return attr(A.XorMappedAddress, encodeXorAddress({ family, address: ft.clientAddress, port: ft.clientPort }, msg.transactionId));
  }

  private softwareAttrs(): StunAttribute[] {
    return this.opts.software ? [attr(A.Software, Buffer.from(this.opts.software, 'utf8').subarray(0, 763))] : [];
  }

  private successResponse(req: StunMessage, attributes: StunAttribute[], key: Buffer | undefined, fingerprint: boolean): Buffer {
    return encodeStunMessage(
      { method: req.method, class: 'success', transactionId: req.transactionId, attributes: [...attributes, ...this.softwareAttrs()] },
      { integrityKey: key, fingerprint },
    );
  }

  private errorResponse(req: StunMessage, err: TurnError, key: Buffer | undefined, fingerprint: boolean, extra: StunAttribute[] = []): Buffer {
    const attributes = [attr(A.ErrorCode, encodeErrorCode(err.status, err.message)), ...extra];
    if (err.status === 420 && err.unknownAttributes.length) attributes.push(attr(A.UnknownAttributes, encodeUnknownAttributes(err.unknownAttributes)));
    return encodeStunMessage(
      { method: req.method, class: 'error', transactionId: req.transactionId, attributes: [...attributes, ...this.softwareAttrs()] },
      { integrityKey: key, fingerprint },
    );
  }
}
