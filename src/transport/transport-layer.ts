import dgram from 'node:dgram';
import net from 'node:net';
import tls from 'node:tls';
import { firstExternalAddress, hostAddresses } from './host-addresses.js';
import http from 'node:http';
import https from 'node:https';
import { WebSocketServer } from 'ws';
import type { Logger } from '../log.js';
import { parseMessage, type ParseLimits } from '../sip/parser.js';
import { serializeMessage } from '../sip/serializer.js';
import { SipParseError } from '../sip/errors.js';
import { createResponse } from '../sip/response.js';
import { getHeader, splitList, nameIs, type SipMessage } from '../sip/message.js';
import { parseVia, formatVia, type Via } from '../sip/headers.js';
import { noteTopVia, topVia } from '../sip/parsed-headers.js';
import { dict } from '../sip/uri.js';
import type { FramerEvent } from '../sip/stream-framer.js';
import { StreamFlow, normalizeAddress } from './stream-flow.js';
import { certificateMatchesSipDomain, sipDomainIdentities } from '../auth/domain-certificate.js';
import { WsFlow } from './ws-flow.js';
import type { StreamBounds } from './backpressure.js';
import { isStunDatagram, stunKeepaliveResponse } from './stun-keepalive.js';
import { literalFirstLookup } from './udp-lookup.js';
import { chooseUdpSend, udpDescriptorOf, UdpSendBatch, type UdpSendAddon } from './udp-send-batch.js';
import { callIdOwnerOf } from './call-id-owner.js';
import { RemoteFlows, meshSource, type FlowAnnouncement } from './remote-flows.js';
import { isTextAndBytes, type TextAndBytes, type WorkerMesh } from './worker-mesh.js';
import {
  formatHostPort,
  isWebSocket,
  type BoundListener,
  type Destination,
  type Inbound,
  type ListenSpec,
  type Source,
  type TransportName,
} from './types.js';

/** Options of {@link TransportLayer}. */
export interface TransportOptions {
  listen: ListenSpec[];
  /** Host put in Via and Record-Route when a listener is bound to a wildcard address. */
  advertisedHost?: string;
  /** Certificates and CAs for TLS listeners and outgoing TLS connections (see {@link TlsMaterial}). */
  tls?: TlsMaterial;
  /**
   * The identities a verified client certificate names (see
   * auth/client-certificate.ts), put in `Source.tlsIdentities` of every
   * message of that flow. Without it, client certificates name nobody.
   */
  peerIdentities?: (cert: tls.PeerCertificate) => string[];
  limits: ParseLimits;
  logger: Logger;
  /** Idle stream connections are closed after this many ms; default 600 000. */
  idleTimeoutMs?: number;
  /** Metrics hooks: each TLS handshake on a listener (ok or failed), each message handed to a socket. */
  onTlsHandshake?: (ok: boolean) => void;
  onSend?: (msg: SipMessage) => void;
  /** Write-queue bounds of every stream connection; default {@link DEFAULT_STREAM_BOUNDS}. */
  streamBounds?: StreamBounds;
  /**
   * Asked for each inbound datagram or frame that looks like a new request
   * (not a response, ACK or CANCEL), before parsing: true drops it unread
   * (overload past what even a 503 costs).
   */
  dropBeforeParse?: () => boolean;
  /**
   * The other SIP workers of this instance (`sip.workers` > 1): a message is
   * processed by the worker its Call-ID hashes to ({@link callIdOwnerOf}),
   * handed over the mesh when it lands elsewhere; flows are announced to
   * every worker and written by the worker that holds them. Absent: one worker.
   */
  mesh?: WorkerMesh;
  /**
   * Most open connections per TCP/TLS/WS/WSS listener (net.Server
   * maxConnections); one more is closed as soon as it is accepted and counted
   * in `counters.connectionsRefused`. Default {@link DEFAULT_MAX_CONNECTIONS}.
   */
  maxConnectionsPerListener?: number;
  /**
   * How UDP datagrams leave (`sip.udp_send`): 'native' batches the datagrams
   * of one event-loop turn per socket into one sendmmsg (udp-send-batch.ts;
   * start-up fails without the addon), 'dgram' sends each with node:dgram;
   * undefined: native when the addon loads.
   */
  udpSend?: 'native' | 'dgram';
  /**
   * Receive buffer asked for each UDP listener, bytes (SO_RCVBUF, `sip.limits.udp_receive_buffer_bytes`);
   * the kernel caps it at net.core.rmem_max (then a warning names the size it got). Undefined: the kernel's default.
   */
  udpReceiveBufferBytes?: number;
  /**
   * UDP sockets already bound for configured listeners, by {@link udpListenKey} (a SIP worker's
   * steered sockets, cluster/udp-steering.ts); the layer reads and sends on them and closes them at stop.
   */
  udpSockets?: ReadonlyMap<string, dgram.Socket>;
}

/** Default most open connections per stream listener (`sip.limits.max_connections`). */
export const DEFAULT_MAX_CONNECTIONS = 10_000;

/**
 * What TLS needs, replaceable at run time ({@link TransportLayer.setTlsMaterial}):
 * - `cert`/`key`: the default PEM certificate and key (listeners, and our TLS client);
 * - `certificates`: one per domain of ours; SNI picks it on our listeners, and
 *   our client presents the one of `Destination.localDomain` (RFC 5922 §7);
 * - `ca`: CAs of client (device) certificates (listeners with `clientCert` optional or required);
 * - `peerCa`: CAs trusted for other domains' certificates (federation, RFC 5922 §7.3):
 *   outgoing connections with a `tlsName` verify against them, listeners ask for
 *   client certificates and verify them against `ca` plus these;
 * - `wildcards`: accept `*.` certificates for a peer domain (RFC 5922 §7.2 says no).
 */
