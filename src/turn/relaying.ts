/**
 * Relaying through an allocation (RFC 8656 §10-§12) on the TypeScript data
 * path: Send indications and ChannelData from the client go to the peer;
 * peer datagrams come back as ChannelData (channel bound) or Data
 * indications. Needs a permission for the peer and admits bytes through the
 * allocation's bandwidth cap. (The native data plane does the same in C++
 * for UDP clients; see native/.)
 */
import { randomBytes } from 'node:crypto';
import { decodeXorAddress, encodeXorAddress, type TransportAddress } from '../stun/stun-attributes.js';
import { AttributeType as A, encodeStunMessage, getAttribute, type StunMessage, StunMethod } from '../stun/stun-message.js';
import type { Allocation } from './allocation.js';
import { decodeChannelData, encodeChannelData } from './channel-data.js';
import { isDatagramTransport } from './five-tuple.js';
import { attr } from './turn-response.js';

/** Counters of relayed and dropped data; payload bytes. */
export interface RelayCounters {
  /** Both directions. */
  packetsRelayed: number;
  bytesRelayed: number;
  /** Client to peer (Send indications, ChannelData from the client). */
  toPeerPackets: number;
  toPeerBytes: number;
  /** Peer to client (Data indications, ChannelData to the client). */
  toClientPackets: number;
  toClientBytes: number;
  /** Dropped by the per-allocation bandwidth cap. */
  packetsDropped: number;
  bytesDropped: number;
}

/** What relaying needs from the control plane. */
export interface RelayContext {
  readonly counters: RelayCounters;
  /** Per-allocation cap, bytes/s of payload both ways; 0 = none. */
  readonly bandwidthLimitBytesPerS: number;
  /** The peer permission policy (PermissionHandler): may a relay talk to IP `address`? */
  peerAllowed(address: string): boolean;
}

/** A zeroed counter object. */
export function newRelayCounters(): RelayCounters {
  return { packetsRelayed: 0, bytesRelayed: 0, toPeerPackets: 0, toPeerBytes: 0, toClientPackets: 0, toClientBytes: 0, packetsDropped: 0, bytesDropped: 0 };
}

/** Bandwidth cap of one allocation; counts drops. */
function admit(ctx: RelayContext, a: Allocation, bytes: number, nowMs: number): boolean {
  if (a.admitBytes(bytes, ctx.bandwidthLimitBytesPerS, nowMs)) return true;
  ctx.counters.packetsDropped++;
  ctx.counters.bytesDropped += bytes;
  return false;
}

function relayToPeer(ctx: RelayContext, a: Allocation, peer: TransportAddress, data: Buffer, nowMs: number): void {
  const relay = a.relayFor(peer.family);
  if (!relay || !ctx.peerAllowed(peer.address)) return;
  if (!admit(ctx, a, data.length, nowMs)) return;
  const c = ctx.counters;
  c.packetsRelayed++;
  c.bytesRelayed += data.length;
  c.toPeerPackets++;
  c.toPeerBytes += data.length;
  relay.send(peer, data);
}

/** Send indication (RFC 8656 §10.2): relays DATA to XOR-PEER-ADDRESS if permitted; otherwise silently dropped. */
export function relaySendIndication(ctx: RelayContext, a: Allocation, msg: StunMessage, nowMs: number): void {
  if (a.isExpired(nowMs)) return;
  const pa = getAttribute(msg, A.XorPeerAddress);
  const data = getAttribute(msg, A.Data);
  if (!pa || !data) return;
  let peer: TransportAddress;
  try {
    peer = decodeXorAddress(pa.value, msg.transactionId);
  } catch {
    return;
  }
  if (!a.permissions.has(peer.address, nowMs)) return;
  relayToPeer(ctx, a, peer, data.value, nowMs);
}

/** ChannelData from the client (RFC 8656 §12.5): relays to the bound peer; unbound channels and malformed frames are dropped. */
export function relayClientChannelData(ctx: RelayContext, a: Allocation, buf: Buffer, nowMs: number): void {
  let cd;
  try {
    cd = decodeChannelData(buf);
  } catch {
    return;
  }
  if (a.isExpired(nowMs)) return;
  const b = a.channels.getByChannel(cd.channel, nowMs);
  if (!b || !a.permissions.has(b.peer.address, nowMs)) return;
  relayToPeer(ctx, a, b.peer, cd.data, nowMs);
}

/**
 * A datagram from `peer` on the allocation's relayed address (RFC 8656
 * §10.3, §12.6): with a permission, the ChannelData (channel bound; padded
 * over TCP/TLS, RFC 8656 §12.5) or Data indication for the client; else undefined (also when
 * the bandwidth cap drops it or it cannot fit a STUN message).
 */
export function peerToClient(ctx: RelayContext, a: Allocation, peer: TransportAddress, data: Buffer, nowMs: number): Buffer | undefined {
  if (a.isExpired(nowMs) || !a.permissions.has(peer.address, nowMs)) return undefined;
  if (data.length > 0xffff - 64) return undefined;
  if (!admit(ctx, a, data.length, nowMs)) return undefined;
  const ch = a.channels.getByPeer(peer.address, peer.port, nowMs);
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
  const c = ctx.counters;
  c.packetsRelayed++;
  c.bytesRelayed += data.length;
  c.toClientPackets++;
  c.toClientBytes += data.length;
  return out;
}
