/**
 * UDP datagrams steered to their Call-ID's SIP worker by the kernel
 * (`sip.udp_steering`, docs/ARCHITECTURE.md "Workers", Sockets and Dispatch).
 *
 * For each UDP listener the primary makes one SO_REUSEPORT socket per worker,
 * bound in worker order (socket i of the kernel's reuseport group is worker
 * i's), attaches the native addon's eBPF program (native/src/udp_steer.cc:
 * FNV-1a of the Call-ID value modulo the number of workers, the same answer as
 * transport/call-id-owner.ts) to the group, and hands socket i to worker i
 * over the IPC channel. The primary keeps its copy of every socket open and
 * never reads it (receiving stopped), so a worker that exits leaves its socket
 * in the group at the same index: the group's order never changes while the
 * primary runs, datagrams for a restarting worker wait in its socket's
 * receive buffer, and the restarted worker gets the same socket again. Where
 * the program gives up (no Call-ID in the first 2048 bytes, keepalives) the
 * kernel picks a socket by its 4-tuple hash and the transport hands the
 * message to its owner over the mesh, as it does without steering: a wrong
 * pick costs a hand-off, never correctness.
 *
 * Off (`sip.udp_steering: off`), or when the program cannot be loaded (not
 * root and no CAP_BPF, a kernel without bounded loops or
 * SO_ATTACH_REUSEPORT_EBPF, not Linux, the addon not built), the workers share
 * one socket through node:cluster as before; one info line names why.
 */
import dgram from 'node:dgram';
import type { Logger } from '../log.js';
import { loadNativeAddon } from '../turn/native-addon.js';
import { udpDescriptorOf, udpHandleOf } from '../transport/udp-send-batch.js';
import { udpListenKey } from '../transport/transport-layer.js';

/** The part of the native addon that steers datagrams (native/README.md, udp_steer.cc). */
export interface UdpSteerAddon {
  /**
   * A non-blocking UDP socket with SO_REUSEPORT bound to `ip`:`port` (IPV6_V6ONLY when `ipv6Only`); its descriptor.
   * `firstOfGroup` (port not 0): the port must be free first, so another process's group is never joined.
   * @throws Error with `errno` when it cannot be made or bound (EADDRINUSE...); TypeError when `ip` is not an IP literal.
   */
  reuseportUdpSocket(ip: string, port: number, ipv6Only: boolean, firstOfGroup: boolean): number;
  /**
   * Loads the Call-ID program for `workers` (1..1024) sockets with bpf(2); its descriptor.
   * @throws Error with `errno` (and the verifier's log when it refused the program).
   */
  loadCallIdProgram(workers: number): number;
  /** Attaches a program to the reuseport group of a socket (SO_ATTACH_REUSEPORT_EBPF). @throws Error with `errno`. */
  attachReuseportProgram(socketFd: number, programFd: number): void;
  /** The program's answer for a UDP payload (BPF_PROG_TEST_RUN): a socket index, or {@link STEERING_GAVE_UP}. @throws Error with `errno`. */
  runCallIdProgram(programFd: number, payload: Buffer): number;
  /** Closes a descriptor the addon returned. */
  closeDescriptor(fd: number): void;
  /** Bytes of a payload the program scans at most (2048). */
  callIdScanBytes: number;
}

/** The program's answer when it leaves the pick to the kernel (an index past any group). */
export const STEERING_GAVE_UP = 0xffffffff;

/** The addon's steering functions, or why they cannot be used (not built, not Linux, built before them). */
export function loadUdpSteerAddon(): { addon: UdpSteerAddon } | { reason: string } {
  const loaded = loadNativeAddon();
  if ('error' in loaded) return { reason: loaded.error };
  const addon = loaded.addon as unknown as Partial<UdpSteerAddon>;
  if (typeof addon.loadCallIdProgram !== 'function' || typeof addon.reuseportUdpSocket !== 'function') return { reason: 'the native addon predates UDP steering (rebuild it)' };
  return { addon: addon as UdpSteerAddon };
}

/** The steered sockets of one configured UDP listener: socket i is worker i's. */
export interface SteeredUdpListener {
  /** {@link udpListenKey} of the configured listener. */
  key: string;
  sockets: dgram.Socket[];
}

