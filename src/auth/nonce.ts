/**
 * Stateless digest nonces (RFC 7616 §3.3, RFC 3261 §22.4).
 *
 * A nonce is base64url(timestamp || issuer || counter || MAC), 43 characters:
 * - timestamp: issue time in ms since the epoch, 8 bytes big-endian;
 * - issuer: 1 byte, who issued it (the SIP worker index; 0 by default), so
 *   nonces of different workers of one instance never collide;
 * - counter: 7 bytes big-endian, a per-process counter started at a random
 *   value and incremented per nonce, so challenges issued in the same
 *   millisecond (to different clients) get different nonces and their
 *   nonce-counts do not collide; the random start keeps a restarted process
 *   from issuing its predecessor's nonces again. (An HMAC over a counter is as
 *   unforgeable as one over random bytes; only uniqueness is needed here, and
 *   the counter costs no random bytes per challenge.) A SIP challenge passes
 *   its own counter instead: a keyed hash of the request (sip-digest.ts
 *   `challengeCounter`), with the time in whole seconds, so a retransmitted
 *   request is answered with the same challenge (RFC 3261 §8.2.7).
 * - MAC: the first 16 bytes of HMAC-SHA256(secret, timestamp || issuer || counter || context),
 *   where the optional context binds the nonce to something the checker knows
 *   again (TURN binds it to the client's address, RFC 8489 §9.2).
 *
 * Nothing is stored per challenge: any node holding the secret can check a
 * nonce it never issued, and a restart loses nothing. The base64url alphabet
 * has neither `,` nor `"`, so the nonce needs no escaping inside a quoted-string.
 * Replay within a nonce's lifetime is caught by {@link NonceCountTracker}.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { fnv1a } from '../sip/fnv.js';

const TS_BYTES = 8;
const ISSUER_OFFSET = TS_BYTES;
const COUNTER_OFFSET = ISSUER_OFFSET + 1;
const MAC_BYTES = 16;
const SIGNED_BYTES = 16;
const NONCE_BYTES = SIGNED_BYTES + MAC_BYTES;
/** Base64url length of a nonce: 32 bytes → 43 characters, no padding. */
const NONCE_CHARS = 43;
/** How far in the future (ms) a timestamp may lie, to tolerate clock steps between cluster nodes. */
const MAX_FUTURE_MS = 5_000;
const TWO_32 = 0x1_0000_0000;
/** The counter is 56 bits: 24 high bits and 32 low bits. */
const COUNTER_HI_LIMIT = 0x100_0000;

/** This process's nonce counter, started at a random 56-bit value. */
const counterSeed = randomBytes(7);
let counterHi = counterSeed.readUIntBE(0, 3);
let counterLo = counterSeed.readUInt32BE(3);

/** One nonce being built or checked; nonces are made synchronously, so one buffer serves all of them. */
const scratch = Buffer.allocUnsafeSlow(NONCE_BYTES);
const scratchSigned = scratch.subarray(0, SIGNED_BYTES);
const scratchMac = scratch.subarray(SIGNED_BYTES);

function mac(secret: Buffer, signed: Buffer, context: string): Buffer {
  return createHmac('sha256', secret).update(signed).update(context).digest().subarray(0, MAC_BYTES);
}

/**
 * Nonces this process issued lately, per secret: nonce → the context it was made with. A nonce found here with
 * the same context carries the MAC {@link createNonce} computed for it, so {@link checkNonce} need not compute it
 * again (one HMAC-SHA256, ~10 µs in the server, per authenticated request answering a challenge of this
 * process). Two generations of at most {@link ISSUED_NONCES_PER_GENERATION} each: when the newer is full it
 * becomes the older and the older is dropped, so at most twice that many are held per secret (~150 bytes each).
 * A nonce not found (older, another worker's or node's, a forgery) is checked by its MAC as before.
 */
interface IssuedNonces {
  newer: Map<string, string>;
  older: Map<string, string>;
}
/** Nonces remembered per generation (README "lookup memos", docs/LIMITS.md): 2 s of challenges at 2,000/s. */
export const ISSUED_NONCES_PER_GENERATION = 4096;
const issuedBySecret = new WeakMap<Buffer, IssuedNonces>();

