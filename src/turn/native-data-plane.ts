/**
 * The TurnServer's side of the native data plane: binds client-facing UDP
 * listeners and relay sockets in the addon, mirrors each allocation's
 * 5-tuple, lifetime, permissions and channels into it (RelayMirror), and
 * routes what the addon hands up (STUN requests, peer data of relays owned
 * by TCP clients) to the control plane.
 */
import type { Logger } from '../log.js';
import type { RelayHandle, RelayMirror } from './allocation.js';
import type { FiveTuple } from './five-tuple.js';
import type { NativeAddon, NativeCounters, NativeDataPlane } from './native-addon.js';
import type { TransportAddress } from '../stun/stun-attributes.js';
import type { UdpDataPlane, UdpDataPlaneHandlers } from './udp-data-plane.js';

/**
 * Native UDP listeners and relays of one TurnServer (see udp-data-plane.ts).
 * Peer data comes up to `onPeerPacket` only for relays whose allocation is
 * not on a native UDP listener (e.g. a TCP client's).
 */
export class NativeUdpDataPlane implements UdpDataPlane {
  readonly kind = 'native' as const;
  private readonly dp: NativeDataPlane;
  private readonly log: Logger;
  private readonly listeners = new Map<number, { address: string; port: number }>();
  private readonly listenerIds = new Map<string, number>();
  private readonly relays = new Map<number, TransportAddress>();
  private closed = false;

  constructor(addon: NativeAddon, private readonly handlers: UdpDataPlaneHandlers, logger: Logger) {
    this.log = logger.child({ component: 'turn-native' });
    this.dp = new addon.DataPlane((kind, sock, address, port, data) => this.onPacket(kind, sock, address, port, data));
  }

  /** Binds a client-facing UDP listener; resolves with the bound address and port, rejects with the addon's Error. */
  async listen(host: string, port: number): Promise<{ address: string; port: number }> {
    const r = this.dp.listen(host, port);
    const b = { address: host, port: r.port };
    this.listeners.set(r.id, b);
    this.listenerIds.set(`${host}|${r.port}`, r.id);
    return b;
  }

  /**
   * Binds a relay socket on `address`:`port`; undefined when that port is taken.
   * `onClose` runs once when the handle is closed.
   */
  async openRelay(address: string, port: number, onClose: () => void): Promise<RelayHandle | undefined> {
    const id = this.dp.openRelay(address, port);
    if (id < 0) return undefined;
    const relayed: TransportAddress = { family: address.includes(':') ? 'IPv6' : 'IPv4', address, port };
    this.relays.set(id, relayed);
    let closed = false;
    const dp = this.dp;
    const mirror: RelayMirror = {
      attach: (ft, expiresAtMs) => {
        if (ft.transport !== 'udp') return; // peer data then comes up as kind 1 and leaves through the server
        const lid = this.listenerIds.get(`${ft.serverAddress}|${ft.serverPort}`);
        if (lid !== undefined && !closed) dp.attach(id, lid, ft.clientAddress, ft.clientPort, expiresAtMs);
      },
      expiry: (e) => void (closed || dp.setExpiry(id, e)),
      permission: (ip, e) => void (closed || dp.setPermission(id, ip, e)),
      channel: (ch, peer, e) => void (closed || dp.setChannel(id, ch, peer.address, peer.port, e)),
    };
    return {
      relayed,
      mirror,
      send: (peer, data) => {
        if (!closed) dp.sendTo(id, peer.address, peer.port, data);
      },
      close: () => {
        if (closed) return;
        closed = true;
        this.relays.delete(id);
        if (!this.closed) dp.closeSocket(id);
        onClose();
      },
    };
  }

  /** Sends `data` to a UDP client 5-tuple through its listener. False if no such listener. */
  sendToClient(ft: FiveTuple, data: Buffer): boolean {
    const lid = this.listenerIds.get(`${ft.serverAddress}|${ft.serverPort}`);
    return lid !== undefined && this.dp.sendTo(lid, ft.clientAddress, ft.clientPort, data);
  }

  /** Counters of the addon (see NativeCounters). */
  stats(): NativeCounters {
    return this.dp.stats();
  }

  /** Stops the addon's thread and closes every socket. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.dp.close();
    this.listeners.clear();
    this.listenerIds.clear();
  }

  private onPacket(kind: 0 | 1, sock: number, address: string, port: number, data: Buffer): void {
    if (this.closed) return;
    try {
      if (kind === 0) {
        const l = this.listeners.get(sock);
        if (!l) return;
        const ft: FiveTuple = { transport: 'udp', clientAddress: address, clientPort: port, serverAddress: l.address, serverPort: l.port };
        this.handlers.onClientPacket(ft, data, (resp) => {
          if (!this.closed) this.dp.sendTo(sock, address, port, resp);
        });
      } else {
        const relayed = this.relays.get(sock);
        if (!relayed) return;
        this.handlers.onPeerPacket(relayed, { family: address.includes(':') ? 'IPv6' : 'IPv4', address, port }, data);
      }
    } catch (err) {
      this.log.warn({ err }, 'native data plane handler failed');
    }
  }
}
