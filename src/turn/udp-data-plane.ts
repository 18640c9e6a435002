/**
 * The UDP data plane of the TURN server: client-facing UDP listeners and UDP
 * relay sockets. Two implementations, chosen here and only here:
 * - 'native' (native-data-plane.ts, the C++ addon in native/): ChannelData
 *   and Send/Data indications of UDP clients never enter JavaScript;
 * - 'typescript' (dgram-data-plane.ts, node:dgram): everything goes through
 *   the control plane; the only one that enforces a bandwidth cap.
 * Both hand STUN requests and the peer data they do not forward themselves
 * to the same handlers, so the control plane cannot tell them apart.
 */
import type { Logger } from '../log.js';
import type { TransportAddress } from '../stun/stun-attributes.js';
import type { RelayHandle } from './allocation.js';
import { DgramUdpDataPlane } from './dgram-data-plane.js';
import type { FiveTuple } from './five-tuple.js';
import { loadNativeAddon, NATIVE_FIX, type NativeCounters } from './native-addon.js';
import { NativeUdpDataPlane } from './native-data-plane.js';

/** What a UDP data plane hands up to the server. */
export interface UdpDataPlaneHandlers {
  /** A datagram from a UDP client that the data plane does not forward itself; `reply` sends on the same 5-tuple. */
  onClientPacket(ft: FiveTuple, data: Buffer, reply: (resp: Buffer) => void): void;
  /** A datagram from `peer` on relay `relayed` that the data plane does not forward itself. */
  onPeerPacket(relayed: TransportAddress, peer: TransportAddress, data: Buffer): void;
}

/** UDP listeners and relays of one TurnServer. */
export interface UdpDataPlane {
  /** Which implementation this is. */
  readonly kind: 'native' | 'typescript';
  /** Binds a client-facing UDP listener; resolves with the bound address and port. Rejects with an Error naming the cause. */
  listen(host: string, port: number): Promise<{ address: string; port: number }>;
  /**
   * Binds a relay socket on exactly `address`:`port`; resolves undefined when
   * that port cannot be bound. `onClose` runs once when the handle has closed.
   */
  openRelay(address: string, port: number, onClose: () => void): Promise<RelayHandle | undefined>;
  /** Sends `data` to UDP client 5-tuple `ft` through its listener. False when there is no such listener. */
  sendToClient(ft: FiveTuple, data: Buffer): boolean;
  /** Counters of the native addon; undefined for the TypeScript plane (its traffic is counted by the control plane). */
  stats(): NativeCounters | undefined;
  /** Closes every listener and relay; resolves when they are closed. Idempotent. */
  close(): Promise<void>;
}

/** Which data plane to run: `turn.data_plane`, and whether a bandwidth cap is configured. */
export interface DataPlaneChoice {
  /** 'native', 'typescript', or undefined = native when the addon loads and no bandwidth cap is set. */
  requested?: 'native' | 'typescript';
  /** A per-allocation bandwidth cap is set (only the TypeScript plane enforces it). */
  bandwidthCapped: boolean;
}

/**
 * Decides which UDP data plane runs (the one place that decides it).
 * @returns 'native' or 'typescript'; logs a warning when native was wanted by default but cannot load.
 * @throws Error when 'native' is requested and the addon cannot load (the message names the fix), or
 *   together with a bandwidth cap.
 */
export function chooseUdpDataPlane(choice: DataPlaneChoice, log: Logger): 'native' | 'typescript' {
  if (choice.requested === 'typescript') return 'typescript';
  if (choice.bandwidthCapped) {
    if (choice.requested === 'native') throw new Error('turn.bandwidth_limit is enforced by the typescript data plane only: set turn.data_plane: typescript or leave it unset');
    return 'typescript';
  }
  const loaded = loadNativeAddon();
  if (!('error' in loaded)) return 'native';
  if (choice.requested === 'native') {
    throw new Error(`turn.data_plane is native but the native addon cannot load (${loaded.error}); ${NATIVE_FIX}, or set turn.data_plane: typescript`);
  }
  log.warn({ reason: loaded.error }, `TURN native data plane unavailable, using the TypeScript data path; ${NATIVE_FIX}`);
  return 'typescript';
}

/** Creates the data plane `kind` (from chooseUdpDataPlane). @throws Error when 'native' and the addon cannot load. */
export function createUdpDataPlane(kind: 'native' | 'typescript', handlers: UdpDataPlaneHandlers, logger: Logger): UdpDataPlane {
  if (kind === 'typescript') return new DgramUdpDataPlane(handlers, logger);
  const loaded = loadNativeAddon();
  if ('error' in loaded) throw new Error(`native addon: ${loaded.error}`);
  return new NativeUdpDataPlane(loaded.addon, handlers, logger);
}
