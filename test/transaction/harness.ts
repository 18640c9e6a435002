/**
 * A transaction layer on a recording wire, for the RFC 3261 §17 state machine
 * tests: every message the layer sends is serialized to bytes and kept with
 * its destination and the (fake) time it left; inbound messages are parsed
 * from text, as the transport layer would hand them over. No sockets: the
 * transaction layer is protocol core.
 */
import { afterEach, beforeEach, vi } from 'vitest';
import { silentLogger } from '../../src/log.js';
import { getHeader, type SipMessage, type SipRequest, type SipResponse } from '../../src/sip/message.js';
import { parseMessage } from '../../src/sip/parser.js';
import { createResponse } from '../../src/sip/response.js';
import { serializeMessage } from '../../src/sip/serializer.js';
import type { ClientTransaction, ClientTransactionUser } from '../../src/transaction/client-transaction.js';
import type { ServerTransaction } from '../../src/transaction/server-transaction.js';
import { type TransactionUser, TransactionLayer } from '../../src/transaction/transaction-layer.js';
import type { Destination, Source, TransportName } from '../../src/transport/types.js';

/** RFC 3261 Table 4 defaults, ms. */
export const T1 = 500;
export const T2 = 4000;
export const T4 = 5000;

/** One message on the wire: its bytes, where it went, when (fake ms since the test started). */
export interface Sent {
  bytes: Buffer;
  dest: Destination;
  atMs: number;
}

/** The first line of a message's bytes, e.g. `INVITE sip:bob@example.test SIP/2.0` or `SIP/2.0 486 Busy Here`. */
export function startLine(s: Sent): string {
  return s.bytes.toString('latin1', 0, s.bytes.indexOf('\r\n'));
}

/** A header of a sent message, parsed back from its bytes. */
export function sentHeader(s: Sent, name: string): string | undefined {
  return getHeader(parseMessage(s.bytes), name);
}

/** Where the peer is. */
export const PEER = { address: '127.0.0.2', port: 5070 };

export function source(transport: TransportName = 'udp'): Source {
  return {
    transport,
    remoteAddress: PEER.address,
    remotePort: PEER.port,
    localAddress: '127.0.0.1',
    localPort: 5060,
    flowId: transport === 'udp' ? undefined : 'flow-1',
  };
}

/** A request as bytes would arrive: `method` with top Via branch `branch`, over `transport`. */
export function requestText(method: string, branch: string, transport: TransportName = 'udp', cseqMethod = method): string {
  const t = transport.toUpperCase();
  return [
    `${method} sip:bob@example.test SIP/2.0`,
    `Via: SIP/2.0/${t} ${PEER.address}:${PEER.port};branch=${branch}`,
    'Max-Forwards: 70',
    'From: <sip:alice@example.test>;tag=a1',
    'To: <sip:bob@example.test>',
    'Call-ID: call-1@127.0.0.2',
    `CSeq: 1 ${cseqMethod}`,
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');
}

export function parseRequest(text: string): SipRequest {
  return parseMessage(Buffer.from(text, 'latin1')) as SipRequest;
}

/** A response to `req` as it would come back from the peer, To tag added for status > 100. */
export function responseTo(req: SipRequest, status: number): SipResponse {
  // Round-trip through bytes so the layer sees what the parser makes of a wire message.
  return parseMessage(serializeMessage(createResponse(req, status, { toTag: 'b1' }))) as SipResponse;
}

/** The transaction layer between a recording wire and recording transaction users. */
export class Harness {
  readonly sent: Sent[] = [];
  readonly layer: TransactionLayer;
  /** Server side: requests handed to the TU with their transactions, ACKs for 2xx, stray responses. */
  readonly requests: { req: SipRequest; st: ServerTransaction }[] = [];
  readonly acks: SipRequest[] = [];
  readonly strays: SipResponse[] = [];
  private readonly t0 = Date.now();

  /**
   * @param opts.wire give the layer `sendWire` as the transport layer does: completed transactions are then
   *   kept as their response bytes only (CompletedResponses, CompletedInvite); without it they keep their objects.
   * @param opts.maxCompleted the layer's bound on completed transactions held (default none).
   */
  constructor(opts: { wire?: boolean; maxCompleted?: number } = {}) {
    const record = (bytes: Buffer, dest: Destination) => {
      this.sent.push({ bytes: Buffer.from(bytes), dest, atMs: Date.now() - this.t0 });
      return dest.flowId;
    };
    this.layer = new TransactionLayer(
      {
        send: async (msg: SipMessage, dest: Destination) => record(serializeMessage(msg), dest),
        ...(opts.wire && { sendWire: async (wire: Buffer, dest: Destination) => record(wire, dest) }),
      },
      { t1: T1, t2: T2, t4: T4 },
      silentLogger,
      { maxCompleted: opts.maxCompleted },
    );
    const tu: TransactionUser = {
      onRequest: (req, st) => this.requests.push({ req, st }),
      onAck: (ack) => this.acks.push(ack),
      onStrayResponse: (res) => this.strays.push(res),
    };
    this.layer.tu = tu;
  }

  /** The state of `st` as the layer holds it; `terminated` once the layer forgot it. */
  state(st: ServerTransaction): string {
    return this.layer.stateOf(st.key) ?? 'terminated';
  }

  /** Hand an inbound message to the layer, as the transport would. */
  receive(msg: SipMessage, transport: TransportName = 'udp'): void {
    this.layer.handle({ msg, source: source(transport) });
  }

  /** Times (ms since the start) at which messages whose start line begins with `prefix` were sent. */
  sendTimes(prefix: string): number[] {
    return this.sent.filter((s) => startLine(s).startsWith(prefix)).map((s) => s.atMs);
  }
}

/** A client transaction user that records what it hears. */
export function recordingUser(): ClientTransactionUser & { responses: number[]; timeouts: number; errors: Error[] } {
  const u = {
    responses: [] as number[],
    timeouts: 0,
    errors: [] as Error[],
    onResponse: (res: SipResponse) => u.responses.push(res.status),
    onTimeout: () => {
      u.timeouts += 1;
    },
    onTransportError: (err: Error) => u.errors.push(err),
  };
  return u;
}

/** Fake timers for every test of the calling file. */
export function useFakeTimersPerTest(): void {
  beforeEach(() => {
    // performance too: CompletedResponses times Timer J on the monotonic clock.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'setImmediate', 'clearImmediate', 'Date', 'performance'] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });
}

/** A client transaction for a `method` request (branch `branch`) sent to the peer over `transport`. */
export function startClient<T extends ClientTransaction>(method: string, branch: string, transport: TransportName = 'udp') {
  const h = new Harness();
  const user = recordingUser();
  const req = parseRequest(requestText(method, branch, transport));
  const ct = h.layer.sendRequest(req, { transport, address: PEER.address, port: PEER.port }, user) as T;
  return { h, user, req, ct };
}

/** Advance fake time by `ms`, running timers and the promise callbacks they queue. */
export async function advance(ms: number): Promise<void> {
  await vi.advanceTimersByTimeAsync(ms);
}

/** Cumulative times of a retransmission schedule starting at `first` ms, doubling, capped at `cap`, strictly before `untilMs`. */
export function schedule(first: number, cap: number, untilMs: number): number[] {
  const out = [0];
  let at = 0;
  let interval = first;
  while (at + interval < untilMs) {
    at += interval;
    out.push(at);
    interval = Math.min(2 * interval, cap);
  }
  return out;
}
