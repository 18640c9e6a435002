/**
 * Client-side caching of bindings on Redis (https://redis.io/docs/latest/develop/reference/client-side-caching/):
 * the command connection of a {@link RedisStore} runs with
 * `CLIENT TRACKING on REDIRECT <id> NOLOOP`, so Redis remembers the keys it
 * read and, when another client changes one, sends the key's name on the
 * `__redis__:invalidate` channel to a second connection of this node (the
 * subscriber, RESP2 pub/sub: ioredis 5 speaks RESP2 only and has no
 * client-side caching of its own, redis/ioredis#1073, #1995). A node hears only
 * about keys it read since the last time it was told, and nothing about its
 * own writes (NOLOOP: it updates its cache itself).
 *
 * Redis queues the invalidation while it runs the writing command, before
 * the writer's reply (tracking.c `trackingInvalidateKey`, called from
 * `signalModifiedKey` during the command), and writes both out in the same
 * pass of its event loop, the client whose first answer of the pass was
 * queued last first; so a commit of bindings is sent behind a command whose
 * answer queues the committing node before the commit queues the
 * invalidations (MULTI's, or a PING ahead of the script:
 * RedisStore.commitAndRead): they are in the other nodes' sockets before
 * its answers are in its own; a registrar's 200 follows them.
 *
 * Tracking lives as long as both connections: when either closes (Redis
 * restarted, failing over, a timeout), invalidations may be lost. Until
 * tracking is on again nothing more is kept ({@link active} is false), but
 * what the cache holds still answers, so requests in dialogs (routed by a
 * registered contact) go on while Redis is away; once both connections are
 * back and tracking is on, the cache is emptied ({@link onFlush}). An
 * invalidation without keys (FLUSHALL, Redis's tracking table full) empties
 * it too.
 */
import type { Redis } from 'ioredis';
import type { Logger } from '../log.js';
import { quitConnection, type RedisStore, type TrackedBindings } from './redis-store.js';
import type { BindingChange, CommittedAor, HeldAor, ReadBackCause } from './types.js';

/** The channel Redis sends invalidations on (RESP2 with REDIRECT). */
const INVALIDATE_CHANNEL = '__redis__:invalidate';

/** Wait before turning tracking on again after a failed attempt while both connections are up, ms. */
const RETRY_DELAY_MS = 250;

/** What an invalidated key names, for the cache (key layout in redis-store.ts). */
export type Invalidation = { kind: 'aor'; aor: string } | { kind: 'contact'; contactUri: string };

/**
 * Turns tracking on for a store's command connection and hands the
 * invalidations it brings to a listener; the location service's source of
 * bindings on Redis (registrar/read-through-source.ts, matched by shape: store/
 * sits below registrar/).
 */
export class RedisBindingTracking {
  private subscriber: Redis | undefined;
  private readonly log: Logger;
  private invalidated: ((what: Invalidation) => void) | undefined;
  private flushed: (() => void) | undefined;
  /** The attempt to turn tracking on under way, if any. */
  private enabling: Promise<void> | undefined;
  private closed = false;
  /** True while Redis delivers invalidations for what the command connection reads. */
  private on = false;
  /**
   * Bumped whenever tracking is lost or turned on again: a read sent under one
   * epoch and answered under another must not be kept.
   */
  epoch = 0;

  constructor(
    private readonly store: RedisStore,
    logger: Logger,
  ) {
    this.log = logger.child({ component: 'store' });
  }

  /** True while reads may be kept in a cache (tracking on, both connections up). */
  get active(): boolean {
    return this.on;
  }

  /** The one listener for keys another client changed. */
  onInvalidate(listener: (what: Invalidation) => void): void {
    this.invalidated = listener;
  }

  /** The one listener that empties the cache (tracking turned on again, FLUSHALL). */
  onFlush(listener: () => void): void {
    this.flushed = listener;
  }

