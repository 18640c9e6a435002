import { getHeader, getHeaderValues, type SipHeader, type SipRequest, type SipResponse } from '../sip/message.js';
import { parseCSeq } from '../sip/headers.js';
import type { Destination } from '../transport/types.js';
import { isStream } from '../transport/types.js';
import type { MessageSender } from './server-transaction.js';
import { TimerSet, type TimerConfig } from './timers.js';

/** What the transaction user hears from a client transaction. */
export interface ClientTransactionUser {
  /** Every response the TU must see: provisional, final, and (INVITE) 2xx retransmissions. */
  onResponse(res: SipResponse): void;
  /** Timer B or F fired with no final response (§17.1.1.2, §17.1.2.2): TU acts as on a 408. */
  onTimeout(): void;
  /** The request could not be sent (§8.1.3.1): TU acts as on a 503. */
  onTransportError(err: Error): void;
}

/** Common surface of client transactions. */
export interface ClientTransaction {
  readonly key: string;
  readonly request: SipRequest;
  readonly destination: Destination;
  receive(res: SipResponse): void;
  terminate(): void;
}

type Terminated = (key: string) => void;

/**
 * Headers shared by a hop-by-hop ACK and a CANCEL for an INVITE (RFC 3261
 * §17.1.1.3, §9.1): the INVITE's top Via (same branch) and Route headers,
 * Max-Forwards 70, From, the given To, Call-ID, and the INVITE's CSeq number
 * with `method`.
 */
function sameTransactionRequest(invite: SipRequest, method: 'ACK' | 'CANCEL', to: string, extra: SipHeader[] = []): SipRequest {
  const headers: SipHeader[] = [];
  const via = getHeaderValues(invite, 'via')[0];
  if (via) headers.push({ name: 'Via', value: via });
  for (const r of getHeaderValues(invite, 'route')) headers.push({ name: 'Route', value: r });
  headers.push({ name: 'Max-Forwards', value: '70' });
  headers.push({ name: 'From', value: getHeader(invite, 'from') ?? '' });
  headers.push({ name: 'To', value: to });
  headers.push({ name: 'Call-ID', value: getHeader(invite, 'call-id') ?? '' });
  headers.push({ name: 'CSeq', value: `${parseCSeq(getHeader(invite, 'cseq') ?? '').seq} ${method}` });
  headers.push(...extra);
  return { kind: 'request', method, uri: invite.uri, headers, body: Buffer.alloc(0) };
}

/**
 * Build the ACK for a non-2xx final response to an INVITE (RFC 3261 §17.1.1.3):
 * same Request-URI, Call-ID, From, CSeq number and top Via as the INVITE, To
 * from the response, the INVITE's Route headers.
 */
export function buildNon2xxAck(invite: SipRequest, res: SipResponse): SipRequest {
  return sameTransactionRequest(invite, 'ACK', getHeader(res, 'to') ?? getHeader(invite, 'to') ?? '');
}

/**
 * Build a CANCEL for a pending INVITE (RFC 3261 §9.1): same Request-URI,
 * Call-ID, From, To, CSeq number, the INVITE's top Via (same branch) and Route headers.
 */
export function buildCancel(invite: SipRequest, extra: SipHeader[] = []): SipRequest {
  return sameTransactionRequest(invite, 'CANCEL', getHeader(invite, 'to') ?? '', extra);
}

abstract class ClientTransactionBase implements ClientTransaction {
  protected readonly timers = new TimerSet();
  protected terminated = false;

  constructor(
    readonly key: string,
    readonly request: SipRequest,
    public destination: Destination,
    protected readonly tu: ClientTransactionUser,
    protected readonly sender: MessageSender,
    protected readonly timerConfig: TimerConfig,
    private readonly onTerminated: Terminated,
  ) {}

  abstract receive(res: SipResponse): void;

  terminate(): void {
    if (this.terminated) return;
    this.terminated = true;
    this.timers.clear();
    this.unwatchFlow?.();
    this.onTerminated(this.key);
  }

  protected get reliable(): boolean {
    return isStream(this.destination.transport);
  }

  /** Stops watching the flow the request went over. */
  private unwatchFlow: (() => void) | undefined;

  /** True until a final response arrived. */
  protected abstract get awaitingFinal(): boolean;

  /**
   * Send the request; a transport failure terminates the transaction and
   * tells the TU, and so does the flow closing before a final response
   * (RFC 3263 §4.3: the target failed, the next one is tried).
   */
  protected transmit(msg: SipRequest = this.request): void {
    this.sender.send(msg, this.destination).then(
      (flowId) => {
        if (!flowId) return;
        this.destination = { ...this.destination, flowId };
        if (this.unwatchFlow || !this.sender.onFlowClosed || this.terminated || !this.awaitingFinal) return;
        this.unwatchFlow = this.sender.onFlowClosed(flowId, () => {
          if (this.terminated || !this.awaitingFinal) return;
          this.terminate();
          this.tu.onTransportError(new Error('connection closed before the final response'));
        });
      },
      (err: Error) => {
        if (this.terminated) return;
        this.terminate();
        this.tu.onTransportError(err);
      },
    );
  }
}