function rememberIssued(secret: Buffer, nonce: string, context: string): void {
  let issued = issuedBySecret.get(secret);
  if (issued === undefined) issuedBySecret.set(secret, (issued = { newer: new Map(), older: new Map() }));
  if (issued.newer.size >= ISSUED_NONCES_PER_GENERATION) {
    issued.older = issued.newer;
    issued.newer = new Map();
  }
  issued.newer.set(nonce, context);
}

/**
 * True when this process issued `nonce` with `secret` and `context` lately (so its MAC is genuine): held in
 * one of the two generations of {@link ISSUED_NONCES_PER_GENERATION}. False for anything else.
 */
export function wasIssued(secret: Buffer, nonce: string, context: string): boolean {
  const issued = issuedBySecret.get(secret);
  if (issued === undefined) return false;
  const c = issued.newer.get(nonce) ?? issued.older.get(nonce);
  return c === context;
}

/** Options of {@link createNonce}. */
export interface NonceOptions {
  /** Issuer byte, 0..255: the SIP worker index (default 0). Read back with {@link nonceIssuer}. */
  issuer?: number;
  /** The 7-byte counter value to use (tests; 0..2^53-1); default: this process's counter, incremented. */
  counter?: number;
  /** Bound into the MAC; must be given again to checkNonce. */
  context?: string;
}

/**
 * A fresh nonce for a challenge issued at `nowMs` (ms since the epoch).
 * Returns 43 base64url characters. `secret` should be at least 16 random bytes.
 * @throws RangeError when `nowMs` is negative or beyond 2^53, `issuer` is not an integer 0..255,
 *   or `counter` is not a safe non-negative integer.
 */
export function createNonce(secret: Buffer, nowMs: number, opts: NonceOptions = {}): string {
  const issuer = opts.issuer ?? 0;
  if (!Number.isInteger(issuer) || issuer < 0 || issuer > 255) throw new RangeError('nonce issuer must be an integer 0..255');
  const t = Math.floor(nowMs);
  if (!(t >= 0 && t <= Number.MAX_SAFE_INTEGER)) throw new RangeError('nonce time must be a non-negative ms timestamp');
  let hi: number;
  let lo: number;
  if (opts.counter !== undefined) {
    if (!Number.isSafeInteger(opts.counter) || opts.counter < 0) throw new RangeError('nonce counter must be a safe non-negative integer');
    hi = Math.floor(opts.counter / TWO_32);
    lo = opts.counter - hi * TWO_32;
  } else {
    hi = counterHi;
    lo = counterLo;
    if (++counterLo === TWO_32) {
      counterLo = 0;
      counterHi = (counterHi + 1) % COUNTER_HI_LIMIT;
    }
  }
  const tHi = Math.floor(t / TWO_32);
  scratch.writeUInt32BE(tHi, 0);
  scratch.writeUInt32BE(t - tHi * TWO_32, 4);
  scratch[ISSUER_OFFSET] = issuer;
  scratch.writeUIntBE(hi, COUNTER_OFFSET, 3);
  scratch.writeUInt32BE(lo, COUNTER_OFFSET + 3);
  const context = opts.context ?? '';
  mac(secret, scratchSigned, context).copy(scratchMac);
  const nonce = scratch.toString('base64url');
  rememberIssued(secret, nonce, context);
  return nonce;
}

/**
 * Decode `nonce` into the scratch buffer when it has our shape (43 canonical base64url characters);
 * false otherwise. The MAC is not checked.
 */
function decode(nonce: string): boolean {
  if (nonce.length !== NONCE_CHARS) return false;
  // Re-encoding must give the same text: refuses stray characters and non-canonical padding bits.
  return scratch.write(nonce, 'base64url') === NONCE_BYTES && scratch.toString('base64url') === nonce;
}

function scratchTimestamp(): number {
  return scratch.readUInt32BE(0) * TWO_32 + scratch.readUInt32BE(4);
}

/** Issue time (ms since the epoch) carried by a nonce, or undefined when it is not one of ours in shape (MAC unchecked). */
export function nonceTimestamp(nonce: string): number | undefined {
  return decode(nonce) ? scratchTimestamp() : undefined;
}

/** Issuer byte (0..255, the SIP worker index) carried by a nonce, or undefined when it is not one of ours in shape (MAC unchecked). */
export function nonceIssuer(nonce: string): number | undefined {
  return decode(nonce) ? scratch[ISSUER_OFFSET] : undefined;
}