  /**
   * Open the subscriber connection and turn tracking on.
   * @throws Error when Redis cannot be reached or refuses CLIENT TRACKING (before Redis 6); the subscriber is closed then.
   */
  async start(): Promise<void> {
    const sub = this.store.redis.duplicate({ enableOfflineQueue: true, lazyConnect: true, autoResubscribe: false });
    this.subscriber = sub;
    sub.on('error', () => {});
    // A message on the channel is an array of key names, or nil for "everything"; ioredis's
    // 'message' joins an array with commas, so the raw form is read.
    sub.on('messageBuffer', (_channel: Buffer, keys: Buffer[] | Buffer | null) => this.received(keys));
    const lost = (): void => this.lost();
    sub.on('close', lost);
    this.store.redis.on('close', lost);
    const ready = (): void => void this.enable();
    sub.on('ready', ready);
    this.store.redis.on('ready', ready);
    try {
      await sub.connect();
      await this.enable();
      if (!this.on) throw new Error('store.redis: the Redis server could not turn client tracking on (CLIENT TRACKING needs Redis 6 or later); use Redis 6 or later, or store.type: sqlite for one node');
    } catch (err) {
      await this.close();
      throw err;
    }
  }

  private lost(): void {
    if (!this.on) return;
    this.on = false;
    this.epoch++;
    this.log.warn('Redis connection lost: the binding cache is emptied once client tracking is back on (invalidations may be missed meanwhile)');
  }

  /** Subscribe and turn tracking on when both connections are up (one attempt at a time; a failed one is tried again). */
  private enable(): Promise<void> {
    if (!this.enabling) this.enabling = this.tryEnable().finally(() => (this.enabling = undefined));
    return this.enabling;
  }

  private async tryEnable(): Promise<void> {
    const sub = this.subscriber;
    if (this.on || this.closed || !sub) return;
    if (sub.status !== 'ready' || this.store.redis.status !== 'ready') return;
    try {
      const id = (await sub.client('ID')) as number;
      await sub.subscribe(INVALIDATE_CHANNEL);
      await this.store.redis.client('TRACKING', 'on', 'REDIRECT', id, 'NOLOOP');
      this.on = true;
      this.epoch++;
      this.flushed?.();
      this.log.info({ redirect: id }, 'binding cache on: Redis tells this node about the bindings it read');
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'turning Redis client tracking on failed; trying again');
      setTimeout(() => void this.enable(), RETRY_DELAY_MS).unref();
    }
    // A connection that dropped while this ran: the flag must not claim tracking.
    if (this.on && (sub.status !== 'ready' || this.store.redis.status !== 'ready')) this.lost();
  }

  private received(keys: Buffer[] | Buffer | null): void {
    if (!this.on) return;
    if (!Array.isArray(keys)) {
      this.epoch++;
      this.flushed?.();
      return;
    }
    const prefix = this.store.config.key_prefix;
    for (const raw of keys) {
      const key = raw.toString();
      if (!key.startsWith(prefix)) continue;
      const rest = key.slice(prefix.length);
      if (rest.startsWith('aor-version:')) this.invalidated?.({ kind: 'aor', aor: rest.slice(12) });
      else if (rest.startsWith('contact:')) this.invalidated?.({ kind: 'contact', contactUri: rest.slice(8) });
    }
  }

  /** RedisStore.readTracked. */
  readTracked(aor: string): Promise<TrackedBindings> {
    return this.store.readTracked(aor);
  }

  /** RedisStore.aorOfContact. */
  aorOfContact(contactUri: string): Promise<string | undefined> {
    return this.store.aorOfContact(contactUri);
  }

  /** RedisStore.commitAndRead. */
  commitAndRead(changes: readonly BindingChange[], held?: ReadonlyMap<string, HeldAor>, unheld?: ReadonlyMap<string, ReadBackCause>): Promise<Map<string, CommittedAor>> {
    return this.store.commitAndRead(changes, held, unheld);
  }

  /** Turn tracking off and close the subscriber connection. */
  async close(): Promise<void> {
    this.closed = true;
    this.on = false;
    const sub = this.subscriber;
    this.subscriber = undefined;
    await quitConnection(sub);
  }
}
