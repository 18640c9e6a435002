/**
 * Write-side backpressure for one stream connection (TCP, TLS, WS, WSS).
 *
 * A peer that sends requests and never reads the answers makes every response
 * wait in the connection's write queue, in this process's memory. So, after
 * each write: past `pauseBytes` queued the connection stops reading (no new
 * requests, so no new responses) until the queue drains; past `closeBytes`, or
 * when it stays paused for `stallMs` without draining, it is torn down.
 * Bytes the kernel already took (socket buffers) do not count: they are
 * bounded by the kernel.
 */
import type { Socket } from 'node:net';

/** `sip.limits` stream bounds. */
export interface StreamBounds {
  /** Queued bytes past which the connection stops reading. Default 262 144 (256 KiB). */
  pauseBytes: number;
  /** Queued bytes past which the connection is closed. Default 4 194 304 (4 MiB). */
  closeBytes: number;
  /** A connection paused this long without draining is closed, ms. Default 10 000. */
  stallMs: number;
}

export const DEFAULT_STREAM_BOUNDS: StreamBounds = { pauseBytes: 256 * 1024, closeBytes: 4 * 1024 * 1024, stallMs: 10_000 };

/** Process-wide counts of backpressure events (the periodic summary line reports their increase). */
export const streamCounters = {
  /** Times a connection stopped reading because its write queue passed `pauseBytes`. */
  paused: 0,
  /** Connections closed because the write queue passed `closeBytes` or stalled for `stallMs`. */
  closed: 0,
};

let maxQueuedBytes = 0;

/** Largest write queue any stream connection had after a write since the previous call, bytes (then restarts from 0). */
export function takeMaxQueuedBytes(): number {
  const m = maxQueuedBytes;
  maxQueuedBytes = 0;
  return m;
}

/** What the guard needs from a connection. */
export interface GuardedStream {
  /** The TCP (or TLS) socket underneath; its 'drain' ends a pause. */
  socket: Socket;
  /** Bytes queued for writing in this process. */
  queuedBytes(): number;
  /** Stop / restart reading. */
  pauseReading(): void;
  resumeReading(): void;
  /** Tear the connection down at once. */
  destroy(): void;
}

/** Watches one connection's write queue; call {@link afterWrite} after every write. */
export class WriteGuard {
  private paused = false;
  private stallTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly stream: GuardedStream,
    private readonly bounds: StreamBounds = DEFAULT_STREAM_BOUNDS,
  ) {
    stream.socket.on('drain', () => this.onDrain());
    stream.socket.once('close', () => this.clearStall());
  }

  /** True while reading is stopped for backpressure. */
  get readingPaused(): boolean {
    return this.paused;
  }

  /** Check the queue after a write: pause reading or close as the bounds say. */
  afterWrite(): void {
    const queued = this.stream.queuedBytes();
    if (queued > maxQueuedBytes) maxQueuedBytes = queued;
    if (queued > this.bounds.closeBytes) {
      streamCounters.closed++;
      this.clearStall();
      this.stream.destroy();
      return;
    }
    if (queued > this.bounds.pauseBytes && !this.paused) {
      this.paused = true;
      streamCounters.paused++;
      this.stream.pauseReading();
      this.stallTimer = setTimeout(() => {
        streamCounters.closed++;
        this.stream.destroy();
      }, this.bounds.stallMs);
      this.stallTimer.unref();
    }
  }

  private onDrain(): void {
    if (!this.paused || this.stream.queuedBytes() > this.bounds.pauseBytes) return;
    this.paused = false;
    this.clearStall();
    this.stream.resumeReading();
  }

  private clearStall(): void {
    if (this.stallTimer) clearTimeout(this.stallTimer);
    this.stallTimer = undefined;
  }
}