/**
 * Non-INVITE client transaction (RFC 3261 §17.1.2, Figure 6): Trying →
 * Proceeding → Completed → Terminated. Timer E retransmits on UDP (T1 doubling
 * to T2), Timer F (64·T1) times out, Timer K (T4 on UDP, 0 on streams) absorbs
 * response retransmissions.
 */
export class NonInviteClientTransaction extends ClientTransactionBase {
  state: 'trying' | 'proceeding' | 'completed' = 'trying';

  protected get awaitingFinal(): boolean {
    return this.state !== 'completed';
  }

  /** Send the request and start Timer E (UDP: T1, doubling up to T2 ms) and Timer F (64·T1 ms: timeout to the TU), RFC 3261 §17.1.2.2. */
  start(): void {
    const { t1, t2 } = this.timerConfig;
    this.transmit();
    if (!this.reliable) {
      let interval = t1;
      const e = () => {
        if (this.state === 'completed' || this.terminated) return;
        this.transmit();
        interval = this.state === 'proceeding' ? t2 : Math.min(2 * interval, t2);
        this.timers.start('E', interval, e);
      };
      this.timers.start('E', interval, e);
    }
    this.timers.start('F', 64 * t1, () => {
      if (this.state === 'completed') return;
      this.terminate();
      this.tu.onTimeout();
    });
  }

  /** A response matched to this transaction (§17.1.3): 1xx → Proceeding, final → Completed and Timer K (T4 ms on UDP, 0 on streams); both go to the TU. */
  receive(res: SipResponse): void {
    if (this.terminated || this.state === 'completed') return;
    if (res.status < 200) {
      this.state = 'proceeding';
      this.tu.onResponse(res);
      return;
    }
    this.state = 'completed';
    this.timers.stop('E');
    this.timers.stop('F');
    this.tu.onResponse(res);
    this.timers.start('K', this.reliable ? 0 : this.timerConfig.t4, () => this.terminate());
  }
}

/**
 * INVITE client transaction (RFC 3261 §17.1.1, Figure 5, with RFC 6026 §7.2's
 * Accepted state): Calling (Timer A retransmits on UDP, Timer B = 64·T1) →
 * Proceeding → Completed on 3xx–6xx (ACK sent, Timer D = 32 s on UDP, 0 on
 * streams) or Accepted on 2xx (2xx retransmissions passed to the TU until Timer M = 64·T1).
 */
export class InviteClientTransaction extends ClientTransactionBase {
  state: 'calling' | 'proceeding' | 'completed' | 'accepted' = 'calling';
  private ack: SipRequest | undefined;

  /** Send the INVITE and start Timer A (UDP: T1 ms, doubling) and Timer B (64·T1 ms: timeout to the TU), RFC 3261 §17.1.1.2. */
  start(): void {
    const { t1 } = this.timerConfig;
    this.transmit();
    if (!this.reliable) {
      let interval = t1;
      const a = () => {
        if (this.state !== 'calling' || this.terminated) return;
        this.transmit();
        interval *= 2;
        this.timers.start('A', interval, a);
      };
      this.timers.start('A', interval, a);
    }
    this.timers.start('B', 64 * t1, () => {
      if (this.state !== 'calling') return;
      this.terminate();
      this.tu.onTimeout();
    });
  }

  /** True until a final response has arrived. */
  get pending(): boolean {
    return this.state === 'calling' || this.state === 'proceeding';
  }

  protected get awaitingFinal(): boolean {
    return this.pending;
  }

  /**
   * A response matched to this transaction (§17.1.3): 1xx → Proceeding; 3xx–6xx →
   * Completed, the ACK sent hop by hop (§17.1.1.3) and Timer D; 2xx → Accepted
   * (RFC 6026 §7.2), its retransmissions passed to the TU until Timer M.
   */
  receive(res: SipResponse): void {
    if (this.terminated) return;
    if (res.status < 200) {
      if (!this.pending) return;
      this.state = 'proceeding';
      this.timers.stop('A');
      this.tu.onResponse(res);
      return;
    }
    if (res.status < 300) {
      if (this.state === 'completed') return;
      const first = this.state !== 'accepted';
      this.state = 'accepted';
      this.timers.stop('A');
      this.timers.stop('B');
      if (first) this.timers.start('M', 64 * this.timerConfig.t1, () => this.terminate());
      this.tu.onResponse(res);
      return;
    }
    if (this.state === 'completed') {
      if (this.ack) this.transmit(this.ack);
      return;
    }
    if (this.state === 'accepted') return;
    this.state = 'completed';
    this.timers.stop('A');
    this.timers.stop('B');
    this.ack = buildNon2xxAck(this.request, res);
    this.transmit(this.ack);
    this.tu.onResponse(res);
    this.timers.start('D', this.reliable ? 0 : 32_000, () => this.terminate());
  }
}
