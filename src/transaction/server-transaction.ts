import type { SipRequest, SipResponse } from '../sip/message.js';
import { getHeader } from '../sip/message.js';
import { topVia } from '../sip/parsed-headers.js';
import type { Destination, Source } from '../transport/types.js';
import { isStream } from '../transport/types.js';
import { serializeMessage } from '../sip/serializer.js';
import { TimerSet, type TimerConfig } from './timers.js';
import { fnv1a } from '../sip/fnv.js';

/**
 * To tag of a response answered without transaction state for transaction
 * `key` (RFC 3261 §8.2.7: a stateless UAS generates the To tag the same way
 * for the same request): `prefix` and a hash of the key, so a retransmission
 * gets the same tag, and the ACK of a stateless 3xx–6xx to an INVITE
 * (same key, §17.1.1.3) carries it back and can be recognised without state.
 */
export function statelessToTag(prefix: string, key: string): string {
  return prefix + fnv1a(key).toString(36);
}

/** True for the status of a digest challenge, 401 or 407 (RFC 3261 §22.1, §22.3), which a TU answers with `respondStateless`. */
export function isChallenge(status: number): boolean {
  return status === 401 || status === 407;
}

/** Prefix of the To tag of a digest challenge answered statelessly ({@link statelessToTag}). */
export const CHALLENGE_TAG_PREFIX = 'ch';

/** The To tag of a digest challenge (401/407) answered statelessly for transaction `key`. */
export function challengeToTag(key: string): string {
  return statelessToTag(CHALLENGE_TAG_PREFIX, key);
}

/** What a transaction needs from the transport layer. */
export interface MessageSender {
  /** Serialize and send; resolves to the flow id used (streams) or undefined (UDP). */
  send(msg: SipRequest | SipResponse, dest: Destination): Promise<string | undefined>;
  /** Calls `listener` once when the stream flow closes; returns the cancel function (RFC 3263 §4.3). */
  onFlowClosed?(flowId: string, listener: () => void): () => void;
  /**
   * Send bytes already serialized (a retransmitted final response); `msg`, when
   * given, is the message they encode, for the debug log. Without it, completed
   * transactions keep their parsed response and their own Timer J.
   */
  sendWire?(wire: Buffer, dest: Destination, msg?: SipRequest | SipResponse): Promise<string | undefined>;
}

/**
 * Where a response goes (RFC 3261 §18.2.2, RFC 3581 §4): back over the flow
 * the request came on when it is a stream; otherwise to the top Via's
 * `received` address (or sent-by host) and `rport` (or sent-by port, default
 * 5060/5061).
 */
export function responseDestination(res: SipResponse, source: Source): Destination {
  if (!getHeader(res, 'via')) return { transport: source.transport, address: source.remoteAddress, port: source.remotePort, flowId: source.flowId };
  const via = topVia(res);
  const address = via.params.received ?? via.host;
  const rport = via.params.rport;
  const port = rport ? Number(rport) : via.port ?? (via.transport === 'TLS' ? 5061 : 5060);
  if (isStream(source.transport)) {
    return { transport: source.transport, address: source.remoteAddress, port: source.remotePort, flowId: source.flowId };
  }
  return { transport: 'udp', address, port };
}

/** Common surface of INVITE and non-INVITE server transactions, as the TU sees it. */
export interface ServerTransaction {
  readonly key: string;
  /** When the request arrived, ms on the monotonic clock (`performance.now()`). */
  readonly startedMs: number;
  readonly request: SipRequest;
  readonly source: Source;
  /** The last response sent, if any. */
  readonly lastResponse: SipResponse | undefined;
  /** True once a final response has been sent. */
  readonly finalSent: boolean;
  /** Send a response through the transaction (retransmitted as §17.2 requires). */
  respond(res: SipResponse): void;
  /**
   * The To tag a final response answered with {@link respondStateless} must carry:
   * {@link challengeToTag} of the key.
   */
  readonly challengeTag: string;
  /**
   * Send a digest challenge (401/407) this server generated and forget the
   * transaction at once (RFC 3261 §8.2.7, §26.1.5): no Completed state, no
   * Timer G/H/J, nothing held. A retransmitted request is then a new one and
   * is challenged again (the same response within the same second); the ACK of a stateless INVITE challenge is
   * recognised by its To tag (`res` must carry {@link challengeTag}). When a
   * provisional response went already (a 100 Trying while the credentials
   * were looked up), the transaction exists for the peer and `res` goes
   * through {@link respond} as any final response.
   */
  respondStateless(res: SipResponse): void;
  /** True when the final response was sent by {@link respondStateless} without keeping state. */
  readonly stateless: boolean;
  /** The same request arrived again: re-send the last response (§17.2.1, §17.2.2). */
  onRetransmission(): void;
  /** Stop timers and forget the transaction. */
  terminate(): void;
}

