/**
 * The {@link WorkerMesh} of several SIP worker processes on one machine: a
 * full mesh of Unix stream sockets in one directory (mode 0700, made by the
 * primary). Worker i listens on `<dir>/w<i>.sock` and opens one connection
 * to every other worker for what it sends; what it receives arrives on the
 * connections the others opened to it.
 *
 * Frames: a 4-byte big-endian length, then kind (1 byte), request id (4),
 * how the payload travels (1), the channel (2-byte length, UTF-8), the
 * payload as JSON (4-byte length) and raw bytes: a Buffer payload, or the
 * Buffer in a payload's `data` field (a SIP message), travels as bytes
 * after the JSON of the rest, so a hand-off costs no serialization of the
 * message itself; a {@link TextAndBytes} pair travels as its text (UTF-8, in
 * the place of the JSON, not parsed) and its bytes, so a channel that sends
 * the same text again (a stream flow's source, a flow id) serializes and
 * parses nothing. The first frame of a connection is a hello naming the
 * sender's index.
 *
 * Bounds: a frame larger than `maxFrameBytes` is refused (send drops it, a
 * receiver closes the connection that announced it); bytes queued towards one
 * worker beyond `maxQueuedBytes` (a slow or stuck peer) are dropped and
 * counted, never held; requests waiting for an answer are at most
 * `maxPendingRequests`.
 */
import net from 'node:net';
import { unlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../log.js';
import { isTextAndBytes, type MeshCounters, type MeshHandler, type MeshPayload, type WorkerMesh } from './worker-mesh.js';
import { TurnCork } from './turn-cork.js';

/** Frame kinds. */
const HELLO = 0;
const MESSAGE = 1;
const REQUEST = 2;
const REPLY = 3;
const REPLY_ERROR = 4;

type Frame = [kind: number, channel: string, id: number, payload: MeshPayload];

/** Default of `maxQueuedBytes`: bytes queued towards one worker, 8 MiB. */
export const MESH_MAX_QUEUED_BYTES = 8 * 1024 * 1024;
/** Default of `maxFrameBytes`: the largest frame, 1 MiB. */
export const MESH_MAX_FRAME_BYTES = 1024 * 1024;
/** Default of `maxPendingRequests`: requests waiting for an answer at once. */
export const MESH_MAX_PENDING_REQUESTS = 10_000;

/** Options of {@link SocketMesh}. */
export interface SocketMeshOptions {
  /** The directory of the sockets (short path: a Unix socket path has at most 107 bytes). */
  dir: string;
  /** This worker's index, 0 ≤ self < count. */
  self: number;
  count: number;
  logger: Logger;
  /** Bytes queued towards one worker beyond which frames to it are dropped; default {@link MESH_MAX_QUEUED_BYTES}. */
  maxQueuedBytes?: number;
  /** Largest frame, bytes; default {@link MESH_MAX_FRAME_BYTES} (a SIP message is at most `sip.limits.max_message_bytes`). */
  maxFrameBytes?: number;
  /** Requests waiting for an answer at once; default {@link MESH_MAX_PENDING_REQUESTS}. */
  maxPendingRequests?: number;
}

export type { MeshCounters, TextAndBytes } from './worker-mesh.js';

/** The path of worker `index`'s socket in `dir`. */
export function meshSocketPath(dir: string, index: number): string {
  return join(dir, `w${index}.sock`);
}

/**
 * Split a byte stream into length-prefixed frames. Returns the frames
 * complete so far, as views of the chunks pushed (a chunk is never changed
 * after its push: a socket's chunks are not reused); keeps the rest for the
 * next chunk. Bytes are copied only when a frame spans chunks, once, when it
 * is complete (so a large frame arriving in many chunks costs one copy).
 * @throws RangeError when a frame announces more than `maxFrameBytes` bytes.
 */
export class FrameReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** Bytes (length prefix included) the incomplete frame held in `chunks` needs, or -1 while its length is not in. */
  private need = -1;

  constructor(private readonly maxFrameBytes: number) {}

  /** Add `chunk`; returns the frames it completed (payloads without their 4-byte length), in order. */
  push(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    let buf = chunk;
    if (this.buffered > 0) {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
      if (this.buffered < 4 || this.buffered < this.need) return out;
      buf = Buffer.concat(this.chunks, this.buffered);
      this.chunks = [];
      this.buffered = 0;
    }
    this.need = -1;
    let o = 0;
    while (buf.length - o >= 4) {
      const len = buf.readUInt32BE(o);
      if (len > this.maxFrameBytes) throw new RangeError(`mesh frame of ${len} bytes is larger than ${this.maxFrameBytes}`);
      if (buf.length - o - 4 < len) {
        this.need = 4 + len;
        break;
      }
      out.push(buf.subarray(o + 4, o + 4 + len));
      o += 4 + len;
    }
    if (o < buf.length) {
      this.chunks = [buf.subarray(o)];
      this.buffered = buf.length - o;
    }
    return out;
  }
}

