/**
 * A TURN-over-DTLS listener (RFC 7350; RFC 8656 §3.1): one UDP socket whose
 * datagrams go through the DTLS engine of the native addon (dtls-addon.ts).
 * Decrypted datagrams (STUN requests and indications, ChannelData) go to the
 * control plane as packets of a "dtls" 5-tuple; what the server sends to
 * that 5-tuple is encrypted by the engine on the way out. When a session
 * ends (close_notify, alert, idle timeout), its allocation goes with it, as
 * for a closed TLS connection; so does an established session that a new
 * client on the same 5-tuple replaces after a cookie exchange (RFC 6347 §4.2.8).
 */
import dgram from 'node:dgram';
import type { Logger } from '../log.js';
import { type DtlsAddon, type DtlsCounters, type DtlsEngine, type DtlsEngineOptions, loadDtlsAddon } from './dtls-addon.js';
import type { FiveTuple } from './five-tuple.js';
import { unmapIPv4 } from '../security/ip-address.js';
import { NATIVE_FIX } from './native-addon.js';

/** What a DTLS listener hands to the server. */
export interface DtlsListenerHandlers {
  /** One decrypted datagram of `ft`; `reply` encrypts and sends on the same session. */
  onClientPacket(ft: FiveTuple, data: Buffer, reply: (resp: Buffer) => void): void;
  /** The session of `ft` ended (close_notify, fatal alert, idle or handshake timeout, replaced by a new client on the 5-tuple). */
  onSessionClosed(ft: FiveTuple): void;
}

/** How often handshake retransmission timers, handshake timeouts and idle sessions are checked, ms. */
const TICK_MS = 250;
/** Socket receive and send buffers, bytes (as the native data plane's client sockets; the kernel caps them at rmem_max/wmem_max). */
const SOCKET_BUFFER_BYTES = 4 << 20;

/** Map key of a DTLS listener: its bound "address|port" (also derivable from a dtls 5-tuple's server side). */
export function dtlsListenerKey(address: string, port: number): string {
  return `${address}|${port}`;
}

/** One DTLS listener: a UDP socket, an engine and its timer. */
export class DtlsListener {
  private readonly engine: DtlsEngine;
  private readonly log: Logger;
  private sock: dgram.Socket | undefined;
  private timer: NodeJS.Timeout | undefined;
  private bound: { address: string; port: number } | undefined;

  /** @throws Error when the engine refuses the certificate, key or PSK list (the message names the OpenSSL error). */
  constructor(addon: DtlsAddon, engine: DtlsEngineOptions, private readonly handlers: DtlsListenerHandlers, logger: Logger) {
    this.engine = new addon.DtlsServer(engine);
    this.log = logger.child({ component: 'turn-dtls' });
  }

  /**
   * New DTLS sessions present this certificate chain and key (PEM); open
   * sessions and their allocations keep going (a renewal, `rtcedge reload`).
   * @throws Error naming the OpenSSL error; the old certificate then stays in use.
   */
  setCertificate(cert: Buffer | string, key: Buffer | string): void {
    this.engine.setCertificate(cert, key);
  }

  /** Binds `host`:`port` (0: any free port); resolves with the bound address. Rejects with an Error naming the address. */
  listen(host: string, port: number): Promise<{ address: string; port: number }> {
    return new Promise((resolve, reject) => {
      const sock = dgram.createSocket({ type: host.includes(':') ? 'udp6' : 'udp4', recvBufferSize: SOCKET_BUFFER_BYTES, sendBufferSize: SOCKET_BUFFER_BYTES });
      const onError = (err: Error) => {
        sock.close();
        this.engine.destroy();
        reject(new Error(`TURN dtls listener ${host}:${port} cannot bind: ${err.message}`));
      };
      sock.once('error', onError);
      sock.bind(port, host, () => {
        sock.off('error', onError);
        sock.on('error', (err) => this.log.warn({ err }, 'dtls listener error'));
        const a = sock.address();
        this.bound = { address: unmapIPv4(a.address), port: a.port };
        this.sock = sock;
        sock.on('message', (msg, rinfo) => this.onDatagram(msg, unmapIPv4(rinfo.address), rinfo.port));
        this.timer = setInterval(() => this.tick(), TICK_MS);
        this.timer.unref();
        resolve({ ...this.bound });
      });
    });
  }

