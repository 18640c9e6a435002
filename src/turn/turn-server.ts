/**
 * The STUN/TURN server's socket side (RFC 8656, RFC 8489): the UDP data plane
 * (udp-data-plane.ts), TCP/TLS listeners and DTLS listeners (RFC 7350,
 * dtls-listener.ts) facing clients and TCP relays of RFC 6062 facing peers,
 * feeding a TurnControl. All protocol decisions are in
 * turn-control.ts; streams are bounded by stream-limits.ts.
 *
 * Packet path: a client datagram enters the data plane (native or
 * node:dgram); what the native plane does not forward itself goes to
 * TurnControl.handleClientPacket, whose answer goes back through `reply`.
 * Peer datagrams go to TurnControl.handlePeerPacket and the result to the
 * client's 5-tuple (`deliver`). TCP/TLS clients: StreamFramer cuts the stream
 * into STUN and ChannelData messages, answers are written in request order.
 */
import { randomInt } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import type { Logger } from '../log.js';
import { CidrList, parseHostIp, unmapIPv4 } from '../security/ip-address.js';
import type { TransportAddress } from '../stun/stun-attributes.js';
import type { RelayHandle } from './allocation.js';
import { type FiveTuple, fiveTupleKey } from './five-tuple.js';
import type { NativeCounters } from './native-addon.js';
import { PeerPolicy } from './peer-policy.js';
import { StreamFramer } from './stream-framer.js';
import { DEFAULT_STREAM_LIMITS, newStreamCounters, type StreamCounters, StreamGuard, type StreamLimits } from './stream-limits.js';
import { type RelayRequest, TurnControl, type TurnControlStats, type TurnPolicyOptions } from './turn-control.js';
import { TurnError } from './turn-error.js';
import { chooseUdpDataPlane, createUdpDataPlane, type UdpDataPlane } from './udp-data-plane.js';
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

/** Server configuration: the protocol settings and policies (TurnPolicyOptions, passed on as they are) and the sockets'. */
export interface TurnServerOptions extends TurnPolicyOptions {
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
  /** Peer addresses/CIDR prefixes allowed even when refused by default (see peer-policy.ts); ignored with `peerAllowed`. */
  allowedPeers?: string[];
  /** Peer addresses/CIDR prefixes refused besides the default ranges; ignored with `peerAllowed`. */
  deniedPeers?: string[];
  /** The host's own addresses, refused as peers (listener addresses are added); ignored with `peerAllowed`. */
  ownAddresses?: string[];
  /** Sources never held back by the challenge limits (addresses/CIDR prefixes; `sip.security.exempt_sources`); ignored with `challengeExempt`. */
  exemptSources?: readonly string[];
  /**
   * Who moves UDP data: 'native' (the addon in native/) or 'typescript'
   * (node:dgram). Undefined: native when the addon loads and no bandwidth cap
   * is set, else typescript (udp-data-plane.ts chooses).
   */
  dataPlane?: 'native' | 'typescript';
  /** Write-queue bounds of TCP/TLS streams; defaults DEFAULT_STREAM_LIMITS. */
  streamLimits?: Partial<StreamLimits>;
  /** Most open connections per TCP/TLS listener (net.Server maxConnections); one more is closed when accepted; default 10 000. */
  maxConnectionsPerListener?: number;
  logger: Logger;
}

/** TurnServer.stats(): control-plane counters with the native plane's relayed traffic added, and stream counters. */
export interface TurnServerStats extends TurnControlStats {
  /** Which data plane moves UDP traffic. */
  dataPlane: 'native' | 'typescript';
  /** Counters of the native data plane, when it runs. */
  native?: NativeCounters;
  /** Back-pressure counters of TCP/TLS streams (a live object). */
  streams: StreamCounters;
  /** DTLS engine counters summed over the dtls listeners, when there are any. */
  dtls?: Omit<DtlsCounters, 'lastError'>;
  /** Bytes read from RFC 6062 peer connections and held in this process (0 while they wait for ConnectionBind: they are not read). */
  tcpPeerBufferedBytes: number;
  /** Client connections closed on accept because their listener had `maxConnectionsPerListener` open. */
  connectionsRefused: number;
}

const SWEEP_INTERVAL_MS = 1000;

