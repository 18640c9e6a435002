/**
 * Bans and failed-authentication counts shared by the nodes of a Redis store:
 * a source banned at one node is banned at every node, and failed digest
 * authentications from one address count together wherever they land.
 *
 * Keys under `key_prefix`: `ban:<address>` (JSON `{ reason, until }`, expiring
 * with the ban, PXAT), `authfail:<address>` (a counter that expires one window
 * after the first failure of the window). A new or longer ban is published on
 * `<prefix>bans`; a node that starts (or whose subscriber reconnects) reads
 * every current ban.
 */
import type { Redis } from 'ioredis';
import type { Logger } from '../log.js';
import { quitConnection, type RedisStore } from './redis-store.js';

/** A ban as the nodes share it; `until` in ms since the epoch. */
export interface SharedBan {
  address: string;
  reason: string;
  until: number;
}

/** Bans read from Redis at start or after a reconnection, at most. */
const MAX_LOADED_BANS = 100_000;

/** Bans known to be shared (address → until, ms) at most; past it expired ones are dropped, then all. */
export const MAX_SHARED_BANS = 100_000;

/**
 * The shared bans a node has already applied or announced (address → end,
 * ms since the epoch), so that the echo of a ban (its own announcement coming
 * back, or a ban it made itself) changes nothing. At most
 * {@link MAX_SHARED_BANS}: when full, the expired ones are dropped, and if
 * none was, all are forgotten (a ban forgotten early is at worst applied or
 * announced once more).
 */
export class KnownSharedBans {
  private readonly known = new Map<string, number>();

  /** Bans known now, 0 ≤ n ≤ {@link MAX_SHARED_BANS}. */
  get size(): number {
    return this.known.size;
  }

  /** Remember that `address` is banned until `until` (ms); `nowMs` decides which are expired when full. */
  remember(address: string, until: number, nowMs: number = Date.now()): void {
    if (!this.known.has(address) && this.known.size >= MAX_SHARED_BANS) {
      for (const [a, u] of this.known) if (u <= nowMs) this.known.delete(a);
      if (this.known.size >= MAX_SHARED_BANS) this.known.clear();
    }
    this.known.set(address, until);
  }

  /** True when a ban of `address` ending at most 1 s before `until` is known: a ban until `until` changes nothing. */
  isKnown(address: string, until: number): boolean {
    return (this.known.get(address) ?? 0) >= until - 1000;
  }
}

/** Bans and failed-authentication counters over Redis (keys and one pub/sub channel). */
export class RedisAbuseChannel {
  private subscriber: Redis | undefined;
  private readonly log: Logger;

  constructor(
    private readonly store: RedisStore,
    logger: Logger,
  ) {
    this.log = logger.child({ component: 'abuse' });
  }

  private get prefix(): string {
    return this.store.config.key_prefix;
  }

  /**
   * Subscribe to bans of other nodes and hand every current ban to `onBan`
   * (now, and again after each reconnection). `onBan` also gets this node's
   * own bans back; applying a ban that is already there changes nothing.
   * @throws Error when Redis cannot be reached.
   */
  async start(onBan: (ban: SharedBan) => void): Promise<void> {
    const sub = this.store.redis.duplicate({ enableOfflineQueue: true, lazyConnect: true, autoResubscribe: false });
    this.subscriber = sub;
    const channel = `${this.prefix}bans`;
    let started = false;
    sub.on('error', () => {});
    sub.on('message', (_c: string, text: string) => {
      try {
        const b = JSON.parse(text) as SharedBan;
        if (typeof b.address === 'string' && typeof b.reason === 'string' && typeof b.until === 'number') onBan(b);
      } catch {
        /* not ours */
      }
    });
    sub.on('ready', () => {
      if (!started) return;
      sub.subscribe(channel).then(
        () => this.loadBans(onBan),
        () => {},
      );
    });
    await sub.connect();
    await sub.subscribe(channel);
    started = true;
    await this.loadBans(onBan);
  }

  /** Every current ban in Redis to `onBan`; a failure is logged (the next reconnection reads them again). */
  private async loadBans(onBan: (ban: SharedBan) => void): Promise<void> {
    try {
      let cursor = '0';
      let n = 0;
      do {
        const [next, keys] = await this.store.redis.scan(cursor, 'MATCH', `${this.prefix}ban:*`, 'COUNT', 500);
        cursor = next;
        const values = keys.length ? await this.store.redis.mget(...keys) : [];
        keys.forEach((k, i) => {
          const v = values[i];
          if (!v || n >= MAX_LOADED_BANS) return;
          n++;
          const { reason, until } = JSON.parse(v) as { reason: string; until: number };
          onBan({ address: k.slice(`${this.prefix}ban:`.length), reason, until });
        });
      } while (cursor !== '0' && n < MAX_LOADED_BANS);
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'reading the shared bans failed');
    }
  }

  /** Store and announce a ban of this node (fire and forget: a failure is logged, the ban holds here). */
  publishBan(ban: SharedBan): void {
    const value = JSON.stringify({ reason: ban.reason, until: ban.until });
    this.store.redis
      .multi()
      .set(`${this.prefix}ban:${ban.address}`, value, 'PXAT', Math.ceil(ban.until))
      .publish(`${this.prefix}bans`, JSON.stringify(ban))
      .exec()
      .catch((err: Error) => this.log.warn({ err: err.message, address: ban.address }, 'sharing a ban failed; it holds on this node'));
  }

  /**
   * Count one failed authentication from `address` in the shared window of
   * `windowS` seconds (started by the first failure); resolves with the count
   * so far, or undefined when Redis could not be asked.
   */
  async countFailure(address: string, windowS: number): Promise<number | undefined> {
    const key = `${this.prefix}authfail:${address}`;
    try {
      const res = await this.store.redis.multi().incr(key).expire(key, windowS, 'NX').exec();
      const n = res?.[0]?.[1];
      return typeof n === 'number' ? n : undefined;
    } catch {
      return undefined;
    }
  }

  /** Forget the shared count of `address` (after it was banned). */
  resetFailures(address: string): void {
    this.store.redis.del(`${this.prefix}authfail:${address}`).catch(() => {});
  }

  /** Close the subscriber connection. */
  async close(): Promise<void> {
    const sub = this.subscriber;
    this.subscriber = undefined;
    await quitConnection(sub);
  }
}
