/**
 * The STUN/TURN server's socket side (RFC 8656, RFC 8489): UDP and TCP
 * listeners facing clients and UDP relay sockets facing peers, feeding a
 * TurnControl. All protocol decisions are in turn-control.ts.
 */
import { randomInt } from 'node:crypto';
import dgram from 'node:dgram';
import net from 'node:net';
import tls from 'node:tls';
import type { Logger } from '../log.js';
import type { RelayHandle } from './allocation.js';
import { type FiveTuple, fiveTupleKey } from './five-tuple.js';
import { unmapIPv4 } from './ip-address.js';
import { loadNativeAddon, NATIVE_FIX, type NativeCounters } from './native-addon.js';
import { NativeUdpDataPlane } from './native-data-plane.js';
import { StreamFramer } from './stream-framer.js';
import type { TransportAddress } from './stun-attributes.js';
import { type RelayRequest, TurnControl } from './turn-control.js';
import { PeerPolicy } from './peer-policy.js';
import type { PasswordAlgorithmName } from './stun-attributes.js';
import { TurnError } from './turn-error.js';
import type { DtlsCounters, DtlsEngineOptions } from './dtls-addon.js';
import { type DtlsListener, dtlsListenerKey, openDtlsListener, sumDtlsCounters } from './dtls-listener.js';

/**
 * One client-facing listener; 'tls' is TURN over TLS over TCP (RFC 8656 §3.1, usually port 5349), 'dtls' TURN over
 * DTLS over UDP (RFC 7350, usually 5349/udp, needs the native addon); both need `tls`.
 */
export interface TurnListen {
  transport: 'udp' | 'tcp' | 'tls' | 'dtls';
  host: string;
  port: number;
}

/** Server configuration. Lifetimes in s. */
export interface TurnServerOptions {
  realm: string;
  listen: TurnListen[];
  /** IPv4 address relay sockets bind to and report in XOR-RELAYED-ADDRESS. */
  relayAddress: string;
  /** IPv6 address for IPv6 relayed transport addresses (RFC 6156, RFC 8656 §7.2); undefined: IPv6 allocations get 440. */
  relayAddress6?: string;
  /** Certificate and key (PEM) for 'tls' and 'dtls' listeners. */
  tls?: { cert: Buffer | string; key: Buffer | string };
  /** Limits and PSK identities of 'dtls' listeners (see dtls-addon.ts for defaults). */
  dtls?: Omit<DtlsEngineOptions, 'cert' | 'key'>;
  relayPortMin: number;
  relayPortMax: number;
  /** Allocation lifetime without LIFETIME, s (RFC 8656 §2.2: 600). */
  defaultLifetime: number;
  /** Longest allocation lifetime granted, s. */
  maxLifetime: number;
  /** Nonce lifetime, s; an older nonce gets 438 Stale Nonce. */
  nonceTtl: number;
  /** HMAC key for stateless nonces (timestamp + HMAC), so nothing is stored before auth. */
  nonceSecret: Buffer;
  /** Default false: peers in 127.0.0.0/8 and ::1 get 403. */
  allowLoopbackPeers: boolean;
  /** Peer addresses/CIDR prefixes allowed even when refused by default (see peer-policy.ts). */
  allowedPeers?: string[];
  /** Peer addresses/CIDR prefixes refused besides the default ranges. */
  deniedPeers?: string[];
  /** The host's own addresses, refused as peers (listener addresses are added). */
  ownAddresses?: string[];
  /**
   * Long-term key, RFC 8489 §9.2.2: MD5(username ":" realm ":" password) for 'MD5'
   * (or undefined), SHA-256 of the same for 'SHA-256'; undefined = unknown user (401).
   */
  getKey(username: string, realm: string, algorithm?: PasswordAlgorithmName): Promise<Buffer | undefined>;
  /** USERHASH -> username (RFC 8489 §14.4); optional. */
  resolveUserhash?(hash: Buffer, realm: string): Promise<string | undefined>;
  /** Password algorithms offered, most preferred first; default ['MD5']. */
  passwordAlgorithms?: PasswordAlgorithmName[];
  /** TURN REST API shared secrets (username "EXPIRY:user", password base64(HMAC-SHA1(secret, username))). */
  authSecrets?: string[];
  /** Allocations per user (default 10) and in all (default 1000); 0 = no limit; 486 above. */
  maxAllocationsPerUser?: number;
  maxAllocations?: number;
  /** Per-allocation bandwidth cap, bytes/s; 0 or undefined = none. */
  bandwidthLimit?: number;
  /** Unauthenticated error answers per second per source IP; default 20; 0 = no limit. */
  challengeRate?: number;
  software?: string;
  logger: Logger;
  /**
   * Who moves UDP data: 'native' (the addon in native/: ChannelData and
   * Send/Data indications never enter JavaScript) or 'typescript' (node:dgram).
   * Undefined: native when the addon loads, else typescript with a warning.
   */
  dataPlane?: 'native' | 'typescript';
}

