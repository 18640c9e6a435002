import { createHistogram } from 'node:perf_hooks';
import type { Logger } from '../log.js';
import { getHeader, type SipRequest, type SipResponse } from '../sip/message.js';
import { cseqOf, topVia, toTag } from '../sip/parsed-headers.js';
import { SipParseError } from '../sip/errors.js';
import type { Destination, Inbound, Source } from '../transport/types.js';
import {
  InviteClientTransaction,
  NonInviteClientTransaction,
  type ClientTransaction,
  type ClientTransactionUser,
} from './client-transaction.js';
import {
  InviteServerTransaction,
  NonInviteServerTransaction,
  CHALLENGE_TAG_PREFIX,
  challengeToTag,
  responseDestination,
  statelessToTag,
  type MessageSender,
  type ServerTransaction,
} from './server-transaction.js';
import { MAGIC_COOKIE } from '../sip/branch.js';
import type { TimerConfig } from './timers.js';
import { CompletedResponses } from './completed-responses.js';
import { copyBytes, detachString } from '../sip/detach.js';
import { CompletedInvite } from './completed-invite.js';
import { isStream } from '../transport/types.js';
import { createResponse, statusClass } from '../sip/response.js';
import type { Admission, RefusalReason } from './admission.js';

/** Counts since the layer started (the periodic summary line reports their increase). */
export interface TransactionCounters {
  /** Server transactions created. */
  serverTransactions: number;
  /** Final responses sent by server transactions, by class: `2xx`, `4xx`, ... */
  finals: Record<string, number>;
  /** Retransmitted requests answered from a completed transaction. */
  retransmissions: number;
  /** Digest challenges (401/407) answered statelessly (RFC 3261 §8.2.7); also counted in `finals` as `4xx`. */
  statelessChallenges: number;
  /** ACKs absorbed because they acknowledge a stateless INVITE challenge (their To tag is its {@link challengeToTag}). */
  challengeAcks: number;
  /** New requests refused with 503 by admission control, by reason. */
  refused: Record<RefusalReason, number>;
}

/** Options of {@link TransactionLayer}. */
export interface TransactionLayerOptions {
  /**
   * Most completed server transactions held for their last timer (Timer J for non-INVITE, H or I for INVITE
   * 3xx–6xx), per kind; past it the oldest is released early (default: no bound). README: `sip.limits.completed_transactions`.
   */
  maxCompleted?: number;
}

/** What the transaction user (proxy core, registrar) is told by the transaction layer. */
export interface TransactionUser {
  /** A new request other than ACK, with the server transaction that will carry its responses. */
  onRequest(req: SipRequest, st: ServerTransaction): void;
  /** An ACK that matches no INVITE server transaction (the ACK for a 2xx, RFC 3261 §17.2.3). */
  onAck(ack: SipRequest, source: Source): void;
  /** A response that matches no client transaction (a 2xx retransmission, §16.7 / RFC 6026). */
  onStrayResponse(res: SipResponse, source: Source): void;
}

/**
 * The transaction layer (RFC 3261 §17): matches requests to server
 * transactions (§17.2.3) and responses to client transactions (§17.1.3),
 * creates server transactions for new requests, absorbs retransmissions and
 * the ACK for non-2xx responses hop by hop.
 *
 * A completed non-INVITE server transaction on UDP is kept only as its key,
 * final response bytes and destination until Timer J, in
 * {@link CompletedResponses} (one log for all of them, one timer); an INVITE
 * server transaction that sent a 3xx–6xx likewise, as a {@link CompletedInvite}
 * until Timer H or I.
 *
 * A digest challenge (401/407) the TU generates goes out through
 * `respondStateless` and leaves nothing behind (RFC 3261 §8.2.7, §26.1.5):
 * a retransmitted request is handled as new and challenged again (same To
 * tag, and within the same second the same nonce: auth/sip-digest.ts
 * `challengeCounter`, so the same response); the ACK of a stateless INVITE challenge, which matches
 * no transaction, is recognised by its To tag ({@link challengeToTag} of its
 * key) and absorbed here instead of reaching the TU (a proxy would forward it).
 *
 * With an {@link Admission}, a new request past capacity is answered 503 with
 * Retry-After (RFC 3261 §21.5.4) and creates no transaction; retransmissions,
 * ACK, CANCEL and responses always go through.
 *
 * Logs one line per server transaction at debug level, when its final response
 * is sent; {@link counters} feed the periodic info summary.
 */