export interface TlsMaterial {
  cert: Buffer;
  key: Buffer;
  ca?: Buffer[];
  certificates?: { domain: string; cert: Buffer; key: Buffer }[];
  peerCa?: (Buffer | string)[];
  wildcards?: boolean;
}

/** A bound UDP listener; `batch` sends its datagrams in batches (native addon), absent: one dgram send each. */
interface UdpListener {
  socket: dgram.Socket;
  bound: BoundListener;
  v6: boolean;
  batch?: UdpSendBatch;
}

/** Error raised when a message cannot be sent (connection refused, reset, no listener of that transport). */
export class TransportError extends Error {
  /** SIP status a proxy answers when every branch fails this way (RFC 3261 §16.7 step 5 → 503). */
  readonly status = 503;
}

const ALLOWED_ON_UDP_MAX = 65_507;

/**
 * The transport layer (RFC 3261 §18): UDP, TCP and TLS listeners, the table of
 * open stream flows, parsing of inbound bytes and serialization of outbound
 * messages.
 *
 * Inbound requests get `received` and `rport` stamped on their top Via
 * (§18.2.1, RFC 3581 §4). A malformed request is answered `400` with a reason
 * phrase naming the problem when a response can be formed, and dropped
 * otherwise; nothing thrown by parsing escapes a socket handler.
 *
 * Every message is logged at debug level (`sip recv` / `sip send`) with its
 * transport, addresses, start line, Call-ID and CSeq.
 */
export class TransportLayer {
  private readonly udpSockets: UdpListener[] = [];
  /** The addon's batched UDP send, when used (see {@link TransportOptions.udpSend}). */
  private readonly udpAddon: UdpSendAddon | undefined;
  private readonly servers: { server: net.Server; bound: BoundListener; wss?: WebSocketServer }[] = [];
  private readonly flows = new Map<string, StreamFlow | WsFlow>();
  /** The JSON of each open stream flow's Source for mesh hand-offs (one entry per flow, gone with it). */
  private readonly flowSourceTexts = new WeakMap<StreamFlow | WsFlow, string>();
  /** "transport|address|port" of the remote end → flow id. */
  private readonly flowsByRemote = new Map<string, string>();
  private readonly pendingConnects = new Map<string, Promise<StreamFlow>>();
  private bound: BoundListener[] = [];
  /** Flow id → identities of its verified client certificate (TLS/WSS flows that presented one). */
  private readonly flowIdentities = new Map<string, string[]>();
  /** Flow id → the verified peer certificate of a TLS flow (either direction). */
  private readonly flowCertificates = new Map<string, tls.PeerCertificate>();
  /** Flow id → the "transport|address|port" alias key a peer asked for (RFC 5923 §5), one per flow. */
  private readonly flowAliases = new Map<string, string>();
  /** Flow id → who wants to hear when it closes (client transactions waiting for an answer). */
  private readonly closeListeners = new Map<string, Set<() => void>>();
  /** TLS listeners, for certificate reload. */
  private readonly tlsServers: tls.Server[] = [];
  /** Our certificates by domain (SNI), rebuilt by setTlsMaterial. */
  private sniContexts = new Map<string, tls.SecureContext>();
  private tlsMaterial: TlsMaterial | undefined;
  private nextFlow = 1;
  private localAddresses = new Set<string>();
  private readonly log: Logger;
  /** Counts since start (the periodic summary line reports their increase). */
  readonly counters = { droppedBeforeParse: 0, malformed: 0, handedOff: 0, handedIn: 0, connectionsRefused: 0, udpSendFailed: 0 };
  /** Flows held by the other workers (empty with one worker). */
  private readonly remote = new RemoteFlows();
  private readonly mesh: WorkerMesh | undefined;
  /** Called for every well-formed inbound message. */
  onMessage: (inbound: Inbound) => void = () => {};

  constructor(private readonly opts: TransportOptions) {
    this.log = opts.logger.child({ component: 'transport' });
    if (opts.tls) this.setTlsMaterial(opts.tls);
    const udpSend = chooseUdpSend(opts.udpSend);
    if ('addon' in udpSend) this.udpAddon = udpSend.addon;
    else if (opts.udpSend === undefined) this.log.info({ reason: udpSend.reason }, 'SIP UDP sends one datagram at a time (node:dgram)');
    this.mesh = opts.mesh && opts.mesh.count > 1 ? opts.mesh : undefined;
    if (this.mesh) this.joinMesh(this.mesh);
  }

  /** Handlers of the mesh channels the transport uses: messages handed to us, writes on our flows, flow announcements. */
  private joinMesh(mesh: WorkerMesh): void {
    // A message handed to us: [the JSON of its Source, its bytes] (see receive).
    mesh.on('sip.in', (from, p) => {
      if (!isTextAndBytes(p)) return void this.log.debug({ from }, 'malformed sip.in hand-off dropped');
      this.counters.handedIn++;
      this.receive(p[1], JSON.parse(p[0]) as Source, true);
    });
    // Bytes to write on one of our flows: [flow id, bytes] (see sendWire).
    mesh.on('flow.write', (from, p) => {
      if (!isTextAndBytes(p)) return void this.log.debug({ from }, 'malformed flow.write dropped');
      const [flowId, data] = p;
      const flow = this.flows.get(flowId);
      if (!flow || flow.closed || !flow.write(data)) this.log.debug({ flow: flowId }, 'write for a closed flow dropped');
    });
    mesh.on('flow.destroy', (_from, p) => this.flows.get(p as string)?.destroy());
    mesh.on('flow.open', (from, p) => {
      if (!this.remote.add(from, p as FlowAnnouncement)) this.log.warn({ worker: from }, 'remote flow table full: flow not recorded');
    });
    mesh.on('flow.close', (_from, p) => this.remoteFlowClosed(p as string));
    // A worker that went away took its flows with it; one that (re)connects learns ours.
    mesh.onPeerChange((worker, up) => {
      if (up) {
        for (const f of this.flows.values()) if (!f.closed) mesh.send(worker, 'flow.open', announcement(f));
        return;
      }
      for (const id of this.remote.dropWorker(worker)) this.remoteFlowClosed(id);
    });
  }

