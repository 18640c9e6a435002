/**
 * Completed non-INVITE server transactions waiting for Timer J (RFC 3261
 * §17.2.2: 64·T1, 32 s by default, on UDP), kept as compactly as possible:
 * at 1,500 REGISTER/s that is ~96,000 transactions at any moment.
 *
 * Every entry has the same lifetime, so entries expire in the order they were
 * added: a first-in first-out log. The final responses' bytes go one after
 * another into 256 KiB chunks outside the JS heap (a chunk is dropped once its
 * last entry expired; see {@link pageBuffer} for why the chunks are mapped
 * pages and not malloc'd); the entries' numbers (due time, port, where the
 * bytes are) sit in a ring of typed arrays, also mapped pages, which doubles
 * when full and halves when three quarters empty. Per entry the JS heap holds
 * only the key string, a Map slot and two ring slots (key, interned address).
 * No per-entry object, closure or timer; one timer serves the oldest entry.
 * The garbage collector has almost nothing to trace here, and the V8 heap
 * does not have to grow with the response bytes.
 *
 * Bounded: past `maxEntries` the oldest entry is released before its Timer J
 * ({@link releasedEarly} counts them); a retransmission arriving after that is
 * then handled as a new request.
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
  return Buffer.from(pageMemory(bytes), 0, bytes);
}

/** `bytes` of zeroed memory mapped from the system (see {@link pageBuffer}). */
function pageMemory(bytes: number): ArrayBuffer {
  return new ResizableArrayBuffer(bytes, { maxByteLength: bytes });
}

/** Smallest ring, entries; it never shrinks below this. */
const MIN_RING = 1024;
/** Transports a destination may name, by their code in the ring. */
const TRANSPORTS: Destination['transport'][] = ['udp', 'tcp', 'tls', 'ws', 'wss'];

/** Where a completed transaction's response went, and its bytes. */
export interface CompletedEntry {
  wire: Buffer;
  dest: Destination;
}

export class CompletedResponses {
  /** key → absolute sequence number of its entry. */
  private readonly index = new Map<string, number>();
  /** Sequence number of the oldest entry; entries are [headSeq, headSeq + count), entry `seq` in ring slot `seq & mask`. */
  private headSeq = 0;
  private count = 0;
  private mask = MIN_RING - 1;
  private keys: string[] = [];
  private addresses: string[] = [];
  private transports = new Uint8Array(0);
  private ports = new Uint16Array(0);
  /** Due time, `performance.now()` ms. */
  private dues = new Float64Array(0);
  /** Chunk sequence number (mod 2^32), byte offset and length of each entry's response. */
  private chunkOf = new Uint32Array(0);
  private offsets = new Uint32Array(0);
  private lengths = new Uint32Array(0);
  /** Live chunks, oldest first; `firstChunk` is the sequence number of chunks[0]. */
  private chunks: Buffer[] = [];
  private firstChunk = 0;
  private writeOffset = CHUNK_BYTES;
  private readonly interned = new Map<string, string>();
  private timer: NodeJS.Timeout | undefined;
  private armedForMs = Infinity;

  /** Entries released before their due time because the table held `maxEntries` (since construction). */
  releasedEarly = 0;

  /**
   * @param resolutionMs entries due within this many ms of each other expire together (default 20).
   * @param maxEntries most entries held; adding one more releases the oldest early (default: no bound).
   * @throws RangeError when `maxEntries` is not a positive integer (or Infinity).
   */
  constructor(
    private readonly resolutionMs = 20,
    private readonly maxEntries = Infinity,
  ) {
    if (!(maxEntries === Infinity || (Number.isInteger(maxEntries) && maxEntries >= 1))) throw new RangeError('maxEntries must be a positive integer');
    this.resize(MIN_RING);
  }

  /** Entries held. */
  get size(): number {
    return this.count;
  }

  /** Bytes of response chunks held outside the JS heap. */
  get chunkBytes(): number {
    return this.chunks.reduce((a, c) => a + c.length, 0);
  }

  /** Entries the ring has room for before it doubles (shrinks back when emptied). */
  get capacity(): number {
    return this.mask + 1;
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
    if (this.count >= this.maxEntries) {
      this.releaseOldest();
      this.releasedEarly++;
      this.dropExpiredChunks();
    }
    if (this.count > this.mask) this.resize(2 * (this.mask + 1));
    const { chunk, offset } = this.store(wire);
    const seq = this.headSeq + this.count;
    const i = seq & this.mask;
    this.count++;
    this.keys[i] = key;
    this.addresses[i] = this.intern(dest.address);
    this.transports[i] = Math.max(0, TRANSPORTS.indexOf(dest.transport));
    this.ports[i] = dest.port;
    this.dues[i] = dueMs;
    this.chunkOf[i] = chunk;
    this.offsets[i] = offset;
    this.lengths[i] = wire.length;
    this.index.set(key, seq);
    if (this.count === 1 || dueMs < this.armedForMs) this.arm(dueMs);
  }

