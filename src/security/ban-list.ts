/**
 * Banned source addresses: requests from them are dropped by the source gate
 * without a response. A ban lasts a fixed time and is logged at warn level
 * when it starts (`source banned`) and at info level when it ends.
 *
 * Lookups are one Map access (the gate calls {@link BanList.isBanned} for every
 * inbound message). The list is bounded: when full, the oldest ban is lifted.
 * An optional `onChange` callback receives a snapshot after each change (the
 * server writes it to `data_dir/bans.json` for `rtcedge bans`).
 */
import type { Logger } from '../log.js';

/** One active ban. Times are ms since the epoch. */
export interface Ban {
  /** Source IP address as the transport reports it (no brackets, no IPv4-mapped prefix). */
  address: string;
  /** Why: `request-rate`, `auth-failures` or another short tag. */
  reason: string;
  since: number;
  until: number;
  /** Bans of this address since the process started (this one included). */
  count: number;
}

/** Options of {@link BanList}. */
export interface BanListOptions {
  logger: Logger;
  /** Bans kept at most (default 100 000); past it the oldest is lifted. */
  maxEntries?: number;
  /** Called after a ban starts or ends, with the active bans. */
  onChange?: (bans: Ban[]) => void;
  /** Clock, ms since the epoch; Date.now by default. */
  nowMs?: () => number;
}

/** The set of banned source addresses, each with an expiry. */
export class BanList {
  private readonly bans = new Map<string, Ban>();
  private readonly history = new Map<string, number>();
  private readonly log: Logger;
  private readonly maxEntries: number;
  private readonly nowMs: () => number;
  /** Bans started since the process started (a counter for metrics). */
  totalBans = 0;
  /** Messages dropped because their source was banned (a counter for metrics). */
  droppedMessages = 0;

  constructor(private readonly opts: BanListOptions) {
    this.log = opts.logger.child({ component: 'abuse' });
    this.maxEntries = opts.maxEntries ?? 100_000;
    this.nowMs = opts.nowMs ?? Date.now;
  }

  /**
   * True while `address` is banned at `nowMs` (ms). An expired ban is removed
   * here (and its end logged), so the check stays O(1) without a timer.
   */
  isBanned(address: string, nowMs: number = this.nowMs()): boolean {
    const b = this.bans.get(address);
    if (!b) return false;
    if (nowMs < b.until) return true;
    this.bans.delete(address);
    this.log.info({ address, reason: b.reason }, 'source ban ended');
    this.changed();
    return false;
  }

  /**
   * Ban `address` for `durationS` seconds from `nowMs` (ms since the epoch). A source banned again while banned
   * keeps the later expiry. Logs `source banned` at warn with the reason and
   * `detail` fields.
   * @returns the ban.
   */
  ban(address: string, durationS: number, reason: string, detail: Record<string, unknown> = {}, nowMs: number = this.nowMs()): Ban {
    const until = nowMs + durationS * 1000;
    const existing = this.bans.get(address);
    if (existing && existing.until >= until) return existing;
    if (!existing && this.bans.size >= this.maxEntries) {
      const first = this.bans.keys().next();
      if (!first.done) this.bans.delete(first.value);
    }
    const count = (this.history.get(address) ?? 0) + 1;
    if (this.history.size >= this.maxEntries) this.history.clear();
    this.history.set(address, count);
    const ban: Ban = { address, reason, since: nowMs, until, count };
    this.bans.set(address, ban);
    this.totalBans += 1;
    this.log.warn({ address, reason, seconds: durationS, count, ...detail }, 'source banned');
    this.changed();
    return ban;
  }

  /** Lift a ban at once; true when there was one. */
  unban(address: string): boolean {
    const had = this.bans.delete(address);
    if (had) {
      this.log.info({ address }, 'source ban lifted');
      this.changed();
    }
    return had;
  }

  /** Active bans at `nowMs`, soonest expiry first. */
  list(nowMs: number = this.nowMs()): Ban[] {
    return [...this.bans.values()].filter((b) => b.until > nowMs).sort((a, b) => a.until - b.until);
  }

  private changed(): void {
    if (this.opts.onChange) this.opts.onChange(this.list());
  }
}
