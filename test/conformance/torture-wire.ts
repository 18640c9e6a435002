/**
 * Helpers of the RFC 4475 / RFC 5118 wire suite: loading the torture messages
 * as bytes, rewriting every address the server might answer to or contact to
 * loopback, and a one-message UDP/TCP exchange that keeps every response.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import tls from 'node:tls';
import { WebSocket } from 'ws';
import { StreamFramer } from '../../src/sip/stream-framer.js';
import { readFileSync } from 'node:fs';
import { parseMessage } from '../../src/sip/parser.js';
import type { SipMessage } from '../../src/sip/message.js';
import { createResponse } from '../../src/sip/response.js';
import { serializeMessage } from '../../src/sip/serializer.js';

/** Status code of a datagram that starts with `SIP/2.0 NNN `, else undefined. */
export function statusOf(d: Buffer): number | undefined {
  const m = /^SIP\/2\.0 (\d{3})[ \r]/.exec(d.toString('latin1', 0, 16));
  return m ? Number(m[1]) : undefined;
}

/** Bytes of a test vector under test/vectors (copied from the RFCs; see test/vectors/README.md). */
export function vector(path: string): Buffer {
  return readFileSync(new URL(`../vectors/${path}`, import.meta.url));
}

/**
 * An RFC 5118 archive message (LF line ends) in wire form: CRLF line ends, the
 * closing blank line when missing, and Content-Length set to the body's octets
 * (two archive bodies disagree with theirs).
 */
export function vectorCrlf(path: string): Buffer {
  let s = vector(path).toString('latin1').replace(/\r?\n/g, '\r\n');
  let head = s.indexOf('\r\n\r\n');
  if (head < 0) {
    s += s.endsWith('\r\n') ? '\r\n' : '\r\n\r\n';
    head = s.indexOf('\r\n\r\n');
  }
  const bodyLen = s.length - head - 4;
  s = s.slice(0, head).replace(/^(Content-Length|l)[ \t]*:[ \t]*\d+/im, (_m, n: string) => `${n}: ${bodyLen}`) + s.slice(head);
  return Buffer.from(s, 'latin1');
}

/** How to point a message at loopback. */
export interface Rewrite {
  /** UDP/TCP port of the sending UA: the top Via's sent-by becomes <uaHost>:<uaPort> with rport. */
  uaPort: number;
  /** The sending UA's address in the top Via: `127.0.0.1` (default) or `[::1]`. */
  uaHost?: string;
  /** The top Via's transport token (`TLS`, `WS`...); default: left as written. */
  viaTransport?: string;
  /** New Request-URI host[:port] (the part after `@`, or after the scheme when there is no user part). */
  ruriHost?: string;
  /** Every Route URI host[:port] becomes this. */
  routeHost?: string;
  /** The domain `example.com` (as a whole host, not a subdomain) becomes this everywhere in the header section. */
  domain?: string;
}

const VIA_SENT_BY = /^((?:via|v)[ \t]*:[ \t\r\n]*SIP[ \t\r\n]*\/[ \t\r\n]*\d+\.\d+[ \t\r\n]*\/[ \t\r\n]*[A-Za-z0-9-]+[ \t\r\n]+)(\[[^\]]*\](?::\d+)?|[^;,\s]+)/im;
const ROUTE_HOST = /^(route[ \t]*:[ \t\r\n]*<sips?:)([^;>]+)/gim;

/**
 * Rewrite a torture message byte-preservingly (latin1): the top Via's sent-by
 * becomes `<uaHost>:<uaPort>;rport` (so the server answers to the sender and
 * stamps received/rport over any `received` in the message), Route hosts and
 * the Request-URI host as asked. Content-Length is left alone on purpose.
 */
