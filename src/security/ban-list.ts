/**
 * Banned source addresses: requests from them are dropped by the source gate
 * without a response. A ban lasts a fixed time and is logged at warn level
 * when it starts (`source banned`) and at info level when it ends.
 *
 * Lookups are one Map access (the gate calls {@link BanList.isBanned} for every
 * inbound message). The list is bounded: when full, the oldest ban is lifted.
 * An optional `onChange` callback receives a snapshot after each change (the
 * server writes it to `data_dir/bans.json` for `rtcedge bans`).
 *
 * With several SIP workers (`peers`), a ban decided by one worker is
 * broadcast and applied by every other one (logged at debug there), and so
 * is a lifted ban: every worker drops the banned source's traffic. Expiry
 * is checked by each worker on its own clock (one machine, one clock). A
 * worker that starts late gets the active bans: it asks for them
 * ({@link BanList.pull}), and the worker with `pushToJoiningWorkers` sends
 * them when the connection to it opens.
 *
 * With `share` (a shared store that every worker and node subscribes to:
 * Redis, store/redis-abuse.ts), a ban decided here goes to `share` instead of
 * the mesh, and comes back to every worker of every node (this one too)
 * through {@link BanList.applyShared}: one path. {@link BanList.broadcast}
 * is there for `share` to fall back to the mesh when the store cannot be
 * reached.
 */
import type { Logger } from '../log.js';
import { SECURITY_CHANNELS, type WorkerPeers } from './worker-peers.js';

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
  /** The other SIP workers: bans decided here are applied there, and theirs here. */
  peers?: WorkerPeers;
  /** Send every active ban to a worker whose connection opens (it started or restarted); one worker does. */
  pushToJoiningWorkers?: boolean;
  /**
   * Where a ban decided here goes instead of the mesh (a shared store that hands every ban back to every
   * worker through {@link BanList.applyShared}); called after the ban is in force here.
   */
  share?: (ban: Ban) => void;
}

/** A ban as broadcast to the other workers (times in ms since the epoch). */
interface BanNotice {
  address: string;
  reason: string;
  since: number;
  until: number;
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
    const peers = opts.peers;
    if (peers && peers.count > 1) {
      peers.on(SECURITY_CHANNELS.ban, (from, p) => this.applyNotice(p, from));
      peers.on(SECURITY_CHANNELS.unban, (from, p) => {
        const address = (p as { address?: unknown } | null)?.address;
        if (typeof address === 'string') this.lift(address, from);
      });
      peers.on(SECURITY_CHANNELS.bans, () => this.notices());
      if (opts.pushToJoiningWorkers) {
        peers.onPeerChange?.((worker, up) => {
          if (up) for (const notice of this.notices()) peers.send(worker, SECURITY_CHANNELS.ban, notice);
        });
      }
    }
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
    const ban = this.insert({ address, reason, since: nowMs, until });
    this.totalBans += 1;
    this.log.warn({ address, reason, seconds: durationS, count: ban.count, ...detail }, 'source banned');
    if (this.opts.share) this.opts.share(ban);
    else this.broadcast(ban);
    this.changed();
    return ban;
  }

  /** Send `ban` to every other worker over the mesh (nothing without peers); `share`'s fallback when its store is unreachable. */
  broadcast(ban: Ban): void {
    this.opts.peers?.broadcast(SECURITY_CHANNELS.ban, { address: ban.address, reason: ban.reason, since: ban.since, until: ban.until });
  }

  /**
   * Apply a ban handed back by the shared store (`share`): this worker's own,
   * another worker's or another node's. Nothing when a ban of the address
   * lasting at least as long is in force here already (this worker's own ban,
   * or an echo), or when it has ended. Logged at `level` (`source banned`,
   * with `detail`, for a ban another node decided; else `source ban applied
   * from another worker` at debug).
   * @param ban `until` in ms since the epoch.
   * @returns true when it was applied.
   */
  applyShared(ban: { address: string; reason: string; until: number }, level: 'warn' | 'debug', detail: Record<string, unknown> = {}): boolean {
    const nowMs = this.nowMs();
    const existing = this.bans.get(ban.address);
    if ((existing && existing.until >= ban.until) || ban.until <= nowMs) return false;
    const applied = this.insert({ address: ban.address, reason: ban.reason, since: nowMs, until: ban.until });
    if (level === 'warn') this.log.warn({ address: ban.address, reason: ban.reason, seconds: Math.round((ban.until - nowMs) / 1000), count: applied.count, ...detail }, 'source banned');
    else this.log.debug({ address: ban.address, reason: ban.reason, until: ban.until, ...detail }, 'source ban applied from another worker');
    this.changed();
    return true;
  }

  /** Lift a ban at once, here and (with peers) in every other worker; true when there was one here. */
  unban(address: string): boolean {
    this.opts.peers?.broadcast(SECURITY_CHANNELS.unban, { address });
    return this.lift(address);
  }

  /**
   * Ask worker `from` for its active bans and apply them here (a worker that
   * started after others banned sources). Resolves with how many were applied.
   * @throws Error when `from` does not answer within `timeoutMs` ms.
   */
  async pull(from: number, timeoutMs: number): Promise<number> {
    const peers = this.opts.peers;
    if (!peers || peers.count <= 1 || from === peers.self) return 0;
    const answer = await peers.request(from, SECURITY_CHANNELS.bans, null, timeoutMs);
    let applied = 0;
    for (const notice of Array.isArray(answer) ? answer : []) if (this.applyNotice(notice, from)) applied++;
    return applied;
  }

  /** Active bans at `nowMs`, soonest expiry first. */
  list(nowMs: number = this.nowMs()): Ban[] {
    return [...this.bans.values()].filter((b) => b.until > nowMs).sort((a, b) => a.until - b.until);
  }

  /** The active bans as sent to other workers. */
  private notices(): BanNotice[] {
    return this.list().map(({ address, reason, since, until }) => ({ address, reason, since, until }));
  }

  /** Apply a ban another worker decided; false when malformed or already covered. */
  private applyNotice(p: unknown, from: number): boolean {
    const n = p as Partial<BanNotice> | null;
    if (!n || typeof n.address !== 'string' || typeof n.reason !== 'string' || typeof n.since !== 'number' || typeof n.until !== 'number') return false;
    const existing = this.bans.get(n.address);
    if ((existing && existing.until >= n.until) || n.until <= this.nowMs()) return false;
    this.insert({ address: n.address, reason: n.reason, since: n.since, until: n.until });
    this.log.debug({ address: n.address, reason: n.reason, until: n.until, worker: from }, 'source ban applied from another worker');
    this.changed();
    return true;
  }

  /** Store a ban (the oldest lifted when full) and count it in the address's history. */
  private insert(n: BanNotice): Ban {
    if (!this.bans.has(n.address) && this.bans.size >= this.maxEntries) {
      const first = this.bans.keys().next();
      if (!first.done) this.bans.delete(first.value);
    }
    const count = (this.history.get(n.address) ?? 0) + 1;
    if (this.history.size >= this.maxEntries) this.history.clear();
    this.history.set(n.address, count);
    const ban: Ban = { ...n, count };
    this.bans.set(n.address, ban);
    return ban;
  }

  private lift(address: string, from?: number): boolean {
    const had = this.bans.delete(address);
    if (had) {
      this.log.info({ address, ...(from !== undefined && { worker: from }) }, 'source ban lifted');
      this.changed();
    }
    return had;
  }

  private changed(): void {
    if (this.opts.onChange) this.opts.onChange(this.list());
  }
}