/** TurnServer.stats(): live allocations, relayed packets and payload bytes (both directions, both data paths). */
export interface TurnServerStats {
  allocations: number;
  packetsRelayed: number;
  bytesRelayed: number;
  /** Which data plane moves UDP traffic. */
  dataPlane: 'native' | 'typescript';
  /** Counters of the native data plane, when it runs. */
  native?: NativeCounters;
  /** DTLS engine counters summed over the dtls listeners, when there are any. */
  dtls?: Omit<DtlsCounters, 'lastError'>;
}

const SWEEP_INTERVAL_MS = 1000;
/** Most bytes queued on a TCP connection before data toward it is dropped. */
const TCP_MAX_QUEUED = 1 << 20;

/** A STUN/TURN server with UDP and TCP listeners and UDP relays. */
export class TurnServer {
  private readonly log: Logger;
  private readonly control: TurnControl;
  private readonly udpListeners = new Map<string, dgram.Socket>();
  private readonly tcpServers: net.Server[] = [];
  private readonly tcpConnections = new Map<string, net.Socket>();
  /** Relay ports in use, as relayPortKey(address, port). */
  private readonly relayPortsInUse = new Set<string>();
  private readonly closing = new Set<Promise<void>>();
  private readonly bound: Array<{ transport: TurnListen['transport']; address: string; port: number }> = [];
  private readonly dtlsListeners = new Map<string, DtlsListener>();
  private sweepTimer: NodeJS.Timeout | undefined;
  /** RFC 6062 peer connections by connection id (paused until spliced with a client data connection). */
  private readonly peerConnections = new Map<number, net.Socket>();
  /** Client data connections (5-tuple key) whose ConnectionBind succeeded, to splice once the response is written. */
  private readonly pendingSplices = new Map<string, number>();
  private readonly tcpRelayServers = new Set<net.Server>();
  private running = false;
  private readonly useNative: boolean;
  private native: NativeUdpDataPlane | undefined;