/**
 * Check a nonce echoed by a client.
 * @param ttlS lifetime in seconds: a nonce issued more than `ttlS` s before `nowMs` is `stale`.
 * @param nowMs current time, ms since the epoch.
 * @param context the context the nonce was created with, if any.
 * @returns `valid`; `stale` when genuine but expired (the client should retry with stale=true,
 *   RFC 7616 §3.3); `invalid` when malformed, forged, or dated more than 5 s in the future.
 *   The MAC is compared in constant time; a nonce this process issued lately with the same secret and context
 *   is known genuine without computing it (see {@link ISSUED_NONCES_PER_GENERATION}).
 */
export function checkNonce(secret: Buffer, nonce: string, ttlS: number, nowMs: number, context = ''): 'valid' | 'stale' | 'invalid' {
  if (!decode(nonce)) return 'invalid';
  if (!wasIssued(secret, nonce, context) && !timingSafeEqual(scratchMac, mac(secret, scratchSigned, context))) return 'invalid';
  const issued = scratchTimestamp();
  if (issued > nowMs + MAX_FUTURE_MS) return 'invalid';
  return nowMs - issued > ttlS * 1000 ? 'stale' : 'valid';
}

/** 2^52: keys of strings that are not nonces of our shape start here, above every 52-bit counter key. */
const OTHER_KEYS = 2 ** 52;

/**
 * The number a nonce-count entry is kept under: for a nonce of our shape, the
 * low 52 bits of its counter (unique among the nonces of one process: the
 * counter goes up by one per nonce); for any other string, 2^52 + its 32-bit
 * FNV-1a hash. Always a safe integer.
 */
export function nonceCountKey(nonce: string): number {
  if (!decode(nonce)) return OTHER_KEYS + fnv1a(nonce);
  return (scratch.readUIntBE(COUNTER_OFFSET, 3) & 0xf_ffff) * TWO_32 + scratch.readUInt32BE(COUNTER_OFFSET + 3);
}

/**
 * Remembers the highest nonce-count (`nc`) seen per nonce, to refuse replayed
 * credentials (RFC 7616 §3.3, §5.5; RFC 3261 §22.4). Memory is bounded: beyond
 * `maxEntries` nonces, the least recently used is forgotten (so a replay of a
 * forgotten nonce is only caught by the nonce's own expiry).
 *
 * Compact: an entry is two numbers in a Map (~50 bytes measured, against
 * ~130 for the nonce text itself as the key), keyed by {@link nonceCountKey}:
 * the nonce's own counter, which no two nonces of this process's counter
 * share. Nonces of another process with the same secret (a restarted one,
 * another node) start their counters at random, and a SIP challenge's counter
 * is a keyed hash of its request, so two live entries share a key only by a
 * 2^-52 chance per pair; if they do, the entry keeps the higher count of the two, which
 * can refuse a genuine nc (answered with a fresh challenge) but never accepts
 * a replayed one. Callers pass nonces whose MAC was checked (checkNonce), so
 * a client cannot pick another nonce's counter.
 */
export class NonceCountTracker {
  private readonly maxEntries: number;
  /** nonceCountKey → highest nc accepted, least recently used first. */
  private readonly highest = new Map<number, number>();

  /**
   * @param maxEntries most nonces tracked at once (e.g. 100000; ~50 bytes each, measured).
   * @throws RangeError when `maxEntries` is not a positive integer.
   */
  constructor(maxEntries: number) {
    if (!Number.isInteger(maxEntries) || maxEntries < 1) throw new RangeError('maxEntries must be a positive integer');
    this.maxEntries = maxEntries;
  }

  /**
   * Record `nc` for `nonce`. Returns false (replay) when `nc` is not an integer ≥ 1 or
   * not greater than the highest count already accepted for this nonce; true otherwise.
   */
  accept(nonce: string, nc: number): boolean {
    if (!Number.isSafeInteger(nc) || nc < 1) return false;
    const key = nonceCountKey(nonce);
    const prev = this.highest.get(key);
    if (prev !== undefined) {
      if (nc <= prev) return false;
      this.highest.delete(key); // re-insert: most recently used last
    }
    this.highest.set(key, nc);
    if (this.highest.size > this.maxEntries) {
      const oldest = this.highest.keys().next().value;
      if (oldest !== undefined) this.highest.delete(oldest);
    }
    return true;
  }

  /** Number of nonces currently tracked. */
  get size(): number {
    return this.highest.size;
  }
}