/** How a payload travels: JSON only, a Buffer, or JSON of the rest with the `data` field's Buffer as bytes. */
const AS_JSON = 0;
const AS_BYTES = 1;
const DATA_AS_BYTES = 2;
const TEXT_AND_BYTES = 3;

/**
 * A length-prefixed frame of `record` (see the file's comment for the layout).
 * @throws TypeError when the payload cannot be written as JSON (a cycle, a BigInt).
 */
export function encodeFrame(record: Frame): Buffer {
  const [kind, channel, id, payload] = record;
  let how = AS_JSON;
  let raw: Buffer | undefined;
  let rest: unknown = payload;
  let json: string | undefined;
  if (Buffer.isBuffer(payload)) {
    how = AS_BYTES;
    raw = payload;
    rest = undefined;
  } else if (isTextAndBytes(payload)) {
    how = TEXT_AND_BYTES;
    json = payload[0];
    raw = payload[1];
  } else if (payload !== null && typeof payload === 'object' && Buffer.isBuffer((payload as { data?: unknown }).data)) {
    how = DATA_AS_BYTES;
    raw = (payload as { data: Buffer }).data;
    rest = { ...(payload as object), data: undefined };
  }
  if (json === undefined) json = rest === undefined ? '' : JSON.stringify(rest);
  const chLen = Buffer.byteLength(channel);
  const jsonLen = Buffer.byteLength(json);
  const bodyLen = 1 + 4 + 1 + 2 + chLen + 4 + jsonLen + (raw?.length ?? 0);
  const frame = Buffer.allocUnsafe(4 + bodyLen);
  let o = frame.writeUInt32BE(bodyLen, 0);
  o = frame.writeUInt8(kind, o);
  o = frame.writeUInt32BE(id, o);
  o = frame.writeUInt8(how, o);
  o = frame.writeUInt16BE(chLen, o);
  o += frame.write(channel, o);
  o = frame.writeUInt32BE(jsonLen, o);
  o += frame.write(json, o);
  raw?.copy(frame, o);
  return frame;
}

/**
 * The record of one frame's body (as {@link FrameReader} returns it); raw bytes are copied out.
 * @throws RangeError or SyntaxError for a malformed body.
 */
export function decodeFrame(body: Buffer): Frame {
  let o = 0;
  const kind = body.readUInt8(o++);
  const id = body.readUInt32BE(o);
  o += 4;
  const how = body.readUInt8(o++);
  const chLen = body.readUInt16BE(o);
  o += 2;
  const channel = body.toString('utf8', o, o + chLen);
  o += chLen;
  const jsonLen = body.readUInt32BE(o);
  o += 4;
  if (o + jsonLen > body.length) throw new RangeError('mesh frame shorter than its JSON');
  if (how === TEXT_AND_BYTES) return [kind, channel, id, [body.toString('utf8', o, o + jsonLen), Buffer.from(body.subarray(o + jsonLen))]];
  const rest: unknown = jsonLen === 0 ? undefined : JSON.parse(body.toString('utf8', o, o + jsonLen));
  o += jsonLen;
  if (how === AS_JSON) return [kind, channel, id, rest];
  const raw = Buffer.from(body.subarray(o));
  if (how === AS_BYTES) return [kind, channel, id, raw];
  return [kind, channel, id, { ...(rest as object), data: raw }];
}

interface Pending {
  resolve(v: unknown): void;
  reject(e: Error): void;
  timer: NodeJS.Timeout;
}

/**
 * One worker's end of the mesh. {@link start} listens and connects to every
 * other worker (retrying until they listen); a lost connection is reopened
 * (a restarted worker) until {@link close}.
 */
export class SocketMesh implements WorkerMesh {
  readonly self: number;
  readonly count: number;
  readonly counters: MeshCounters = { framesSent: 0, bytesSent: 0, writes: 0, framesReceived: 0, framesDropped: 0 };
  private readonly handlers = new Map<string, MeshHandler>();
  private readonly out: (net.Socket | undefined)[];
  private readonly pending = new Map<number, Pending>();
  private readonly peerListeners: ((worker: number, up: boolean) => void)[] = [];
  private readonly inbound = new Set<net.Socket>();
  private server: net.Server | undefined;
  private nextId = 1;
  private closed = false;
  /** Workers a connection is being opened to (one attempt loop each), with the function that retries at once. */
  private readonly connecting = new Map<number, () => void>();
  private readonly log: Logger;
  private readonly maxQueuedBytes: number;
  private readonly maxFrameBytes: number;
  private readonly maxPending: number;
  /** Frames written to a worker in one turn leave in one write (see turn-cork.ts). */
  private readonly corks = new WeakMap<net.Socket, TurnCork>();

