/**
 * Completed non-INVITE server transactions waiting for Timer J (RFC 3261
 * §17.2.2: 64·T1, 32 s by default, on UDP), kept as compactly as possible:
 * at 1,500 REGISTER/s that is ~96,000 transactions at any moment.
 *
 * Every entry has the same lifetime, so entries expire in the order they were
 * added: a first-in first-out log. The final responses' bytes go one after
 * another into 256 KiB chunks outside the JS heap (a chunk is dropped once its
 * last entry expired; see {@link pageBuffer} for why the chunks are mapped
 * pages and not malloc'd; a few emptied ones are written again rather than
 * mapped anew, {@link SPARE_CHUNKS}), each preceded by its transaction key's bytes; the
 * entries' numbers (due time, port, where the bytes are, the key's hash) sit
 * in a ring of typed arrays, also mapped pages, which doubles when full and
 * halves when three quarters empty. Per entry the JS heap holds only a Map
 * slot (the key's 30-bit hash → the entry) and a ring slot (the interned
 * address): no string per entry, so nothing per transaction is promoted to
 * the old space to die there 32 s later. A lookup whose hash matches compares
 * the key bytes; keys whose hash is taken by another live key go to a second
 * Map keyed by the key string (rare: ~2 pairs among 100,000 keys; or chosen
 * by a peer, which costs it nothing but a Map slot each).
 * No per-entry object, closure or timer; one timer serves the oldest entry.
 * The garbage collector has almost nothing to trace here, and the V8 heap
 * does not have to grow with the response bytes.
 *
 * Bounded: past `maxEntries` the oldest entry is released before its Timer J
 * ({@link releasedEarly} counts them); a retransmission arriving after that is
 * then handled as a new request.
 */
import type { Destination } from '../transport/types.js';
import { fnv1a } from '../sip/fnv.js';

const CHUNK_BYTES = 256 * 1024;
/**
 * Most emptied chunks kept for reuse (1 MiB). A fresh mapped chunk costs a page fault per 4 KiB page on its
 * first writes (~2–3 µs per 600-byte entry measured on a VM, against ~0.15 µs writing into a chunk already
 * touched); under a steady load chunks empty at the rate new ones are needed, so a few spares serve them all.
 */
export const SPARE_CHUNKS = 4;
/** Most distinct destination addresses interned; the table is emptied when it holds this many and one more comes. */
export const MAX_INTERNED = 4096;

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

/** Hash of a transaction key in the index: FNV-1a, 30 bits (a small integer for V8, so no number object per key). */
export function completedKeyHash(key: string): number {
  return fnv1a(key) & 0x3fff_ffff;
}

/**
 * The log of completed non-INVITE server transactions on UDP, kept for Timer J
 * (64·T1 ms, RFC 3261 §17.2.2) as key → final response bytes and destination:
 * a ring of typed arrays in arrival order (all entries share one Timer J, so
 * they expire from the head), response bytes in 256 KiB chunks, and an index
 * by a 30-bit hash of the key. At most `sip.limits.completed_transactions`
 * entries; past that the oldest is released early and counted
 * (docs/LIMITS.md). {@link CompletedResponses.has} answers a retransmission
 * check with one Map read and a comparison with the key held.
 */
