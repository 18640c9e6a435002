/**
 * Batched sends of SIP datagrams (RFC 3261 §18.1.1, §18.2.2 over UDP): the
 * datagrams one event-loop turn sends from a listening socket are queued and
 * leave together in one `sendmmsg` system call, made by the native addon
 * (native/src/udp_send.cc) on the dgram socket's own descriptor, instead of
 * one `uv_udp_send`, one callback and one system call each.
 *
 * Without the addon (not built, not Linux) or with `sip.udp_send: dgram`,
 * the transport keeps node:dgram's `send`; so does a socket whose descriptor
 * is not reachable.
 */
import type dgram from 'node:dgram';
import { getSystemErrorName } from 'node:util';
import { loadNativeAddon, NATIVE_FIX } from '../turn/native-addon.js';

/** Most datagrams queued on one socket in one turn; one more sends the queue at once (the addon's own limit). */
export const UDP_BATCH_DATAGRAMS = 64;
/** Most bytes queued on one socket in one turn; past it the queue is sent at once. */
export const UDP_BATCH_BYTES = 256 * 1024;
/** Most destination addresses whose sockaddr is kept (the cache is emptied when it is full). */
export const SOCKADDR_CACHE_ENTRIES = 4096;

/** The part of the native addon this module calls (native/README.md). */
export interface UdpSendAddon {
  /** A sockaddr_in (16 bytes) or sockaddr_in6 (28 bytes) with port 0 for IP text `ip`; null when it is not an IP literal. */
  sockaddrFor(ip: string): Buffer | null;
  /**
   * Sends `datagrams[i]` to `sockaddrs[i]`, port `ports[i]`, for i < count (at most 64) on descriptor `fd`
   * with sendmmsg. Sets `errors[i]` to the errno of a datagram the kernel refused (the batch goes on);
   * stops at EAGAIN, ENOBUFS, EBADF or ENOTSOCK. Returns how many datagrams it handled (sent or refused).
   * @throws TypeError on arguments of the wrong type.
   */
  sendBatch(fd: number, datagrams: Buffer[], sockaddrs: Buffer[], ports: Int32Array, count: number, errors: Int32Array): number;
}

/**
 * The addon's batched send, or why it cannot be used.
 * @param requested 'native' (fail when unavailable), 'dgram' (never), undefined (native when it loads).
 * @throws Error naming the fix when 'native' is requested and the addon cannot load.
 */
export function chooseUdpSend(requested: 'native' | 'dgram' | undefined): { addon: UdpSendAddon } | { reason: string } {
  if (requested === 'dgram') return { reason: 'sip.udp_send is dgram' };
  const loaded = loadNativeAddon();
  const addon = 'error' in loaded ? undefined : (loaded.addon as unknown as Partial<UdpSendAddon>);
  if (typeof addon?.sendBatch === 'function' && typeof addon.sockaddrFor === 'function') return { addon: addon as UdpSendAddon };
  const reason = 'error' in loaded ? loaded.error : 'the native addon predates sendBatch (rebuild it)';
  if (requested === 'native') throw new Error(`sip.udp_send is native but the native addon cannot be used (${reason}); ${NATIVE_FIX}, or set sip.udp_send: dgram`);
  return { reason };
}

/** IP text → its sockaddr with port 0 (null: not an IP literal, sent by dgram after a lookup). Shared by every socket. */
const sockaddrs = new Map<string, Buffer | null>();

/** Destination addresses whose sockaddr is kept now, 0 ≤ n ≤ {@link SOCKADDR_CACHE_ENTRIES}. */
export function sockaddrCacheSize(): number {
  return sockaddrs.size;
}

function sockaddrOf(addon: UdpSendAddon, address: string): Buffer | null {
  let sa = sockaddrs.get(address);
  if (sa === undefined) {
    if (sockaddrs.size >= SOCKADDR_CACHE_ENTRIES) sockaddrs.clear();
    sa = addon.sockaddrFor(address);
    sockaddrs.set(address, sa);
  }
  return sa;
}

/** The libuv UDP handle of a dgram socket (its descriptor, receive start/stop), or undefined. */
export function udpHandleOf(socket: dgram.Socket): { fd?: unknown; recvStop?: () => number } | undefined {
  // dgram keeps its handle under a symbol; the public `_handle` getter is deprecated (DEP0112).
  const key = Object.getOwnPropertySymbols(socket).find((s) => s.description === 'state symbol');
  const state = key ? (socket as unknown as Record<symbol, { handle?: { fd?: unknown; recvStop?: () => number } } | undefined>)[key] : undefined;
  return state?.handle;
}

