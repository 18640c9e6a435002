/**
 * Per-user call limits counted across the nodes of a Redis store: the
 * concurrent calls and attempts per minute of `sip.security.calls` hold for a
 * user whichever nodes the calls enter at (security/call-limits.ts counts one
 * node's). Keys under `key_prefix`: `calls:<user>` (sorted set of active
 * Call-IDs by start, ms) and `attempts:<user>` (attempts of the last minute);
 * both expire when unused. One Lua script per admission (redis-scripts.ts);
 * the ends of calls are sent together, at most {@link ENDED_BATCH_MS} after
 * the first (one round trip for many calls instead of one per call).
 */
import type { Logger } from '../log.js';
import { ADMIT_CALL } from './redis-scripts.js';
import { runScript, type RedisStore } from './redis-store.js';

/** How long the end of a call may wait to be sent with others, ms. */
export const ENDED_BATCH_MS = 200;

/** Call ends waiting to be sent at most; one more sends them at once. */
const MAX_ENDED_WAITING = 1000;

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
   */
  async admit(user: string, callId: string): Promise<SharedAdmission> {
    const { maxConcurrent, maxPerMinute, maxCallSeconds } = this.limits;
    if (maxConcurrent <= 0 && maxPerMinute <= 0) return { ok: true };
    let answer: string[];
    try {
      answer = (await runScript(this.store.redis, ADMIT_CALL, [this.store.config.key_prefix, user, callId, maxConcurrent, maxPerMinute, maxCallSeconds * 1000])) as string[];
    } catch (err) {
      this.log.warn({ err: (err as Error).message, user }, 'shared call limits unavailable; the node counts alone');
      return { ok: true };
    }
    if (answer[0] === 'busy') return { ok: false, why: 'busy' };
    if (answer[0] === 'rate') return { ok: false, why: 'rate', retryAfterS: Math.max(1, Math.ceil(Number(answer[1]) / 1000)) };
    return { ok: true };
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
