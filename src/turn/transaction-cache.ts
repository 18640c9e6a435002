/**
 * Answers to STUN requests over UDP kept for their retransmissions (RFC 8489
 * §6.3.1: a server should answer a retransmitted request with the same
 * response rather than process it again). Keyed by client 5-tuple and
 * transaction id; an entry lives 40 s (Ti = 39.5 s, §6.2.1) and the cache
 * holds at most `maxEntries`, forgetting the oldest first.
 */
import { type FiveTuple, fiveTupleKey } from './five-tuple.js';

/** How long an answer is kept, ms: a client gives up a transaction after Ti = 39.5 s (RFC 8489 §6.2.1). */
export const TRANSACTION_CACHE_TTL_MS = 40_000;
/** Default bound on entries (about 300 bytes each). */
export const TRANSACTION_CACHE_MAX_ENTRIES = 10_000;

interface Entry {
  answer: Promise<Buffer | undefined>;
  expiresAtMs: number;
}

/** A bounded map from (5-tuple, transaction id) to the answer, kept while it is being computed too. */
export class TransactionCache {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly maxEntries = TRANSACTION_CACHE_MAX_ENTRIES) {}

  /** Number of entries. */
  get size(): number {
    return this.entries.size;
  }

  /** The answer given (or being computed) for this transaction, if it is still kept. */
  get(ft: FiveTuple, transactionId: Buffer, nowMs: number): Promise<Buffer | undefined> | undefined {
    const k = key(ft, transactionId);
    const e = this.entries.get(k);
    if (!e) return undefined;
    if (e.expiresAtMs <= nowMs) {
      this.entries.delete(k);
      return undefined;
    }
    return e.answer;
  }

  /**
   * Keeps `answer` for this transaction. An answer that resolves to
   * undefined (nothing was sent) is forgotten, so a retransmission is
   * processed again.
   */
  put(ft: FiveTuple, transactionId: Buffer, answer: Promise<Buffer | undefined>, nowMs: number): void {
    const k = key(ft, transactionId);
    while (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
    const e: Entry = { answer, expiresAtMs: nowMs + TRANSACTION_CACHE_TTL_MS };
    this.entries.set(k, e);
    const forget = (): void => void (this.entries.get(k) === e && this.entries.delete(k));
    answer.then((r) => r === undefined && forget(), forget);
  }

  /** Drops expired entries (oldest first, stops at the first live one). */
  sweep(nowMs: number): void {
    for (const [k, e] of this.entries) {
      if (e.expiresAtMs > nowMs) break;
      this.entries.delete(k);
    }
  }
}

function key(ft: FiveTuple, transactionId: Buffer): string {
  return `${fiveTupleKey(ft)}#${transactionId.toString('hex')}`;
}