  constructor(private readonly opts: SocketMeshOptions) {
    this.self = opts.self;
    this.count = opts.count;
    this.out = new Array(opts.count).fill(undefined);
    this.log = opts.logger.child({ component: 'mesh' });
    this.maxQueuedBytes = opts.maxQueuedBytes ?? MESH_MAX_QUEUED_BYTES;
    this.maxFrameBytes = opts.maxFrameBytes ?? MESH_MAX_FRAME_BYTES;
    this.maxPending = opts.maxPendingRequests ?? MESH_MAX_PENDING_REQUESTS;
  }

  /**
   * Listen on this worker's socket, then connect to every other worker.
   * Resolves when every other worker is connected, or after `timeoutMs` ms
   * (the missing ones keep being retried; frames to them are dropped meanwhile).
   * @throws Error when this worker's socket cannot be bound.
   */
  async start(timeoutMs = 10_000): Promise<void> {
    const path = meshSocketPath(this.opts.dir, this.self);
    try {
      unlinkSync(path); // a socket left by this worker's previous process
    } catch {
      /* none */
    }
    const server = net.createServer((socket) => this.accept(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.server = server;
    const peers: Promise<void>[] = [];
    for (let i = 0; i < this.count; i++) if (i !== this.self) peers.push(this.connect(i, 25));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(peers), new Promise<void>((r) => (timer = setTimeout(r, timeoutMs)))]);
    clearTimeout(timer);
  }

  /** Requests waiting for an answer now, 0 ≤ n ≤ `maxPendingRequests`. */
  get pendingRequests(): number {
    return this.pending.size;
  }

  /** Send a message to worker `to` on `channel`; false when it is not connected, the frame exceeds `maxFrameBytes`, its queue is full or the payload cannot be serialized (dropped, counted). */
  send(to: number, channel: string, payload: MeshPayload): boolean {
    return this.write(to, [MESSAGE, channel, 0, payload]);
  }

  /** Send a message to every other worker (encoded once); one whose queue is full misses it (counted). */
  broadcast(channel: string, payload: MeshPayload): void {
    if (this.count < 2) return;
    const frame = encodeFrame([MESSAGE, channel, 0, payload]);
    for (let i = 0; i < this.count; i++) if (i !== this.self) this.writeFrame(i, frame);
  }

