import type { Logger } from '../log.js';
import { cloneMessage, removeFirstValue, type SipRequest, type SipResponse } from '../sip/message.js';
import { createResponse } from '../sip/response.js';
import type { ServerTransaction } from '../transaction/server-transaction.js';
import { buildCancel, type ClientTransaction } from '../transaction/client-transaction.js';
import type { TransactionLayer } from '../transaction/transaction-layer.js';
import type { Destination } from '../transport/types.js';

/** The copy of a request for the next target after one failed (RFC 3263 §4.3), or undefined when none is left. */
export type RetryBranch = (reason: string) => Promise<{ msg: SipRequest; dest: Destination; retry?: RetryBranch } | undefined>;

/** One branch of a forked request (RFC 3261 §16.6): its client transaction and what came back. */
interface Branch {
  request: SipRequest;
  destination: Destination;
  retry?: RetryBranch;
  ct?: ClientTransaction;
  provisional: boolean;
  final?: SipResponse;
  cancelRequested: boolean;
  cancelled: boolean;
}

/** Timer C (RFC 3261 §16.6 step 11): an INVITE branch without a final response is cancelled after 180 000 ms. */
export const TIMER_C_MS = 180_000;

/**
 * The response context of a stateful proxy (RFC 3261 §16.7) for one server
 * transaction: the branches it forwarded, forwarding of provisional and 2xx
 * responses at once, choice of the best final response when every branch has
 * answered (6xx first, then the lowest class; 503 becomes 500), CANCEL of
 * pending branches on a 2xx or 6xx (§16.7 step 10) or when the caller cancels
 * (§16.10), and Timer C.
 *
 * Failover inside a branch (RFC 3263 §4.3): a transport error (refused,
 * TLS handshake or certificate failure, connection closed before the answer)
 * or a 503 from the target sends the request to the branch's next target with
 * a new client transaction; only when none is left does the branch answer.
 */
export class ResponseContext {
  private readonly branches: Branch[] = [];
  private answered = false;
  private cancelled = false;
  private starting = false;
  /** Responses this proxy made itself (408 on timeout, 503 on transport failure): not converted by §16.7 step 6. */
  private readonly local = new WeakSet<SipResponse>();

  /**
   * @param nextGroups the later target groups (lower q), each preparing its
   *   branches when every branch before it has failed.
   */
  constructor(
    private readonly st: ServerTransaction,
    private readonly transactions: TransactionLayer,
    private readonly log: Logger,
    private readonly nextGroups: (() => Promise<{ msg: SipRequest; dest: Destination; retry?: RetryBranch }[]>)[] = [],
    /** Called with each 2xx forwarded upstream (ack-order.ts). */
    private readonly on2xxForwarded?: (res: SipResponse) => void,
  ) {}

  /**
   * Forward `request` (already prepared: Via, Request-URI, Route) to
   * `destination` as a new branch; `retry` gives the copy for the next target
   * when this one fails (RFC 3263 §4.3).
   */
  addBranch(request: SipRequest, destination: Destination, retry?: RetryBranch): void {
    const branch: Branch = { request, destination, retry, provisional: false, cancelRequested: false, cancelled: false };
    this.branches.push(branch);
    this.startBranch(branch);
  }

  /** Start (or restart, after failover) the client transaction of a branch. */
  private startBranch(branch: Branch): void {
    const { request, destination } = branch;
    let timerC: NodeJS.Timeout | undefined;
    const armTimerC = () => {
      if (request.method !== 'INVITE') return;
      if (timerC) clearTimeout(timerC);
      timerC = setTimeout(() => this.cancelBranch(branch), TIMER_C_MS);
      timerC.unref();
    };
    armTimerC();
    branch.ct = this.transactions.sendRequest(request, destination, {
      onResponse: (res) => {
        if (res.status < 200) {
          armTimerC();
        } else if (timerC) clearTimeout(timerC);
        if (res.status === 503 && !branch.provisional && this.failOver(branch, '503', res)) return;
        this.onBranchResponse(branch, res);
      },
      onTimeout: () => {
        if (timerC) clearTimeout(timerC);
        const res = createResponse(request, 408, { reason: 'Request Timeout' });
        this.local.add(res);
        this.onBranchResponse(branch, res);
      },
      onTransportError: (err) => {
        if (timerC) clearTimeout(timerC);
        this.log.info({ err: err.message, to: `${destination.transport}:${destination.address}:${destination.port}` }, 'branch transport failure');
        if (this.failOver(branch, err.message)) return;
        const res = createResponse(request, 503, { reason: 'Service Unavailable' });
        this.local.add(res);
        this.onBranchResponse(branch, res);
      },
    });
  }

