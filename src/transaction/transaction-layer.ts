import type { Logger } from '../log.js';
import { getHeader, splitList, type SipRequest, type SipResponse } from '../sip/message.js';
import { parseCSeq, parseVia } from '../sip/headers.js';
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
  type MessageSender,
  type ServerTransaction,
} from './server-transaction.js';
import { MAGIC_COOKIE } from '../sip/branch.js';
import type { TimerConfig } from './timers.js';

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
 * Logs one line per server transaction at info level, when its final response is sent.
 */
export class TransactionLayer {
  private readonly server = new Map<string, ServerTransaction>();
  private readonly client = new Map<string, ClientTransaction>();
  private readonly log: Logger;
  tu: TransactionUser | undefined;

  constructor(
    private readonly sender: MessageSender,
    private readonly timers: TimerConfig,
    logger: Logger,
  ) {
    this.log = logger.child({ component: 'transaction' });
  }

  /** Number of live server and client transactions. */
  size(): { server: number; client: number } {
    return { server: this.server.size, client: this.client.size };
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
    if (msg.method === 'ACK') {
      if (existing instanceof InviteServerTransaction && existing.state !== 'accepted') {
        existing.onAck();
        return;
      }
      tu.onAck(msg, source);
      return;
    }
    if (existing) {
      existing.onRetransmission();
      return;
    }
    const onTerminated = (k: string) => this.server.delete(k);
    const onFinal = (st: ServerTransaction) =>
      this.log.info(
        {
          method: st.request.method,
          ruri: st.request.uri,
          status: st.lastResponse?.status,
          callId: getHeader(st.request, 'call-id'),
          from: `${st.source.transport}:${st.source.remoteAddress}:${st.source.remotePort}`,
        },
        'transaction',
      );
    const st =
      msg.method === 'INVITE'
        ? new InviteServerTransaction(key, msg, source, this.sender, this.timers, onTerminated, onFinal)
        : new NonInviteServerTransaction(key, msg, source, this.sender, this.timers, onTerminated, onFinal);
    this.server.set(key, st);
    tu.onRequest(msg, st);
  }

  /** The INVITE server transaction a CANCEL refers to (§9.2: same key, method INVITE), if live. */
  findInviteFor(cancel: SipRequest): InviteServerTransaction | undefined {
    try {
      const st = this.server.get(serverKey(cancel, 'INVITE'));
      return st instanceof InviteServerTransaction ? st : undefined;
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
    for (const t of [...this.server.values(), ...this.client.values()]) t.terminate();
  }
}

function topVia(msg: SipRequest | SipResponse) {
  const v = getHeader(msg, 'via');
  if (!v) throw new SipParseError(400, 'Bad Request: missing Via');
  return parseVia(splitList(v)[0]);
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
  const cseq = parseCSeq(getHeader(req, 'cseq') ?? '');
  return `2543|${getHeader(req, 'call-id')}|${cseq.seq}|${getHeader(req, 'from')}|${sentBy}|${method}`;
}

/** Client transaction key (§17.1.3): top Via branch + CSeq method. */
export function clientKey(msg: SipRequest | SipResponse): string {
  const via = topVia(msg);
  const cseq = parseCSeq(getHeader(msg, 'cseq') ?? '');
  const method = cseq.method === 'ACK' ? 'INVITE' : cseq.method;
  return `${via.params.branch ?? ''}|${method}`;
}
