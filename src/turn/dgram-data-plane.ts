/**
 * The TypeScript UDP data plane (node:dgram): client-facing UDP listeners and
 * relay sockets whose every datagram goes through the control plane. See
 * udp-data-plane.ts.
 */
import dgram from 'node:dgram';
import type { Logger } from '../log.js';
import { unmapIPv4 } from '../security/ip-address.js';
import type { TransportAddress } from '../stun/stun-attributes.js';
import type { RelayHandle } from './allocation.js';
import type { FiveTuple } from './five-tuple.js';
import type { UdpDataPlane, UdpDataPlaneHandlers } from './udp-data-plane.js';

/** node:dgram listeners and relays of one TurnServer. */
export class DgramUdpDataPlane implements UdpDataPlane {
  readonly kind = 'typescript' as const;
  private readonly log: Logger;
  /** Listeners by "address|port". */
  private readonly listeners = new Map<string, dgram.Socket>();
  private readonly relays = new Set<RelayHandle>();
  private readonly closing = new Set<Promise<void>>();

  constructor(private readonly handlers: UdpDataPlaneHandlers, logger: Logger) {
    this.log = logger.child({ component: 'turn-udp' });
  }

  /** Bind a client-facing UDP listener (port 0: any); resolves with the bound address and port, rejects with the bind error. */
  listen(host: string, port: number): Promise<{ address: string; port: number }> {
    return new Promise((resolve, reject) => {
      const sock = dgram.createSocket({ type: host.includes(':') ? 'udp6' : 'udp4' });
      const onError = (err: Error) => {
        sock.close();
        reject(err);
      };
      sock.once('error', onError);
      sock.bind(port, host, () => {
        sock.off('error', onError);
        sock.on('error', (err) => this.log.warn({ err }, 'udp listener error'));
        const a = sock.address();
        const address = unmapIPv4(a.address);
        this.listeners.set(`${address}|${a.port}`, sock);
        const reply = (rinfo: dgram.RemoteInfo) => (resp: Buffer) => sock.send(resp, rinfo.port, rinfo.address, () => undefined);
        sock.on('message', (msg, rinfo) => {
          const ft: FiveTuple = { transport: 'udp', clientAddress: unmapIPv4(rinfo.address), clientPort: rinfo.port, serverAddress: address, serverPort: a.port };
          this.handlers.onClientPacket(ft, msg, reply(rinfo));
        });
        resolve({ address, port: a.port });
      });
    });
  }

  /** Bind a relay socket at the relayed transport address (RFC 8656 §7.2); undefined when the port is taken. `onClose` runs once it is closed. */
  async openRelay(address: string, port: number, onClose: () => void): Promise<RelayHandle | undefined> {
    const sock = await tryBind(address, port);
    if (!sock) return undefined;
    const family = address.includes(':') ? 'IPv6' : 'IPv4';
    const relayed: TransportAddress = { family, address, port };
    let closed = false;
    sock.on('error', (err) => this.log.debug({ err, port }, 'relay socket error'));
    sock.on('message', (msg, rinfo) => this.handlers.onPeerPacket(relayed, { family, address: unmapIPv4(rinfo.address), port: rinfo.port }, msg));
    const handle: RelayHandle = {
      relayed,
      send: (peer, data) => {
        if (!closed) sock.send(data, peer.port, peer.address, () => undefined);
      },
      close: () => {
        if (closed) return;
        closed = true;
        this.relays.delete(handle);
        const p = new Promise<void>((r) => sock.close(() => r())).then(() => {
          onClose();
          this.closing.delete(p);
        });
        this.closing.add(p);
      },
    };
    this.relays.add(handle);
    return handle;
  }

  /** Send `data` to the client of UDP 5-tuple `ft` from its listener; false when there is no such listener. */
  sendToClient(ft: FiveTuple, data: Buffer): boolean {
    const sock = this.listeners.get(`${ft.serverAddress}|${ft.serverPort}`);
    sock?.send(data, ft.clientPort, ft.clientAddress, () => undefined);
    return sock !== undefined;
  }

  /** No counters of its own: this data plane's packets are counted by the control plane (turn/relaying.ts). */
  stats(): undefined {
    return undefined;
  }

  /** Close every relay and listener; resolves when all are closed. */
  async close(): Promise<void> {
    for (const r of [...this.relays]) r.close();
    const waits: Promise<void>[] = [...this.closing];
    for (const s of this.listeners.values()) waits.push(new Promise((r) => s.close(() => r())));
    this.listeners.clear();
    await Promise.all(waits);
  }
}

/** Binds a UDP socket exclusively on `address`:`port`; undefined when it cannot. */
function tryBind(address: string, port: number): Promise<dgram.Socket | undefined> {
  return new Promise((resolve) => {
    const sock = dgram.createSocket({ type: address.includes(':') ? 'udp6' : 'udp4', ipv6Only: address.includes(':') });
    const onError = () => {
      sock.close();
      resolve(undefined);
    };
    sock.once('error', onError);
    sock.bind({ port, address, exclusive: true }, () => {
      sock.off('error', onError);
      resolve(sock);
    });
  });
}