export function toLoopback(raw: Buffer, rw: Rewrite): Buffer {
  let s = raw.toString('latin1');
  const headEnd = s.indexOf('\r\n\r\n');
  let head = headEnd < 0 ? s : s.slice(0, headEnd);
  const tail = headEnd < 0 ? '' : s.slice(headEnd);
  if (!VIA_SENT_BY.test(head)) throw new Error('no top Via to rewrite');
  head = head.replace(VIA_SENT_BY, (_m, pre: string) => {
    const proto = rw.viaTransport ? pre.replace(/[A-Za-z0-9-]+(?=[ \t\r\n]+$)/, rw.viaTransport) : pre;
    return `${proto}${rw.uaHost ?? '127.0.0.1'}:${rw.uaPort};rport`;
  });
  if (rw.domain) head = head.replace(/(?<=[@:])example\.com(?![\w.-])/gi, rw.domain);
  if (rw.routeHost) head = head.replace(ROUTE_HOST, (_m, pre: string) => `${pre}${rw.routeHost}`);
  if (rw.ruriHost) {
    const eol = head.indexOf('\r\n');
    const line = head.slice(0, eol);
    const sp1 = line.indexOf(' ');
    const sp2 = line.lastIndexOf(' ');
    const uri = line.slice(sp1 + 1, sp2);
    const colon = uri.indexOf(':');
    const at = uri.lastIndexOf('@');
    const hostStart = at >= 0 ? at + 1 : colon + 1;
    let hostEnd = hostStart;
    if (uri[hostStart] === '[') hostEnd = uri.indexOf(']', hostStart) + 1;
    while (hostEnd < uri.length && !';?>'.includes(uri[hostEnd])) hostEnd++;
    const newUri = uri.slice(0, hostStart) + rw.ruriHost + uri.slice(hostEnd);
    head = line.slice(0, sp1 + 1) + newUri + line.slice(sp2) + head.slice(eol);
  }
  s = head + tail;
  return Buffer.from(s, 'latin1');
}

const LOOPBACK = /^(127\.0\.0\.1|\[::1\])(:|$)/;

/** Every address in the header section that is not loopback and that the server could send to: top Via, Route, Request-URI. */
export function leftoverAddresses(raw: Buffer): string[] {
  const s = raw.toString('latin1');
  const out: string[] = [];
  const m = VIA_SENT_BY.exec(s);
  if (m && !LOOPBACK.test(m[2])) out.push(`Via ${m[2]}`);
  for (const r of s.matchAll(ROUTE_HOST)) if (!LOOPBACK.test(r[2])) out.push(`Route ${r[2]}`);
  return out;
}

/** What came back for one message: parsed responses/requests in arrival order, and the raw datagrams. */
export interface Exchange {
  messages: SipMessage[];
  raw: Buffer[];
}

/** Waiters for a condition on what a peer has received, re-checked at every arrival. */
class Arrivals {
  private checks: (() => void)[] = [];

  notify(): void {
    for (const c of [...this.checks]) c();
  }

  /** Resolves true as soon as cond() holds (now or after an arrival), false after timeoutMs. */
  until(cond: () => boolean, timeoutMs: number): Promise<boolean> {
    if (cond()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const finish = (ok: boolean): void => {
        clearTimeout(timer);
        this.checks = this.checks.filter((c) => c !== check);
        resolve(ok);
      };
      const check = (): void => {
        if (cond()) finish(true);
      };
      const timer = setTimeout(() => finish(false), timeoutMs);
      this.checks.push(check);
    });
  }
}

/**
 * What a torture sender received: every message as raw bytes and, when it
 * parses, parsed; the status lines read from the raw bytes (responses echoing
 * a malformed header do not parse).
 */
export abstract class ReceivedMessages {
  readonly raw: Buffer[] = [];
  readonly messages: SipMessage[] = [];
  /** Messages received, kept or not. */
  count = 0;
  /** When false, messages are counted (and answered) but not kept: load tests measure the server's heap, not this one's. */
  retain = true;
  private readonly arrivals = new Arrivals();

  /** The local port of the socket or connection the messages are sent from. */
  abstract get port(): number;
  /** Send one message (UDP: to `port` on the peer's loopback address; streams: on the connection). */
  abstract send(data: Buffer, port: number): Promise<void>;
  abstract close(): void;

  /** Keep one received message; returns it parsed, or undefined when it does not parse. */
  protected received(d: Buffer): SipMessage | undefined {
    this.count++;
    if (this.retain) this.raw.push(d);
    let m: SipMessage | undefined;
    try {
      m = parseMessage(d);
      if (this.retain) this.messages.push(m);
    } catch {
      /* kept raw only */
    }
    this.arrivals.notify();
    return m;
  }

  /** Status codes of every response received. */
  statuses(): number[] {
    return this.raw.flatMap((d) => statusOf(d) ?? []);
  }

  /** The first final response's status line, code and reason; with `cseq`, the first final response carrying that CSeq when there is one. */
  final(cseq?: string): { status: number; reason: string; raw: Buffer } | undefined {
    const finals = this.raw.filter((d) => (statusOf(d) ?? 0) >= 200);
    const d = (cseq ? finals.find((x) => x.toString('latin1').includes(`CSeq: ${cseq}\r\n`)) : undefined) ?? finals[0];
    if (!d) return undefined;
    const line = d.toString('utf8', 0, d.indexOf('\r\n'));
    return { status: statusOf(d)!, reason: line.slice(12), raw: d };
  }

  /** Resolves when pred holds for what has arrived, or after timeoutMs (resolving false). */
  until(pred: (p: this) => boolean, timeoutMs: number): Promise<boolean> {
    return this.arrivals.until(() => pred(this), timeoutMs);
  }
}

