/**
 * Stateless NONCE values (RFC 8489 §9.2): the issue time in seconds plus an
 * HMAC-SHA256 over it and the client's transport address, so the server
 * stores nothing for a client that has not authenticated yet, and a nonce
 * cannot be replayed from another address.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

const MAC_BYTES = 12;

function mac(secret: Buffer, issuedS: number, client: string): Buffer {
  return createHmac('sha256', secret).update(`${issuedS}|${client}`).digest().subarray(0, MAC_BYTES);
}

/**
 * Issues a nonce: 8 hex digits of the issue time (s since the epoch) then 24
 * hex digits of MAC; 32 ASCII characters (well under the 128-character limit of §14.10).
 * @param client any string naming the client's transport address, e.g. "udp:127.0.0.1:5000".
 * @param nowMs current time, ms.
 */
export function createNonce(secret: Buffer, client: string, nowMs: number): string {
  const issued = Math.floor(nowMs / 1000);
  return issued.toString(16).padStart(8, '0') + mac(secret, issued, client).toString('hex');
}

/** Outcome of checking a nonce: 'valid'; 'stale' = genuine but older than the TTL (-> 438); 'invalid' = not issued by us for this client (-> 438 too). */
export type NonceCheck = 'valid' | 'stale' | 'invalid';

/**
 * Checks a nonce received in a request.
 * @param ttlS nonce lifetime, s.
 * @param nowMs current time, ms.
 */
export function checkNonce(nonce: string, secret: Buffer, client: string, nowMs: number, ttlS: number): NonceCheck {
  if (!/^[0-9a-f]{32}$/.test(nonce)) return 'invalid';
  const issued = parseInt(nonce.slice(0, 8), 16);
  const got = Buffer.from(nonce.slice(8), 'hex');
  if (!timingSafeEqual(got, mac(secret, issued, client))) return 'invalid';
  const age = nowMs / 1000 - issued;
  if (age < -5 || age > ttlS) return 'stale';
  return 'valid';
}