  /**
   * Ask worker `to` on `channel` and resolve with its handler's answer.
   * Rejects with an Error when `maxPendingRequests` are already waiting, the
   * worker is not connected, its handler threw, or no answer came within
   * `timeoutMs` ms.
   */
  request(to: number, channel: string, payload: MeshPayload, timeoutMs: number): Promise<unknown> {
    if (this.pending.size >= this.maxPending) return Promise.reject(new Error('too many mesh requests waiting'));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`worker ${to} did not answer ${channel} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      if (!this.write(to, [REQUEST, channel, id, payload])) {
        clearTimeout(timer);
        this.pending.delete(id);
        reject(new Error(`worker ${to} is not connected`));
      }
    });
  }

  /** Handle messages and requests on `channel` (one handler a channel; a later one replaces it). */
  on(channel: string, handler: MeshHandler): void {
    this.handlers.set(channel, handler);
  }

  /** Be told when the connection to another worker opens (`up`) or closes. */
  onPeerChange(listener: (worker: number, up: boolean) => void): void {
    this.peerListeners.push(listener);
  }

  /** True when the connection to worker `i` is open. */
  connected(i: number): boolean {
    return this.out[i] !== undefined;
  }

  /** Close every connection and the listener; waiting requests are rejected. */
  async close(): Promise<void> {
    this.closed = true;
    for (const s of this.out) s?.destroy();
    for (const s of this.inbound) s.destroy();
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(new Error('mesh closed'));
    }
    this.pending.clear();
    const server = this.server;
    if (server) await new Promise<void>((r) => server.close(() => r()));
  }

  private write(to: number, record: Frame): boolean {
    let frame: Buffer;
    try {
      frame = encodeFrame(record);
    } catch (err) {
      this.counters.framesDropped++;
      this.log.warn({ err: (err as Error).message, channel: record[1] }, 'mesh payload cannot be serialized');
      return false;
    }
    return this.writeFrame(to, frame);
  }

  private writeFrame(to: number, frame: Buffer): boolean {
    const socket = this.out[to];
    if (!socket || socket.writableLength + frame.length > this.maxQueuedBytes || frame.length - 4 > this.maxFrameBytes) {
      this.counters.framesDropped++;
      if (this.log.isLevelEnabled('debug')) this.log.debug({ to, connected: socket !== undefined, bytes: frame.length }, 'mesh frame dropped');
      return false;
    }
    let cork = this.corks.get(socket);
    if (!cork) this.corks.set(socket, (cork = new TurnCork(socket, () => this.counters.writes++)));
    cork.write(frame);
    this.counters.framesSent++;
    this.counters.bytesSent += frame.length;
    return true;
  }

  /** Connect to worker `to`, retrying every `delayMs` (doubling to 1 s) until it listens or the mesh closes; resolves when connected. */
  private connect(to: number, delayMs: number): Promise<void> {
    if (this.connecting.has(to)) return Promise.resolve();
    this.connecting.set(to, () => {});
    return new Promise((resolve) => {
      const attempt = (wait: number): void => {
        if (this.closed) {
          this.connecting.delete(to);
          return resolve();
        }
        const socket = net.connect(meshSocketPath(this.opts.dir, to));
        socket.once('connect', () => {
          socket.setNoDelay?.(true);
          socket.write(encodeFrame([HELLO, '', this.self, undefined]));
          this.out[to] = socket;
          this.connecting.delete(to);
          this.log.debug({ to }, 'mesh connected');
          for (const l of this.peerListeners) l(to, true);
          resolve();
          // Answers to our requests come back on the connection the peer opened to us; this one only sends.
          socket.on('data', () => {});
          socket.once('close', () => {
            if (this.out[to] === socket) this.out[to] = undefined;
            if (this.closed) return;
            this.log.warn({ worker: to }, 'mesh connection to a worker lost');
            for (const l of this.peerListeners) l(to, false);
            setTimeout(() => void this.connect(to, 100), 100).unref();
          });
        });
        socket.once('error', () => {
          socket.destroy();
          if (this.out[to] === socket) return; // 'close' handles an established connection
          const timer = setTimeout(() => attempt(Math.min(wait * 2, 1000)), wait);
          timer.unref();
          this.connecting.set(to, () => {
            clearTimeout(timer);
            this.connecting.set(to, () => {});
            attempt(Math.min(wait * 2, 1000));
          });
        });
      };
      attempt(delayMs);
    });
  }

  private accept(socket: net.Socket): void {
    this.inbound.add(socket);
    const reader = new FrameReader(this.maxFrameBytes);
    let from = -1;
    socket.on('data', (chunk: Buffer) => {
      let frames: Buffer[];
      try {
        frames = reader.push(chunk);
      } catch (err) {
        this.log.warn({ err: (err as Error).message, from }, 'mesh connection closed: bad frame');
        socket.destroy();
        return;
      }
      for (const f of frames) {
        let record: Frame;
        try {
          record = decodeFrame(f);
        } catch {
          this.counters.framesDropped++;
          continue;
        }
        if (record[0] === HELLO) {
          from = record[2];
          // A worker that (re)started reached us: reach it now rather than at the next retry.
          if (from >= 0 && from < this.count && !this.out[from] && !this.closed) {
            const retryNow = this.connecting.get(from);
            if (retryNow) retryNow();
            else void this.connect(from, 25);
          }
          continue;
        }
        this.counters.framesReceived++;
        this.dispatch(from, record);
      }
    });
    socket.on('error', () => {});
    socket.once('close', () => this.inbound.delete(socket));
  }

  private dispatch(from: number, [kind, channel, id, payload]: Frame): void {
    if (kind === REPLY || kind === REPLY_ERROR) {
      const p = this.pending.get(id);
      if (!p) return;
      this.pending.delete(id);
      clearTimeout(p.timer);
      if (kind === REPLY) p.resolve(payload);
      else p.reject(new Error(String(payload)));
      return;
    }
    const handler = this.handlers.get(channel);
    if (!handler) {
      this.log.debug({ channel, from }, 'mesh message on a channel without handler');
      if (kind === REQUEST) this.write(from, [REPLY_ERROR, channel, id, `no handler for ${channel}`]);
      return;
    }
    if (kind === MESSAGE) {
      try {
        const r = handler(from, payload);
        if (r instanceof Promise) r.catch((err: unknown) => this.log.warn({ err: (err as Error).message, channel }, 'mesh handler failed'));
      } catch (err) {
        this.log.warn({ err: (err as Error).message, channel }, 'mesh handler failed');
      }
      return;
    }
    Promise.resolve()
      .then(() => handler(from, payload))
      .then(
        (answer) => void this.write(from, [REPLY, channel, id, answer]),
        (err: unknown) => void this.write(from, [REPLY_ERROR, channel, id, (err as Error)?.message ?? String(err)]),
      );
  }
}
