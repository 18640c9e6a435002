/**
 * Allocations (RFC 8656 §2.2, §7): one relayed transport address per client
 * 5-tuple, owned by one username, with a time-to-expiry, permissions and
 * channel bindings. Pure state: relay sockets live behind RelayHandle.
 */
import { ChannelTable } from './channel-binding.js';
import { type FiveTuple, fiveTupleKey } from './five-tuple.js';
import { PermissionTable } from './permission.js';
import type { TransportAddress } from '../stun/stun-attributes.js';

/**
 * The I/O side of a relayed transport address: a UDP socket bound to it.
 * Implemented by the server (node:dgram now, a native addon later).
 */
export interface RelayHandle {
  /** The relayed transport address (XOR-RELAYED-ADDRESS). */
  readonly relayed: TransportAddress;
  /** Sends one UDP datagram from the relayed address to `peer`. Never throws. */
  send(peer: TransportAddress, data: Buffer): void;
  /** Releases the socket and its port. Idempotent. */
  close(): void;
  /** Present when a data plane forwards this relay's traffic on its own (native/): it is told the allocation's state. */
  readonly mirror?: RelayMirror;
}

/**
 * Receives the state of one allocation so that a data plane can forward
 * ChannelData and Send/Data indications without the control plane. Times
 * are ms on the control plane's clock; an expiry of 0 means removed.
 */
export interface RelayMirror {
  /** The allocation of client 5-tuple `fiveTuple` now owns this relay, until `expiresAtMs`. */
  attach(fiveTuple: FiveTuple, expiresAtMs: number): void;
  /** The allocation was refreshed (RFC 8656 §8). */
  expiry(expiresAtMs: number): void;
  /** Permission for `peerIp` installed or refreshed until `expiresAtMs`, or removed (0) (RFC 8656 §9). */
  permission(peerIp: string, expiresAtMs: number): void;
  /** Channel bound or refreshed until `expiresAtMs`, or forgotten (0) (RFC 8656 §12). */
  channel(channel: number, peer: TransportAddress, expiresAtMs: number): void;
}

/** Key of a relayed transport address in maps: "ip|port". */
export function relayKey(addr: { address: string; port: number }): string {
  return `${addr.address}|${addr.port}`;
}

/** One allocation. Times are ms on the control plane's clock. */
export class Allocation {
  readonly permissions: PermissionTable;
  readonly channels: ChannelTable;
  /** Time-to-expiry deadline, ms. */
  expiresAtMs: number;
  /** Every relayed transport address: `relay` first, then an IPv6 one of a dual allocation (RFC 8656 §7.2). */
  readonly relays: RelayHandle[];
  /** Name quotas are counted under (the user part of a REST API name, else the username). */
  quotaUser: string;
  /** Bandwidth cap state: tokens (bytes) and last refill, ms. */
  private tokens = 0;
  private lastRefill = 0;

  /**
   * @param fiveTuple client 5-tuple that owns it.
   * @param username USERNAME that created it; later requests must use the same (else 441).
   * @param relay the (first) relayed transport address and its socket.
   * @param lifetimeS initial lifetime, s.
   * @param allocateTransactionId transaction id of the Allocate that created it (retransmissions get `allocateResponse`).
   * @param allocateResponse the success response bytes sent for that Allocate.
   * @param extraRelays further relayed transport addresses (the IPv6 one of a dual allocation).
   */
  constructor(
    readonly fiveTuple: FiveTuple,
    readonly username: string,
    readonly relay: RelayHandle,
    lifetimeS: number,
    nowMs: number,
    readonly allocateTransactionId: Buffer,
    public allocateResponse: Buffer | undefined = undefined,
    extraRelays: RelayHandle[] = [],
  ) {
    this.relays = [relay, ...extraRelays];
    this.quotaUser = username;
    const familyOf = (ip: string) => (ip.includes(':') ? 'IPv6' : 'IPv4');
    const mirrors = (family: string) => this.relays.filter((r) => r.mirror && r.relayed.family === family).map((r) => r.mirror!);
    const anyMirror = this.relays.some((r) => r.mirror);
    this.permissions = new PermissionTable(anyMirror ? (ip, e) => mirrors(familyOf(ip)).forEach((m) => m.permission(ip, e)) : undefined);
    this.channels = new ChannelTable(anyMirror ? (b, e) => mirrors(b.peer.family).forEach((m) => m.channel(b.channel, b.peer, e)) : undefined);
    this.expiresAtMs = nowMs + lifetimeS * 1000;
    for (const r of this.relays) r.mirror?.attach(fiveTuple, this.expiresAtMs);
  }