type Terminated = (key: string, st: ServerTransaction) => void;
/** Hands a completed transaction over to the layer: final response wire bytes and destination. */
type Completed = (st: ServerTransaction, wire: Buffer, dest: Destination) => void;

/** State and plumbing shared by both kinds of server transaction. */
abstract class ServerTransactionBase implements ServerTransaction {
  lastResponse: SipResponse | undefined;
  readonly startedMs = performance.now();
  protected readonly timers = new TimerSet();
  protected terminated = false;
  stateless = false;

  constructor(
    readonly key: string,
    readonly request: SipRequest,
    readonly source: Source,
    private readonly sender: MessageSender,
    protected readonly timerConfig: TimerConfig,
    private readonly onTerminated: Terminated,
    protected readonly onFinal: (st: ServerTransaction) => void = () => {},
    /** Takes over a completed transaction as its response bytes and destination (see each kind); undefined keeps it here. */
    protected readonly onCompleted?: Completed,
  ) {}

  abstract readonly finalSent: boolean;
  abstract respond(res: SipResponse): void;
  abstract onRetransmission(): void;

  get challengeTag(): string {
    return challengeToTag(this.key);
  }

  respondStateless(res: SipResponse): void {
    if (this.finalSent) return;
    if (res.status < 200 || this.lastResponse !== undefined) return this.respond(res);
    this.lastResponse = res;
    this.stateless = true;
    this.transmit(res);
    this.onFinal(this);
    this.terminate();
  }

  /** True on TCP, TLS, WS: no retransmissions, zero wait timers (§17.2). */
  protected get reliable(): boolean {
    return isStream(this.source.transport);
  }

  terminate(): void {
    if (this.terminated) return;
    this.terminated = true;
    this.timers.clear();
    this.onTerminated(this.key, this);
  }

  protected transmit(res: SipResponse): void {
    this.sender.send(res, responseDestination(res, this.source)).catch(() => {});
  }

  /** Serialize, send, and return the bytes and destination (for a transaction that keeps only those). */
  protected transmitWire(res: SipResponse): { wire: Buffer; dest: Destination } {
    const wire = serializeMessage(res);
    const dest = responseDestination(res, this.source);
    (this.sender.sendWire ? this.sender.sendWire(wire, dest, res) : this.sender.send(res, dest)).catch(() => {});
    return { wire, dest };
  }
}

/**
 * Non-INVITE server transaction (RFC 3261 §17.2.2, Figure 8): Trying →
 * Proceeding → Completed → Terminated. In Completed, retransmitted requests get
 * the final response again until Timer J (64·T1 on UDP, 0 on streams) fires.
 *
 * On streams Timer J is 0: the final response terminates the transaction. On
 * UDP the final response hands its key, wire bytes and destination to the
 * transaction layer through `onCompleted` (without one, the transaction waits
 * for Timer J itself), which answers
 * retransmissions and runs Timer J; this object then holds nothing the layer
 * needs and is garbage once the TU lets go of it.
 */
export class NonInviteServerTransaction extends ServerTransactionBase {
  state: 'trying' | 'proceeding' | 'completed' | 'terminated' = 'trying';

  /** True once a final (2xx–6xx) response was sent. */
  get finalSent(): boolean {
    return this.state === 'completed' || this.state === 'terminated';
  }

