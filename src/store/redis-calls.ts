/**
 * Per-user call limits counted across the nodes of a Redis store: the
 * concurrent calls and attempts per minute of `sip.security.calls` hold for a
 * user whichever nodes the calls enter at (security/call-limits.ts counts one
 * node's). Keys under `key_prefix`: `calls:<user>` (sorted set of active
 * Call-IDs by start, ms) and `attempts:<user>` (attempts of the last minute,
 * members `<Call-ID> <ms> <tag>`, the tag unique to one admission); both expire when unused. One MULTI/EXEC per
 * admission, plain commands in one write (no Lua: see
 * {@link RedisCallCounter.admit}); the ends of calls are sent together, at most
 * {@link ENDED_BATCH_MS} after the first (one round trip for many calls
 * instead of one per call).
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from '../log.js';
import { sendBatched, type PlainCommand, type RedisStore } from './redis-store.js';

/** How long the end of a call may wait to be sent with others, ms. */
export const ENDED_BATCH_MS = 200;

/** Call ends waiting to be sent at most; the one that reaches it sends them all at once. */
export const MAX_ENDED_WAITING = 1000;

/** Calls whose end the node follows for the shared count, at most (oldest forgotten first). */
export const MAX_SHARED_CALLS = 100_000;

/**
 * Call-ID → user of the calls this node admitted into the shared count, kept
 * until the call's end is seen here (a BYE, or a non-2xx final response). At
 * most {@link MAX_SHARED_CALLS}: one more forgets the oldest, whose end the
 * shared count then takes at `max_call_seconds`.
 */
export class SharedCallOwners {
  private readonly owners = new Map<string, string>();

  /** Calls followed now, 0 ≤ n ≤ {@link MAX_SHARED_CALLS}. */
  get size(): number {
    return this.owners.size;
  }

  /** Follow the call `callId` of `user` (the oldest is forgotten when {@link MAX_SHARED_CALLS} are followed). */
  add(callId: string, user: string): void {
    if (!this.owners.has(callId) && this.owners.size >= MAX_SHARED_CALLS) this.owners.delete(this.owners.keys().next().value!);
    this.owners.set(callId, user);
  }

  /** The user of `callId`, which is no longer followed; undefined when it is not (never admitted here, or forgotten). */
  take(callId: string): string | undefined {
    const user = this.owners.get(callId);
    if (user !== undefined) this.owners.delete(callId);
    return user;
  }
}

/** Limits as `sip.security.calls` gives them; 0 turns one off. */
export interface SharedCallLimits {
  maxConcurrent: number;
  maxPerMinute: number;
  maxCallSeconds: number;
}

/** What the shared count says about a new call. */
export type SharedAdmission = { ok: true } | { ok: false; why: 'busy' } | { ok: false; why: 'rate'; retryAfterS: number };

