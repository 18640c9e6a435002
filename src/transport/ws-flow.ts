import type { WebSocket } from 'ws';
import type { Flow, TransportName } from './types.js';
import type { Socket } from 'node:net';
import { normalizeAddress } from './stream-flow.js';
import { DEFAULT_STREAM_BOUNDS, WriteGuard, type StreamBounds } from './backpressure.js';

/**
 * A SIP-over-WebSocket connection (RFC 7118): each WebSocket message carries
 * exactly one SIP message (§5), sent as a text frame when it is valid UTF-8
 * and binary otherwise. A connection idle for `idleTimeoutMs` (default
 * 600 000 ms) is closed; WebSocket pings from the client are answered by `ws`.
 * The connection stops reading / is closed when its write queue passes
 * `bounds` (see backpressure.ts).
 */
export class WsFlow implements Flow {
  closed = false;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  private idleTimer: NodeJS.Timeout | undefined;
  private readonly guard: WriteGuard;

  constructor(
    readonly ws: WebSocket,
    readonly id: string,
    readonly transport: TransportName,
    socket: Socket,
    onMessage: (data: Buffer, flow: WsFlow) => void,
    onClose: (flow: WsFlow) => void,
    private readonly idleTimeoutMs = 600_000,
    bounds: StreamBounds = DEFAULT_STREAM_BOUNDS,
  ) {
    this.guard = new WriteGuard(
      {
        socket,
        queuedBytes: () => ws.bufferedAmount,
        pauseReading: () => ws.pause(),
        resumeReading: () => ws.resume(),
        destroy: () => ws.terminate(),
      },
      bounds,
    );
    this.remoteAddress = normalizeAddress(socket.remoteAddress ?? '');
    this.remotePort = socket.remotePort ?? 0;
    this.localAddress = normalizeAddress(socket.localAddress ?? '');
    this.localPort = socket.localPort ?? 0;
    this.touch();
    ws.on('message', (data, isBinary) => {
      this.touch();
      const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data as ArrayBuffer);
      void isBinary;
      onMessage(buf, this);
    });
    ws.on('error', () => ws.terminate());
    ws.on('close', () => {
      this.closed = true;
      if (this.idleTimer) clearTimeout(this.idleTimer);
      onClose(this);
    });
  }

  /** Send one SIP message as one WebSocket message (RFC 7118 §5: text when it is valid UTF-8, else binary); false when the connection is closed. */
  write(data: Buffer): boolean {
    if (this.closed || this.ws.readyState !== this.ws.OPEN) return false;
    this.touch();
    const text = data.toString('utf8');
    if (Buffer.byteLength(text) === data.length) this.ws.send(text);
    else this.ws.send(data, { binary: true });
    this.guard.afterWrite();
    return true;
  }

  /** Close with code 1000 (normal closure, RFC 6455 §7.4.1). */
  close(): void {
    if (!this.closed) this.ws.close(1000);
  }

  /** Tear the connection down at once. */
  destroy(): void {
    this.ws.terminate();
  }

  private touch(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => this.ws.terminate(), this.idleTimeoutMs);
    this.idleTimer.unref();
  }
}
