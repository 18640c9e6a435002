/**
 * Completed non-INVITE server transactions waiting for Timer J (RFC 3261
 * §17.2.2: 64·T1, 32 s by default, on UDP), kept as compactly as possible:
 * at 1,500 REGISTER/s that is ~96,000 transactions at any moment.
 *
 * Every entry has the same lifetime, so entries expire in the order they were
 * added: a first-in first-out log. The final responses' bytes go one after
 * another into 256 KiB chunks outside the JS heap (a chunk is dropped once its
 * last entry expired; see {@link pageBuffer} for why the chunks are mapped
 * pages and not malloc'd); per entry the heap holds only the key string, a Map
 * slot, the destination address (interned) and a few numbers in flat arrays.
 * No per-entry object, closure or timer; one timer serves the oldest entry.
 * The garbage collector has almost nothing to trace here, and the V8 heap
 * does not have to grow with the response bytes.
 */
import type { Destination } from '../transport/types.js';

const CHUNK_BYTES = 256 * 1024;
/** Most distinct destination addresses interned (beyond it, strings are kept per entry). */
const MAX_INTERNED = 4096;

/** ES2024's resizable ArrayBuffer constructor (Node 20), which the project's ES2022 lib does not declare. */
const ResizableArrayBuffer = ArrayBuffer as unknown as new (byteLength: number, options: { maxByteLength: number }) => ArrayBuffer;

/**
 * `bytes` of memory of its own, mapped from the system and unmapped once the
 * Buffer is collected: the backing store of a resizable ArrayBuffer, which V8
 * reserves and commits with its page allocator (mmap) instead of malloc.
 *
 * A plain `Buffer.allocUnsafeSlow(256 KiB)` comes from malloc: the first few
 * are mapped, but each one freed raises glibc's dynamic mmap threshold past
 * its size, so later chunks are carved out of the main arena, where small
 * allocations land between them and the freed space is never returned: after
 * a load, ~45 MB of free arena memory stayed in RSS at 1,500 REGISTER/s
 * (bench/memory.mjs, malloc_info). Mapped chunks leave RSS when collected.
 */
export function pageBuffer(bytes: number): Buffer {
  return Buffer.from(new ResizableArrayBuffer(bytes, { maxByteLength: bytes }), 0, bytes);
}

/** Where a completed transaction's response went, and its bytes. */
export interface CompletedEntry {
  wire: Buffer;
  dest: Destination;
}

export class CompletedResponses {
  /** key → absolute sequence number of its entry. */
  private readonly index = new Map<string, number>();
  /** Sequence number of the oldest entry still in the arrays (entries [headSeq, headSeq + keys.length - head)). */
  private headSeq = 0;
  private head = 0;
  private keys: string[] = [];
  private addresses: string[] = [];
  private transports: Destination['transport'][] = [];
  private ports: number[] = [];
  private dues: number[] = [];
  /** Chunk sequence number, byte offset and length of each entry's response. */
  private chunkOf: number[] = [];
  private offsets: number[] = [];
  private lengths: number[] = [];
  /** Live chunks, oldest first; `firstChunk` is the sequence number of chunks[0]. */
  private chunks: Buffer[] = [];
  private firstChunk = 0;
  private writeOffset = CHUNK_BYTES;
  private readonly interned = new Map<string, string>();
  private timer: NodeJS.Timeout | undefined;
  private armedForMs = Infinity;

  /** @param resolutionMs entries due within this many ms of each other expire together (default 20). */
  constructor(private readonly resolutionMs = 20) {}

  /** Entries held. */
  get size(): number {
    return this.keys.length - this.head;
  }

  /** Bytes of response chunks held outside the JS heap. */
  get chunkBytes(): number {
    return this.chunks.reduce((a, c) => a + c.length, 0);
  }

  /** True when `key` is held. */
  has(key: string): boolean {
    return this.index.has(key);
  }

