/**
 * Typed loader of the TURN UDP data-plane addon (native/, built by node-gyp
 * at `npm install`). The addon owns client-facing UDP sockets and relay
 * sockets, forwards ChannelData (RFC 8656 §12) and Send/Data indications
 * (RFC 8656 §10) on its own epoll thread, and hands everything else up
 * through the callback given to its constructor.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** What to do when the addon is missing; named in start-up errors and warnings. */
export const NATIVE_FIX = 'build it with `npm run build:native` (needs g++, make and python3: apt-get install g++ make python3)';

/**
 * Counters of one data plane, since it was created. Packets are datagrams;
 * `from*Bytes` count whole datagrams received, `toPeerBytes`/`toClientBytes`
 * the application data relayed, `*Control*` what went to or came from
 * JavaScript. Every drop reason has its own counter.
 */
export interface NativeCounters {
  fromClientPackets: number;
  fromClientBytes: number;
  toPeerPackets: number;
  toPeerBytes: number;
  fromPeerPackets: number;
  fromPeerBytes: number;
  toClientPackets: number;
  toClientBytes: number;
  toControlPackets: number;
  toControlBytes: number;
  fromControlPackets: number;
  fromControlBytes: number;
  /** ChannelData or Send from a client 5-tuple without a (live) allocation, or peer data for an expired one. */
  dropNoAllocation: number;
  /** No live permission for the peer IP (RFC 8656 §9). */
  dropNoPermission: number;
  /** ChannelData on an unbound or expired channel (RFC 8656 §12.5). */
  dropNoChannel: number;
  /** Truncated ChannelData, malformed Send indication, truncated datagram. */
  dropMalformed: number;
  /** Send indication whose FINGERPRINT does not match (RFC 8489 §7.3). */
  dropBadFingerprint: number;
  /** Peer datagram too long to fit a ChannelData or Data indication. */
  dropTooBig: number;
  /** JavaScript's queue (4096 datagrams) was full. */
  dropQueueFull: number;
  /** sendmmsg/sendto refused a datagram (ICMP error, full buffer). */
  dropSendFailed: number;
  /** Open sockets (client-facing and relays). */
  sockets: number;
}

/**
 * Called on the main thread for each datagram the addon does not forward:
 * kind 0 = from a client on client socket `sock` (STUN requests, Binding,
 * anything unknown); kind 1 = from a peer on relay `sock` that is not
 * attached to a client socket of the addon. `address` is IP text (IPv4 not
 * mapped), `port` a number, `data` a copy.
 */
export type NativePacketHandler = (kind: 0 | 1, sock: number, address: string, port: number, data: Buffer) => void;

/** One data plane: an epoll thread and its sockets. Ids are positive integers. */
export interface NativeDataPlane {
  /** Binds a client-facing UDP socket (IPv6 ones are dual-stack). @throws Error naming the address and errno text. */
  listen(host: string, port: number): { id: number; port: number };
  /** Binds a relay socket exclusively; -1 when the port is in use or not permitted. @throws Error on other failures. */
  openRelay(host: string, port: number): number;
  /** Ties a relay to the client 5-tuple (client socket + client address) of its allocation; expiry in ms since the epoch. */
  attach(relay: number, clientSock: number, clientIp: string, clientPort: number, expiresAtMs: number): boolean;
  /** New allocation expiry, ms since the epoch (RFC 8656 §8). */
  setExpiry(relay: number, expiresAtMs: number): boolean;
  /** Installs/refreshes a permission for `peerIp` until `expiresAtMs`; 0 removes it (RFC 8656 §9). */
  setPermission(relay: number, peerIp: string, expiresAtMs: number): boolean;
  /** Binds/refreshes `channel` (0x4000-0x7FFF) to a peer until `expiresAtMs`; 0 removes it. @throws Error on a bad number. */
  setChannel(relay: number, channel: number, peerIp: string, peerPort: number, expiresAtMs: number): boolean;
  /** Stops using a socket at once; its fd is closed by the addon's thread shortly after. False if unknown. */
  closeSocket(sock: number): boolean;
  /** Sends one datagram from socket `sock`. False if the socket is unknown or the send failed. */
  sendTo(sock: number, ip: string, port: number, data: Buffer): boolean;
  stats(): NativeCounters;
  /** Joins the thread and closes every socket. Idempotent. */
  close(): void;
}

/** The addon module. */
export interface NativeAddon {
  DataPlane: new (onPacket: NativePacketHandler) => NativeDataPlane;
}

const here = dirname(fileURLToPath(import.meta.url));
/** Where node-gyp puts the addon, from src/turn/ or dist/turn/. */
export const NATIVE_ADDON_PATH = join(here, '..', '..', 'native', 'build', 'Release', 'rtcedge_turn.node');

/**
 * Requires the N-API addon at `path` (a built `.node` file); returns it typed as
 * `T`, or the reason it cannot load: the file is missing, or dlopen/its
 * initialisation failed (wrong ABI, missing symbol), as the error's message.
 * Never throws.
 */
export function requireAddon<T>(path: string): { addon: T } | { error: string } {
  if (!existsSync(path)) return { error: `${path} not found` };
  try {
    return { addon: createRequire(import.meta.url)(path) as T };
  } catch (e) {
    return { error: (e as Error).message };
  }
}

let cached: { addon: NativeAddon } | { error: string } | undefined;

/** Loads the addon once; returns it, or the reason it cannot load (missing file, wrong ABI, not Linux). */
export function loadNativeAddon(): { addon: NativeAddon } | { error: string } {
  cached ??= process.platform !== 'linux' ? { error: 'the native data plane needs Linux (epoll, recvmmsg)' } : requireAddon<NativeAddon>(NATIVE_ADDON_PATH);
  return cached;
}
