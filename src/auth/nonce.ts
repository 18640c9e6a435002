/**
 * Stateless digest nonces (RFC 7616 §3.3, RFC 3261 §22.4).
 *
 * A nonce is base64url(timestamp || salt || MAC), 43 characters:
 * - timestamp: issue time in ms since the epoch, 8 bytes big-endian;
 * - salt: 8 random bytes, so challenges issued in the same millisecond (to
 *   different clients) get different nonces and their nonce-counts do not collide;
 * - MAC: the first 16 bytes of HMAC-SHA256(secret, timestamp || salt || context),
 *   where the optional context binds the nonce to something the checker knows
 *   again (TURN binds it to the client's address, RFC 8489 §9.2).
 *
 * Nothing is stored per challenge: any node holding the secret can check a
 * nonce it never issued, and a restart loses nothing. The base64url alphabet
 * has neither `,` nor `"`, so the nonce needs no escaping inside a quoted-string.
 * Replay within a nonce's lifetime is caught by {@link NonceCountTracker}.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { detachString } from '../sip/detach.js';

const TS_BYTES = 8;
const SALT_BYTES = 8;
const MAC_BYTES = 16;
const SIGNED_BYTES = TS_BYTES + SALT_BYTES;
const NONCE_BYTES = SIGNED_BYTES + MAC_BYTES;
/** Base64url length of a nonce: 32 bytes → 43 characters, no padding. */
const NONCE_CHARS = 43;
/** How far in the future (ms) a timestamp may lie, to tolerate clock steps between cluster nodes. */
const MAX_FUTURE_MS = 5_000;

function mac(secret: Buffer, signed: Buffer, context: string): Buffer {
  return createHmac('sha256', secret).update(signed).update(context).digest().subarray(0, MAC_BYTES);
}

/**
 * A fresh nonce for a challenge issued at `nowMs` (ms since the epoch).
 * Returns 43 base64url characters. `secret` should be at least 16 random bytes;
 * `salt` (8 bytes) is random unless given (tests); `context` must be given again to checkNonce.
 * @throws RangeError when `nowMs` is negative or not an integer-representable time, or salt is not 8 bytes.
 */
export function createNonce(secret: Buffer, nowMs: number, opts: { salt?: Buffer; context?: string } = {}): string {
  const salt = opts.salt ?? randomBytes(SALT_BYTES);
  if (salt.length !== SALT_BYTES) throw new RangeError('nonce salt must be 8 bytes');
  const signed = Buffer.alloc(SIGNED_BYTES);
  signed.writeBigUInt64BE(BigInt(Math.floor(nowMs)));
  salt.copy(signed, TS_BYTES);
  return Buffer.concat([signed, mac(secret, signed, opts.context ?? '')]).toString('base64url');
}

/** Issue time (ms since the epoch) carried by a nonce, or undefined when it is not one of ours in shape (MAC unchecked). */
export function nonceTimestamp(nonce: string): number | undefined {
  if (nonce.length !== NONCE_CHARS) return undefined;
  const raw = Buffer.from(nonce, 'base64url');
  if (raw.length !== NONCE_BYTES || raw.toString('base64url') !== nonce) return undefined;
  return Number(raw.readBigUInt64BE(0));
}

/**
 * Check a nonce echoed by a client.
 * @param ttlS lifetime in seconds: a nonce issued more than `ttlS` s before `nowMs` is `stale`.
 * @param nowMs current time, ms since the epoch.
 * @param context the context the nonce was created with, if any.
 * @returns `valid`; `stale` when genuine but expired (the client should retry with stale=true,
 *   RFC 7616 §3.3); `invalid` when malformed, forged, or dated more than 5 s in the future.
 *   The MAC is compared in constant time.
 */
export function checkNonce(secret: Buffer, nonce: string, ttlS: number, nowMs: number, context = ''): 'valid' | 'stale' | 'invalid' {
  if (nonce.length !== NONCE_CHARS) return 'invalid';
  const raw = Buffer.from(nonce, 'base64url');
  // Re-encoding must give the same text: refuses stray characters and non-canonical padding bits.
  if (raw.length !== NONCE_BYTES || raw.toString('base64url') !== nonce) return 'invalid';
  if (!timingSafeEqual(raw.subarray(SIGNED_BYTES), mac(secret, raw.subarray(0, SIGNED_BYTES), context))) return 'invalid';
  const issued = Number(raw.readBigUInt64BE(0));
  if (issued > nowMs + MAX_FUTURE_MS) return 'invalid';
  return nowMs - issued > ttlS * 1000 ? 'stale' : 'valid';
}

/**
 * Remembers the highest nonce-count (`nc`) seen per nonce, to refuse replayed
 * credentials (RFC 7616 §3.3, §5.5; RFC 3261 §22.4). Memory is bounded: beyond
 * `maxEntries` nonces, the least recently used is forgotten (so a replay of a
 * forgotten nonce is only caught by the nonce's own expiry).
 *
 * Keys are stored as copies ({@link detachString}): the nonce a caller passes
 * is usually a slice of an Authorization header, and would otherwise keep that
 * whole header text alive for as long as the entry lives.
 */
export class NonceCountTracker {
  private readonly maxEntries: number;
  private readonly highest = new Map<string, number>();

  /**
   * @param maxEntries most nonces tracked at once (e.g. 100000; ~150 bytes each).
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
    const prev = this.highest.get(nonce);
    if (prev !== undefined) {
      if (nc <= prev) return false;
      this.highest.delete(nonce); // re-insert: most recently used last
    }
    this.highest.set(detachString(nonce), nc);
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
