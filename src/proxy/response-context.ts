import type { Logger } from '../log.js';
import { cloneMessage, removeFirstValue, type SipRequest, type SipResponse } from '../sip/message.js';
import { createResponse } from '../sip/response.js';
import type { ServerTransaction } from '../transaction/server-transaction.js';
import { buildCancel, type ClientTransaction } from '../transaction/client-transaction.js';
import type { TransactionLayer } from '../transaction/transaction-layer.js';
import type { Destination } from '../transport/types.js';

/** One branch of a forked request (RFC 3261 §16.6): its client transaction and what came back. */
interface Branch {
  request: SipRequest;
  destination: Destination;
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
 */
export class ResponseContext {
  private readonly branches: Branch[] = [];
  private answered = false;
  private cancelled = false;

  constructor(
    private readonly st: ServerTransaction,
    private readonly transactions: TransactionLayer,
    private readonly log: Logger,
  ) {}

  /** Forward `request` (already prepared: Via, Request-URI, Route) to `destination` as a new branch. */
  addBranch(request: SipRequest, destination: Destination): void {
    const branch: Branch = { request, destination, provisional: false, cancelRequested: false, cancelled: false };
    this.branches.push(branch);
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
        this.onBranchResponse(branch, res);
      },
      onTimeout: () => {
        if (timerC) clearTimeout(timerC);
        this.onBranchResponse(branch, createResponse(request, 408, { reason: 'Request Timeout' }), true);
      },
      onTransportError: (err) => {
        if (timerC) clearTimeout(timerC);
        this.log.info({ err: err.message, to: `${destination.transport}:${destination.address}:${destination.port}` }, 'branch transport failure');
        this.onBranchResponse(branch, createResponse(request, 503, { reason: 'Service Unavailable' }), true);
      },
    });
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

  private onBranchResponse(b: Branch, res: SipResponse, local = false): void {
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
      for (const other of this.branches) if (other !== b) this.cancelBranch(other);
      return;
    }
    if (b.final) return;
    b.final = local ? res : res;
    if (res.status >= 600) for (const other of this.branches) if (other !== b) this.cancelBranch(other);
    if (this.answered) return;
    if (this.branches.some((x) => !x.final)) return;
    const best = this.bestResponse();
    this.answered = true;
    this.forward(best, best === res && local);
  }

  /** §16.7 step 6: a 6xx if any, else the lowest-class response; 503 is sent upstream as 500. */
  private bestResponse(): SipResponse {
    const finals = this.branches.map((b) => b.final!).filter(Boolean);
    const sixxx = finals.find((r) => r.status >= 600);
    let best = sixxx ?? finals.reduce((a, r) => (Math.floor(r.status / 100) < Math.floor(a.status / 100) ? r : a));
    if (this.cancelled && !sixxx) best = finals.find((r) => r.status === 487) ?? best;
    if (best.status === 503) {
      best = { ...cloneMessage(best), status: 500, reason: 'Server Internal Error' };
    }
    return best;
  }

  /** Send a response upstream: remove our Via (§16.7 step 3) unless the response was made here from the original request. */
  private forward(res: SipResponse, madeFromBranchRequest = false): void {
    const out = cloneMessage(res);
    removeFirstValue(out, 'via');
    void madeFromBranchRequest;
    this.st.respond(out);
  }
}