  /**
   * RFC 3263 §4.3: the branch's target failed; when the branch has a next
   * target and nobody cancelled, send the request there (true) — or, when it
   * turns out there is none, answer the branch with `response` (the 503 the
   * target sent, §16.7 step 6 applies) or a 503 of ours. False: no failover.
   */
  private failOver(branch: Branch, reason: string, response?: SipResponse): boolean {
    const retry = branch.retry;
    if (!retry || this.answered || this.cancelled || branch.cancelRequested) return false;
    branch.retry = undefined;
    const failedRequest = branch.request;
    retry(reason).then(
      (next) => {
        if (next && !this.answered && !this.cancelled && !branch.cancelRequested) {
          branch.request = next.msg;
          branch.destination = next.dest;
          branch.retry = next.retry;
          branch.ct = undefined;
          this.startBranch(branch);
          return;
        }
        if (response) return this.onBranchResponse(branch, response);
        const res = createResponse(failedRequest, 503, { reason: `Service Unavailable: every server failed (${reason})` });
        this.local.add(res);
        this.onBranchResponse(branch, res);
      },
      (err: unknown) => {
        this.log.warn({ err }, 'failover failed');
        const res = createResponse(failedRequest, 503, { reason: 'Service Unavailable' });
        this.local.add(res);
        this.onBranchResponse(branch, res);
      },
    );
    return true;
  }

  /** The caller sent CANCEL (§16.10): cancel every pending branch; the 487s they bring become the final answer. */
  cancel(): void {
    this.cancelled = true;
    for (const b of this.branches) this.cancelBranch(b);
  }

  private cancelBranch(b: Branch): void {
    if (b.final || b.cancelled || b.request.method !== 'INVITE') return;
    if (!b.provisional) {
      // §9.1: no CANCEL before a provisional response; send it when one arrives.
      b.cancelRequested = true;
      return;
    }
    b.cancelled = true;
    const cancel = buildCancel(b.request);
    this.transactions.sendRequest(cancel, b.ct?.destination ?? b.destination, {
      onResponse: () => {},
      onTimeout: () => {},
      onTransportError: () => {},
    });
  }

  private onBranchResponse(b: Branch, res: SipResponse): void {
    if (res.status < 200) {
      b.provisional = true;
      if (b.cancelRequested) this.cancelBranch(b);
      if (res.status === 100 || this.answered) return;
      this.forward(res);
      return;
    }
    if (res.status < 300) {
      // Every 2xx to an INVITE is forwarded (§16.7 step 5), retransmissions included.
      b.final = b.final ?? res;
      this.answered = true;
      this.forward(res);
      this.on2xxForwarded?.(res);
      for (const other of this.branches) if (other !== b) this.cancelBranch(other);
      return;
    }
    if (b.final) return;
    b.final = res;
    const sixxx = res.status >= 600;
    if (sixxx) for (const other of this.branches) if (other !== b) this.cancelBranch(other);
    if (this.answered || this.starting) return;
    if (this.branches.some((x) => !x.final)) return;
    if (!sixxx && !this.cancelled && this.nextGroups.length && !this.branches.some((x) => (x.final?.status ?? 0) >= 600)) {
      this.startNextGroup();
      return;
    }
    this.finish();
  }

  /** Send the best final response upstream. */
  private finish(): void {
    const best = this.bestResponse();
    this.answered = true;
    this.forward(best);
  }

  /** Sequential forking: every branch so far failed, try the next (lower q) group. */
  private startNextGroup(): void {
    const next = this.nextGroups.shift()!;
    this.starting = true;
    next().then(
      (prepared) => {
        this.starting = false;
        if (this.cancelled) return this.finish();
        for (const p of prepared) this.addBranch(p.msg, p.dest, p.retry);
      },
      () => {
        this.starting = false;
        if (this.nextGroups.length && !this.cancelled) this.startNextGroup();
        else this.finish();
      },
    );
  }

  /** §16.7 step 6: a 6xx if any, else the lowest-class response; 503 is sent upstream as 500. */
  private bestResponse(): SipResponse {
    const finals = this.branches.map((b) => b.final!).filter(Boolean);
    const sixxx = finals.find((r) => r.status >= 600);
    let best = sixxx ?? finals.reduce((a, r) => (Math.floor(r.status / 100) < Math.floor(a.status / 100) ? r : a));
    if (this.cancelled && !sixxx) best = finals.find((r) => r.status === 487) ?? best;
    if (best.status === 503 && !this.local.has(best)) {
      best = { ...cloneMessage(best), status: 500, reason: 'Server Internal Error' };
    }
    return best;
  }

  /** Send a response upstream after removing our Via (§16.7 step 3). */
  private forward(res: SipResponse): void {
    const out = cloneMessage(res);
    removeFirstValue(out, 'via');
    this.st.respond(out);
  }
}
