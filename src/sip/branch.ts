/**
 * The Via branch parameter (RFC 3261 §8.1.1.7, §20.42): the magic cookie that
 * marks an RFC 3261 branch, and the generator of new branches for requests and
 * for proxied requests (§16.6 step 8).
 */
import { randomBytes } from 'node:crypto';

/** The RFC 3261 §8.1.1.7 magic cookie that starts every branch this server generates. */
export const MAGIC_COOKIE = 'z9hG4bK';

/**
 * A new globally unique branch parameter: `z9hG4bK`, then `prefix` and a dot
 * when given (the loop-detection hash of RFC 3261 §16.6 step 8), then 12
 * random bytes in base64url (16 characters).
 */
export function newBranch(prefix?: string): string {
  return MAGIC_COOKIE + (prefix ? `${prefix}.` : '') + randomBytes(12).toString('base64url');
}
