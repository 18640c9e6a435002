/**
 * Binding changes announced between nodes over Redis pub/sub: the
 * registrar's BindingReplication (src/registrar/binding-replication.ts,
 * matched by shape: store/ sits below registrar/) for nodes sharing a
 * {@link RedisStore}. The node that committed publishes
 * `{"node": <id>, "aors": [...]}` on `<key_prefix>bindings`; every other node
 * reads those AORs again from Redis. Pub/sub delivers nothing while a
 * subscriber is disconnected, so after each reconnection the node reads every
 * binding again (`onResync`).
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from '../log.js';
import { quitConnection, type RedisStore } from './redis-store.js';

/** AORs waiting to be read again at most; past it the node reads every binding once instead. */
const MAX_PENDING_AORS = 10_000;

/** Wait before reading again after a failed read while both connections are up, ms. */
const RETRY_DELAY_MS = 250;

/** AORs per announcement message at most (a larger commit is announced in several). */
const MAX_AORS_PER_MESSAGE = 500;

/** Pub/sub channel between the location services of nodes on one Redis. */
export class RedisBindingChannel {
  /** This process's id in announcements, so it ignores its own. */
  readonly nodeId = randomUUID();
  private subscriber: Redis | undefined;
  private listener: ((aors: readonly string[]) => void | Promise<void>) | undefined;
  private resyncListener: (() => Promise<void>) | undefined;
  private readonly pending = new Set<string>();
  private resyncWanted = false;
  private draining = false;
  private readonly log: Logger;
  private connectedOnce = false;

  constructor(
    private readonly store: RedisStore,
    logger: Logger,
  ) {
    this.log = logger.child({ component: 'replication' });
  }

  /** Subscribe (a second connection). @throws Error when Redis cannot be reached. */
  async start(): Promise<void> {
    // Subscribed again by hand after each reconnection, and only then every binding read again:
    // whatever was committed before the subscription is in that read, whatever after is announced.
    const sub = this.store.redis.duplicate({ enableOfflineQueue: true, lazyConnect: true, autoResubscribe: false });
    this.subscriber = sub;
    sub.on('error', () => {});
    sub.on('ready', () => {
      if (!this.connectedOnce) return;
      sub.subscribe(this.store.bindingsChannel).then(
        () => {
          this.log.info('binding announcements subscribed again; reading every binding');
          this.resyncWanted = true;
          void this.drain();
        },
        () => {},
      );
    });
    sub.on('message', (_channel: string, text: string) => this.received(text));
    // A read that failed while the command connection was down is tried again as soon as it is back.
    this.store.redis.on('ready', () => {
      if (this.resyncWanted) void this.drain();
    });
    await sub.connect();
    await sub.subscribe(this.store.bindingsChannel);
    this.connectedOnce = true;
  }

  /**
   * Publish the changed AORs (BindingReplication.announce). Resolves when
   * Redis took the message (subscribed nodes read the AORs within a round
   * trip of getting it), or, Redis failing, after logging: never rejects.
   */
  async announce(aors: readonly string[]): Promise<void> {
    try {
      for (let i = 0; i < aors.length; i += MAX_AORS_PER_MESSAGE) {
        await this.store.redis.publish(this.store.bindingsChannel, JSON.stringify({ node: this.nodeId, aors: aors.slice(i, i + MAX_AORS_PER_MESSAGE) }));
      }
    } catch (err) {
      this.log.warn({ err: (err as Error).message, aors: aors.length }, 'announcing binding changes failed; other nodes read them after their next resync');
    }
  }

  /** The one listener for AORs other nodes changed (BindingReplication.onRemoteChange). */
  onRemoteChange(listener: (aors: readonly string[]) => void | Promise<void>): void {
    this.listener = listener;
  }

  /** The one listener that reads every binding again (after a reconnection, or too many pending AORs). */
  onResync(listener: () => Promise<void>): void {
    this.resyncListener = listener;
  }

  private received(text: string): void {
    let msg: { node?: unknown; aors?: unknown };
    try {
      msg = JSON.parse(text) as typeof msg;
    } catch {
      return;
    }
    if (msg.node === this.nodeId || !Array.isArray(msg.aors)) return;
    for (const aor of msg.aors) {
      if (typeof aor !== 'string') continue;
      if (this.pending.size >= MAX_PENDING_AORS) {
        this.pending.clear();
        this.resyncWanted = true;
        break;
      }
      this.pending.add(aor);
    }
    void this.drain();
  }

  /** Read pending AORs (or everything) again, one batch at a time; a failed read is retried by a resync. */
  private async drain(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    try {
      while (this.resyncWanted || this.pending.size > 0) {
        try {
          if (this.resyncWanted) {
            this.resyncWanted = false;
            this.pending.clear();
            await this.resyncListener?.();
          } else {
            const aors = [...this.pending].slice(0, MAX_AORS_PER_MESSAGE);
            for (const a of aors) this.pending.delete(a);
            await this.listener?.(aors);
          }
        } catch (err) {
          this.log.warn({ err: (err as Error).message }, 'reading changed bindings failed; reading every binding when Redis is back');
          this.resyncWanted = true;
          if (this.subscriber?.status !== 'ready' || this.store.redis.status !== 'ready') break;
          await new Promise((r) => setTimeout(r, RETRY_DELAY_MS).unref());
        }
      }
    } finally {
      this.draining = false;
    }
  }

  /** Unsubscribe and close the subscriber connection. */
  async close(): Promise<void> {
    const sub = this.subscriber;
    this.subscriber = undefined;
    await quitConnection(sub);
  }
}
