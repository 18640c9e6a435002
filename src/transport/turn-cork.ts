/**
 * Write batching for one stream socket: the writes of one event-loop turn
 * leave together at the end of the turn (one write system call and, over TLS,
 * one record for several messages) instead of one each.
 */
import type { Writable } from 'node:stream';

/**
 * Bytes written in one turn past which they leave at once instead of at the
 * end of the turn: the most one TLS record carries (RFC 8446 §5.1, 2^14 bytes).
 */
export const CORK_FLUSH_BYTES = 16 * 1024;

function endTurn(cork: TurnCork): void {
  cork.flush();
}

/**
 * Corks a socket at the first write of a turn and uncorks it on the next tick
 * (after the turn's synchronous code and the promise continuations it started)
 * or once {@link CORK_FLUSH_BYTES} are waiting. A write is never held past the
 * turn, so batching adds no latency. State: whether the socket is corked and
 * how many bytes wait; at most one cork of the socket is held at a time.
 */
export class TurnCork {
  private corked = false;
  private bytes = 0;

  /** @param onFlush called after each uncork (e.g. to check the write queue against its bounds). */
  constructor(
    private readonly socket: Writable,
    private readonly onFlush?: () => void,
  ) {}

  /** Write `data` (bytes), batched with the other writes of this turn; returns what `socket.write` returns. */
  write(data: Buffer): boolean {
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(endTurn, this);
    }
    const ok = this.socket.write(data);
    this.bytes += data.length;
    if (this.bytes >= CORK_FLUSH_BYTES) this.flush();
    return ok;
  }

  /** Hand what waits to the socket now; nothing when no write is waiting. */
  flush(): void {
    if (!this.corked) return;
    this.corked = false;
    this.bytes = 0;
    this.socket.uncork();
    this.onFlush?.();
  }
}