export class TransactionLayer {
  private readonly server = new Map<string, ServerTransaction>();
  private readonly client = new Map<string, ClientTransaction>();
  private readonly completed: CompletedResponses;
  /** INVITE server transactions in Completed or Confirmed, as key, response bytes and destination only; oldest first. */
  private readonly completedInvites = new Map<string, CompletedInvite>();
  private readonly maxCompleted: number;
  /** INVITE server transactions released from Completed/Confirmed before Timer H or I because of the bound. */
  private invitesReleasedEarly = 0;
  private readonly log: Logger;
  /** Server transactions awaiting their final response. */
  private pending = 0;
  /** Request-to-final-response times of server transactions, µs (reset by takeResponseTimes). */
  private responseTimes = createHistogram();
  tu: TransactionUser | undefined;
  /** Admission control for new requests; undefined admits everything. */
  admission: Admission | undefined;
  readonly counters: TransactionCounters = {
    serverTransactions: 0,
    finals: {},
    retransmissions: 0,
    statelessChallenges: 0,
    challengeAcks: 0,
    refused: { transactions: 0, pending: 0, rate: 0, lag: 0, share: 0 },
  };

  /** @throws RangeError when `opts.maxCompleted` is not a positive integer. */
  constructor(
    private readonly sender: MessageSender,
    private readonly timers: TimerConfig,
    logger: Logger,
    opts: TransactionLayerOptions = {},
  ) {
    this.log = logger.child({ component: 'transaction' });
    this.maxCompleted = opts.maxCompleted ?? Infinity;
    this.completed = new CompletedResponses(undefined, this.maxCompleted);
  }

  /**
   * Completed server transactions released before their timer (J, H or I) ran out because
   * `maxCompleted` were held, since start; a retransmission of one is handled as a new request.
   */
  get completedReleasedEarly(): number {
    return this.completed.releasedEarly + this.invitesReleasedEarly;
  }

  /**
   * Number of live server and client transactions; `server` includes
   * `completed`, the non-INVITE ones held for Timer J only; `pending`: server
   * transactions awaiting their final response.
   */
  size(): { server: number; client: number; completed: number; pending: number } {
    const completed = this.completed.size + this.completedInvites.size;
    return { server: this.server.size + completed, client: this.client.size, completed, pending: this.pending };
  }

  /** Bytes of final responses held for Timer J, in mapped chunks outside the V8 heap (counted in its `external` figure, not in `arrayBuffers`). */
  heldResponseBytes(): number {
    return this.completed.chunkBytes;
  }

  /**
   * State of the server transaction with `key` as the layer holds it
   * (`completed`/`confirmed` for one kept as its response bytes only), or
   * undefined when there is none (terminated).
   */
  stateOf(key: string): string | undefined {
    const st = this.server.get(key) as { state?: string } | undefined;
    if (st) return st.state;
    return this.completedInvites.get(key)?.state ?? (this.completed.has(key) ? 'completed' : undefined);
  }

  /** Entry point for every inbound message from the transport layer. */
  handle({ msg, source }: Inbound): void {
    const tu = this.tu;
    if (!tu) return;
    if (msg.kind === 'response') {
      let key: string;
      try {
        key = clientKey(msg);
      } catch {
        return; // response without a usable Via/CSeq: drop (§18.1.2)
      }
      const ct = this.client.get(key);
      if (ct) ct.receive(msg);
      else tu.onStrayResponse(msg, source);
      return;
    }
    let key: string;
    try {
      key = serverKey(msg);
    } catch (err) {
      if (err instanceof SipParseError) this.log.debug({ reason: err.reason }, 'unmatchable request dropped');
      return;
    }
    const existing = this.server.get(key);
    const completedInvite = existing ? undefined : this.completedInvites.get(key);
    if (completedInvite && (msg.method === 'ACK' || msg.method === 'INVITE')) {
      if (msg.method === 'ACK') completedInvite.onAck();
      else {
        this.counters.retransmissions++;
        completedInvite.onRetransmission();
      }
      return;
    }
    if (msg.method === 'ACK') {
      if (existing instanceof InviteServerTransaction && existing.state !== 'accepted') {
        existing.onAck();
        return;
      }
      if (!existing && acksStatelessChallenge(msg, key)) {
        this.counters.challengeAcks++;
        return;
      }
      tu.onAck(msg, source);
      return;
    }
    if (existing) {
      this.counters.retransmissions++;
      existing.onRetransmission();
      return;
    }
    const done = this.completed.get(key);
    if (done) {
      this.counters.retransmissions++;
      this.sender.sendWire?.(done.wire, done.dest).catch(() => {});
      return;
    }
    if (this.admission && msg.method !== 'CANCEL') {
      const credentialed = getHeader(msg, 'authorization') !== undefined || getHeader(msg, 'proxy-authorization') !== undefined;
      const refused = this.admission.check(credentialed, this.pending, this.server.size + this.completed.size);
      if (refused) {
        this.refuse(msg, source, key, refused);
        return;
      }
    }
    const st =
      msg.method === 'INVITE'
        ? new InviteServerTransaction(key, msg, source, this.sender, this.timers, this.onTerminated, this.onFinal, this.sender.sendWire ? this.onInviteCompleted : undefined)
        : new NonInviteServerTransaction(key, msg, source, this.sender, this.timers, this.onTerminated, this.onFinal, this.sender.sendWire ? this.onCompleted : undefined);
    this.server.set(key, st);
    this.pending++;
    this.counters.serverTransactions++;
    tu.onRequest(msg, st);
  }

