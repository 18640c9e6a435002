/**
 * Binding changes announced between nodes over Redis pub/sub: the
 * registrar's BindingReplication (src/registrar/binding-replication.ts,
 * matched by shape: store/ sits below registrar/) for nodes sharing a
 * {@link RedisStore}. The commit itself publishes (store/redis-scripts.ts
 * COMMIT_BINDINGS) `{"node": <id>, "aors": [...], "lists": [...]}` on
 * `<key_prefix>bindings`, with each changed AOR's bindings after the commit;
 * every other node takes them as they are (onRemoteBindings), or reads those
 * AORs again from Redis (an announcement without lists). Pub/sub delivers nothing while a
 * subscriber is disconnected, so after each reconnection the node reads every
 * binding again (`onResync`).
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from '../log.js';
import { quitConnection, type RedisStore } from './redis-store.js';
import type { BindingRecord } from './types.js';

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
  /** AOR → its bindings as announced, or undefined when they are to be read again from the store. */
  private readonly pending = new Map<string, BindingRecord[] | undefined>();
  private bindingsListener: ((aor: string, bindings: BindingRecord[]) => void) | undefined;
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
    this.store.announceCommitsAs = this.nodeId;
  }

  /**
   * Publish the changed AORs (BindingReplication.announce). Resolves when
   * Redis took the message (subscribed nodes read the AORs within a round
   * trip of getting it), or, Redis failing, after logging: never rejects.
   */
  async announce(aors: readonly string[]): Promise<void> {
    // The commit script published them already, in the same atomic step as the commit.
    if (this.store.announceCommitsAs === this.nodeId) return;
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

  /**
   * The one listener that takes an AOR's bindings as another node committed
   * them (carried by the announcement, so nothing is read from Redis); without
   * it those AORs go to the onRemoteChange listener.
   */
  onRemoteBindings(listener: (aor: string, bindings: BindingRecord[]) => void): void {
    this.bindingsListener = listener;
  }

  /** The one listener that reads every binding again (after a reconnection, or too many pending AORs). */
  onResync(listener: () => Promise<void>): void {
    this.resyncListener = listener;
  }

  private received(text: string): void {
    let msg: { node?: unknown; aors?: unknown; lists?: unknown };
    let entries: [string, BindingRecord[] | undefined][];
    try {
      msg = JSON.parse(text) as typeof msg;
      if (msg.node === this.nodeId || !Array.isArray(msg.aors)) return;
      // An empty list comes out of Lua's cjson as {}.
      entries = Array.isArray(msg.lists)
        ? (msg.lists as { aor: string; bindings: unknown }[]).map((l) => [String(l.aor), Array.isArray(l.bindings) ? l.bindings.map((j) => JSON.parse(String(j)) as BindingRecord) : []])
        : msg.aors.filter((a): a is string => typeof a === 'string').map((a) => [a, undefined]);
    } catch {
      return;
    }
    for (const [aor, bindings] of entries) {
      if (this.pending.size >= MAX_PENDING_AORS && !this.pending.has(aor)) {
        this.pending.clear();
        this.resyncWanted = true;
        break;
      }
      // Announcements arrive in commit order: the latest one of an AOR wins.
      this.pending.delete(aor);
      this.pending.set(aor, bindings);
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
            const batch = [...this.pending].slice(0, MAX_AORS_PER_MESSAGE);
            const reread: string[] = [];
            for (const [aor, bindings] of batch) {
              this.pending.delete(aor);
              if (bindings && this.bindingsListener) this.bindingsListener(aor, bindings);
              else reread.push(aor);
            }
            if (reread.length > 0) await this.listener?.(reread);
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
    if (this.store.announceCommitsAs === this.nodeId) this.store.announceCommitsAs = undefined;
    await quitConnection(sub);
  }
}