/** The descriptor of a bound dgram socket (its libuv handle's, also in a cluster worker sharing the primary's socket), or undefined. */
export function udpDescriptorOf(socket: dgram.Socket): number | undefined {
  const fd = udpHandleOf(socket)?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

/** Told of a datagram that could not be sent: errno name (EMSGSIZE...) or error message, destination. */
export type UdpSendFailure = (err: string, address: string, port: number) => void;

function endTurn(batch: UdpSendBatch): void {
  batch.flush();
}

/**
 * The send queue of one UDP listening socket. {@link send} queues a datagram;
 * the queue leaves at the end of the turn (setImmediate: after every
 * datagram libuv read in this poll has been handled) or at once past
 * {@link UDP_BATCH_DATAGRAMS} datagrams or {@link UDP_BATCH_BYTES} bytes.
 * What the kernel does not take (socket buffer full) goes through dgram's
 * `send`, which waits for the socket to be writable; while dgram holds
 * datagrams, later ones go the same way, so datagrams leave in the order
 * they were sent. A datagram refused by the kernel is reported to `onFailure`
 * and the others still leave; nothing throws.
 *
 * State: the queued datagrams (bounded as above) and whether the end-of-turn
 * flush is scheduled. {@link close} sends what waits; after it, sends go to dgram.
 */
export class UdpSendBatch {
  private readonly datagrams: Buffer[] = [];
  private readonly sockaddrs: Buffer[] = [];
  private readonly addresses: string[] = [];
  private readonly ports = new Int32Array(UDP_BATCH_DATAGRAMS);
  private readonly errors = new Int32Array(UDP_BATCH_DATAGRAMS);
  private bytes = 0;
  private scheduled = false;
  private closed = false;
  /** Counts since creation: datagrams sent by sendmmsg, sendmmsg calls, datagrams left to dgram. */
  readonly counters = { batched: 0, calls: 0, viaDgram: 0 };

  /**
   * @param socket a bound dgram socket; `fd` its descriptor ({@link udpDescriptorOf}).
   * @param onFailure called for each datagram that could not be sent.
   */
  constructor(
    private readonly socket: dgram.Socket,
    private readonly fd: number,
    private readonly addon: UdpSendAddon,
    private readonly onFailure: UdpSendFailure,
  ) {
    // Closed without close() first: the descriptor is gone (and may be reused), so nothing more goes through it.
    socket.once('close', () => {
      this.closed = true;
      this.flush();
    });
  }

  /** Queue `data` (one datagram, ≤ 65,507 bytes) for `address` (IP text without brackets, or a host name) and `port`. */
  send(data: Buffer, port: number, address: string): void {
    const sa = this.closed ? null : sockaddrOf(this.addon, address);
    if (sa === null) {
      // A host name (dgram looks it up) or a closed socket (dgram throws as it always has).
      this.flush();
      this.viaDgram(data, port, address);
      return;
    }
    const i = this.datagrams.length;
    this.datagrams.push(data);
    this.sockaddrs.push(sa);
    this.addresses.push(address);
    this.ports[i] = port;
    this.bytes += data.length;
    if (i + 1 >= UDP_BATCH_DATAGRAMS || this.bytes >= UDP_BATCH_BYTES) this.flush();
    else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(endTurn, this);
    }
  }

  /** Send what is queued now (one sendmmsg, or dgram for what the kernel did not take). */
  flush(): void {
    this.scheduled = false;
    const count = this.datagrams.length;
    if (count === 0) return;
    let handled = 0;
    // dgram still holds datagrams (a full socket buffer earlier): these queue behind them to keep the order.
    if (!this.closed && this.socket.getSendQueueCount() === 0) {
      handled = this.addon.sendBatch(this.fd, this.datagrams, this.sockaddrs, this.ports, count, this.errors);
      this.counters.calls++;
      for (let i = 0; i < handled; i++) {
        if (this.errors[i] === 0) this.counters.batched++;
        else this.onFailure(getSystemErrorName(-this.errors[i]), this.addresses[i], this.ports[i]);
      }
    }
    for (let i = handled; i < count; i++) this.viaDgram(this.datagrams[i], this.ports[i], this.addresses[i]);
    this.datagrams.length = 0;
    this.sockaddrs.length = 0;
    this.addresses.length = 0;
    this.bytes = 0;
  }

  /** Send what waits; later sends go through dgram (the descriptor may be closed and reused). Idempotent. */
  close(): void {
    if (this.closed) return;
    this.flush();
    this.closed = true;
  }

  private viaDgram(data: Buffer, port: number, address: string): void {
    this.counters.viaDgram++;
    try {
      this.socket.send(data, port, address, (err) => {
        if (err) this.onFailure(err.message, address, port);
      });
    } catch (err) {
      this.onFailure((err as Error).message, address, port);
    }
  }
}