  /** The relay whose relayed transport address has `family`, if any (RFC 8656 §9.2: else 443). */
  relayFor(family: string): RelayHandle | undefined {
    return this.relays.find((r) => r.relayed.family === family);
  }

  /**
   * Spends `bytes` of a per-allocation bandwidth cap of `bytesPerSecond`
   * (token bucket holding at most one second's worth). Returns false when the
   * packet exceeds the cap and must be dropped. A cap of 0 admits everything.
   */
  admitBytes(bytes: number, bytesPerSecond: number, nowMs: number): boolean {
    if (bytesPerSecond <= 0) return true;
    if (this.lastRefill === 0) this.tokens = bytesPerSecond;
    else this.tokens = Math.min(bytesPerSecond, this.tokens + ((nowMs - this.lastRefill) * bytesPerSecond) / 1000);
    this.lastRefill = nowMs;
    if (this.tokens < bytes) return false;
    this.tokens -= bytes;
    return true;
  }

  /** Sets the time-to-expiry to now + `lifetimeS` seconds (RFC 8656 §8). */
  refresh(lifetimeS: number, nowMs: number): void {
    this.expiresAtMs = nowMs + lifetimeS * 1000;
    for (const r of this.relays) r.mirror?.expiry(this.expiresAtMs);
  }

  /** Closes every relay socket of the allocation. */
  closeRelays(): void {
    for (const r of this.relays) r.close();
  }

  /** True once the time-to-expiry has passed. */
  isExpired(nowMs: number): boolean {
    return this.expiresAtMs <= nowMs;
  }
}

/** All allocations of a server, indexed by client 5-tuple and by relayed transport address. */
export class AllocationTable {
  private readonly byFiveTuple = new Map<string, Allocation>();
  private readonly byRelay = new Map<string, Allocation>();

  /** Adds `a`. @throws Error if its 5-tuple or relayed address is already in use (a caller bug). */
  add(a: Allocation): void {
    const fk = fiveTupleKey(a.fiveTuple);
    const rks = a.relays.map((r) => relayKey(r.relayed));
    if (this.byFiveTuple.has(fk) || rks.some((rk) => this.byRelay.has(rk))) throw new Error(`allocation already exists for ${fk} / ${rks.join(',')}`);
    this.byFiveTuple.set(fk, a);
    for (const rk of rks) this.byRelay.set(rk, a);
  }

  /** Removes `a` (does not close its relay). Returns true if it was present. */
  remove(a: Allocation): boolean {
    const fk = fiveTupleKey(a.fiveTuple);
    if (this.byFiveTuple.get(fk) !== a) return false;
    this.byFiveTuple.delete(fk);
    for (const r of a.relays) this.byRelay.delete(relayKey(r.relayed));
    return true;
  }

  /** The allocation of a 5-tuple, if any (expired ones included until swept). */
  get(t: FiveTuple): Allocation | undefined {
    return this.byFiveTuple.get(fiveTupleKey(t));
  }

  /** The allocation owning relayed address `addr`, if any. */
  getByRelay(addr: { address: string; port: number }): Allocation | undefined {
    return this.byRelay.get(relayKey(addr));
  }

  /** Removes and returns every allocation whose lifetime has passed; sweeps permissions and channels of the others. */
  sweep(nowMs: number): Allocation[] {
    const gone: Allocation[] = [];
    for (const a of this.byFiveTuple.values()) {
      if (a.isExpired(nowMs)) gone.push(a);
      else {
        a.permissions.sweep(nowMs);
        a.channels.sweep(nowMs);
      }
    }
    for (const a of gone) this.remove(a);
    return gone;
  }

  /** Permissions and channel bindings stored over all allocations (expired ones until the next sweep, at most 1 s later). */
  bindingCounts(): { permissions: number; channels: number } {
    let permissions = 0;
    let channels = 0;
    for (const a of this.byFiveTuple.values()) {
      permissions += a.permissions.size;
      channels += a.channels.size;
    }
    return { permissions, channels };
  }

  /** Every allocation. */
  all(): Allocation[] {
    return [...this.byFiveTuple.values()];
  }

  /** Number of allocations. */
  get size(): number {
    return this.byFiveTuple.size;
  }
}
