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
  /** The node that decided it (its processes share one tag); absent for bans read from their keys at start. */
  node?: string;
}

/** Bans read from Redis at start or after a reconnection, at most. */
const MAX_LOADED_BANS = 100_000;

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
        if (typeof b.address === 'string' && typeof b.reason === 'string' && typeof b.until === 'number') {
          onBan({ address: b.address, reason: b.reason, until: b.until, ...(typeof b.node === 'string' && { node: b.node }) });
        }
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

  /**
   * Store and announce a ban of this node: one SET (PXAT its end) and one
   * PUBLISH in one MULTI/EXEC. Resolves true once Redis ran both, false when
   * it could not be reached (logged; the caller keeps the ban in force
   * without Redis); never rejects.
   */
  publishBan(ban: SharedBan): Promise<boolean> {
    const value = JSON.stringify({ reason: ban.reason, until: ban.until });
    return this.store.redis
      .multi()
      .set(`${this.prefix}ban:${ban.address}`, value, 'PXAT', Math.ceil(ban.until))
      .publish(`${this.prefix}bans`, JSON.stringify(ban))
      .exec()
      .then(
        (res) => !res?.some(([err]) => err),
        (err: Error) => {
          this.log.warn({ err: err.message, address: ban.address }, 'sharing a ban failed; it holds on this node');
          return false;
        },
      );
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