  /**
   * Hold `wire` for `key` until `dueMs` (`performance.now()` ms). `key` and
   * `dest.address` should not pin larger strings (see sip/detach.ts). A key
   * added again replaces the earlier entry.
   */
  add(key: string, wire: Buffer, dest: Destination, dueMs: number): void {
    const { chunk, offset } = this.store(wire);
    const seq = this.headSeq + this.size;
    this.keys.push(key);
    this.addresses.push(this.intern(dest.address));
    this.transports.push(dest.transport);
    this.ports.push(dest.port);
    this.dues.push(dueMs);
    this.chunkOf.push(chunk);
    this.offsets.push(offset);
    this.lengths.push(wire.length);
    this.index.set(key, seq);
    if (this.size === 1 || dueMs < this.armedForMs) this.arm(dueMs);
  }

  /** The response and destination held for `key` (the bytes are a view: send them, do not keep them), or undefined. */
  get(key: string): CompletedEntry | undefined {
    const seq = this.index.get(key);
    if (seq === undefined) return undefined;
    const i = this.head + (seq - this.headSeq);
    const c = this.chunks[this.chunkOf[i]! - this.firstChunk]!;
    const off = this.offsets[i]!;
    return {
      wire: c.subarray(off, off + this.lengths[i]!),
      dest: { transport: this.transports[i]!, address: this.addresses[i]!, port: this.ports[i]! },
    };
  }

  /** Drop every entry due by `nowMs` (the timer calls this; tests may too). */
  expire(nowMs: number = performance.now()): void {
    while (this.head < this.keys.length && this.dues[this.head]! <= nowMs) {
      const key = this.keys[this.head]!;
      if (this.index.get(key) === this.headSeq) this.index.delete(key);
      this.head++;
      this.headSeq++;
    }
    const live = this.size;
    if (live === 0) {
      this.compact(true);
      this.dropChunks();
    } else {
      const oldestChunk = this.chunkOf[this.head]!;
      while (this.firstChunk < oldestChunk) {
        this.chunks.shift();
        this.firstChunk++;
      }
      if (this.head > 4096 && this.head * 2 > this.keys.length) this.compact(false);
    }
    this.armedForMs = Infinity;
    if (live > 0) this.arm(this.dues[this.head]!);
  }

  /** Drop everything and stop the timer. */
  clear(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.armedForMs = Infinity;
    this.index.clear();
    this.headSeq += this.size;
    this.compact(true);
    this.dropChunks();
  }

  private dropChunks(): void {
    this.firstChunk += this.chunks.length;
    this.chunks = [];
    this.writeOffset = CHUNK_BYTES;
  }

  private store(wire: Buffer): { chunk: number; offset: number } {
    if (wire.length > CHUNK_BYTES / 4) {
      // A large response gets a chunk of its own; the next response opens a new chunk after it.
      const own = pageBuffer(wire.length);
      wire.copy(own);
      this.chunks.push(own);
      this.writeOffset = CHUNK_BYTES;
      return { chunk: this.firstChunk + this.chunks.length - 1, offset: 0 };
    }
    if (this.writeOffset + wire.length > CHUNK_BYTES) {
      this.chunks.push(pageBuffer(CHUNK_BYTES));
      this.writeOffset = 0;
    }
    const offset = this.writeOffset;
    wire.copy(this.chunks[this.chunks.length - 1]!, offset);
    this.writeOffset += wire.length;
    return { chunk: this.firstChunk + this.chunks.length - 1, offset };
  }

  private intern(address: string): string {
    const known = this.interned.get(address);
    if (known !== undefined) return known;
    if (this.interned.size >= MAX_INTERNED) this.interned.clear();
    this.interned.set(address, address);
    return address;
  }

  private compact(all: boolean): void {
    const from = all ? this.keys.length : this.head;
    this.keys = this.keys.slice(from);
    this.addresses = this.addresses.slice(from);
    this.transports = this.transports.slice(from);
    this.ports = this.ports.slice(from);
    this.dues = this.dues.slice(from);
    this.chunkOf = this.chunkOf.slice(from);
    this.offsets = this.offsets.slice(from);
    this.lengths = this.lengths.slice(from);
    this.head = 0;
  }

  private arm(dueMs: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.armedForMs = dueMs;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.expire();
    }, Math.max(0, dueMs - performance.now()) + this.resolutionMs);
    this.timer.unref();
  }
}
