/**
 * The channel between the SIP workers of one rtcedge instance (several
 * processes serving the same SIP ports, `sip.workers`). Messages are small
 * records on named channels; each worker handles a channel with one handler.
 */

/** A message payload: JSON-like data, a Buffer (carried as bytes), or a {@link TextAndBytes} pair. */
export type MeshPayload = unknown;

/**
 * A payload of text and bytes (e.g. a serialized Source and a SIP message, a
 * flow id and the bytes to write on it): framed as the text's UTF-8 and the
 * bytes, nothing serialized or parsed; arrives as the same pair (the bytes
 * copied out of the frame by the socket mesh).
 */
export type TextAndBytes = readonly [text: string, bytes: Buffer];

/** True when `p` is a {@link TextAndBytes} pair. */
export function isTextAndBytes(p: unknown): p is TextAndBytes {
  return Array.isArray(p) && p.length === 2 && typeof p[0] === 'string' && Buffer.isBuffer(p[1]);
}

/** Handles one channel; its return value (or promise) is the answer to {@link WorkerMesh.request}. */
export type MeshHandler = (from: number, payload: MeshPayload) => unknown;

/** Counters of one worker's mesh since start (the summary line reports their increase). */
export interface MeshCounters {
  framesSent: number;
  /** Bytes of the frames sent, length prefixes included. */
  bytesSent: number;
  /** Writes to the other workers' sockets: the frames one turn sends a worker leave in one, which wakes that worker once. */
  writes: number;
  framesReceived: number;
  /** Frames not sent: the worker was not connected, its queue was past the bound, or the frame too large. */
  framesDropped: number;
}

/** The workers of one instance, as seen by one of them. */
export interface WorkerMesh {
  /** This worker's index, 0 ≤ self < count. */
  readonly self: number;
  /** How many workers the instance runs (1: no other worker). */
  readonly count: number;
  /** What this worker sent and received, when the implementation counts it. */
  readonly counters?: Readonly<MeshCounters>;
  /**
   * Send to worker `to` (never to self); dropped with a debug log when that
   * worker is not connected. Messages to one worker arrive in the order they
   * were sent, and its handler of a one-way message runs before the next
   * message's. Returns false when the message was dropped here (not connected,
   * queue full), true when it was queued.
   */
  send(to: number, channel: string, payload: MeshPayload): boolean;
  /** Send to every other worker. */
  broadcast(channel: string, payload: MeshPayload): void;
  /**
   * Ask worker `to` and wait for its handler's answer.
   * @throws Error after `timeoutMs` ms without an answer, or when the handler threw.
   */
  request(to: number, channel: string, payload: MeshPayload, timeoutMs: number): Promise<unknown>;
  /** Set the handler of a channel (one per channel; a second call replaces it). */
  on(channel: string, handler: MeshHandler): void;
  /**
   * Call `listener` with a worker's index when the connection to it opens
   * (`up`: a worker started or restarted, it knows nothing of ours yet) or is
   * lost (the worker died or stopped: what it held, its flows, is gone).
   */
  onPeerChange(listener: (worker: number, up: boolean) => void): void;
}

/** The mesh of an instance with one worker: nothing to send to. */
export function soloMesh(): WorkerMesh {
  return {
    self: 0,
    count: 1,
    send: () => false,
    broadcast() {},
    request: () => Promise.reject(new Error('no other worker')),
    on() {},
    onPeerChange() {},
  };
}