export class CompletedResponses {
  /** completedKeyHash(key) → absolute sequence number of its entry. */
  private readonly index = new Map<number, number>();
  /** key → sequence number, for entries whose hash another live entry holds in `index`. */
  private readonly collided = new Map<string, number>();
  /** Sequence number of the oldest entry; entries are [headSeq, headSeq + count), entry `seq` in ring slot `seq & mask`. */
  private headSeq = 0;
  private count = 0;
  private mask = MIN_RING - 1;
  private addresses: string[] = [];
  private hashes = new Uint32Array(0);
  /** Bytes of the key (UTF-8) stored in the chunk before the response. */
  private keyLengths = new Uint32Array(0);
  private transports = new Uint8Array(0);
  private ports = new Uint16Array(0);
  /** Due time, `performance.now()` ms. */
  private dues = new Float64Array(0);
  /** Chunk sequence number (mod 2^32), byte offset (of the key) and length of each entry's response. */
  private chunkOf = new Uint32Array(0);
  private offsets = new Uint32Array(0);
  private lengths = new Uint32Array(0);
  /** Live chunks, oldest first; `firstChunk` is the sequence number of chunks[0]. */
  private chunks: Buffer[] = [];
  private firstChunk = 0;
  private writeOffset = CHUNK_BYTES;
  /** Emptied chunks of CHUNK_BYTES kept to be written again (at most SPARE_CHUNKS; dropped when the log empties). */
  private spare: Buffer[] = [];
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

  /** Bytes of emptied chunks kept for reuse (at most {@link SPARE_CHUNKS} chunks; none once the log emptied). */
  get spareBytes(): number {
    return this.spare.length * CHUNK_BYTES;
  }

  /** Destination address strings interned now, 0 ≤ n ≤ {@link MAX_INTERNED}. */
  get internedAddresses(): number {
    return this.interned.size;
  }

  /** Entries the ring has room for before it doubles (shrinks back when emptied). */
  get capacity(): number {
    return this.mask + 1;
  }

  /** True when `key` is held. */
  has(key: string): boolean {
    return this.find(key) !== undefined;
  }

  /** Sequence number of the entry held for `key`, or undefined. */
  private find(key: string): number | undefined {
    const seq = this.index.get(completedKeyHash(key));
    if (seq !== undefined && this.keyOf(seq) === key) return seq;
    return this.collided.size > 0 ? this.collided.get(key) : undefined;
  }

  /** The key of live entry `seq`, read back from its chunk. */
  private keyOf(seq: number): string {
    const i = seq & this.mask;
    const off = this.offsets[i]!;
    return this.chunkAt(i).toString('utf8', off, off + this.keyLengths[i]!);
  }

  private chunkAt(i: number): Buffer {
    return this.chunks[(this.chunkOf[i]! - this.firstChunk) >>> 0]!;
  }

  /**
   * Hold `wire` for `key` until `dueMs` (`performance.now()` ms). The key is
   * kept as bytes (not the string); `dest.address` should not pin a larger
   * string (see sip/detach.ts). A key added again replaces the earlier entry.
   */
  add(key: string, wire: Buffer, dest: Destination, dueMs: number): void {
    if (this.count >= this.maxEntries) {
      this.releaseOldest();
      this.releasedEarly++;
      this.dropExpiredChunks();
    }
    if (this.count > this.mask) this.resize(2 * (this.mask + 1));
    const keyBytes = Buffer.byteLength(key, 'utf8');
    const { chunk, offset } = this.store(key, keyBytes, wire);
    const seq = this.headSeq + this.count;
    const i = seq & this.mask;
    const hash = completedKeyHash(key);
    const holder = this.index.get(hash);
    // Another live key with the same hash keeps its entry through the second map.
    if (holder !== undefined && holder >= this.headSeq) {
      const holderKey = this.keyOf(holder);
      if (holderKey !== key) this.collided.set(holderKey, holder);
      else if (this.collided.size > 0) this.collided.delete(key);
    }
    this.count++;
    this.hashes[i] = hash;
    this.keyLengths[i] = keyBytes;
    this.addresses[i] = this.intern(dest.address);
    this.transports[i] = Math.max(0, TRANSPORTS.indexOf(dest.transport));
    this.ports[i] = dest.port;
    this.dues[i] = dueMs;
    this.chunkOf[i] = chunk;
    this.offsets[i] = offset;
    this.lengths[i] = wire.length;
    this.index.set(hash, seq);
    if (this.count === 1 || dueMs < this.armedForMs) this.arm(dueMs);
  }

