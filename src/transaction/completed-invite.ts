/**
 * An INVITE server transaction after its 3xx–6xx final response (RFC 3261
 * §17.2.1, Figure 7: Completed, then Confirmed once the ACK arrives), kept as
 * only what retransmission needs: the transaction key, the serialized final
 * response (in its own memory, not a view of a larger buffer) and its
 * destination. The request, the parsed response and the TU's objects are not
 * referenced, so they are garbage as soon as the TU lets go of them.
 *
 * One timer at a time: in Completed it fires for Timer G (retransmit the
 * response at T1, 2·T1, … capped at T2; UDP only) and Timer H (64·T1: give up
 * waiting for the ACK); in Confirmed for Timer I (T4 on UDP, 0 on streams).
 */
import type { Destination } from '../transport/types.js';
import type { TimerConfig } from './timers.js';

/** Sends the held response bytes again. */
export type WireSend = (wire: Buffer, dest: Destination) => void;

/**
 * One INVITE server transaction in Completed or Confirmed (RFC 3261 §17.2.1;
 * see the module comment): holds `key`, the final response's wire bytes and
 * its destination, retransmits them on Timer G (UDP) and on a retransmitted
 * INVITE, and ends on Timer H (no ACK: 64·T1 ms) or Timer I (T4 ms on UDP, 0 on
 * streams). Throws nothing; a failed send is the sender's to report.
 */
export class CompletedInvite {
  state: 'completed' | 'confirmed' | 'terminated' = 'completed';
  private timer: NodeJS.Timeout | undefined;
  /** Time since the final response by this transaction's own schedule, ms. */
  private atMs = 0;
  private gIntervalMs: number;
  private nextGMs: number;
  private readonly hMs: number;

  /**
   * Starts Timer G (unless `reliable`) and Timer H.
   * @param key transaction key (§17.2.3), not pinning a larger string.
   * @param wire the final response as sent, in memory of its own.
   * @param dest where it went.
   * @param reliable true on TCP, TLS, WS: no Timer G, Timer I = 0.
   * @param onTerminated called once when the transaction ends (Timer H or I).
   */
  constructor(
    readonly key: string,
    private readonly wire: Buffer,
    private readonly dest: Destination,
    private readonly reliable: boolean,
    private readonly timers: TimerConfig,
    private readonly send: WireSend,
    private readonly onTerminated: (ci: CompletedInvite) => void,
  ) {
    this.gIntervalMs = timers.t1;
    this.nextGMs = reliable ? Infinity : timers.t1;
    this.hMs = 64 * timers.t1;
    this.arm();
  }

  /** A retransmitted INVITE: in Completed the final response goes again; in Confirmed it is absorbed. */
  onRetransmission(): void {
    if (this.state === 'completed') this.send(this.wire, this.dest);
  }

  /** The ACK (same key): Completed → Confirmed, Timer G and H stop, Timer I starts; later ACKs are absorbed. */
  onAck(): void {
    if (this.state !== 'completed') return;
    this.state = 'confirmed';
    clearTimeout(this.timer);
    this.timer = setTimeout(this.terminate, this.reliable ? 0 : this.timers.t4);
    this.timer.unref();
  }

  /** Stop the timer and forget the transaction. */
  readonly terminate = (): void => {
    if (this.state === 'terminated') return;
    this.state = 'terminated';
    clearTimeout(this.timer);
    this.timer = undefined;
    this.onTerminated(this);
  };

  private arm(): void {
    const next = Math.min(this.nextGMs, this.hMs);
    this.timer = setTimeout(this.fire, next - this.atMs);
    this.timer.unref();
  }

  private readonly fire = (): void => {
    this.atMs = Math.min(this.nextGMs, this.hMs);
    if (this.atMs >= this.hMs) {
      this.terminate();
      return;
    }
    this.send(this.wire, this.dest);
    this.gIntervalMs = Math.min(2 * this.gIntervalMs, this.timers.t2);
    this.nextGMs = this.atMs + this.gIntervalMs;
    this.arm();
  };
}
