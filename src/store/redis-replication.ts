/**
 * Binding changes announced between nodes over Redis pub/sub: the
 * registrar's BindingReplication (src/registrar/binding-replication.ts,
 * matched by shape: store/ sits below registrar/) for nodes sharing a
 * {@link RedisStore}.
 *
 * Each node has its own channel `<key_prefix>bindings:<node id>` and lists
 * itself in `<key_prefix>nodes` with a heartbeat (every
 * {@link NODE_HEARTBEAT_MS}, counting for {@link NODE_TTL_MS}). The commit
 * itself (store/redis-scripts.ts COMMIT_BINDINGS) publishes, atomically with
 * the commit, on the channel of every other listed node whose channel has a
 * subscriber:
 *
 *     <node id> <commit number>\n{"<aor>": [<binding record>, ...], ...}
 *
 * with each changed AOR's bindings after the commit. A node never receives
 * its own commits; it parses each other node's announcement once, puts the
 * bindings in memory (onRemoteBindings) and acknowledges on the committing
 * node's channel with `<own id> <commit number>` (one acknowledgement per
 * committing node and event-loop turn, covering every commit up to that
 * number: pub/sub delivers in publish order). The acknowledgement is sent
 * with CLIENT REPLY SKIP on the command connection, so Redis sends nothing
 * back for it (a reply would wake the node a second time per commit it
 * follows). The committing node's commit resolves once every node it was
 * announced to acknowledged, at most {@link APPLY_WAIT_MS} later, so a
 * registrar's 200 means the binding is in every live node's memory. Other
 * clients subscribed to any of these channels (monitoring) are not nodes:
 * nothing waits for them. Pub/sub delivers nothing while a subscriber is
 * disconnected, and nothing is announced to a node whose heartbeat lapsed, so
 * after each reconnection, and after a heartbeat that found the node's entry
 * gone, the node reads every binding again (`onResync`).
 */
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import type { Redis } from 'ioredis';
import type { Logger } from '../log.js';
import { quitConnection, type CommitAnnouncer, type RedisStore } from './redis-store.js';
import type { BindingRecord } from './types.js';

/** How long a commit waits for the other nodes to apply it, ms (as the SIP workers' replication). */
export const APPLY_WAIT_MS = 500;

/** How often a node renews its entry among the live nodes, ms. */
export const NODE_HEARTBEAT_MS = 1000;

/**
 * How long a node's entry counts after its last heartbeat, ms: a node that
 * stops without leaving (killed while its connection stays open, hung) delays
 * commits by {@link APPLY_WAIT_MS} for this long at most.
 */
export const NODE_TTL_MS = 3000;

/** CLIENT REPLY SKIP (RESP): Redis sends no reply to the command after it. */
const REPLY_SKIP = '*3\r\n$6\r\nCLIENT\r\n$5\r\nREPLY\r\n$4\r\nSKIP\r\n';

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
  /** Ids of the nodes whose acknowledgement is still awaited. */
  readonly pending: Set<string>;
  readonly resolve: () => void;
  readonly timer: NodeJS.Timeout;
}

/** Pub/sub channel between the location services of nodes on one Redis. */
export class RedisBindingChannel implements CommitAnnouncer {
  /** This process's id in announcements, so it ignores its own. */
  readonly nodeId = randomUUID();
  private subscriber: Redis | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  /** Commits answered after {@link APPLY_WAIT_MS} without every acknowledgement, since start. */
  unacknowledgedCommits = 0;
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