  private remoteFlowClosed(flowId: string): void {
    this.remote.delete(flowId);
    const listeners = this.closeListeners.get(flowId);
    this.closeListeners.delete(flowId);
    for (const l of listeners ?? []) l();
  }

  /**
   * Replace certificates, keys and CAs (certificate renewal): listeners use
   * them for new handshakes at once, established connections keep theirs, and
   * new outgoing connections present the new certificate.
   */
  setTlsMaterial(material: TlsMaterial): void {
    this.tlsMaterial = material;
    const contexts = new Map<string, tls.SecureContext>();
    for (const c of material.certificates ?? []) {
      contexts.set(c.domain.toLowerCase(), tls.createSecureContext({ cert: c.cert, key: c.key, ca: this.listenerCa() }));
    }
    this.sniContexts = contexts;
    for (const server of this.tlsServers) server.setSecureContext({ cert: material.cert, key: material.key, ca: this.listenerCa() });
  }

  /** CAs a listener verifies client certificates against: device CAs and peer-domain CAs; undefined when none. */
  private listenerCa(): (Buffer | string)[] | undefined {
    const m = this.tlsMaterial;
    const all = [...(m?.ca ?? []), ...(m?.peerCa ?? [])];
    return all.length ? all : undefined;
  }

  /**
   * Call `listener` once when flow `flowId` closes (a client transaction
   * waiting for its answer, RFC 3263 §4.3); returns the function that cancels
   * the call. A flow already closed calls it on the next tick.
   */
  onFlowClosed(flowId: string, listener: () => void): () => void {
    if (!this.flows.has(flowId) && !this.remote.get(flowId)) {
      const t = setImmediate(listener);
      return () => clearImmediate(t);
    }
    let set = this.closeListeners.get(flowId);
    if (!set) this.closeListeners.set(flowId, (set = new Set()));
    set.add(listener);
    return () => set.delete(listener);
  }

  /**
   * Bind every listener. IPv6 listeners are IPv6-only (IPV6_V6ONLY), so an
   * IPv4 and an IPv6 listener can share a port. An IPv6 listener on a host
   * without IPv6 (see isIPv6Unavailable) is skipped with a warning, so the
   * default listeners (IPv4 and IPv6) start anywhere.
   * Rejects with an Error naming the listener when a port cannot be bound, or
   * when no listener is left.
   */
  async start(): Promise<void> {
    this.localAddresses = new Set(['127.0.0.1', '::1', 'localhost', ...hostAddresses()]);
    if (this.opts.advertisedHost) this.localAddresses.add(this.opts.advertisedHost.toLowerCase());
    for (const configured of this.opts.listen) {
      const spec = { ...configured, host: stripBrackets(configured.host) };
      try {
        if (spec.transport === 'udp') await this.listenUdp(spec, this.opts.udpSockets?.get(udpListenKey(configured.host, configured.port)));
        else await this.listenStream(spec);
      } catch (err) {
        if (isIPv6Unavailable(spec.host, err)) {
          this.log.warn({ transport: spec.transport, listen: formatHostPort(spec.host, spec.port), err: (err as Error).message }, 'IPv6 unavailable on this host: listener skipped');
          continue;
        }
        await this.stop();
        throw new Error(`cannot listen on ${spec.transport} ${formatHostPort(spec.host, spec.port)}: ${(err as Error).message}`);
      }
    }
    if (this.opts.listen.length > 0 && this.bound.length === 0) throw new Error('no SIP listener could be bound (IPv6 unavailable and no IPv4 listener)');
  }

  /** Close listeners and every flow. */
  async stop(): Promise<void> {
    for (const f of this.flows.values()) f.destroy();
    this.flows.clear();
    this.flowsByRemote.clear();
    for (const u of this.udpSockets) u.batch?.close();
    await Promise.all([
      ...this.udpSockets.map((u) => new Promise<void>((r) => u.socket.close(() => r()))),
      ...this.servers.map((s) => {
        s.wss?.close();
        return new Promise<void>((r) => s.server.close(() => r()));
      }),
    ]);
    this.udpSockets.length = 0;
    this.servers.length = 0;
    this.tlsServers.length = 0;
    this.bound = [];
  }

  /** Listeners as bound (port 0 resolved), UDP first; the same array until listeners change. */
  listeners(): readonly BoundListener[] {
    return this.bound;
  }

  /**
   * The listener used for sending over `transport`: the first configured one
   * of the address family of `address` (an IPv6 destination gets the IPv6
   * listener, so Via and Record-Route name an address it can reach), else the
   * first of that transport; undefined when there is none.
   */
  listenerFor(transport: TransportName, address?: string): BoundListener | undefined {
    // Every forwarded request asks, several times: no list is built (listeners are a handful).
    const v6 = address !== undefined && address.includes(':');
    let first: BoundListener | undefined;
    for (const l of this.bound) {
      if (l.transport !== transport) continue;
      if (address === undefined || l.address.includes(':') === v6) return l;
      first ??= l;
    }
    return first;
  }

  /** The listener a message arrived on (transport, local port and address family of `source`), or undefined. */
  listenerOf(source: Source): BoundListener | undefined {
    const v6 = source.localAddress.includes(':');
    const list = this.listeners().filter((l) => l.transport === source.transport && l.port === source.localPort);
    return list.find((l) => l.address.includes(':') === v6) ?? list[0];
  }

  /**
   * True when host (and port, if given) names this server: one of its
   * addresses or the advertised host, on one of its listening ports
   * (RFC 3261 §16.4 "a value the proxy placed into a Record-Route").
   */
  isLocal(host: string, port?: number): boolean {
    const h = host.replace(/^\[|\]$/g, '').toLowerCase();
    const listeners = this.listeners();
    const addrOk =
      this.localAddresses.has(h) ||
      listeners.some((l) => l.advertisedHost.toLowerCase() === h || l.address === h);
    if (!addrOk) return false;
    return port === undefined || listeners.some((l) => l.port === port);
  }

