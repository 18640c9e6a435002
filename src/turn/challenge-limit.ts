/**
 * Limits on unauthenticated answers (401/438 challenges and other errors to
 * requests that carry no valid credentials), so that the server cannot be
 * used to reflect a spoofed flood toward a victim, while hundreds of real
 * clients behind one NAT still get their challenge at once:
 * - a token bucket per client 5-tuple (`ratePerS`, burst of the same size),
 * - a wider token bucket per source address (`addressRatePerS`),
 * - sources in `exempt` (the SIP security `exempt_sources`) are never limited.
 * Retransmissions are not counted: they are answered from the transaction
 * cache (transaction-cache.ts).
 */
import { TokenBucketLimiter } from '../security/rate-limiter.js';
import { type FiveTuple, fiveTupleKey } from './five-tuple.js';

/** Settings; a rate of 0 turns that bucket off. */
export interface ChallengeLimitOptions {
  /** Answers per second per client 5-tuple (`turn.challenge_rate`, default 20). */
  ratePerS: number;
  /** Answers per second per source address, all its ports together (`turn.challenge_address_rate`, default 1000). */
  addressRatePerS: number;
  /** Sources never limited (IP text -> true); default none. */
  exempt?: (address: string) => boolean;
}

/** Decides whether an unauthenticated answer may be sent; counts those it holds back. */
export class ChallengeLimit {
  private readonly perFiveTuple: TokenBucketLimiter | undefined;
  private readonly perAddress: TokenBucketLimiter | undefined;
  /** Answers not sent. */
  suppressed = 0;

  constructor(private readonly opts: ChallengeLimitOptions) {
    this.perFiveTuple = opts.ratePerS > 0 ? new TokenBucketLimiter({ ratePerSecond: opts.ratePerS, burst: opts.ratePerS }) : undefined;
    this.perAddress = opts.addressRatePerS > 0 ? new TokenBucketLimiter({ ratePerSecond: opts.addressRatePerS, burst: opts.addressRatePerS }) : undefined;
  }

  /** True if an unauthenticated answer may go to `ft` at `nowMs`; false (and counted) if it must be dropped. */
  mayAnswer(ft: FiveTuple, nowMs: number): boolean {
    if (this.opts.exempt?.(ft.clientAddress)) return true;
    const ok = (!this.perFiveTuple || this.perFiveTuple.take(fiveTupleKey(ft), nowMs)) && (!this.perAddress || this.perAddress.take(ft.clientAddress, nowMs));
    if (!ok) this.suppressed++;
    return ok;
  }
}