/** A STUN/TURN server with UDP, TCP and TLS listeners and UDP and TCP relays. */
export class TurnServer {
  private readonly log: Logger;
  private readonly control: TurnControl;
  /** Which UDP data plane runs (decided once, in the constructor). */
  readonly dataPlane: 'native' | 'typescript';
  private udp: UdpDataPlane | undefined;
  private readonly tcpServers: net.Server[] = [];
  /** Client TCP/TLS connections by 5-tuple key, with the guard that bounds their write queue. */
  private readonly tcpConnections = new Map<string, { conn: net.Socket; guard: StreamGuard }>();
  /** Relay ports in use, as relayPortKey(address, port). */
  private readonly relayPortsInUse = new Set<string>();
  private readonly bound: Array<{ transport: TurnListen['transport']; address: string; port: number }> = [];
  private readonly dtlsListeners = new Map<string, DtlsListener>();
  private sweepTimer: NodeJS.Timeout | undefined;
  /** RFC 6062 peer connections by connection id (paused until spliced with a client data connection). */
  private readonly peerConnections = new Map<number, net.Socket>();
  /** Client data connections (5-tuple key) whose ConnectionBind succeeded, to splice once the response is written. */
  private readonly pendingSplices = new Map<string, number>();
  private readonly tcpRelayServers = new Set<net.Server>();
  private readonly streamLimits: StreamLimits;
  private readonly streamCounters = newStreamCounters();
  private running = false;
  private connectionsRefused = 0;

