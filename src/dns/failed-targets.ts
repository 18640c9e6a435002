/**
 * Targets that recently failed (RFC 3263 §4.3: a transport error — connection
 * refused, ICMP unreachable, TLS handshake failure, a connection closed before
 * the answer — or a 503 fails the target and the next one is tried). A failed
 * target is skipped by server location for `dns.failed_target_seconds`; the
 * table holds at most `dns.failed_targets_max` entries (least recently marked
 * dropped first).
 */
import { TtlCache } from './ttl-cache.js';
import type { TransportName } from '../transport/types.js';

/** What identifies a target for failure bookkeeping: transport, IP address, port. */
export interface TargetKey {
  transport: TransportName;
  address: string;
  port: number;
}

/** The failed-target table. */
export class FailedTargets {
  private readonly table: TtlCache<string, string>;

  /**
   * @param failedTargetS how long (s) a failed target is skipped; 0 turns skipping off.
   * @param maxEntries bound on the table (>= 1).
   * @param nowMs clock (ms), default Date.now.
   */
  constructor(
    private readonly failedTargetS: number,
    maxEntries: number,
    nowMs: () => number = Date.now,
  ) {
    this.table = new TtlCache(maxEntries, nowMs);
  }

  /** Records that `target` failed; `reason` (e.g. `ECONNREFUSED`, `503`) is kept for logs. */
  markFailed(target: TargetKey, reason: string): void {
    this.table.set(keyOf(target), reason, this.failedTargetS * 1000);
  }

  /** The recorded reason when `target` failed within the last `failed_target_seconds`, else undefined. */
  failure(target: TargetKey): string | undefined {
    return this.table.get(keyOf(target));
  }

  /** Forgets a failure (the target answered). */
  markAlive(target: TargetKey): void {
    this.table.delete(keyOf(target));
  }
}

function keyOf(t: TargetKey): string {
  return `${t.transport} ${t.address} ${t.port}`;
}