/** The shared counters of one node's connection. */
export class RedisCallCounter {
  private readonly log: Logger;
  /** Call ends not yet sent: `calls:<user>` key → Call-IDs. */
  private endedWaiting = new Map<string, string[]>();
  /** This counter's part of each attempt's member (random), and the admissions made so far. */
  private readonly attemptTag = randomBytes(4).toString('hex');
  private attemptSeq = 0;
  private endedCount = 0;
  private endedTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly store: RedisStore,
    private readonly limits: SharedCallLimits,
    logger: Logger,
  ) {
    this.log = logger.child({ component: 'abuse' });
  }

  /**
   * Count the call `callId` of `user` if the limits allow it. When Redis
   * cannot be asked the call is admitted (logged): the node's own limits
   * still apply, and a call is not refused for what the store cannot say.
   *
   * One MULTI/EXEC of plain commands (one write, one round trip, no Lua: a
   * script doing the same cost Redis about twice the transaction's time,
   * most of it Lua's call; bench/RESULTS.md): forget calls older than
   * `maxCallSeconds` and attempts older than a minute (ZREMRANGEBYSCORE),
   * add the call (ZADD NX) and the attempt (ZADD), count both (ZCARD) and
   * renew both keys' expiry (PEXPIRE); a refusal for the rate reads the
   * oldest attempt for its Retry-After after taking its own out. The count
   * includes this call, and Redis runs one transaction after the other, so
   * the first admissions up to a limit are admitted and every later one is
   * refused, as with the script: of two nodes admitting a user's last
   * allowed call at the same moment, the one whose transaction runs second
   * is refused. A refused call's entries are taken out again (ZREM, sent
   * without waiting for a busy refusal; a later admission on this
   * connection runs after it); until Redis has run that, they count for the
   * user's other admissions (one round trip), which may then be refused
   * where the script would have admitted them, never admitted over a limit.
   * A Call-ID already counted (ZADD NX added nothing) is admitted, its new
   * attempt taken out likewise. Scores are this node's clock (ms): nodes'
   * clocks must agree to well under a minute (NTP), as the windows are a
   * minute and `maxCallSeconds`.
   * @param user the authenticated user (`calls:<user>`, `attempts:<user>`).
   * @param callId the INVITE's Call-ID (RFC 3261 §8.1.1.4).
   */
  async admit(user: string, callId: string): Promise<SharedAdmission> {
    const { maxConcurrent, maxPerMinute, maxCallSeconds } = this.limits;
    if (maxConcurrent <= 0 && maxPerMinute <= 0) return { ok: true };
    const prefix = this.store.config.key_prefix;
    const calls = `${prefix}calls:${user}`;
    const attempts = `${prefix}attempts:${user}`;
    const nowMs = Date.now();
    const maxCallMs = maxCallSeconds * 1000;
    // Unique per admission: taking a repeated Call-ID's attempt out again must not take out the first one's,
    // made by this or another node in the same millisecond.
    const attempt = `${callId} ${nowMs} ${this.attemptTag}.${++this.attemptSeq}`;
    const cmds: PlainCommand[] = [['multi'], ['zremrangebyscore', calls, '-inf', nowMs - maxCallMs], ['zadd', calls, 'NX', nowMs, callId], ['zcard', calls], ['pexpire', calls, maxCallMs]];
    if (maxPerMinute > 0) cmds.push(['zremrangebyscore', attempts, '-inf', nowMs - 60_000], ['zadd', attempts, nowMs, attempt], ['zcard', attempts], ['pexpire', attempts, 60_000]);
    cmds.push(['exec']);
    let r: unknown[];
    try {
      const answers = await sendBatched(this.store.redis, cmds);
      r = answers[answers.length - 1] as unknown[];
      const failed = r.find((x) => x instanceof Error);
      if (failed) throw failed;
    } catch (err) {
      this.log.warn({ err: (err as Error).message, user }, 'shared call limits unavailable; the node counts alone');
      return { ok: true };
    }
    // EXEC's answers: [0] ZREMRANGEBYSCORE, [1] ZADD NX, [2] ZCARD, [3] PEXPIRE, then [4] ZREMRANGEBYSCORE, [5] ZADD, [6] ZCARD of the attempts.
    const added = r[1] === 1;
    const overRate = added && maxPerMinute > 0 && Number(r[6]) > maxPerMinute;
    const busy = added && !overRate && maxConcurrent > 0 && Number(r[2]) > maxConcurrent;
    const undo: PlainCommand[] = [];
    if (overRate || busy) undo.push(['zrem', calls, callId]);
    if (maxPerMinute > 0 && (!added || overRate || busy)) undo.push(['zrem', attempts, attempt]);
    if (!overRate) {
      if (undo.length > 0) sendBatched(this.store.redis, undo).catch(() => {});
      return busy ? { ok: false, why: 'busy' } : { ok: true };
    }
    // Over the rate: Retry-After from the oldest attempt left once this one is out (read with the undo; a refusal is rare).
    let untilMs = 60_000;
    try {
      const answers = await sendBatched(this.store.redis, [...undo, ['zrange', attempts, 0, 0, 'WITHSCORES']]);
      const oldest = answers[answers.length - 1] as string[];
      if (oldest.length === 2) untilMs = Number(oldest[1]) + 60_000 - nowMs;
    } catch {
      // Redis gone since the count: a minute, the longest it can be.
    }
    return { ok: false, why: 'rate', retryAfterS: Math.min(60, Math.max(1, Math.ceil(untilMs / 1000))) };
  }

  /**
   * The call ended (BYE, a non-2xx final response): it no longer counts, once
   * sent (with other ends, within {@link ENDED_BATCH_MS}). Fire and forget.
   */
  ended(user: string, callId: string): void {
    const key = `${this.store.config.key_prefix}calls:${user}`;
    const ids = this.endedWaiting.get(key);
    if (ids) ids.push(callId);
    else this.endedWaiting.set(key, [callId]);
    if (++this.endedCount >= MAX_ENDED_WAITING) this.sendEnded();
    else this.endedTimer ??= setTimeout(() => this.sendEnded(), ENDED_BATCH_MS).unref();
  }

  /** Call ends waiting to be sent now, 0 ≤ n < {@link MAX_ENDED_WAITING}. */
  get endsWaiting(): number {
    return this.endedCount;
  }

  /** Send the waiting call ends now, in one pipeline (a failure only leaves them to expire). */
  sendEnded(): void {
    clearTimeout(this.endedTimer);
    this.endedTimer = undefined;
    if (this.endedCount === 0) return;
    const pipeline = this.store.redis.pipeline();
    for (const [key, ids] of this.endedWaiting) pipeline.zrem(key, ...ids);
    this.endedWaiting = new Map();
    this.endedCount = 0;
    pipeline.exec().catch(() => {});
  }
}
