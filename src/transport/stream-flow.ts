import type { Socket } from 'node:net';
import { StreamFramer, type FramerEvent } from '../sip/stream-framer.js';
import type { ParseLimits } from '../sip/parser.js';
import type { Flow, TransportName } from './types.js';
import { DEFAULT_STREAM_BOUNDS, WriteGuard, type StreamBounds } from './backpressure.js';
import { TurnCork } from './turn-cork.js';

/** The CRLF pong (RFC 5626 §4.4.1), one buffer for every connection. */
const PONG = Buffer.from('\r\n');

/**
 * One TCP or TLS connection carrying SIP (a flow, RFC 5626 §3): it frames the
 * byte stream into messages by Content-Length (RFC 3261 §18.3) and answers a
 * double-CRLF keepalive ping with a CRLF pong (RFC 5626 §3.5.1).
 *
 * The flow closes itself after `idleTimeoutMs` without traffic (default 600 000 ms),
 * and stops reading / closes when its write queue passes `bounds` (see backpressure.ts).
 */
export class StreamFlow implements Flow {
  readonly id: string;
  readonly transport: TransportName;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  closed = false;
  /** Batches the writes of one turn; the write queue is checked against `bounds` as they leave. */
  private readonly cork: TurnCork;
  private failed = false;
  private readonly framer: StreamFramer;
  private readonly guard: WriteGuard;

  /**
   * @param onFrame called with every complete message (raw bytes) or framing error;
   *   after an error the connection is closed.
   */
  constructor(
    readonly socket: Socket,
    transport: TransportName,
    id: string,
    limits: ParseLimits,
    onFrame: (ev: FramerEvent, flow: StreamFlow) => void,
    onClose: (flow: StreamFlow) => void,
    idleTimeoutMs = 600_000,
    bounds: StreamBounds = DEFAULT_STREAM_BOUNDS,
  ) {
    this.id = id;
    this.transport = transport;
    this.remoteAddress = normalizeAddress(socket.remoteAddress ?? '');
    this.remotePort = socket.remotePort ?? 0;
    this.localAddress = normalizeAddress(socket.localAddress ?? '');
    this.localPort = socket.localPort ?? 0;
    this.framer = new StreamFramer(limits);
    this.guard = new WriteGuard(
      {
        socket,
        queuedBytes: () => socket.writableLength,
        pauseReading: () => socket.pause(),
        resumeReading: () => {
          if (!this.failed) socket.resume();
        },
        destroy: () => socket.destroy(),
      },
      bounds,
    );
    this.cork = new TurnCork(socket, () => {
      if (!socket.destroyed) this.guard.afterWrite();
    });
    socket.setNoDelay(true);
    socket.setTimeout(idleTimeoutMs, () => socket.destroy());
    socket.on('data', (chunk: Buffer) => {
      if (this.failed) return;
      for (const ev of this.framer.push(chunk)) {
        if (ev.type === 'keepalive' && ev.kind === 'ping') this.write(PONG);
        onFrame(ev, this);
        if (ev.type === 'error') {
          // Stop reading; responses to requests already taken may still be written
          // for a moment before the connection closes.
          this.failed = true;
          socket.pause();
          setTimeout(() => socket.end(), 2000).unref();
          return;
        }
      }
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      this.closed = true;
      onClose(this);
    });
  }

  /**
   * Write bytes; false when the connection is already closed. The writes of
   * one event-loop turn (the responses to the messages of one read, the 200s
   * of one batch of stored bindings) leave together when the turn ends: the
   * socket is corked at the first and uncorked at the end of the turn (see
   * turn-cork.ts), so they make one write system call and, over TLS, one
   * record instead of one each. The write queue is checked against the
   * backpressure bounds when they leave.
   */
  write(data: Buffer): boolean {
    if (this.closed || this.socket.destroyed) return false;
    this.cork.write(data);
    return true;
  }

  /** Close the connection (graceful FIN, then destroy after 1000 ms). */
  close(): void {
    if (this.closed) return;
    this.socket.end();
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }

  /** Tear the connection down at once (RST). */
  destroy(): void {
    this.socket.destroy();
  }
}

/** Strip the IPv4-mapped IPv6 prefix Node reports on dual-stack sockets (`::ffff:127.0.0.1` → `127.0.0.1`). */
export function normalizeAddress(a: string): string {
  return a.startsWith('::ffff:') && a.includes('.') ? a.slice(7) : a;
}