  /**
   * Serialize and send a message. Stream destinations use `dest.flowId` when
   * that flow is open, else an open flow to the same remote address, else a new
   * connection (TLS without certificate verification of the remote UA, as
   * phones present no server certificates worth checking).
   *
   * @throws TransportError when no listener of that transport exists or the connection fails.
   * @returns the flow id used (streams) or undefined (UDP).
   */
  async send(msg: SipMessage, dest: Destination): Promise<string | undefined> {
    return this.sendWire(serializeMessage(msg), dest, msg);
  }

  /**
   * Send bytes already serialized, as {@link send} does (a retransmitted final
   * response kept as bytes). `msg`, when given, is what they encode, for the debug log.
   * @throws TransportError as {@link send}.
   */
  async sendWire(data: Buffer, dest: Destination, msg?: SipMessage): Promise<string | undefined> {
    if (msg) this.opts.onSend?.(msg);
    if (dest.transport === 'udp') {
      const sock = this.udpSocketFor(dest.address);
      if (!sock) throw new TransportError(`no UDP listener for ${dest.address}`);
      if (data.length > ALLOWED_ON_UDP_MAX) throw new TransportError('message too large for UDP');
      this.logMessage('sip send', msg ?? data, dest.transport, dest.address, dest.port, sock.bound.address, sock.bound.port);
      if (sock.batch) sock.batch.send(data, dest.port, stripBrackets(dest.address));
      else sock.socket.send(data, dest.port, stripBrackets(dest.address), (err) => err && this.udpSendFailed(err.message, dest.address, dest.port));
      return undefined;
    }
    let flow: StreamFlow | WsFlow | undefined = dest.flowId ? this.flows.get(dest.flowId) : undefined;
    if (!flow || flow.closed) flow = this.findFlow(dest.transport, dest.address, dest.port);
    // A flow another worker holds (never for a domain's verified TLS: that connection must be checked here).
    if (!flow && this.mesh && !dest.tlsName) {
      const remote = (dest.flowId !== undefined ? this.remote.get(dest.flowId) : undefined) ?? this.remote.find(dest.transport, stripBrackets(dest.address), dest.port);
      if (remote) {
        this.logMessage('sip send', msg ?? data, remote.transport, remote.remoteAddress, remote.remotePort, remote.localAddress, remote.localPort);
        this.mesh.send(remote.worker, 'flow.write', [remote.id, data] satisfies TextAndBytes);
        return remote.id;
      }
    }
    // A flow to another domain is reused only when its verified certificate names that domain.
    if (flow && dest.tlsName && !this.flowNames(flow.id, dest.tlsName)) flow = undefined;
    if (!flow) {
      if (isWebSocket(dest.transport)) throw new TransportError(`no open WebSocket flow to ${formatHostPort(dest.address, dest.port)}`);
      flow = await this.connect(dest);
    }
    this.logMessage('sip send', msg ?? data, flow.transport, flow.remoteAddress, flow.remotePort, flow.localAddress, flow.localPort);
    if (!flow.write(data)) throw new TransportError(`connection to ${formatHostPort(dest.address, dest.port)} closed`);
    return flow.id;
  }

  /** True when a stream flow to that remote address and port is open (a connection the UA opened, RFC 5626 §5.3). */
  hasFlowTo(transport: TransportName, address: string, port: number): boolean {
    return this.findFlow(transport, address, port) !== undefined || this.remote.find(transport, stripBrackets(address), port) !== undefined;
  }

  /** Close a flow at once (tests, and RFC 5626 failover when a flow is known dead). */
  destroyFlow(flowId: string): void {
    const flow = this.flows.get(flowId);
    if (flow) return flow.destroy();
    const remote = this.remote.get(flowId);
    if (remote) this.mesh?.send(remote.worker, 'flow.destroy', flowId);
  }

  /** True when the verified certificate of a flow names SIP domain `domain` (RFC 5922 §7). */
  private flowNames(flowId: string, domain: string): boolean {
    const cert = this.flowCertificates.get(flowId);
    return cert !== undefined && certificateMatchesSipDomain(cert, domain, { wildcards: this.tlsMaterial?.wildcards });
  }

  private findFlow(transport: TransportName, address: string, port: number): StreamFlow | WsFlow | undefined {
    const id = this.flowsByRemote.get(`${transport}|${stripBrackets(address)}|${port}`);
    const f = id ? this.flows.get(id) : undefined;
    return f && !f.closed ? f : undefined;
  }

  /**
   * Batched UDP sends since start, summed over the UDP listeners: datagrams sent by sendmmsg, sendmmsg
   * calls, datagrams sent one at a time by node:dgram from a batching listener (full socket buffer, host
   * names). All 0 when sends are not batched ({@link TransportOptions.udpSend}).
   */
  udpBatchStats(): { batched: number; calls: number; viaDgram: number } {
    const sum = { batched: 0, calls: 0, viaDgram: 0 };
    for (const u of this.udpSockets) {
      if (!u.batch) continue;
      sum.batched += u.batch.counters.batched;
      sum.calls += u.batch.counters.calls;
      sum.viaDgram += u.batch.counters.viaDgram;
    }
    return sum;
  }

  /** A datagram that could not be sent (ICMP error reported, no route, too big, socket closed): counted, logged at debug. */
  private udpSendFailed(err: string, address: string, port: number): void {
    this.counters.udpSendFailed++;
    this.log.debug({ err, to: formatHostPort(address, port) }, 'udp send failed');
  }

  private udpSocketFor(address: string): UdpListener | undefined {
    const v6 = address.includes(':');
    return this.udpSockets.find((u) => u.v6 === v6) ?? this.udpSockets[0];
  }