  private readonly onTerminated = (k: string, st: ServerTransaction): void => {
    if (this.server.get(k) !== st) return;
    this.server.delete(k);
    if (!st.finalSent) this.pending--;
  };

  /**
   * Server-side response times since the previous call: request arrival (after
   * parsing) to final response handed to the transport, ms percentiles, and
   * how many transactions they cover. Restarts the count.
   */
  takeResponseTimes(): { count: number; p50Ms: number; p99Ms: number; p999Ms: number; maxMs: number } {
    const h = this.responseTimes;
    const ms = (us: number) => Math.round(us / 10) / 100;
    const out = h.count
      ? { count: h.count, p50Ms: ms(h.percentile(50)), p99Ms: ms(h.percentile(99)), p999Ms: ms(h.percentile(99.9)), maxMs: ms(h.max) }
      : { count: 0, p50Ms: 0, p99Ms: 0, p999Ms: 0, maxMs: 0 };
    h.reset();
    return out;
  }

  private readonly onFinal = (st: ServerTransaction): void => {
    this.pending--;
    this.responseTimes.record(Math.max(1, Math.round((performance.now() - st.startedMs) * 1000)));
    const status = st.lastResponse?.status ?? 0;
    const cls = statusClass(status);
    this.counters.finals[cls] = (this.counters.finals[cls] ?? 0) + 1;
    if (st.stateless) this.counters.statelessChallenges++;
    if (!this.log.isLevelEnabled('debug')) return;
    this.log.debug(
      {
        method: st.request.method,
        ruri: st.request.uri,
        status,
        ...(st.stateless && { stateless: true }),
        callId: getHeader(st.request, 'call-id'),
        from: `${st.source.transport}:${st.source.remoteAddress}:${st.source.remotePort}`,
      },
      'transaction',
    );
  };

  /** A non-INVITE transaction on UDP sent its final response: keep only what Timer J needs. */
  private readonly onCompleted = (st: ServerTransaction, wire: Buffer, dest: Destination): void => {
    if (this.server.get(st.key) !== st) return;
    this.server.delete(st.key);
    const d: Destination = { transport: dest.transport, address: detachString(dest.address), port: dest.port };
    this.completed.add(st.key, wire, d, performance.now() + 64 * this.timers.t1);
  };

  /** An INVITE transaction sent a 3xx–6xx: keep only what Timers G, H and I need (see CompletedInvite). */
  private readonly onInviteCompleted = (st: ServerTransaction, wire: Buffer, dest: Destination): void => {
    if (this.server.get(st.key) !== st) return;
    this.server.delete(st.key);
    const key = detachString(st.key);
    const d: Destination = { transport: dest.transport, address: detachString(dest.address), port: dest.port, flowId: dest.flowId };
    const ci = new CompletedInvite(key, copyBytes(wire, 0, wire.length), d, isStream(st.source.transport), this.timers, this.resend, this.forgetInvite);
    if (this.completedInvites.size >= this.maxCompleted && !this.completedInvites.has(key)) {
      this.invitesReleasedEarly++;
      this.completedInvites.values().next().value?.terminate();
    }
    this.completedInvites.set(key, ci);
  };

  private readonly forgetInvite = (done: CompletedInvite): void => {
    if (this.completedInvites.get(done.key) === done) this.completedInvites.delete(done.key);
  };