/** A UDP socket on 127.0.0.1 (or ::1) that keeps every datagram it receives. */
export class UdpPeer extends ReceivedMessages {
  private constructor(
    readonly socket: dgram.Socket,
    readonly host: string,
    autoAnswer: boolean,
  ) {
    super();
    socket.on('message', (d, rinfo) => {
      const m = this.received(d);
      if (autoAnswer && m?.kind === 'request' && m.method !== 'ACK') {
        const res = createResponse(m, m.method === 'INVITE' ? 486 : 200, { toTag: 'peer' });
        socket.send(serializeMessage(res), rinfo.port, rinfo.address);
      }
    });
  }

  /** A socket on an ephemeral loopback port; with autoAnswer, every request but ACK gets 486 (INVITE) or 200 at once. */
  static async open(autoAnswer = true, host = '127.0.0.1'): Promise<UdpPeer> {
    const socket = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
    await new Promise<void>((r) => socket.bind(0, host, () => r()));
    return new UdpPeer(socket, host, autoAnswer);
  }

  get port(): number {
    return this.socket.address().port;
  }

  send(data: Buffer, port: number): Promise<void> {
    return new Promise((r) => this.socket.send(data, port, this.host, () => r()));
  }

  close(): void {
    this.socket.close();
  }
}

/** A TCP or TLS (no certificate check) connection to host:port that keeps every message received, framed by Content-Length. */
export class StreamPeer extends ReceivedMessages {
  closed = false;
  private readonly framer = new StreamFramer();

  private constructor(readonly socket: net.Socket) {
    super();
    socket.on('data', (chunk: Buffer) => {
      for (const ev of this.framer.push(chunk)) if (ev.type === 'message') this.received(ev.data as Buffer);
    });
    socket.on('close', () => (this.closed = true));
    socket.on('error', () => {});
  }

  /** Connect over TLS (`tls` true) or TCP to host (default 127.0.0.1, `::1` for IPv6) and port. */
  static connect(port: number, opts: { tls: boolean; host?: string }): Promise<StreamPeer> {
    const host = opts.host ?? '127.0.0.1';
    return new Promise((resolve, reject) => {
      const s: net.Socket = opts.tls ? tls.connect({ host, port, rejectUnauthorized: false }, () => resolve(new StreamPeer(s))) : net.connect({ host, port }, () => resolve(new StreamPeer(s)));
      s.once('error', reject);
    });
  }

  get port(): number {
    return this.socket.localPort!;
  }

  async send(data: Buffer): Promise<void> {
    this.socket.write(data);
  }

  close(): void {
    this.socket.destroy();
  }
}

/** A SIP-over-WebSocket connection (RFC 7118, subprotocol `sip`) to ws://127.0.0.1:port that keeps every frame received as one message. */
export class WsPeer extends ReceivedMessages {
  private constructor(readonly ws: WebSocket) {
    super();
    ws.on('message', (d: Buffer) => this.received(Buffer.from(d)));
    ws.on('error', () => {});
  }

  static connect(port: number, host = '127.0.0.1'): Promise<WsPeer> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`ws://${host}:${port}/`, 'sip');
      ws.once('open', () => resolve(new WsPeer(ws)));
      ws.once('error', reject);
    });
  }

  get port(): number {
    return (this.ws as unknown as { _socket: net.Socket })._socket.localPort!;
  }

  async send(data: Buffer): Promise<void> {
    this.ws.send(data);
  }

  close(): void {
    this.ws.terminate();
  }
}

/** A TCP connection to 127.0.0.1:port that keeps every byte received and whether the server closed it. */
export class TcpPeer {
  data = Buffer.alloc(0);
  closed = false;
  private readonly arrivals = new Arrivals();

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      this.data = Buffer.concat([this.data, d]);
      this.arrivals.notify();
    });
    socket.on('close', () => {
      this.closed = true;
      this.arrivals.notify();
    });
    socket.on('error', () => {});
  }

  static connect(port: number): Promise<TcpPeer> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ host: '127.0.0.1', port }, () => resolve(new TcpPeer(s)));
      s.once('error', reject);
    });
  }

  get port(): number {
    return this.socket.localPort!;
  }

  write(data: Buffer): void {
    this.socket.write(data);
  }

  /** Resolves when pred holds for what has arrived, or after timeoutMs (resolving false). */
  until(pred: (p: TcpPeer) => boolean, timeoutMs: number): Promise<boolean> {
    return this.arrivals.until(() => pred(this), timeoutMs);
  }

  close(): void {
    this.socket.destroy();
  }
}
