/**
 * Admission control for new server transactions: past capacity the server
 * answers `503 Service Unavailable` with `Retry-After` (RFC 3261 §21.5.4)
 * instead of letting requests queue until clients retransmit, while
 * transactions in progress (retransmissions, ACK, CANCEL, responses) go on.
 *
 * A new request is refused when, in this order:
 * 1. the server holds `maxTransactions` transactions (including completed ones
 *    waiting for Timer J) or `maxPendingTransactions` awaiting their final response;
 * 2. it carries no credentials and the `maxNewPerS` ceiling (token bucket) is spent;
 * 3. the event loop lags more than `lagMs`;
 * 4. it carries no credentials and falls outside the admitted share, which
 *    shrinks while event-loop utilisation stays above `targetUtilization` and
 *    grows back below it.
 * A request with Authorization/Proxy-Authorization finishes an exchange whose
 * challenge the server already paid for, so 2 and 4 spare it: goodput stays
 * near capacity instead of half of it.
 */
import type { EventLoopLoad } from '../transport/event-loop-load.js';

/** `sip.overload` settings. */
export interface AdmissionOptions {
  /** Event-loop lag above which every new transaction gets 503, ms (0 = off). Default 200. */
  lagMs: number;
  /** Lag above which new requests are dropped before parsing, ms (0 = off). Default 1000. */
  dropLagMs: number;
  /** Utilisation (0–1) the admitted share steers to; 1 = off. Default 0.95. */
  targetUtilization: number;
  /** Most server transactions awaiting a final response. Default 10 000. */
  maxPendingTransactions: number;
  /** Most server transactions held, completed ones included. Default 200 000. */
  maxTransactions: number;
  /** Most new requests without credentials per second (0 = no ceiling). Default 0. */
  maxNewPerS: number;
  /** Retry-After value of the 503, s. Default 5. */
  retryAfterS: number;
}

export const DEFAULT_ADMISSION: AdmissionOptions = {
  lagMs: 200,
  dropLagMs: 1000,
  targetUtilization: 0.95,
  maxPendingTransactions: 10_000,
  maxTransactions: 200_000,
  maxNewPerS: 0,
  retryAfterS: 5,
};

/** Why a request was refused (the summary line counts each). */
export type RefusalReason = 'transactions' | 'pending' | 'rate' | 'lag' | 'share';

/** Decides, per new request, whether it starts a transaction or gets 503. */
export class Admission {
  /** Share (0.05–1) of new requests without credentials admitted right now. */
  share = 1;
  private tokens: number;
  private lastRefillMs = performance.now();
  private readonly unsubscribe: () => void;

  constructor(
    readonly opts: AdmissionOptions,
    private readonly load: EventLoopLoad,
    private readonly random: () => number = Math.random,
  ) {
    this.tokens = opts.maxNewPerS;
    this.unsubscribe = load.onSample(() => this.adapt());
  }

  /**
   * Decide for one new request.
   * @param credentialed the request carries Authorization or Proxy-Authorization.
   * @param pending server transactions awaiting their final response.
   * @param held server transactions held in all (completed included).
   * @returns undefined to admit, else why it is refused.
   */
  check(credentialed: boolean, pending: number, held: number): RefusalReason | undefined {
    const o = this.opts;
    if (held >= o.maxTransactions) return 'transactions';
    if (pending >= o.maxPendingTransactions) return 'pending';
    if (!credentialed && o.maxNewPerS > 0 && !this.takeToken()) return 'rate';
    if (o.lagMs > 0 && this.load.lagMs > o.lagMs) return 'lag';
    if (!credentialed && this.share < 1 && this.random() >= this.share) return 'share';
    return undefined;
  }

  /** True when even parsing a new request costs too much: drop it unread. */
  dropBeforeParse(): boolean {
    return this.opts.dropLagMs > 0 && this.load.lagMs > this.opts.dropLagMs;
  }

  /** Stop following the load monitor. */
  close(): void {
    this.unsubscribe();
  }

  private takeToken(): boolean {
    const now = performance.now();
    const rate = this.opts.maxNewPerS;
    this.tokens = Math.min(rate, this.tokens + ((now - this.lastRefillMs) * rate) / 1000);
    this.lastRefillMs = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Multiplicative decrease above the target utilisation, additive increase below it. */
  private adapt(): void {
    const target = this.opts.targetUtilization;
    if (target >= 1) return;
    const u = this.load.utilization;
    if (u > target) this.share = Math.max(0.05, this.share * 0.9);
    else if (u < target - 0.05) this.share = Math.min(1, this.share + 0.05);
  }
}