  private readonly resend = (wire: Buffer, dest: Destination): void => {
    this.sender.sendWire?.(wire, dest).catch(() => {});
  };

  /**
   * Answer 503 + Retry-After statelessly (RFC 3261 §21.5.4); no transaction
   * is created. The To tag is a hash of the transaction key, so a
   * retransmission refused again gets the same tag (§8.2.6.2).
   */
  private refuse(req: SipRequest, source: Source, key: string, reason: RefusalReason): void {
    this.counters.refused[reason]++;
    const retryAfter = String(this.admission?.opts.retryAfterS ?? 5);
    const res = createResponse(req, 503, {
      reason: 'Service Unavailable',
      toTag: statelessToTag('ol', key),
      headers: [{ name: 'Retry-After', value: retryAfter }],
    });
    this.sender.send(res, responseDestination(res, source)).catch(() => {});
  }

  /**
   * The INVITE server transaction a CANCEL refers to (§9.2: same key, method INVITE), if live;
   * `final` when it is held only to retransmit its 3xx–6xx (the CANCEL then has no effect but its 200);
   * undefined when none matches, which includes an INVITE challenged statelessly (the TU answers 481, §9.2).
   */
  findInviteFor(cancel: SipRequest): InviteServerTransaction | 'final' | undefined {
    try {
      const key = serverKey(cancel, 'INVITE');
      const st = this.server.get(key);
      if (st instanceof InviteServerTransaction) return st;
      return this.completedInvites.has(key) ? 'final' : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * Start a client transaction for `req` (its top Via must carry a fresh
   * branch) towards `dest`. INVITE gets an INVITE client transaction, anything
   * else but ACK a non-INVITE one.
   */
  sendRequest(req: SipRequest, dest: Destination, user: ClientTransactionUser): ClientTransaction {
    const key = clientKey(req);
    const onTerminated = (k: string) => this.client.delete(k);
    const ct =
      req.method === 'INVITE'
        ? new InviteClientTransaction(key, req, dest, user, this.sender, this.timers, onTerminated)
        : new NonInviteClientTransaction(key, req, dest, user, this.sender, this.timers, onTerminated);
    this.client.set(key, ct);
    ct.start();
    return ct;
  }

  /** Terminate every transaction (shutdown). */
  close(): void {
    this.completed.clear();
    for (const ci of [...this.completedInvites.values()]) ci.terminate();
    for (const t of [...this.server.values(), ...this.client.values()]) t.terminate();
    this.server.clear();
  }
}

/**
 * True when `ack` (no transaction matched it, `key` its server key, mapped to INVITE) acknowledges a digest
 * challenge answered statelessly: its To tag is the one {@link challengeToTag} gave that INVITE's 401/407.
 */
function acksStatelessChallenge(ack: SipRequest, key: string): boolean {
  const tag = toTag(ack);
  return tag !== undefined && tag.startsWith(CHALLENGE_TAG_PREFIX) && tag === challengeToTag(key);
}

/**
 * Server transaction key (§17.2.3): branch + sent-by + method, with ACK
 * mapped to INVITE. Branches without the magic cookie (RFC 2543 peers), or
 * that are nothing but the cookie, fall back to Call-ID, CSeq number, From
 * and the top Via's sent-by.
 */
export function serverKey(req: SipRequest, methodOverride?: string): string {
  const via = topVia(req);
  const method = methodOverride ?? (req.method === 'ACK' ? 'INVITE' : req.method);
  const branch = via.params.branch;
  const sentBy = `${via.host}:${via.port ?? ''}`;
  // A branch that is the magic cookie alone identifies nothing (RFC 4475 §3.2.1): RFC 2543 matching.
  if (branch && branch.length > MAGIC_COOKIE.length && branch.startsWith(MAGIC_COOKIE)) return `${branch}|${sentBy}|${method}`;
  const cseq = cseqOf(req);
  return `2543|${getHeader(req, 'call-id')}|${cseq.seq}|${getHeader(req, 'from')}|${sentBy}|${method}`;
}

/** Client transaction key (§17.1.3): top Via branch + CSeq method. */
export function clientKey(msg: SipRequest | SipResponse): string {
  const via = topVia(msg);
  const cseq = cseqOf(msg);
  const method = cseq.method === 'ACK' ? 'INVITE' : cseq.method;
  return `${via.params.branch ?? ''}|${method}`;
}