  /** Listen on UDP `spec`: on `given` (bound already) or a socket bound here. */
  private async listenUdp(spec: ListenSpec, given: dgram.Socket | undefined): Promise<void> {
    const v6 = spec.host.includes(':');
    const socket = given ?? (await bindUdp(spec.host, spec.port, v6));
    socket.on('error', (err) => this.log.warn({ err: err.message }, 'udp socket error'));
    const addr = socket.address();
    if (this.opts.udpReceiveBufferBytes !== undefined) setReceiveBuffer(socket, this.opts.udpReceiveBufferBytes, formatHostPort(addr.address, addr.port), this.log);
    const bound: BoundListener = { transport: 'udp', address: addr.address, port: addr.port, advertisedHost: this.advertise(addr.address) };
    socket.on('message', (data, rinfo) => {
      if (isStunDatagram(data)) {
        const res = stunKeepaliveResponse(data, normalizeAddress(rinfo.address), rinfo.port);
        if (res) socket.send(res, rinfo.port, rinfo.address);
        return;
      }
      const source: Source = {
        transport: 'udp',
        remoteAddress: normalizeAddress(rinfo.address),
        remotePort: rinfo.port,
        localAddress: bound.address,
        localPort: bound.port,
      };
      this.receive(data, source);
    });
    const fd = this.udpAddon ? udpDescriptorOf(socket) : undefined;
    const batch = fd !== undefined ? new UdpSendBatch(socket, fd, this.udpAddon!, (err, a, p) => this.udpSendFailed(err, a, p)) : undefined;
    if (this.udpAddon && !batch) this.log.warn({ listen: formatHostPort(bound.address, bound.port) }, 'UDP socket descriptor not reachable: this listener sends through node:dgram');
    this.udpSockets.push({ socket, bound, v6, batch });
    this.bound = [...this.udpSockets.map((u) => u.bound), ...this.servers.map((x) => x.bound)];
  }

