/**
 * Binding changes announced between nodes over Redis pub/sub: the
 * registrar's BindingReplication (src/registrar/binding-replication.ts,
 * matched by shape: store/ sits below registrar/) for nodes sharing a
 * {@link RedisStore}.
 *
 * The commit itself publishes (store/redis-scripts.ts COMMIT_BINDINGS) on
 * `<key_prefix>bindings`, atomically with the commit:
 *
 *     <node id> <commit number>\n{"<aor>": [<binding record>, ...], ...}
 *
 * with each changed AOR's bindings after the commit. A node skips its own
 * announcements on the id alone (nothing parsed); every other node parses
 * the object once, puts the bindings in memory (onRemoteBindings) and
 * acknowledges on the committing node's channel `<key_prefix>bindings:ack:<node id>`
 * with `<own id> <commit number>` (one acknowledgement per committing node
 * and event-loop turn, covering every commit up to that number: pub/sub
 * delivers in publish order). The committing node's commit resolves once as
 * many nodes acknowledged as the announcement reached, at most
 * {@link APPLY_WAIT_MS} later, so a registrar's 200 means the binding is in
 * every live node's memory. Pub/sub delivers nothing while a subscriber is
 * disconnected, so after each reconnection the node reads every binding again
 * (`onResync`).
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from '../log.js';
import { quitConnection, type CommitAnnouncer, type RedisStore } from './redis-store.js';
import type { BindingRecord } from './types.js';

/** How long a commit waits for the other nodes to apply it, ms (as the SIP workers' replication). */
export const APPLY_WAIT_MS = 500;

/** Commits waiting for acknowledgements at most; past it a commit does not wait. */
const MAX_WAITING_COMMITS = 10_000;

/** Other nodes whose acknowledgements are remembered at most (oldest forgotten first). */
const MAX_KNOWN_NODES = 1000;

/** Wait before reading every binding again after a failed read while both connections are up, ms. */
const RETRY_DELAY_MS = 250;

/** Least time between two warnings about missing acknowledgements, ms. */
const WARN_INTERVAL_MS = 10_000;

/** A commit of this node waiting for acknowledgements. */
interface WaitingCommit {
  readonly others: number;
  readonly acked: Set<string>;
  readonly resolve: () => void;
  readonly timer: NodeJS.Timeout;
}

/** Pub/sub channel between the location services of nodes on one Redis. */
export class RedisBindingChannel implements CommitAnnouncer {
  /** This process's id in announcements, so it ignores its own. */
  readonly nodeId = randomUUID();
  private subscriber: Redis | undefined;
  private resyncListener: (() => Promise<void>) | undefined;
  private bindingsListener: ((aor: string, bindings: BindingRecord[]) => void) | undefined;
  private resyncWanted = false;
  private resyncing = false;
  private readonly log: Logger;
  private connectedOnce = false;
  private commits = 0;
  /** Commit number → the commit waiting for acknowledgements, in commit order. */
  private readonly waiting = new Map<number, WaitingCommit>();
  /** Other node id → the highest commit number of this node it acknowledged. */
  private readonly ackedUpTo = new Map<string, number>();
  /** Committing node id → the highest commit number of it applied here and not yet acknowledged. */
  private readonly toAck = new Map<string, number>();
  private ackScheduled = false;
  private lastWarnMs = -Infinity;

  constructor(
    private readonly store: RedisStore,
    logger: Logger,
  ) {
    this.log = logger.child({ component: 'replication' });
  }