  /**
   * @throws RangeError on an empty or inverted relay port range, a non-IPv4 relay address, a non-IPv6
   *   relayAddress6, a bad peer or exempt list entry, or a 'tls' listener without `tls`;
   *   Error when `dataPlane` is 'native' and the addon cannot load (the message names the fix).
   */
  constructor(private readonly opts: TurnServerOptions) {
    if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(opts.relayAddress)) throw new RangeError(`relayAddress must be IPv4: ${opts.relayAddress}`);
    if (!(opts.relayPortMin >= 1 && opts.relayPortMax <= 65535 && opts.relayPortMin <= opts.relayPortMax)) {
      throw new RangeError(`bad relay port range ${opts.relayPortMin}-${opts.relayPortMax}`);
    }
    if (opts.relayAddress6 !== undefined && net.isIP(opts.relayAddress6) !== 6) throw new RangeError(`relayAddress6 must be IPv6: ${opts.relayAddress6}`);
    if (opts.listen.some((l) => l.transport === 'tls' || l.transport === 'dtls') && !opts.tls) throw new RangeError('a tls or dtls TURN listener needs a certificate and key');
    this.log = opts.logger.child({ component: 'turn' });
    this.streamLimits = { ...DEFAULT_STREAM_LIMITS, ...opts.streamLimits };
    const relayAddresses = [opts.relayAddress, ...(opts.relayAddress6 ? [opts.relayAddress6] : [])];
    const policy = new PeerPolicy({
      allowLoopbackPeers: opts.allowLoopbackPeers ?? false,
      allowedPeers: opts.allowedPeers,
      deniedPeers: opts.deniedPeers,
      ownAddresses: [...(opts.ownAddresses ?? []), ...opts.listen.map((l) => l.host)],
      relayAddresses,
      onRefused: (peer, rule) => this.log.info({ peer, rule }, 'TURN peer refused'),
    });
    const exempt = new CidrList(opts.exemptSources ?? []);
    this.control = new TurnControl({
      ...opts,
      peerAllowed: opts.peerAllowed ?? ((a) => policy.allows(a)),
      challengeExempt: opts.challengeExempt ?? ((a) => exempt.size > 0 && isIn(exempt, a)),
      relayFamilies: opts.relayAddress6 ? ['IPv4', 'IPv6'] : ['IPv4'],
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
    this.dataPlane = chooseUdpDataPlane({ requested: opts.dataPlane, bandwidthCapped: (opts.bandwidthLimitBytesPerS ?? 0) > 0 }, this.log);
  }

  /** Binds every listener. Rejects with an Error naming the listener if one cannot bind (e.g. port taken); nothing stays bound then. */
  async start(): Promise<void> {
    if (this.running) throw new Error('TURN server already started');
    this.udp = createUdpDataPlane(
      this.dataPlane,
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
    for (const { conn } of this.tcpConnections.values()) conn.destroy();
    for (const s of this.peerConnections.values()) s.destroy();
    this.peerConnections.clear();
    for (const s of this.tcpRelayServers) s.close();
    this.tcpRelayServers.clear();
    this.tcpConnections.clear();
    const waits: Promise<void>[] = [];
    if (this.udp) waits.push(this.udp.close());
    this.udp = undefined;
    for (const d of this.dtlsListeners.values()) waits.push(d.close());
    this.dtlsListeners.clear();
    for (const s of this.tcpServers) waits.push(new Promise((r) => s.close(() => r())));
    this.tcpServers.length = 0;
    this.bound.length = 0;
    await Promise.all(waits);
  }

  /**
   * Replace the certificate and key (PEM) of the TLS and DTLS listeners
   * (renewal, a reload): new handshakes present them at once
   * (tls.Server#setSecureContext; the DTLS engine's SSL_CTX); open connections
   * and sessions and their allocations keep going.
   * @throws Error naming the OpenSSL error when the DTLS engine refuses the pair (TLS listeners are updated first).
   */
  setTlsMaterial(material: { cert: Buffer | string; key: Buffer | string }): void {
    for (const s of this.tcpServers) if (s instanceof tls.Server) s.setSecureContext({ cert: material.cert, key: material.key });
    for (const d of this.dtlsListeners.values()) d.setCertificate(material.cert, material.key);
  }

  /** Bound listener addresses (port 0 resolved). */
  addresses(): Array<{ transport: TurnListen['transport']; address: string; port: number }> {
    return this.bound.map((b) => ({ ...b }));
  }

  /** Live allocations, permissions, channels; packets and payload bytes relayed, in total and each way (both data paths); stream and native counters. */
  stats(): TurnServerStats {
    const c = this.control.stats();
    const native = this.udp?.stats();
    const dtls = this.dtlsListeners.size ? { dtls: sumDtlsCounters([...this.dtlsListeners.values()]) } : {};
    let tcpPeerBufferedBytes = 0;
    for (const p of this.peerConnections.values()) tcpPeerBufferedBytes += p.readableLength;
    const connectionsRefused = this.connectionsRefused;
    if (!native) return { ...c, dataPlane: this.dataPlane, streams: this.streamCounters, tcpPeerBufferedBytes, connectionsRefused, ...dtls };
    return {
      ...c,
      ...dtls,
      tcpPeerBufferedBytes,
      connectionsRefused,
      packetsRelayed: c.packetsRelayed + native.toPeerPackets + native.toClientPackets,
      bytesRelayed: c.bytesRelayed + native.toPeerBytes + native.toClientBytes,
      toPeerPackets: c.toPeerPackets + native.toPeerPackets,
      toPeerBytes: c.toPeerBytes + native.toPeerBytes,
      toClientPackets: c.toClientPackets + native.toClientPackets,
      toClientBytes: c.toClientBytes + native.toClientBytes,
      dataPlane: this.dataPlane,
      native,
      streams: this.streamCounters,
    };
  }

  private async startUdp(l: TurnListen): Promise<void> {
    try {
      const b = await this.udp!.listen(l.host, l.port);
      this.bound.push({ transport: 'udp', address: b.address, port: b.port });
    } catch (err) {
      throw new Error(`TURN udp listener ${l.host}:${l.port} cannot bind: ${(err as Error).message}`);
    }
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
        server.maxConnections = this.opts.maxConnectionsPerListener ?? 10_000;
        server.on('drop', () => this.connectionsRefused++);
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
    // Answers to a client that does not read them stop the reading of its requests (stream-limits.ts).
    const guard = new StreamGuard(conn, conn, this.streamLimits, this.streamCounters);
    this.tcpConnections.set(key, { conn, guard });
    const framer = new StreamFramer();
    let spliced = false;
    // Responses go out in request order even when a request waits for getKey; while more than
    // pendingRequestBytes of messages wait their turn, the connection is not read.
    let chain: Promise<void> = Promise.resolve();
    let pendingBytes = 0;
    let heldByPending = false;
    const handled = (bytes: number): void => {
      pendingBytes -= bytes;
      if (heldByPending && pendingBytes <= this.streamLimits.pendingRequestBytes / 2) {
        heldByPending = false;
        if (!guard.congested && !conn.destroyed && !spliced) conn.resume();
      }
    };
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
      for (const f of frames) pendingBytes += f.length;
      // Paused again even if the write guard resumed it meanwhile.
      if (pendingBytes > this.streamLimits.pendingRequestBytes) {
        if (!heldByPending) this.streamCounters.pausedPendingRequests++;
        heldByPending = true;
        conn.pause();
      }
      for (const f of frames) {
        chain = chain.then(async () => {
          if (spliced || conn.destroyed) return handled(f.length);
          const resp = await this.control.handleClientPacket(ft, f);
          handled(f.length);
          if (resp) guard.write(resp);
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
      if (this.tcpConnections.get(key)?.conn === conn) this.tcpConnections.delete(key);
      this.control.closeFiveTuple(ft);
    });
  }

  /** Sends relayed data or an indication to a client 5-tuple; toward a congested stream it is dropped (datagram semantics) and counted. */
  private deliver(ft: FiveTuple, data: Buffer): void {
    if (ft.transport === 'dtls') {
      this.dtlsListeners.get(dtlsListenerKey(ft.serverAddress, ft.serverPort))?.sendToClient(ft, data);
      return;
    }
    if (ft.transport === 'udp') {
      this.udp?.sendToClient(ft, data);
      return;
    }
    const c = this.tcpConnections.get(fiveTupleKey(ft));
    if (!c || c.conn.destroyed) return;
    if (c.guard.congested) this.streamCounters.dropped++;
    else c.guard.write(data);
  }

  /**
   * Picks a free port in the relay range (even if asked; exactly `req.port` if given; RFC 8656 §7.2)
   * on the relay address of `req.family` and binds a UDP relay there in the data plane.
   * Rejects with TurnError(440) when the family has no relay address, TurnError(508) when no port binds.
   */
  private async openRelay(req: RelayRequest): Promise<RelayHandle> {
    const { evenPort } = req;
    const { relayPortMin: min, relayPortMax: max } = this.opts;
    const relayAddress = req.family === 'IPv6' ? this.opts.relayAddress6 : this.opts.relayAddress;
    if (relayAddress === undefined) throw new TurnError(440);
    const udp = this.udp;
    if (!udp) throw new TurnError(508);
    const span = req.port !== undefined ? 1 : max - min + 1;
    const start = req.port !== undefined ? 0 : randomInt(0, span);
    for (let i = 0; i < span; i++) {
      const port = req.port ?? min + ((start + i) % span);
      if (port < min || port > max) continue;
      if (evenPort && port % 2 !== 0) continue;
      const k = relayPortKey(relayAddress, port);
      if (this.relayPortsInUse.has(k)) continue;
      this.relayPortsInUse.add(k);
      const relay = await udp.openRelay(relayAddress, port, () => this.relayPortsInUse.delete(k));
      if (relay) return relay;
      this.relayPortsInUse.delete(k);
    }
    throw new TurnError(508);
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
        // Peer connections are not read until spliced with a client data connection (RFC 6062 §5.4): what a peer
        // sends before the ConnectionBind waits in the kernel's socket buffer, none in this process.
        const srv = net.createServer({ pauseOnConnect: true });
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
      sock.pause(); // before the connection completes: nothing is read until spliced
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

  /**
   * Splices client data connection `conn` with peer connection `id` (RFC 6062
   * §5.4): each side's data is written to the other under the stream limits
   * (the side that cannot keep up stops the reading of the other, and a
   * stalled one closes both); either closing closes the other.
   */
  private splice(id: number, conn: net.Socket, rest: Buffer): void {
    const peer = this.peerConnections.get(id);
    if (!peer || peer.destroyed) {
      conn.destroy();
      return;
    }
    conn.removeAllListeners('data');
    const toPeer = new StreamGuard(peer, conn, this.streamLimits, this.streamCounters);
    const toClient = new StreamGuard(conn, peer, this.streamLimits, this.streamCounters);
    if (rest.length) toPeer.write(rest);
    conn.on('data', (d: Buffer) => toPeer.write(d));
    peer.on('data', (d: Buffer) => toClient.write(d));
    peer.resume();
    conn.resume();
    conn.on('end', () => peer.end());
    peer.on('end', () => conn.end());
    conn.on('close', () => peer.destroy());
    peer.on('close', () => conn.destroy());
  }
}

function relayPortKey(address: string, port: number): string {
  return `${address}|${port}`;
}

/** True when IP text `address` lies in `list` (IPv4-mapped addresses as IPv4). */
function isIn(list: CidrList, address: string): boolean {
  const p = parseHostIp(unmapIPv4(address));
  return p !== undefined && list.has(p.bytes);
}