/** Steering as set up by {@link startUdpSteering}: the listeners it covers; `close()` closes the primary's sockets. */
export interface UdpSteering {
  listeners: SteeredUdpListener[];
  close(): void;
}

/** A configured SIP listener (the fields steering reads). */
interface ListenerSpec {
  transport: string;
  host: string;
  port: number;
}

/**
 * Sets up steering for every UDP listener of `listen` with `workers` workers,
 * or returns undefined (one info line naming why) when it is off or cannot be
 * used. A listener whose sockets cannot be bound (IPv6 unavailable, port in
 * use) is left out with an info line; the workers then bind it as before and
 * report what fails. Throws nothing.
 */
export function startUdpSteering(setting: 'auto' | 'off', workers: number, listen: readonly ListenerSpec[], logger: Logger): UdpSteering | undefined {
  const log = logger.child({ component: 'udp-steering' });
  const off = (reason: string): undefined => {
    log.info({ reason }, "SIP UDP not steered by Call-ID: the workers share each UDP socket and hand messages to their Call-ID's owner");
    return undefined;
  };
  const specs = listen.filter((l) => l.transport === 'udp');
  if (setting === 'off') return off('sip.udp_steering is off');
  if (workers < 2) return off('one SIP worker');
  if (specs.length === 0) return undefined;
  if (process.platform !== 'linux') return off('needs Linux (eBPF reuseport program)');
  const loaded = loadUdpSteerAddon();
  if ('reason' in loaded) return off(loaded.reason);
  const { addon } = loaded;
  let program: number;
  try {
    program = addon.loadCallIdProgram(workers);
  } catch (err) {
    return off(`the eBPF program cannot be loaded: ${(err as Error).message.slice(0, 2000)}`);
  }
  const listeners: SteeredUdpListener[] = [];
  try {
    for (const spec of specs) {
      try {
        listeners.push({ key: udpListenKey(spec.host, spec.port), sockets: bindGroup(addon, spec, workers, program, log) });
      } catch (err) {
        log.info({ listen: udpListenKey(spec.host, spec.port), err: (err as Error).message }, 'SIP UDP listener not steered: its workers share one socket');
      }
    }
  } finally {
    addon.closeDescriptor(program);
  }
  if (listeners.length === 0) return undefined;
  log.info({ workers, listeners: listeners.map((l) => l.key) }, "SIP UDP datagrams steered to their Call-ID's worker by the kernel (one SO_REUSEPORT socket per worker, eBPF)");
  return {
    listeners,
    close() {
      for (const l of listeners) for (const s of l.sockets) s.close();
      listeners.length = 0;
    },
  };
}

/**
 * The `workers` sockets of one listener, bound in worker order on one port
 * (the first one's when the configured port is 0), the program attached.
 * @throws Error when a socket cannot be bound or the program attached (what was bound is closed).
 */
function bindGroup(addon: UdpSteerAddon, spec: ListenerSpec, workers: number, program: number, log: Logger): dgram.Socket[] {
  const host = spec.host.replace(/^\[|\]$/g, '');
  const v6 = host.includes(':');
  const sockets: dgram.Socket[] = [];
  try {
    let port = spec.port;
    for (let i = 0; i < workers; i++) {
      const fd = addon.reuseportUdpSocket(host, port, v6, i === 0);
      const socket = dgram.createSocket(v6 ? 'udp6' : 'udp4');
      socket.on('error', (err) => log.warn({ err: err.message }, 'steered UDP socket error'));
      socket.bind({ fd });
      sockets.push(socket);
      // The worker reads it; this copy only keeps the socket (and its index in the group) alive.
      const handle = udpHandleOf(socket);
      if (typeof handle?.recvStop !== 'function') throw new Error('the dgram handle cannot stop receiving');
      handle.recvStop();
      port = socket.address().port;
    }
    addon.attachReuseportProgram(udpDescriptorOf(sockets[0]!)!, program);
    return sockets;
  } catch (err) {
    for (const s of sockets) s.close();
    throw err;
  }
}