  private async listenStream(spec: ListenSpec): Promise<void> {
    const onConnection = (socket: net.Socket) => {
      const flow = this.adopt(socket, spec.transport);
      if (spec.transport === 'tls' && !flow.closed) this.notePeerCertificate(socket, flow.id);
    };
    let server: net.Server;
    let wss: WebSocketServer | undefined;
    if (spec.transport === 'tls' || spec.transport === 'wss') {
      if (!this.opts.tls) throw new Error(`${spec.transport.toUpperCase()} listener without certificate`);
      const material = this.tlsMaterial!;
      const options: tls.TlsOptions = {
        cert: material.cert,
        key: material.key,
        minVersion: 'TLSv1.2' as const,
        // RFC 5922 §7 / RFC 6066 §3: the certificate of the domain the client names, else the default one.
        SNICallback: (name, cb) => cb(null, this.sniContexts.get(name.toLowerCase())),
      };
      // Client certificates: verified against the device CAs (sip.tls.ca) and the peer-domain CAs (federation).
      const clientCert = spec.clientCert ?? 'none';
      const ca = this.listenerCa();
      if (clientCert !== 'none' && ca) {
        options.requestCert = true;
        options.rejectUnauthorized = clientCert === 'required';
        options.ca = ca;
      } else if (clientCert === 'required') {
        throw new Error(`${spec.transport.toUpperCase()} listener requires client certificates but no CA is configured`);
      }
      server = spec.transport === 'tls' ? tls.createServer(options, onConnection) : https.createServer(options);
      this.tlsServers.push(server as tls.Server);
      server.on('tlsClientError', (err) => {
        this.opts.onTlsHandshake?.(false);
        this.log.debug({ err: err.message }, 'tls handshake failed');
      });
      server.on('secureConnection', () => this.opts.onTlsHandshake?.(true));
    } else if (spec.transport === 'ws') {
      server = http.createServer();
    } else {
      server = net.createServer(onConnection);
    }
    if (isWebSocket(spec.transport)) {
      // RFC 7118 §4.1: the handshake must negotiate the "sip" subprotocol.
      wss = new WebSocketServer({
        server: server as http.Server,
        maxPayload: this.opts.limits.maxMessageBytes,
        handleProtocols: (protocols) => (protocols.has('sip') ? 'sip' : false),
        verifyClient: (info: { req: http.IncomingMessage }) =>
          (info.req.headers['sec-websocket-protocol'] ?? '').split(',').some((p) => p.trim().toLowerCase() === 'sip'),
      });
      wss.on('connection', (ws, req) => {
        const flow = this.adoptWs(ws, req.socket, spec.transport);
        this.notePeerCertificate(req.socket, flow.id);
      });
      wss.on('error', (err) => this.log.warn({ err: err.message }, 'websocket listener error'));
    }
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ port: spec.port, host: spec.host, ipv6Only: spec.host.includes(':') }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => this.log.warn({ err: err.message }, 'listener error'));
    server.maxConnections = this.opts.maxConnectionsPerListener ?? DEFAULT_MAX_CONNECTIONS;
    server.on('drop', () => this.counters.connectionsRefused++);
    const addr = server.address() as net.AddressInfo;
    this.servers.push({ server, wss, bound: { transport: spec.transport, address: addr.address, port: addr.port, advertisedHost: this.advertise(addr.address) } });
    this.bound = [...this.udpSockets.map((u) => u.bound), ...this.servers.map((x) => x.bound)];
  }

  private adoptWs(ws: import('ws').WebSocket, socket: net.Socket, transport: TransportName): WsFlow {
    const id = this.newFlowId(transport);
    const flow = new WsFlow(
      ws,
      id,
      transport,
      socket,
      (data, f) => this.onFrame({ type: 'message', data }, f),
      (f) => this.forgetFlow(f),
      this.opts.idleTimeoutMs,
      this.opts.streamBounds,
    );
    this.registerFlow(flow);
    return flow;
  }

  /** `tcp-7`; with several workers `tcp-w1-7` (unique in the instance: the worker's index). */
  private newFlowId(transport: TransportName): string {
    return this.mesh ? `${transport}-w${this.mesh.self}-${this.nextFlow++}` : `${transport}-${this.nextFlow++}`;
  }

  private registerFlow(flow: StreamFlow | WsFlow): void {
    this.flows.set(flow.id, flow);
    this.mesh?.broadcast('flow.open', announcement(flow));
    this.flowsByRemote.set(`${flow.transport}|${flow.remoteAddress}|${flow.remotePort}`, flow.id);
    this.log.debug({ flow: flow.id, remote: formatHostPort(flow.remoteAddress, flow.remotePort) }, 'flow opened');
  }

  private forgetFlow(f: StreamFlow | WsFlow): void {
    this.flows.delete(f.id);
    this.mesh?.broadcast('flow.close', f.id);
    this.flowIdentities.delete(f.id);
    this.flowCertificates.delete(f.id);
    const alias = this.flowAliases.get(f.id);
    if (alias !== undefined && this.flowsByRemote.get(alias) === f.id) this.flowsByRemote.delete(alias);
    this.flowAliases.delete(f.id);
    const listeners = this.closeListeners.get(f.id);
    this.closeListeners.delete(f.id);
    for (const l of listeners ?? []) l();
    const key = `${f.transport}|${f.remoteAddress}|${f.remotePort}`;
    if (this.flowsByRemote.get(key) === f.id) this.flowsByRemote.delete(key);
    this.log.debug({ flow: f.id, remote: formatHostPort(f.remoteAddress, f.remotePort) }, 'flow closed');
  }

  private adopt(socket: net.Socket, transport: TransportName): StreamFlow {
    const id = this.newFlowId(transport);
    const flow = new StreamFlow(
      socket,
      transport,
      id,
      this.opts.limits,
      (ev, f) => this.onFrame(ev, f),
      (f) => this.forgetFlow(f),
      this.opts.idleTimeoutMs,
      this.opts.streamBounds,
    );
    this.registerFlow(flow);
    return flow;
  }

  /**
   * Remember the identities of a verified client certificate of an accepted
   * TLS connection (RFC 5922 §7.1-style SAN URIs); unverified or absent
   * certificates name nobody. Called for accepted connections only.
   */
  private notePeerCertificate(socket: net.Socket, flowId: string): void {
    if (!(socket instanceof tls.TLSSocket)) return;
    const cert = socket.getPeerCertificate();
    if (!cert || Object.keys(cert).length === 0) return;
    if (!socket.authorized) {
      this.log.debug({ flow: flowId, err: String(socket.authorizationError) }, 'client certificate not verified');
      return;
    }
    this.flowCertificates.set(flowId, cert);
    const domains = sipDomainIdentities(cert);
    if (domains.sipUris.length || domains.dnsNames.length) {
      this.log.info(
        { flow: flowId, remote: formatHostPort(normalizeAddress(socket.remoteAddress ?? ''), socket.remotePort ?? 0), peerDomains: [...domains.sipUris, ...domains.dnsNames] },
        'TLS client certificate verified',
      );
    }
    const extract = this.opts.peerIdentities;
    if (!extract) return;
    const ids = extract(cert);
    this.log.debug({ flow: flowId, identities: ids, subject: cert.subject?.CN }, 'client certificate verified');
    if (ids.length) this.flowIdentities.set(flowId, ids);
  }

  private connect(dest: Destination): Promise<StreamFlow> {
    // A connection that verifies a domain is not shared with one that does not (or verifies another).
    const key = `${dest.transport}|${stripBrackets(dest.address)}|${dest.port}|${dest.tlsName ?? ''}`;
    const pending = this.pendingConnects.get(key);
    if (pending) return pending;
    const p = new Promise<StreamFlow>((resolve, reject) => {
      const host = stripBrackets(dest.address);
      // Leave from the address of our listener of that transport, so the peer sees the address our DNS names.
      const listener = this.listenerFor(dest.transport);
      const localAddress = listener && !isWildcardAddress(listener.address) && net.isIP(listener.address) === net.isIP(host) ? listener.address : undefined;
      const socket = dest.transport === 'tls' ? tls.connect(this.tlsClientOptions(dest, host, localAddress)) : net.connect({ host, port: dest.port, localAddress });
      const timer = setTimeout(() => socket.destroy(new Error('connect timeout')), 10_000);
      socket.once(dest.transport === 'tls' ? 'secureConnect' : 'connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        const flow = this.adopt(socket, dest.transport);
        if (dest.tlsName && socket instanceof tls.TLSSocket) {
          const cert = socket.getPeerCertificate();
          this.flowCertificates.set(flow.id, cert);
          this.log.info(
            { flow: flow.id, peerDomain: dest.tlsName, remote: formatHostPort(flow.remoteAddress, flow.remotePort), local: formatHostPort(flow.localAddress, flow.localPort), subject: cert.subject?.CN },
            'inter-domain TLS connection verified',
          );
        }
        resolve(flow);
      });
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(new TransportError(`connect to ${formatHostPort(dest.address, dest.port)} failed: ${err.message}`));
      });
    });
    this.pendingConnects.set(key, p);
    p.finally(() => this.pendingConnects.delete(key)).catch(() => {});
    return p;
  }

  /**
   * Options of an outgoing TLS connection. Always our certificate as client
   * certificate (RFC 5922 §7: peers check it against the From domain). With
   * `tlsName` (another domain): SNI = that domain, the chain must verify
   * against the peer-domain CAs and the certificate must name the domain
   * (RFC 5922 §7.2), else the handshake fails. Without (a UA's contact or a
   * flow token), no verification, as phones present no certificate worth checking.
   */
  private tlsClientOptions(dest: Destination, host: string, localAddress: string | undefined): tls.ConnectionOptions {
    const m = this.tlsMaterial;
    const own = m?.certificates?.find((c) => c.domain === dest.localDomain?.toLowerCase()) ?? m;
    // localAddress is passed on to net.connect (not in the TLS typings).
    const options = { host, port: dest.port, localAddress, minVersion: 'TLSv1.2', cert: own?.cert, key: own?.key } as tls.ConnectionOptions;
    const name = dest.tlsName;
    if (!name) return { ...options, rejectUnauthorized: false, servername: net.isIP(host) ? undefined : host };
    return {
      ...options,
      servername: net.isIP(name) ? undefined : name,
      rejectUnauthorized: true,
      ca: m?.peerCa ?? [],
      checkServerIdentity: (_host, cert) =>
        certificateMatchesSipDomain(cert, name, { wildcards: m?.wildcards }) ? undefined : new Error(`certificate does not name ${name} (RFC 5922 §7)`),
    };
  }

  /**
   * RFC 5923 §5: a request over a verified TLS flow whose top Via carries
   * `alias` makes the flow usable for requests to the Via's sent-by (one alias per flow).
   */
  private noteAlias(msg: SipMessage, flowId: string): void {
    if (!this.flowCertificates.has(flowId)) return;
    const top = getHeader(msg, 'via');
    if (!top || !/;\s*alias\b/i.test(top)) return;
    const via = parseVia(splitList(top)[0]);
    if (!('alias' in via.params) || via.transport.toLowerCase() !== 'tls') return;
    const key = `tls|${stripBrackets(via.host).toLowerCase()}|${via.port ?? 5061}`;
    const old = this.flowAliases.get(flowId);
    if (old === key) return;
    if (old !== undefined && this.flowsByRemote.get(old) === flowId) this.flowsByRemote.delete(old);
    this.flowAliases.set(flowId, key);
    this.flowsByRemote.set(key, flowId);
  }

  private onFrame(ev: FramerEvent, flow: StreamFlow | WsFlow): void {
    if (ev.type === 'message') {
      this.receive(
        ev.data,
        {
          transport: flow.transport,
          remoteAddress: flow.remoteAddress,
          remotePort: flow.remotePort,
          localAddress: flow.localAddress,
          localPort: flow.localPort,
          flowId: flow.id,
          tlsIdentities: this.flowIdentities.get(flow.id),
          tlsPeerCertificate: this.flowCertificates.get(flow.id),
        },
        false,
        flow,
      );
    } else if (ev.type === 'error') {
      this.log.debug({ flow: flow.id, err: ev.error.reason }, 'stream framing error');
      const partial = ev.error.partial;
      if (partial?.kind === 'request' && partial.method !== 'ACK') {
        flow.write(serializeMessage(createResponse(partial, ev.error.status, { reason: ev.error.reason })));
      }
    }
  }

  /**
   * Parse one datagram or frame and hand it up; answers 400 for malformed requests.
   * With several workers, a message whose Call-ID another worker owns goes to it
   * unparsed (`sip.in`: the JSON of its Source and its bytes); `flow`, the stream
   * flow it came on, keeps that JSON for the flow's next messages.
   */
  private receive(data: Buffer, source: Source, handedIn = false, flow?: StreamFlow | WsFlow): void {
    if (this.mesh && !handedIn) {
      const owner = callIdOwnerOf(data, this.mesh.count);
      if (owner !== undefined && owner !== this.mesh.self) {
        this.counters.handedOff++;
        this.mesh.send(owner, 'sip.in', [flow ? this.flowSourceText(flow, source) : JSON.stringify(meshSource(source)), data] satisfies TextAndBytes);
        return;
      }
    }
    if (this.opts.dropBeforeParse && startsNewRequest(data) && this.opts.dropBeforeParse()) {
      this.counters.droppedBeforeParse++;
      return;
    }
    let msg: SipMessage;
    try {
      msg = parseMessage(data, this.opts.limits);
    } catch (err) {
      if (!(err instanceof SipParseError)) {
        this.log.error({ err }, 'parser failure');
        return;
      }
      this.counters.malformed++;
      this.log.debug({ remote: formatHostPort(source.remoteAddress, source.remotePort), reason: err.reason }, 'malformed message');
      const partial = err.partial;
      if (partial?.kind === 'request' && partial.method !== 'ACK') this.replyStateless(partial, err.status, err.reason, source);
      return;
    }
    if (msg.kind === 'request') {
      try {
        if (source.flowId && source.transport === 'tls') this.noteAlias(msg, source.flowId);
        stampVia(msg, source);
      } catch (err) {
        if (err instanceof SipParseError && msg.method !== 'ACK') this.replyStateless(msg, 400, err.reason, source);
        return;
      }
    }
    this.logMessage('sip recv', msg, source.transport, source.remoteAddress, source.remotePort, source.localAddress, source.localPort);
    try {
      this.onMessage({ msg, source });
    } catch (err) {
      this.log.error({ err }, 'message handler failed');
    }
  }

  /** The JSON of a stream flow's Source as it crosses the mesh: the same for every message of the flow, made once. */
  private flowSourceText(flow: StreamFlow | WsFlow, source: Source): string {
    let text = this.flowSourceTexts.get(flow);
    if (text === undefined) this.flowSourceTexts.set(flow, (text = JSON.stringify(meshSource(source))));
    return text;
  }

  private replyStateless(req: SipMessage & { kind: 'request' }, status: number, reason: string, source: Source): void {
    try {
      const res = createResponse(req, status, { reason });
      this.send(res, { transport: source.transport, address: source.remoteAddress, port: source.remotePort, flowId: source.flowId }).catch(() => {});
    } catch (err) {
      this.log.debug({ err: (err as Error).message }, 'cannot answer malformed request');
    }
  }

  private advertise(address: string): string {
    if (this.opts.advertisedHost) return this.opts.advertisedHost;
    if (address === '0.0.0.0') return firstExternalAddress('IPv4') ?? '127.0.0.1';
    if (address === '::') return `[${firstExternalAddress('IPv6') ?? '::1'}]`;
    return address.includes(':') ? `[${address}]` : address;
  }

  /** Debug-level trace of one message; addresses are formatted only when debug is on (this runs per message). */
  private logMessage(what: string, msg: SipMessage | Buffer, transport: TransportName, remoteAddress: string, remotePort: number, localAddress: string, localPort: number): void {
    if (!this.log.isLevelEnabled('debug')) return;
    const remote = formatHostPort(remoteAddress, remotePort);
    const local = formatHostPort(localAddress, localPort);
    if (Buffer.isBuffer(msg)) {
      const text = msg.toString('utf8');
      this.log.debug({ transport, remote, local, startLine: text.slice(0, text.indexOf('\r\n')), message: text }, what);
      return;
    }
    this.log.debug(
      {
        transport,
        remote,
        local,
        startLine: msg.kind === 'request' ? `${msg.method} ${msg.uri} SIP/2.0` : `SIP/2.0 ${msg.status} ${msg.reason}`,
        callId: getHeader(msg, 'call-id'),
        cseq: getHeader(msg, 'cseq'),
        message: serializeMessage(msg).toString('utf8'),
      },
      what,
    );
  }
}