  /** The response and destination held for `key` (the bytes are a view: send them, do not keep them), or undefined. */
  get(key: string): CompletedEntry | undefined {
    const seq = this.index.get(key);
    if (seq === undefined) return undefined;
    const i = seq & this.mask;
    const c = this.chunks[(this.chunkOf[i]! - this.firstChunk) >>> 0]!;
    const off = this.offsets[i]!;
    return {
      wire: c.subarray(off, off + this.lengths[i]!),
      dest: { transport: TRANSPORTS[this.transports[i]!]!, address: this.addresses[i]!, port: this.ports[i]! },
    };
  }

  /** Drop every entry due by `nowMs` (the timer calls this; tests may too). */
  expire(nowMs: number = performance.now()): void {
    while (this.count > 0 && this.dues[this.headSeq & this.mask]! <= nowMs) this.releaseOldest();
    if (this.count === 0) {
      this.dropChunks();
      if (this.mask + 1 > MIN_RING) this.resize(MIN_RING);
    } else {
      this.dropExpiredChunks();
      if (this.count * 4 < this.mask + 1 && this.mask + 1 > MIN_RING) this.resize((this.mask + 1) / 2);
    }
    this.armedForMs = Infinity;
    if (this.count > 0) this.arm(this.dues[this.headSeq & this.mask]!);
  }

  /** Drop everything and stop the timer. */
  clear(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.armedForMs = Infinity;
    this.index.clear();
    this.headSeq += this.count;
    this.count = 0;
    this.dropChunks();
    this.resize(MIN_RING);
  }

  /** Forget the oldest entry (there is one). */
  private releaseOldest(): void {
    const i = this.headSeq & this.mask;
    const key = this.keys[i]!;
    if (this.index.get(key) === this.headSeq) this.index.delete(key);
    this.keys[i] = '';
    this.addresses[i] = '';
    this.headSeq++;
    this.count--;
  }

  /** Drop the chunks older than the oldest entry's (all of them when there is none). */
  private dropExpiredChunks(): void {
    if (this.count === 0) return this.dropChunks();
    const oldestChunk = this.chunkOf[this.headSeq & this.mask]!;
    while (((oldestChunk - this.firstChunk) >>> 0) > 0) {
      this.chunks.shift();
      this.firstChunk = (this.firstChunk + 1) >>> 0;
    }
  }

  private dropChunks(): void {
    this.firstChunk = (this.firstChunk + this.chunks.length) >>> 0;
    this.chunks = [];
    this.writeOffset = CHUNK_BYTES;
  }

  /** Store `wire` in the current chunk (or a new one); returns the chunk's sequence number (mod 2^32) and the offset. */
  private store(wire: Buffer): { chunk: number; offset: number } {
    if (wire.length > CHUNK_BYTES / 4) {
      // A large response gets a chunk of its own; the next response opens a new chunk after it.
      const own = pageBuffer(wire.length);
      wire.copy(own);
      this.chunks.push(own);
      this.writeOffset = CHUNK_BYTES;
      return { chunk: (this.firstChunk + this.chunks.length - 1) >>> 0, offset: 0 };
    }
    if (this.writeOffset + wire.length > CHUNK_BYTES) {
      this.chunks.push(pageBuffer(CHUNK_BYTES));
      this.writeOffset = 0;
    }
    const offset = this.writeOffset;
    wire.copy(this.chunks[this.chunks.length - 1]!, offset);
    this.writeOffset += wire.length;
    return { chunk: (this.firstChunk + this.chunks.length - 1) >>> 0, offset };
  }

  private intern(address: string): string {
    const known = this.interned.get(address);
    if (known !== undefined) return known;
    if (this.interned.size >= MAX_INTERNED) this.interned.clear();
    this.interned.set(address, address);
    return address;
  }

  /** Move the live entries into a ring of `entries` slots (a power of two, at least `count`). */
  private resize(entries: number): void {
    const keys = new Array<string>(entries).fill('');
    const addresses = new Array<string>(entries).fill('');
    const transports = new Uint8Array(pageMemory(entries));
    const ports = new Uint16Array(pageMemory(entries * 2));
    const dues = new Float64Array(pageMemory(entries * 8));
    const chunkOf = new Uint32Array(pageMemory(entries * 4));
    const offsets = new Uint32Array(pageMemory(entries * 4));
    const lengths = new Uint32Array(pageMemory(entries * 4));
    const mask = entries - 1;
    for (let n = 0; n < this.count; n++) {
      const from = (this.headSeq + n) & this.mask;
      const to = (this.headSeq + n) & mask;
      keys[to] = this.keys[from]!;
      addresses[to] = this.addresses[from]!;
      transports[to] = this.transports[from]!;
      ports[to] = this.ports[from]!;
      dues[to] = this.dues[from]!;
      chunkOf[to] = this.chunkOf[from]!;
      offsets[to] = this.offsets[from]!;
      lengths[to] = this.lengths[from]!;
    }
    this.keys = keys;
    this.addresses = addresses;
    this.transports = transports;
    this.ports = ports;
    this.dues = dues;
    this.chunkOf = chunkOf;
    this.offsets = offsets;
    this.lengths = lengths;
    this.mask = mask;
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
