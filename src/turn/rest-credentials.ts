/**
 * Time-limited TURN credentials from a shared secret (the "TURN REST API"
 * scheme of draft-uberti-behave-turn-rest-00, as coturn's use-auth-secret):
 * username = `EXPIRY:user` (EXPIRY in s since the epoch), password =
 * base64(HMAC-SHA1(secret, username)). A web service that knows the secret
 * hands such pairs to its clients; the TURN server checks them with the same
 * secret and no user database. Several secrets may be valid at once, so a
 * secret can be rotated without cutting off credentials already issued.
 */
import { createHmac } from 'node:crypto';

/** A username/password pair and when it stops being accepted. */
export interface RestCredentials {
  username: string;
  password: string;
  /** Expiry, s since the epoch. */
  expires: number;
}

/** The password of a REST API `username` under `secret`: base64(HMAC-SHA1(secret, username)). */
export function restApiPassword(secret: string | Buffer, username: string): string {
  return createHmac('sha1', secret).update(username, 'utf8').digest('base64');
}

/**
 * Issues a pair for `user` valid `ttlS` seconds from `nowMs`.
 * @throws RangeError if `ttlS` is not a positive whole number or `user` contains no character.
 */
export function createRestCredentials(secret: string | Buffer, user: string, ttlS: number, nowMs = Date.now()): RestCredentials {
  if (!Number.isInteger(ttlS) || ttlS < 1) throw new RangeError(`ttl must be a whole number of seconds >= 1, got ${ttlS}`);
  if (user.length === 0) throw new RangeError('user must not be empty');
  const expires = Math.floor(nowMs / 1000) + ttlS;
  const username = `${expires}:${user}`;
  return { username, password: restApiPassword(secret, username), expires };
}

/**
 * Reads a REST API username: `EXPIRY` or `EXPIRY:user` (EXPIRY decimal s
 * since the epoch). Returns the expiry and the user part ('' when absent), or
 * undefined when the name does not have that form (then it is an ordinary user name).
 */
export function parseRestUsername(username: string): { expires: number; user: string } | undefined {
  const m = /^(\d{1,12})(?::(.*))?$/s.exec(username);
  if (!m) return undefined;
  return { expires: Number(m[1]), user: m[2] ?? '' };
}
