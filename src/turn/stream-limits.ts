/**
 * Bounds on what a TURN stream (a TCP/TLS client connection, or either side
 * of an RFC 6062 data connection) may queue for writing: past
 * `pauseAboveBytes` the stream that feeds it stops being read until the
 * queue drains (socket back-pressure, `writableLength`); a queue that does not
 * drain within `stallCloseMs`, or grows past `closeAboveBytes`, closes the
 * stream. A client that pipelines requests and never reads its answers thus
 * holds at most about `pauseAboveBytes` plus one read's worth of answers.
 */
import type { Duplex } from 'node:stream';

/** Limits of one stream; bytes and ms. */
export interface StreamLimits {
  /** Stop reading the source when the write queue passes this; default 64 KiB. */
  pauseAboveBytes: number;
  /** Close the stream when its write queue passes this; default 1 MiB. */
  closeAboveBytes: number;
  /** Close the stream when a paused write queue has not drained for this long; default 30 000 ms. */
  stallCloseMs: number;
  /**
   * Stop reading a client stream while this many bytes of its messages wait
   * to be handled (answers go out in request order, so one request waiting
   * for a credential lookup holds up those behind it); default 64 KiB.
   */
  pendingRequestBytes: number;
}

/** Defaults of StreamLimits (documented in README.md). */
export const DEFAULT_STREAM_LIMITS: StreamLimits = { pauseAboveBytes: 64 * 1024, closeAboveBytes: 1024 * 1024, stallCloseMs: 30_000, pendingRequestBytes: 64 * 1024 };

/** Counters over every stream of a server (a plain object that metrics can read). */
export interface StreamCounters {
  /** Times a stream stopped being read because the write queue toward its peer passed `pauseAboveBytes`. */
  paused: number;
  /** Streams closed because their write queue passed `closeAboveBytes`. */
  closedOverLimit: number;
  /** Streams closed because their write queue did not drain within `stallCloseMs`. */
  closedStalled: number;
  /** Data toward a stream dropped because its queue was over `pauseAboveBytes` (relayed peer datagrams), packets. */
  dropped: number;
  /** Largest write queue seen on any stream, bytes. */
  maxWriteQueueBytes: number;
  /** Times a client stream stopped being read because `pendingRequestBytes` of its messages waited to be handled. */
  pausedPendingRequests: number;
}

/** A zeroed counter object. */
export function newStreamCounters(): StreamCounters {
  return { paused: 0, closedOverLimit: 0, closedStalled: 0, dropped: 0, maxWriteQueueBytes: 0, pausedPendingRequests: 0 };
}

/**
 * Writes to `sink` under the limits; `source` is the stream whose reading
 * produces those writes (the sink itself for request/answer traffic, the
 * other side of a splice). Both are destroyed when the limits are broken.
 */
export class StreamGuard {
  private stallTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly sink: Duplex,
    private readonly source: Duplex,
    private readonly limits: StreamLimits,
    private readonly counters: StreamCounters,
  ) {
    sink.once('close', () => this.clearStall());
  }

  /** True while the write queue is above `pauseAboveBytes` (callers may drop optional data). */
  get congested(): boolean {
    return this.sink.writableLength > this.limits.pauseAboveBytes;
  }

  /** Writes `data` (unless the sink is gone) and applies the limits. */
  write(data: Buffer): void {
    if (this.sink.destroyed) return;
    this.sink.write(data);
    const queued = this.sink.writableLength;
    if (queued > this.counters.maxWriteQueueBytes) this.counters.maxWriteQueueBytes = queued;
    if (queued > this.limits.closeAboveBytes) {
      this.counters.closedOverLimit++;
      this.close();
      return;
    }
    if (queued > this.limits.pauseAboveBytes && this.stallTimer === undefined) {
      this.counters.paused++;
      this.source.pause();
      this.stallTimer = setTimeout(() => {
        this.stallTimer = undefined;
        this.counters.closedStalled++;
        this.close();
      }, this.limits.stallCloseMs);
      this.sink.once('drain', () => {
        this.clearStall();
        if (!this.source.destroyed) this.source.resume();
      });
    }
  }

  private clearStall(): void {
    if (this.stallTimer) clearTimeout(this.stallTimer);
    this.stallTimer = undefined;
  }

  private close(): void {
    this.clearStall();
    this.sink.destroy();
    this.source.destroy();
  }
}