  private get channel(): string {
    return this.store.nodeChannel(this.nodeId);
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
      sub.subscribe(this.channel).then(
        () => {
          this.log.info('binding announcements subscribed again; reading every binding');
          this.resyncWanted = true;
          void this.resync();
        },
        () => {},
      );
    });
    // An announcement has a line break after its header; an acknowledgement is the header alone.
    sub.on('message', (_channel: string, text: string) => {
      if (text.includes('\n')) this.received(text);
      else this.acknowledged(text);
    });
    // A read that failed while the command connection was down is tried again as soon as it is back.
    this.store.redis.on('ready', () => {
      if (this.resyncWanted) void this.resync();
    });
    await sub.connect();
    await sub.subscribe(this.channel);
    // Listed once subscribed, so every commit after this is announced here; the caller then reads every binding.
    await this.store.nodeHeartbeat(this.nodeId, NODE_TTL_MS);
    this.connectedOnce = true;
    this.store.announcer = this;
    this.heartbeat = setInterval(() => void this.beat(), NODE_HEARTBEAT_MS).unref();
  }

  /** Renew this node's entry; when it had lapsed (announcements skipped), read every binding again. */
  private async beat(): Promise<void> {
    if (this.subscriber?.status !== 'ready') return;
    try {
      if (await this.store.nodeHeartbeat(this.nodeId, NODE_TTL_MS)) return;
    } catch {
      return;
    }
    this.log.warn('this node was off the list of live nodes (no heartbeat in time); reading every binding again');
    this.resyncWanted = true;
    void this.resync();
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

  /** CommitAnnouncer.applied: waits at most {@link APPLY_WAIT_MS} for the acknowledgement of `commitNo` by each of `nodes`. */
  applied(commitNo: number, nodes: readonly string[]): Promise<void> {
    const pending = new Set<string>();
    for (const node of nodes) if ((this.ackedUpTo.get(node) ?? 0) < commitNo) pending.add(node);
    if (pending.size === 0 || this.waiting.size >= MAX_WAITING_COMMITS) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiting.delete(commitNo);
        this.unacknowledgedCommits++;
        const nowMs = performance.now();
        if (nowMs - this.lastWarnMs >= WARN_INTERVAL_MS) {
          this.lastWarnMs = nowMs;
          this.log.warn({ waitedMs: APPLY_WAIT_MS, nodes: nodes.length, missing: [...pending] }, 'a binding change was not acknowledged by every live node in time; answering anyway');
        }
        resolve();
      }, APPLY_WAIT_MS).unref();
      this.waiting.set(commitNo, { pending, resolve, timer });
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
      w.pending.delete(node);
      if (w.pending.size > 0) continue;
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

  /**
   * Acknowledge what was applied this turn: one message per committing node,
   * all in one write on the command connection, each PUBLISH after CLIENT
   * REPLY SKIP (no reply comes back, so ioredis, which has no reply-less mode,
   * waits for none: the bytes bypass its command queue, encoded by its own
   * Command). While that connection is down nothing is sent: the committing
   * nodes stop waiting after {@link APPLY_WAIT_MS}.
   */
  private sendAcks(): void {
    this.ackScheduled = false;
    const redis = this.store.redis;
    if (redis.status === 'ready') {
      let bytes = '';
      // ioredis is required here, not imported: a server on SQLite never loads it (redis-store.ts).
      const { Command } = createRequire(import.meta.url)('ioredis') as typeof import('ioredis');
      for (const [origin, commitNo] of this.toAck) {
        bytes += REPLY_SKIP + new Command('publish', [this.store.nodeChannel(origin), `${this.nodeId} ${commitNo}`]).toWritable(redis.stream);
      }
      redis.stream.write(bytes);
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
          // Listed again first, so every commit after the read is announced here.
          await this.store.nodeHeartbeat(this.nodeId, NODE_TTL_MS);
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

  /** Leave the live nodes, unsubscribe and close the subscriber connection; commits waiting for acknowledgements resolve. */
  async close(): Promise<void> {
    const sub = this.subscriber;
    this.subscriber = undefined;
    clearInterval(this.heartbeat);
    if (this.store.announcer === this) this.store.announcer = undefined;
    await this.store.nodeLeave(this.nodeId).catch(() => {});
    for (const w of this.waiting.values()) {
      clearTimeout(w.timer);
      w.resolve();
    }
    this.waiting.clear();
    await quitConnection(sub);
  }
}