  /** Send a response (RFC 3261 §17.2.2): 1xx → Proceeding; the first final → Completed (terminated at once on streams; on UDP handed to the layer's completed log for Timer J). Later calls after a final are ignored. */
  respond(res: SipResponse): void {
    if (this.finalSent) return;
    this.lastResponse = res;
    if (res.status < 200) {
      this.transmit(res);
      this.state = 'proceeding';
      return;
    }
    const { wire, dest } = this.transmitWire(res);
    this.state = 'completed';
    this.onFinal(this);
    if (this.reliable) this.terminate();
    else if (this.onCompleted) this.onCompleted(this, wire, dest);
    else this.timers.start('J', 64 * this.timerConfig.t1, () => this.terminate());
  }

  /** The request came again: send the last response again, if any (§17.2.2). */
  onRetransmission(): void {
    if (this.lastResponse && this.state !== 'terminated') this.transmit(this.lastResponse);
  }

  override terminate(): void {
    this.state = 'terminated';
    super.terminate();
  }
}

/**
 * INVITE server transaction (RFC 3261 §17.2.1, Figure 7, as updated by RFC 6026
 * §7.1): Proceeding → Completed (3xx–6xx; Timer G retransmits on UDP, Timer H
 * 64·T1 waits for the ACK) → Confirmed (Timer I = T4 on UDP, 0 on streams) →
 * Terminated; after a 2xx it enters Accepted and absorbs retransmitted INVITEs
 * until Timer L (64·T1).
 *
 * With `onCompleted` (the transaction layer gives it when the sender has
 * `sendWire`), a 3xx–6xx hands the key, the response bytes and the destination
 * over to the layer, which runs Completed and Confirmed in a
 * {@link CompletedInvite} holding only those; this object then stays in
 * `completed` and is garbage once the TU lets go of it.
 */
export class InviteServerTransaction extends ServerTransactionBase {
  state: 'proceeding' | 'completed' | 'confirmed' | 'accepted' | 'terminated' = 'proceeding';
  /** Set when a CANCEL for this INVITE was received (§9.2). */
  cancelled = false;

  /** True once a final (2xx–6xx) response was sent. */
  get finalSent(): boolean {
    return this.state !== 'proceeding';
  }

  /**
   * Send a response (RFC 3261 §17.2.1, RFC 6026 §7.1): 1xx stays in Proceeding;
   * 2xx → Accepted (Timer L, 64·T1 ms; later 2xx pass through); 3xx–6xx →
   * Completed (Timer G on UDP, Timer H 64·T1 ms), handed to the layer as a
   * {@link CompletedInvite} when it gave `onCompleted`. Other calls are ignored.
   */
  respond(res: SipResponse): void {
    if (this.state === 'accepted' && res.status >= 200 && res.status < 300) {
      // RFC 6026 §7.1: 2xx retransmissions from the TU pass through in Accepted.
      this.transmit(res);
      return;
    }
    if (this.state !== 'proceeding') return;
    this.lastResponse = res;
    if (res.status >= 300 && this.onCompleted) {
      const { wire, dest } = this.transmitWire(res);
      this.state = 'completed';
      this.onFinal(this);
      this.onCompleted(this, wire, dest);
      return;
    }
    this.transmit(res);
    if (res.status < 200) return;
    this.onFinal(this);
    const { t1, t2 } = this.timerConfig;
    if (res.status < 300) {
      this.state = 'accepted';
      this.timers.start('L', 64 * t1, () => this.terminate());
      return;
    }
    this.state = 'completed';
    if (!this.reliable) {
      let interval = t1;
      const g = () => {
        if (this.state !== 'completed') return;
        this.transmit(res);
        interval = Math.min(2 * interval, t2);
        this.timers.start('G', interval, g);
      };
      this.timers.start('G', interval, g);
    }
    this.timers.start('H', 64 * t1, () => this.terminate());
  }

  /** The ACK for a 3xx–6xx response arrived (same branch): absorb it (§17.2.1). */
  onAck(): void {
    if (this.state !== 'completed') return;
    this.state = 'confirmed';
    this.timers.stop('G');
    this.timers.stop('H');
    this.timers.start('I', this.reliable ? 0 : this.timerConfig.t4, () => this.terminate());
  }

  /** The INVITE came again: send the last response again in Proceeding or Completed (§17.2.1); absorbed otherwise. */
  onRetransmission(): void {
    if ((this.state === 'proceeding' || this.state === 'completed') && this.lastResponse) this.transmit(this.lastResponse);
  }

  override terminate(): void {
    this.state = 'terminated';
    super.terminate();
  }
}