  /** Encrypts `data` for the session of `ft` and sends it. False when there is no established session. */
  sendToClient(ft: FiveTuple, data: Buffer): boolean {
    if (!this.sock) return false;
    let out: Buffer[] | null;
    try {
      out = this.engine.send(sessionKey(ft.clientAddress, ft.clientPort), data);
    } catch (err) {
      this.log.debug({ err }, 'dtls send refused');
      return false;
    }
    if (!out) return false;
    for (const d of out) this.sock.send(d, ft.clientPort, ft.clientAddress, noop);
    return true;
  }

  /** Engine counters (sessions, handshakes, cookies, drops). */
  stats(): DtlsCounters {
    return this.engine.stats();
  }

  /** Closes the socket and frees every session (no close_notify). Idempotent. */
  close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    const sock = this.sock;
    this.sock = undefined;
    this.engine.destroy();
    return sock ? new Promise((r) => sock.close(() => r())) : Promise.resolve();
  }

  private fiveTuple(address: string, port: number): FiveTuple {
    return { transport: 'dtls', clientAddress: address, clientPort: port, serverAddress: this.bound!.address, serverPort: this.bound!.port };
  }

  private onDatagram(msg: Buffer, address: string, port: number): void {
    const sock = this.sock;
    if (!sock) return;
    const r = this.engine.receive(sessionKey(address, port), msg);
    for (const d of r.out) sock.send(d, port, address, noop);
    if (r.data.length === 0 && r.event !== 'closed' && r.event !== 'replaced') return;
    const ft = this.fiveTuple(address, port);
    // The old association's allocation goes before the new client speaks.
    if (r.event === 'replaced') this.handlers.onSessionClosed(ft);
    for (const d of r.data) {
      try {
        this.handlers.onClientPacket(ft, d, (resp) => void this.sendToClient(ft, resp));
      } catch (err) {
        this.log.warn({ err }, 'dtls packet handler failed');
      }
    }
    if (r.event === 'closed') this.handlers.onSessionClosed(ft);
  }

  private tick(): void {
    const sock = this.sock;
    if (!sock) return;
    const t = this.engine.tick();
    for (const [key, d] of t.out) {
      const [address, port] = splitKey(key);
      sock.send(d, port, address, noop);
    }
    for (const key of t.closed) {
      const [address, port] = splitKey(key);
      this.handlers.onSessionClosed(this.fiveTuple(address, port));
    }
  }
}

/** Engine counters of several listeners added up (lastError left out). */
export function sumDtlsCounters(listeners: DtlsListener[]): Omit<DtlsCounters, 'lastError'> {
  const sum: Record<string, number> = {};
  for (const l of listeners) {
    for (const [k, v] of Object.entries(l.stats())) if (typeof v === 'number') sum[k] = (sum[k] ?? 0) + v;
  }
  return sum as unknown as Omit<DtlsCounters, 'lastError'>;
}

function sessionKey(address: string, port: number): string {
  return `${address}|${port}`;
}

function splitKey(key: string): [string, number] {
  const i = key.lastIndexOf('|');
  return [key.slice(0, i), Number(key.slice(i + 1))];
}

function noop(): void {}

/**
 * Loads the DTLS addon and opens a listener on `host`:`port`.
 * @throws Error when the addon cannot load (the message names the fix) or the engine refuses the certificate;
 *   rejects with an Error naming the address when the port cannot bind.
 */
export async function openDtlsListener(
  engine: DtlsEngineOptions,
  host: string,
  port: number,
  handlers: DtlsListenerHandlers,
  logger: Logger,
): Promise<{ listener: DtlsListener; address: string; port: number }> {
  const loaded = loadDtlsAddon();
  if ('error' in loaded) throw new Error(`TURN dtls listener ${host}:${port} needs the native DTLS addon (${loaded.error}); ${NATIVE_FIX}`);
  const listener = new DtlsListener(loaded.addon, engine, handlers, logger);
  const b = await listener.listen(host, port);
  return { listener, ...b };
}