  /**
   * @throws RangeError on an empty or inverted relay port range, a non-IPv4 relay address, a non-IPv6
   *   relayAddress6, a bad peer list entry, or a 'tls' listener without `tls`;
   *   Error when `dataPlane` is 'native' and the addon cannot load (the message names the fix).
   */
  constructor(private readonly opts: TurnServerOptions) {
    if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(opts.relayAddress)) throw new RangeError(`relayAddress must be IPv4: ${opts.relayAddress}`);
    if (!(opts.relayPortMin >= 1 && opts.relayPortMax <= 65535 && opts.relayPortMin <= opts.relayPortMax)) {
      throw new RangeError(`bad relay port range ${opts.relayPortMin}-${opts.relayPortMax}`);
    }
    if (opts.relayAddress6 !== undefined && net.isIP(opts.relayAddress6) !== 6) throw new RangeError(`relayAddress6 must be IPv6: ${opts.relayAddress6}`);
    if (opts.listen.some((l) => l.transport === 'tls' || l.transport === 'dtls') && !opts.tls) throw new RangeError(`a tls or dtls TURN listener needs a certificate and key`);
    this.log = opts.logger.child({ component: 'turn' });
    const relayAddresses = [opts.relayAddress, ...(opts.relayAddress6 ? [opts.relayAddress6] : [])];
    this.control = new TurnControl({
      realm: opts.realm,
      defaultLifetime: opts.defaultLifetime,
      maxLifetime: opts.maxLifetime,
      nonceTtl: opts.nonceTtl,
      nonceSecret: opts.nonceSecret,
      allowLoopbackPeers: opts.allowLoopbackPeers,
      peerPolicy: new PeerPolicy({
        allowLoopbackPeers: opts.allowLoopbackPeers,
        allowedPeers: opts.allowedPeers,
        deniedPeers: opts.deniedPeers,
        ownAddresses: [...(opts.ownAddresses ?? []), ...opts.listen.map((l) => l.host)],
        relayAddresses,
        onRefused: (peer, rule) => this.log.info({ peer, rule }, 'TURN peer refused'),
      }),
      getKey: opts.getKey,
      resolveUserhash: opts.resolveUserhash,
      passwordAlgorithms: opts.passwordAlgorithms,
      authSecrets: opts.authSecrets,
      relayFamilies: opts.relayAddress6 ? ['IPv4', 'IPv6'] : ['IPv4'],
      maxAllocationsPerUser: opts.maxAllocationsPerUser,
      maxAllocations: opts.maxAllocations,
      bandwidthLimit: opts.bandwidthLimit,
      challengeRate: opts.challengeRate,
      software: opts.software,
      logger: opts.logger,
      openRelay: (req) => this.openRelay(req),
      tcp: {
        openTcpRelay: (req) => this.openTcpRelay(req.family === 'IPv6' ? opts.relayAddress6 : opts.relayAddress),
        connect: (relay, peer, id) => this.connectPeer(relay, peer, id),
        bind: (id, data) => void this.pendingSplices.set(fiveTupleKey(data), id),
        close: (id) => {
          this.peerConnections.get(id)?.destroy();
          this.peerConnections.delete(id);
        },
      },
    });
    if (opts.dataPlane === 'typescript') this.useNative = false;
    else {
      const loaded = loadNativeAddon();
      if ('error' in loaded) {
        if (opts.dataPlane === 'native') {
          throw new Error(`turn.data_plane is native but the native addon cannot load (${loaded.error}); ${NATIVE_FIX}, or set turn.data_plane: typescript`);
        }
        this.log.warn({ reason: loaded.error }, `TURN native data plane unavailable, using the TypeScript data path; ${NATIVE_FIX}`);
        this.useNative = false;
      } else this.useNative = true;
    }
  }

  /** The data plane in use for UDP: 'native' or 'typescript'. */
  get dataPlane(): 'native' | 'typescript' {
    return this.useNative ? 'native' : 'typescript';
  }

  private nativePlane(): NativeUdpDataPlane {
    if (!this.native) {
      const loaded = loadNativeAddon();
      if ('error' in loaded) throw new Error(`native addon: ${loaded.error}`);
      this.native = new NativeUdpDataPlane(
        loaded.addon,
        {
          onClientPacket: (ft, data, reply) => {
            void this.control.handleClientPacket(ft, data).then((resp) => {
              if (resp) reply(resp);
            });
          },
          onPeerPacket: (relayed, peer, data) => {
            const out = this.control.handlePeerPacket(relayed, peer, data);
            if (out) this.deliver(out.fiveTuple, out.data);
          },
        },
        this.opts.logger,
      );
    }
    return this.native;
  }

  /** Binds every listener. Rejects with an Error naming the listener if one cannot bind (e.g. port taken); nothing stays bound then. */
  async start(): Promise<void> {
    if (this.running) throw new Error('TURN server already started');
    try {
      for (const l of this.opts.listen) {
        if (l.transport === 'udp') await this.startUdp(l);
        else if (l.transport === 'dtls') await this.startDtls(l);
        else await this.startStream(l);
      }
    } catch (e) {
      await this.stop();
      throw e;
    }
    this.running = true;
    this.sweepTimer = setInterval(() => this.control.sweep(), SWEEP_INTERVAL_MS);
    this.sweepTimer.unref();
  }

  /** Closes listeners, TCP connections, relay sockets and timers; resolves when all are closed. */
  async stop(): Promise<void> {
    this.running = false;
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
    this.control.stop();
    this.native?.close();
    this.native = undefined;
    for (const s of this.tcpConnections.values()) s.destroy();
    for (const s of this.peerConnections.values()) s.destroy();
    this.peerConnections.clear();
    for (const s of this.tcpRelayServers) s.close();
    this.tcpRelayServers.clear();
    this.tcpConnections.clear();
    const waits: Promise<void>[] = [...this.closing];
    for (const s of this.udpListeners.values()) waits.push(new Promise((r) => s.close(() => r())));
    for (const d of this.dtlsListeners.values()) waits.push(d.close());
    this.dtlsListeners.clear();
    this.udpListeners.clear();
    for (const s of this.tcpServers) waits.push(new Promise((r) => s.close(() => r())));
    this.tcpServers.length = 0;
    this.bound.length = 0;
    await Promise.all(waits);
  }

  /** Bound listener addresses (port 0 resolved). */
  addresses(): Array<{ transport: TurnListen['transport']; address: string; port: number }> {
    return this.bound.map((b) => ({ ...b }));
  }

  /** Live allocations; packets and payload bytes relayed in both directions; native counters when native. */
  stats(): TurnServerStats {
    const c = this.control.stats();
    const native = this.native?.stats();
    const dtls = this.dtlsListeners.size ? { dtls: sumDtlsCounters([...this.dtlsListeners.values()]) } : {};
    if (!native) return { ...c, dataPlane: this.dataPlane, ...dtls };
    return {
      ...dtls,
      allocations: c.allocations,
      packetsRelayed: c.packetsRelayed + native.toPeerPackets + native.toClientPackets,
      bytesRelayed: c.bytesRelayed + native.toPeerBytes + native.toClientBytes,
      dataPlane: this.dataPlane,
      native,
    };
  }

  private startUdp(l: TurnListen): Promise<void> {
    if (this.useNative) {
      try {
        const b = this.nativePlane().listen(l.host, l.port);
        this.bound.push({ transport: 'udp', address: b.address, port: b.port });
        return Promise.resolve();
      } catch (err) {
        return Promise.reject(new Error(`TURN udp listener ${l.host}:${l.port} cannot bind: ${(err as Error).message}`));
      }
    }
    return new Promise((resolve, reject) => {
      const sock = dgram.createSocket({ type: l.host.includes(':') ? 'udp6' : 'udp4' });
      const onError = (err: Error) => {
        sock.close();
        reject(new Error(`TURN udp listener ${l.host}:${l.port} cannot bind: ${err.message}`));
      };
      sock.once('error', onError);
      sock.bind(l.port, l.host, () => {
        sock.off('error', onError);
        sock.on('error', (err) => this.log.warn({ err }, 'udp listener error'));
        const a = sock.address();
        const address = unmapIPv4(a.address);
        this.udpListeners.set(`${address}|${a.port}`, sock);
        this.bound.push({ transport: 'udp', address, port: a.port });
        sock.on('message', (msg, rinfo) => {
          const ft: FiveTuple = { transport: 'udp', clientAddress: unmapIPv4(rinfo.address), clientPort: rinfo.port, serverAddress: address, serverPort: a.port };
          void this.control.handleClientPacket(ft, msg).then((resp) => {
            if (resp) sock.send(resp, rinfo.port, rinfo.address, () => undefined);
          });
        });
        resolve();
      });
    });
  }

  /** A DTLS listener (dtls-listener.ts): decrypted datagrams go to the control plane; a session's end closes its allocation. */
  private async startDtls(l: TurnListen): Promise<void> {
    const handlers = {
      onClientPacket: (ft: FiveTuple, data: Buffer, reply: (resp: Buffer) => void) =>
        void this.control.handleClientPacket(ft, data).then((resp) => resp && reply(resp)),
      onSessionClosed: (ft: FiveTuple) => this.control.closeFiveTuple(ft),
    };
    const d = await openDtlsListener({ ...this.opts.dtls, ...this.opts.tls! }, l.host, l.port, handlers, this.opts.logger);
    this.dtlsListeners.set(dtlsListenerKey(d.address, d.port), d.listener);
    this.bound.push({ transport: 'dtls', address: d.address, port: d.port });
  }

  private startStream(l: TurnListen): Promise<void> {
    const transport = l.transport === 'tls' ? 'tls' : 'tcp';
    return new Promise((resolve, reject) => {
      const server =
        transport === 'tls'
          ? tls.createServer({ cert: this.opts.tls!.cert, key: this.opts.tls!.key, handshakeTimeout: 10_000 }, (conn) => this.onTcpConnection(conn, 'tls'))
          : net.createServer((conn) => this.onTcpConnection(conn, 'tcp'));
      if (transport === 'tls') server.on('tlsClientError', (err) => this.log.debug({ err }, 'TURN TLS handshake failed'));
      const onError = (err: Error) => reject(new Error(`TURN ${transport} listener ${l.host}:${l.port} cannot bind: ${err.message}`));
      server.once('error', onError);
      server.listen(l.port, l.host, () => {
        server.off('error', onError);
        server.on('error', (err) => this.log.warn({ err }, 'tcp listener error'));
        const a = server.address() as net.AddressInfo;
        this.tcpServers.push(server);
        this.bound.push({ transport, address: unmapIPv4(a.address), port: a.port });
        resolve();
      });
    });
  }

  private onTcpConnection(conn: net.Socket, transport: 'tcp' | 'tls'): void {
    if (!this.running || conn.remoteAddress === undefined || conn.remotePort === undefined) {
      conn.destroy();
      return;
    }
    const ft: FiveTuple = {
      transport,
      clientAddress: unmapIPv4(conn.remoteAddress),
      clientPort: conn.remotePort,
      serverAddress: unmapIPv4(conn.localAddress ?? ''),
      serverPort: conn.localPort ?? 0,
    };
    const key = fiveTupleKey(ft);
    this.tcpConnections.set(key, conn);
    const framer = new StreamFramer();
    let spliced = false;
    // Responses go out in request order even when a request waits for getKey.
    let chain: Promise<void> = Promise.resolve();
    conn.setNoDelay(true);
    conn.on('data', (chunk: Buffer) => {
      let frames: Buffer[];
      try {
        frames = framer.push(chunk);
      } catch (err) {
        this.log.debug({ err, client: key }, 'closing TCP connection with unframeable data');
        conn.destroy();
        return;
      }
      for (const f of frames) {
        chain = chain.then(async () => {
          if (spliced) return;
          const resp = await this.control.handleClientPacket(ft, f);
          if (resp && !conn.destroyed) conn.write(resp);
          // A successful ConnectionBind turns this connection into a data connection (RFC 6062 §5.4).
          const id = this.pendingSplices.get(key);
          if (id !== undefined) {
            this.pendingSplices.delete(key);
            spliced = true;
            this.splice(id, conn, framer.takeRest());
          }
        });
      }
    });
    conn.on('error', () => undefined);
    conn.on('close', () => {
      this.pendingSplices.delete(key);
      if (this.tcpConnections.get(key) === conn) this.tcpConnections.delete(key);
      this.control.closeFiveTuple(ft);
    });
  }

  private deliver(ft: FiveTuple, data: Buffer): void {
    if (ft.transport === 'dtls') this.dtlsListeners.get(dtlsListenerKey(ft.serverAddress, ft.serverPort))?.sendToClient(ft, data);
    else if (ft.transport === 'udp') {
      if (this.native) {
        this.native.sendToClient(ft, data);
        return;
      }
      const sock = this.udpListeners.get(`${ft.serverAddress}|${ft.serverPort}`);
      sock?.send(data, ft.clientPort, ft.clientAddress, () => undefined);
    } else {
      const conn = this.tcpConnections.get(fiveTupleKey(ft));
      if (conn && !conn.destroyed && conn.writableLength < TCP_MAX_QUEUED) conn.write(data);
    }
  }

  /**
   * Picks a free port in the relay range (even if asked; exactly `req.port` if given; RFC 8656 §7.2)
   * on the relay address of `req.family` and binds a UDP socket there.
   * Rejects with TurnError(440) when the family has no relay address, TurnError(508) when no port binds.
   */
  private async openRelay(req: RelayRequest): Promise<RelayHandle> {
    const { evenPort } = req;
    const { relayPortMin: min, relayPortMax: max } = this.opts;
    const relayAddress = req.family === 'IPv6' ? this.opts.relayAddress6 : this.opts.relayAddress;
    if (relayAddress === undefined) throw new TurnError(440);
    const span = req.port !== undefined ? 1 : max - min + 1;
    const start = req.port !== undefined ? 0 : randomInt(0, span);
    for (let i = 0; i < span; i++) {
      const port = req.port ?? min + ((start + i) % span);
      if (port < min || port > max) continue;
      if (evenPort && port % 2 !== 0) continue;
      if (this.relayPortsInUse.has(relayPortKey(relayAddress, port))) continue;
      if (this.useNative) {
        const relay = this.nativePlane().openRelay(relayAddress, port, () => this.relayPortsInUse.delete(relayPortKey(relayAddress, port)));
        if (relay) {
          this.relayPortsInUse.add(relayPortKey(relayAddress, port));
          return relay;
        }
        continue;
      }
      const sock = await this.tryBind(relayAddress, port);
      if (sock) return this.makeRelay(sock, relayAddress, port);
    }
    throw new TurnError(508);
  }

  private tryBind(address: string, port: number): Promise<dgram.Socket | undefined> {
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

  private makeRelay(sock: dgram.Socket, address: string, port: number): RelayHandle {
    this.relayPortsInUse.add(relayPortKey(address, port));
    const family = address.includes(':') ? 'IPv6' : 'IPv4';
    const relayed: TransportAddress = { family, address, port };
    let closed = false;
    sock.on('error', (err) => this.log.debug({ err, port }, 'relay socket error'));
    sock.on('message', (msg, rinfo) => {
      const out = this.control.handlePeerPacket(relayed, { family, address: unmapIPv4(rinfo.address), port: rinfo.port }, msg);
      if (out) this.deliver(out.fiveTuple, out.data);
    });
    return {
      relayed,
      send: (peer, data) => {
        if (!closed) sock.send(data, peer.port, peer.address, () => undefined);
      },
      close: () => {
        if (closed) return;
        closed = true;
        const p = new Promise<void>((r) => sock.close(() => r())).then(() => {
          this.relayPortsInUse.delete(relayPortKey(address, port));
          this.closing.delete(p);
        });
        this.closing.add(p);
      },
    };
  }

  /**
   * Opens a TCP relay (RFC 6062 §5.1): a listening socket on a free port of
   * the relay range at `address`. Peers connecting to it are offered to the
   * client with ConnectionAttempt. Rejects with TurnError(440) without an
   * address, TurnError(508) when no port is free.
   */
  private async openTcpRelay(address: string | undefined): Promise<RelayHandle> {
    if (address === undefined) throw new TurnError(440);
    const { relayPortMin: min, relayPortMax: max } = this.opts;
    const span = max - min + 1;
    const start = randomInt(0, span);
    for (let i = 0; i < span; i++) {
      const port = min + ((start + i) % span);
      const k = relayPortKey(address, port);
      if (this.relayPortsInUse.has(k)) continue;
      const server = await new Promise<net.Server | undefined>((resolve) => {
        const srv = net.createServer();
        srv.once('error', () => resolve(undefined));
        srv.listen({ port, host: address, exclusive: true, ipv6Only: address.includes(':') }, () => resolve(srv));
      });
      if (!server) continue;
      this.relayPortsInUse.add(k);
      this.tcpRelayServers.add(server);
      const relayed: TransportAddress = { family: address.includes(':') ? 'IPv6' : 'IPv4', address, port };
      server.on('error', (err) => this.log.debug({ err, port }, 'TCP relay error'));
      server.on('connection', (sock) => this.onPeerConnection(relayed, sock));
      let closed = false;
      return {
        relayed,
        send: () => undefined,
        close: () => {
          if (closed) return;
          closed = true;
          this.tcpRelayServers.delete(server);
          server.close(() => this.relayPortsInUse.delete(k));
        },
      };
    }
    throw new TurnError(508);
  }

  private onPeerConnection(relayed: TransportAddress, sock: net.Socket): void {
    sock.pause();
    sock.on('error', () => undefined);
    if (sock.remoteAddress === undefined || sock.remotePort === undefined) {
      sock.destroy();
      return;
    }
    const address = unmapIPv4(sock.remoteAddress);
    const peer: TransportAddress = { family: address.includes(':') ? 'IPv6' : 'IPv4', address, port: sock.remotePort };
    const r = this.control.handlePeerConnection(relayed, peer);
    if (!r) {
      sock.destroy();
      return;
    }
    this.trackPeer(r.connectionId, sock);
    this.deliver(r.delivery.fiveTuple, r.delivery.data);
  }

  private trackPeer(id: number, sock: net.Socket): void {
    this.peerConnections.set(id, sock);
    sock.on('close', () => {
      if (this.peerConnections.get(id) === sock) {
        this.peerConnections.delete(id);
        this.control.peerConnectionClosed(id);
      }
    });
  }

  /** Connect (RFC 6062 §5.2): a TCP connection to `peer` from the relay's address; rejects on failure or after 30 s. */
  private connectPeer(relay: RelayHandle, peer: TransportAddress, id: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const sock = net.connect({ host: peer.address, port: peer.port, localAddress: relay.relayed.address });
      sock.pause();
      const timer = setTimeout(() => sock.destroy(new Error('connect timeout')), 30_000);
      sock.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      sock.once('connect', () => {
        clearTimeout(timer);
        sock.removeAllListeners('error');
        sock.on('error', () => undefined);
        this.trackPeer(id, sock);
        resolve();
      });
    });
  }

  /** Splices client data connection `conn` with peer connection `id` (both ways, with back-pressure); either closing closes the other. */
  private splice(id: number, conn: net.Socket, rest: Buffer): void {
    const peer = this.peerConnections.get(id);
    if (!peer || peer.destroyed) {
      conn.destroy();
      return;
    }
    conn.removeAllListeners('data');
    if (rest.length) peer.write(rest);
    conn.pipe(peer);
    peer.pipe(conn);
    peer.resume();
    conn.on('close', () => peer.destroy());
    peer.on('close', () => conn.destroy());
  }
}

function relayPortKey(address: string, port: number): string {
  return `${address}|${port}`;
}