  /**
   * The response and destination held for `key`, or undefined. The bytes are a copy of their own: a chunk is
   * written again once its entries expired ({@link SPARE_CHUNKS}), while a send may still hold what it was given.
   */
  get(key: string): CompletedEntry | undefined {
    const seq = this.find(key);
    if (seq === undefined) return undefined;
    const i = seq & this.mask;
    const c = this.chunkAt(i);
    const off = this.offsets[i]! + this.keyLengths[i]!;
    return {
      wire: Buffer.from(c.subarray(off, off + this.lengths[i]!)),
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
    this.collided.clear();
    this.headSeq += this.count;
    this.count = 0;
    this.dropChunks();
    this.resize(MIN_RING);
  }

  /** Forget the oldest entry (there is one). */
  private releaseOldest(): void {
    const i = this.headSeq & this.mask;
    const hash = this.hashes[i]!;
    if (this.index.get(hash) === this.headSeq) this.index.delete(hash);
    else if (this.collided.size > 0) {
      const key = this.keyOf(this.headSeq);
      if (this.collided.get(key) === this.headSeq) this.collided.delete(key);
    }
    this.addresses[i] = '';
    this.headSeq++;
    this.count--;
  }

  /** Drop the chunks older than the oldest entry's (all of them when there is none). */
  private dropExpiredChunks(): void {
    if (this.count === 0) return this.dropChunks();
    const oldestChunk = this.chunkOf[this.headSeq & this.mask]!;
    while (((oldestChunk - this.firstChunk) >>> 0) > 0) {
      const old = this.chunks.shift()!;
      if (old.length === CHUNK_BYTES && this.spare.length < SPARE_CHUNKS) this.spare.push(old);
      this.firstChunk = (this.firstChunk + 1) >>> 0;
    }
  }

  /** Drop every chunk, spares included: an empty log gives its memory back. */
  private dropChunks(): void {
    this.firstChunk = (this.firstChunk + this.chunks.length) >>> 0;
    this.chunks = [];
    this.spare = [];
    this.writeOffset = CHUNK_BYTES;
  }

  /**
   * Store `key` (`keyBytes` bytes of UTF-8) then `wire` in the current chunk (or a new one); returns the chunk's
   * sequence number (mod 2^32) and the offset of the key.
   */
  private store(key: string, keyBytes: number, wire: Buffer): { chunk: number; offset: number } {
    const bytes = keyBytes + wire.length;
    if (bytes > CHUNK_BYTES / 4) {
      // A large entry gets a chunk of its own; the next one opens a new chunk after it.
      const own = pageBuffer(bytes);
      own.write(key, 0, 'utf8');
      wire.copy(own, keyBytes);
      this.chunks.push(own);
      this.writeOffset = CHUNK_BYTES;
      return { chunk: (this.firstChunk + this.chunks.length - 1) >>> 0, offset: 0 };
    }
    if (this.writeOffset + bytes > CHUNK_BYTES) {
      this.chunks.push(this.spare.pop() ?? pageBuffer(CHUNK_BYTES));
      this.writeOffset = 0;
    }
    const offset = this.writeOffset;
    const c = this.chunks[this.chunks.length - 1]!;
    c.write(key, offset, 'utf8');
    wire.copy(c, offset + keyBytes);
    this.writeOffset += bytes;
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
    const addresses = new Array<string>(entries).fill('');
    const hashes = new Uint32Array(pageMemory(entries * 4));
    const keyLengths = new Uint32Array(pageMemory(entries * 4));
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
      addresses[to] = this.addresses[from]!;
      hashes[to] = this.hashes[from]!;
      keyLengths[to] = this.keyLengths[from]!;
      transports[to] = this.transports[from]!;
      ports[to] = this.ports[from]!;
      dues[to] = this.dues[from]!;
      chunkOf[to] = this.chunkOf[from]!;
      offsets[to] = this.offsets[from]!;
      lengths[to] = this.lengths[from]!;
    }
    this.addresses = addresses;
    this.hashes = hashes;
    this.keyLengths = keyLengths;
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
