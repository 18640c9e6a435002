/**
 * Per-user call limits: concurrent calls and call attempts per minute, for
 * INVITEs of authenticated local users (a stolen password or a runaway phone
 * cannot place unlimited calls).
 *
 * Responses (documented in README.md):
 * - over `maxConcurrent` active calls: **486 Busy Here**, reason
 *   "Busy Here: concurrent call limit" (the user's lines are all in use);
 * - over `maxPerMinute` attempts in the current minute: **503 Service
 *   Unavailable**, reason "Service Unavailable: call rate limit", with
 *   Retry-After (RFC 3261 §20.33) giving the seconds until the minute ends.
 *
 * A call is active from its admitted INVITE until the INVITE transaction ends
 * with a non-2xx final response (error, CANCEL → 487), a BYE with its Call-ID
 * passes the server, or `maxCallSeconds` have passed (a call whose end was not
 * seen). An INVITE retried with the same Call-ID (after a 407) is one call.
 *
 * With several SIP workers (`peers`), a user's calls are counted by one
 * worker, `ownerOf(user)`: the worker that receives the INVITE asks it (a mesh
 * request) and tells it when the call ends (the worker that admitted a call
 * sees its end: all messages of a Call-ID reach one worker). When the owner
 * does not answer within `admitTimeoutMs` the call is admitted and a warning
 * logged (`call admitted unchecked`): a stuck worker must not stop calls.
 */
import type { Logger } from '../log.js';
import { getHeader, type SipHeader, type SipMessage, type SipRequest, type SipResponse } from '../sip/message.js';
import { WindowCounter } from './rate-limiter.js';
import { ownerOf, SECURITY_CHANNELS, type WorkerPeers } from './worker-peers.js';

/** How long the worker of an INVITE waits for the user's owner to admit the call, ms. */
export const CALL_ADMIT_TIMEOUT_MS = 500;
/** Calls admitted through another worker remembered at most (each until it ends or `maxCallSeconds`). */
export const MAX_ROUTED_CALLS = 100_000;

/** Options of {@link CallLimits}. Limits of 0 are off. */
export interface CallLimitsOptions {
  /** Active calls per user at most. */
  maxConcurrent: number;
  /** Call attempts (admitted INVITEs) per user per minute at most. */
  maxPerMinute: number;
  /** A call not seen ending is forgotten after this many s; default 14 400. */
  maxCallSeconds?: number;
  logger: Logger;
  /** Clock, ms since the epoch; Date.now by default. */
  nowMs?: () => number;
  /** The other SIP workers: each user's calls are counted by its owner. */
  peers?: WorkerPeers;
  /** Wait for the owner's answer, ms; default {@link CALL_ADMIT_TIMEOUT_MS}. */
  admitTimeoutMs?: number;
}

/** A call admitted by another worker (the user's owner), remembered here until it ends. */
interface RoutedCall {
  user: string;
  owner: number;
  startMs: number;
}

/**
 * The INVITE server transaction a call is admitted on, as far as the limits
 * need it (transaction/server-transaction.ts `ServerTransaction` has this shape;
 * security/ does not import the transaction layer).
 */
export interface CallTransaction {
  readonly request: SipRequest;
  /** True once a final response was sent (e.g. 487 for a CANCEL while the admission was asked). */
  readonly finalSent?: boolean;
  /** Sends a response on the transaction; wrapped by {@link CallLimits.admitTransaction}. */
  respond(res: SipResponse): void;
}

/** A refused call: the response to send. */
export interface CallRefusal {
  status: 486 | 503;
  reason: string;
  headers: SipHeader[];
}

/** Tracks active calls and attempts per user and refuses calls over the limits. */
export class CallLimits {
  /** user → (Call-ID → start ms). */
  private readonly active = new Map<string, Map<string, number>>();
  /** Call-ID → user. */
  private readonly owner = new Map<string, string>();
  private readonly attempts = new WindowCounter({ windowMs: 60_000 });
  private readonly log: Logger;
  private readonly nowMs: () => number;
  private readonly maxCallMs: number;
  /** Call-ID → the owner that admitted it (calls of users another worker counts). */
  private readonly routed = new Map<string, RoutedCall>();
  private readonly peers: WorkerPeers | undefined;

  constructor(private readonly opts: CallLimitsOptions) {
    this.log = opts.logger.child({ component: 'abuse' });
    this.nowMs = opts.nowMs ?? Date.now;
    this.maxCallMs = (opts.maxCallSeconds ?? 14_400) * 1000;
    this.peers = opts.peers && opts.peers.count > 1 ? opts.peers : undefined;
    const peers = this.peers;
    if (!peers) return;
    peers.on(SECURITY_CHANNELS.callAdmit, (_from, p) => {
      const v = p as { user?: unknown; callId?: unknown } | null;
      if (!v || typeof v.user !== 'string' || typeof v.callId !== 'string') throw new Error('call admission needs user and callId');
      return this.admit(v.user, v.callId) ?? null;
    });
    peers.on(SECURITY_CHANNELS.callEnd, (_from, p) => {
      const callId = (p as { callId?: unknown } | null)?.callId;
      if (typeof callId === 'string') this.forget(callId);
    });
  }