/**
 * Add `received` when the top Via's sent-by host differs from the source
 * address (RFC 3261 §18.2.1), and fill an empty `rport` with the source port
 * (RFC 3581 §4). Throws SipParseError for a malformed top Via.
 */
export function stampVia(msg: SipMessage, source: Source): void {
  const idx = msg.headers.findIndex((h) => nameIs(h.name, 'via'));
  if (idx < 0) return;
  const field = msg.headers[idx];
  const top = topVia(msg);
  const rport = 'rport' in top.params;
  if (!rport && stripBrackets(top.host).toLowerCase() === source.remoteAddress.toLowerCase()) return;
  // The parsed Via is shared (sip/parsed-headers.ts): the stamped one is a copy, noted as the new top Via.
  const via: Via = { ...top, params: Object.assign(dict<string | null>(), top.params) };
  via.params.received = source.remoteAddress;
  if (rport) via.params.rport = String(source.remotePort);
  let value = formatVia(via);
  if (field.value.indexOf(',') >= 0) {
    const parts = splitList(field.value);
    parts[0] = value;
    value = parts.join(', ');
  }
  msg.headers[idx] = { name: field.name, value };
  noteTopVia(msg, value, via);
}

/** What the other workers learn of a flow opened here. */
function announcement(f: StreamFlow | WsFlow): FlowAnnouncement {
  return { id: f.id, transport: f.transport, remoteAddress: f.remoteAddress, remotePort: f.remotePort, localAddress: f.localAddress, localPort: f.localPort };
}