  private get ackChannel(): string {
    return `${this.store.bindingsChannel}:ack:${this.nodeId}`;
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
      sub.subscribe(this.store.bindingsChannel, this.ackChannel).then(
        () => {
          this.log.info('binding announcements subscribed again; reading every binding');
          this.resyncWanted = true;
          void this.resync();
        },
        () => {},
      );
    });
    sub.on('message', (channel: string, text: string) => {
      if (channel === this.store.bindingsChannel) this.received(text);
      else this.acknowledged(text);
    });
    // A read that failed while the command connection was down is tried again as soon as it is back.
    this.store.redis.on('ready', () => {
      if (this.resyncWanted) void this.resync();
    });
    await sub.connect();
    await sub.subscribe(this.store.bindingsChannel, this.ackChannel);
    this.connectedOnce = true;
    this.store.announcer = this;
  }

  /**
   * BindingReplication.announce: nothing to do, the commit script announced
   * the change and the commit waited for the other nodes to apply it.
   */
  async announce(_aors: readonly string[]): Promise<void> {}

  /**
   * BindingReplication.onRemoteChange: never called, since every
   * announcement carries the bindings (see {@link onRemoteBindings}).
   */
  onRemoteChange(_listener: (aors: readonly string[]) => void | Promise<void>): void {}

  /** The one listener that takes an AOR's bindings as another node committed them (nothing is read from Redis). */
  onRemoteBindings(listener: (aor: string, bindings: BindingRecord[]) => void): void {
    this.bindingsListener = listener;
  }

  /** The one listener that reads every binding again (after a reconnection). */
  onResync(listener: () => Promise<void>): void {
    this.resyncListener = listener;
  }

  /** CommitAnnouncer.nextCommit. */
  nextCommit(): number {
    return ++this.commits;
  }

  /** CommitAnnouncer.applied: waits at most {@link APPLY_WAIT_MS} for `others` acknowledgements of `commitNo`. */
  applied(commitNo: number, others: number): Promise<void> {
    const acked = new Set<string>();
    for (const [node, upTo] of this.ackedUpTo) if (upTo >= commitNo) acked.add(node);
    if (acked.size >= others || this.waiting.size >= MAX_WAITING_COMMITS) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiting.delete(commitNo);
        const nowMs = performance.now();
        if (nowMs - this.lastWarnMs >= WARN_INTERVAL_MS) {
          this.lastWarnMs = nowMs;
          this.log.warn({ waitedMs: APPLY_WAIT_MS, subscribers: others, acknowledged: acked.size }, 'a binding change was not acknowledged by every subscriber of the bindings channel in time; answering anyway');
        }
        resolve();
      }, APPLY_WAIT_MS).unref();
      this.waiting.set(commitNo, { others, acked, resolve, timer });
    });
  }

  /** An acknowledgement `<node id> <commit number>` on this node's channel. */
  private acknowledged(text: string): void {
    const sp = text.indexOf(' ');
    const node = text.slice(0, sp);
    const upTo = Number(text.slice(sp + 1));
    if (sp <= 0 || !Number.isSafeInteger(upTo)) return;
    this.ackedUpTo.delete(node);
    if (this.ackedUpTo.size >= MAX_KNOWN_NODES) this.ackedUpTo.delete(this.ackedUpTo.keys().next().value!);
    this.ackedUpTo.set(node, upTo);
    for (const [commitNo, w] of this.waiting) {
      if (commitNo > upTo) break;
      w.acked.add(node);
      if (w.acked.size < w.others) continue;
      clearTimeout(w.timer);
      this.waiting.delete(commitNo);
      w.resolve();
    }
  }

  /** An announcement `<node id> <commit number>\n{aor: bindings}`: applied (unless this node's own), then acknowledged. */
  private received(text: string): void {
    const sp = text.indexOf(' ');
    if (sp <= 0 || text.startsWith(this.nodeId + ' ')) return;
    const nl = text.indexOf('\n', sp);
    const commitNo = Number(text.slice(sp + 1, nl));
    if (nl < 0 || !Number.isSafeInteger(commitNo)) {
      this.log.warn({ bytes: text.length }, 'an unreadable binding announcement was ignored');
      return;
    }
    let lists: Record<string, unknown>;
    try {
      lists = JSON.parse(text.slice(nl + 1)) as Record<string, unknown>;
    } catch {
      this.log.warn({ bytes: text.length }, 'an unreadable binding announcement was ignored');
      return;
    }
    // An empty list comes out of the script as [] (joined, not encoded by cjson).
    for (const aor in lists) this.bindingsListener?.(aor, Array.isArray(lists[aor]) ? (lists[aor] as BindingRecord[]) : []);
    const origin = text.slice(0, sp);
    this.toAck.delete(origin);
    if (this.toAck.size >= MAX_KNOWN_NODES) this.toAck.delete(this.toAck.keys().next().value!);
    this.toAck.set(origin, commitNo);
    if (this.ackScheduled) return;
    this.ackScheduled = true;
    setImmediate(() => this.sendAcks());
  }

  /** Acknowledge what was applied this turn: one message per committing node. */
  private sendAcks(): void {
    this.ackScheduled = false;
    for (const [origin, commitNo] of this.toAck) {
      this.store.redis.publish(`${this.store.bindingsChannel}:ack:${origin}`, `${this.nodeId} ${commitNo}`).catch(() => {});
    }
    this.toAck.clear();
  }

  /** Read every binding again; a failed read is tried again when both connections are up. */
  private async resync(): Promise<void> {
    if (this.resyncing) return;
    this.resyncing = true;
    try {
      while (this.resyncWanted) {
        this.resyncWanted = false;
        try {
          await this.resyncListener?.();
        } catch (err) {
          this.log.warn({ err: (err as Error).message }, 'reading every binding failed; trying again when Redis is back');
          this.resyncWanted = true;
          if (this.subscriber?.status !== 'ready' || this.store.redis.status !== 'ready') break;
          await new Promise((r) => setTimeout(r, RETRY_DELAY_MS).unref());
        }
      }
    } finally {
      this.resyncing = false;
    }
  }

  /** Unsubscribe and close the subscriber connection; commits waiting for acknowledgements resolve. */
  async close(): Promise<void> {
    const sub = this.subscriber;
    this.subscriber = undefined;
    if (this.store.announcer === this) this.store.announcer = undefined;
    for (const w of this.waiting.values()) {
      clearTimeout(w.timer);
      w.resolve();
    }
    this.waiting.clear();
    await quitConnection(sub);
  }
}