  /**
   * Admit a new call of `user` with this Call-ID, or say why not. An admitted
   * call counts as active until {@link CallLimits.ended} for its Call-ID.
   * @returns undefined when admitted, else the response to send.
   */
  admit(user: string, callId: string): CallRefusal | undefined {
    const nowMs = this.nowMs();
    const calls = this.active.get(user);
    if (calls) {
      for (const [id, start] of calls) if (nowMs - start >= this.maxCallMs) this.forget(id);
      if (calls.has(callId)) return undefined;
    }
    if (this.opts.maxPerMinute > 0 && this.attempts.count(user, nowMs) >= this.opts.maxPerMinute) {
      const retry = Math.max(1, Math.ceil(this.attempts.remainingMs(user, nowMs) / 1000));
      this.log.warn({ user, limit: this.opts.maxPerMinute, retryAfter: retry }, 'call refused: call rate limit');
      return { status: 503, reason: 'Service Unavailable: call rate limit', headers: [{ name: 'Retry-After', value: String(retry) }] };
    }
    const current = this.active.get(user)?.size ?? 0;
    if (this.opts.maxConcurrent > 0 && current >= this.opts.maxConcurrent) {
      this.log.warn({ user, limit: this.opts.maxConcurrent }, 'call refused: concurrent call limit');
      return { status: 486, reason: 'Busy Here: concurrent call limit', headers: [] };
    }
    if (this.opts.maxPerMinute > 0) this.attempts.add(user, nowMs);
    let m = this.active.get(user);
    if (!m) {
      m = new Map();
      this.active.set(user, m);
    }
    m.set(callId, nowMs);
    this.owner.set(callId, user);
    return undefined;
  }

  /** True when neither limit applies (`max_concurrent_per_user` and `max_attempts_per_minute` both 0): admission is off. */
  get off(): boolean {
    return this.opts.maxConcurrent <= 0 && this.opts.maxPerMinute <= 0;
  }

  /**
   * Admit the INVITE of `st` for `user` and follow its transaction: a non-2xx
   * final response sent on it ends the call. (The transaction's `respond` is
   * wrapped; the response itself is untouched.) A promise when the user's
   * calls are counted by another worker. With both limits 0 ({@link off})
   * every call is admitted at once: nothing is counted, followed or asked of
   * another worker.
   * @returns as {@link CallLimits.admit}.
   */
  admitTransaction(user: string, st: CallTransaction): CallRefusal | undefined | Promise<CallRefusal | undefined> {
    if (this.off) return undefined;
    const callId = getHeader(st.request, 'call-id') ?? '';
    const owner = this.peers ? ownerOf(user, this.peers.count) : undefined;
    if (owner === undefined || owner === this.peers!.self) {
      const refusal = this.admit(user, callId);
      if (!refusal) this.follow(st, callId);
      return refusal;
    }
    return this.askOwner(owner, user, callId).then((refusal) => {
      if (refusal) return refusal;
      this.remember(callId, { user, owner, startMs: this.nowMs() });
      // Answered while the owner was asked (CANCEL → 487): the call is over before it began.
      if (st.finalSent) this.ended(callId);
      else this.follow(st, callId);
      return undefined;
    });
  }

  /** Any inbound message: a BYE request ends the call with its Call-ID. */
  observe(msg: SipMessage): void {
    if ((this.owner.size === 0 && this.routed.size === 0) || msg.kind !== 'request' || msg.method !== 'BYE') return;
    const callId = getHeader(msg, 'call-id');
    if (callId !== undefined) this.ended(callId);
  }

  /** The call with this Call-ID has ended (no-op when unknown); its owner is told when it is another worker. */
  ended(callId: string): void {
    const routed = this.routed.get(callId);
    if (routed) {
      this.routed.delete(callId);
      this.peers?.send(routed.owner, SECURITY_CHANNELS.callEnd, { user: routed.user, callId });
      return;
    }
    this.forget(callId);
  }

  /** Wrap the transaction's `respond`: a non-2xx final response ends the call. */
  private follow(st: CallTransaction, callId: string): void {
    const respond = st.respond.bind(st);
    st.respond = (res: SipResponse) => {
      if (res.status >= 300) this.ended(callId);
      respond(res);
    };
  }

  /** The owner's answer; admitted (with a warning) when it does not answer in time. */
  private async askOwner(owner: number, user: string, callId: string): Promise<CallRefusal | undefined> {
    try {
      const answer = (await this.peers!.request(owner, SECURITY_CHANNELS.callAdmit, { user, callId }, this.opts.admitTimeoutMs ?? CALL_ADMIT_TIMEOUT_MS)) as CallRefusal | null;
      return answer && (answer.status === 486 || answer.status === 503) ? answer : undefined;
    } catch (err) {
      this.log.warn({ user, worker: owner, err: (err as Error).message }, 'call admitted unchecked: the user\'s worker did not answer');
      return undefined;
    }
  }

  /** Remember a call another worker admitted (bounded: the oldest, or one past maxCallSeconds, is forgotten). */
  private remember(callId: string, call: RoutedCall): void {
    const oldest = this.routed.entries().next();
    if (!oldest.done && (this.routed.size >= MAX_ROUTED_CALLS || call.startMs - oldest.value[1].startMs >= this.maxCallMs)) {
      this.routed.delete(oldest.value[0]);
    }
    this.routed.set(callId, call);
  }

  /** Calls admitted through another worker and not yet ended, 0 ≤ n ≤ {@link MAX_ROUTED_CALLS}. */
  get routedCalls(): number {
    return this.routed.size;
  }

  /** Active calls of `user`. */
  activeCalls(user: string): number {
    return this.active.get(user)?.size ?? 0;
  }

  private forget(callId: string): void {
    const user = this.owner.get(callId);
    if (user === undefined) return;
    this.owner.delete(callId);
    const m = this.active.get(user);
    if (!m) return;
    m.delete(callId);
    if (m.size === 0) this.active.delete(user);
  }
}