function isWildcardAddress(a: string): boolean {
  return a === '0.0.0.0' || a === '::' || a === '[::]';
}

/**
 * True unless the bytes start (after leading CRLFs) with `SIP/` (a response),
 * `ACK ` or `CANCEL `: the messages that belong to transactions in progress
 * and must never be shed unread.
 */
export function startsNewRequest(data: Buffer): boolean {
  let i = 0;
  while (i < data.length && (data[i] === 0x0d || data[i] === 0x0a)) i++;
  const head = data.toString('latin1', i, i + 7);
  return !(head.startsWith('SIP/') || head.startsWith('ACK ') || head.startsWith('CANCEL '));
}

function stripBrackets(a: string): string {
  return a.startsWith('[') ? a.slice(1, -1) : a;
}


/**
 * True when binding an IPv6 host failed because the host has no IPv6: the
 * address family is not supported (kernel without IPv6), or `::`/`::1`, which
 * every host with IPv6 has, is not available (IPv6 disabled). Any other IPv6
 * address that cannot be bound is a configuration error, not this.
 */
export function isIPv6Unavailable(host: string, err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException)?.code;
  if (!host.includes(':')) return false;
  return code === 'EAFNOSUPPORT' || code === 'EPROTONOSUPPORT' || (code === 'EADDRNOTAVAIL' && (host === '::' || host === '::1'));
}

/** The key of a configured UDP listener (host as configured, brackets kept) in {@link TransportOptions.udpSockets}. */
export function udpListenKey(host: string, port: number): string {
  return `udp|${host}|${port}`;
}

/** A dgram socket bound to host:port (IPv6-only for an IPv6 host). @throws the bind error. */
async function bindUdp(host: string, port: number, v6: boolean): Promise<dgram.Socket> {
  const socket = dgram.createSocket({ type: v6 ? 'udp6' : 'udp4', reuseAddr: false, ipv6Only: v6, lookup: literalFirstLookup });
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(port, host, () => {
      socket.off('error', reject);
      resolve();
    });
  });
  return socket;
}

/**
 * Ask for a UDP socket's receive buffer of `bytes` (SO_RCVBUF). Linux caps the request at net.core.rmem_max
 * and reports twice what it kept (its bookkeeping share, socket(7)), so a size reported below twice the one
 * asked means the cap applied: logged at warn with the sysctl to raise. A refusal is logged too; the socket keeps
 * serving with the kernel's default.
 */
function setReceiveBuffer(socket: dgram.Socket, bytes: number, listen: string, log: Logger): void {
  try {
    socket.setRecvBufferSize(bytes);
    const got = socket.getRecvBufferSize();
    if (got < (process.platform === 'linux' ? 2 * bytes : bytes)) log.warn({ listen, askedBytes: bytes, gotBytes: got }, 'SIP UDP receive buffer smaller than sip.limits.udp_receive_buffer_bytes: raise net.core.rmem_max');
  } catch (err) {
    log.warn({ listen, askedBytes: bytes, err: (err as Error).message }, 'SIP UDP receive buffer not set');
  }
}
