/**
 * The Via branch parameter (RFC 3261 §8.1.1.7, §20.42): the magic cookie that
 * marks an RFC 3261 branch, and the generator of new branches for requests and
 * for proxied requests (§16.6 step 8).
 */
import { randomFillSync } from 'node:crypto';

/** The RFC 3261 §8.1.1.7 magic cookie that starts every branch this server generates. */
export const MAGIC_COOKIE = 'z9hG4bK';

/** Random bytes of a branch. */
const BRANCH_RANDOM_BYTES = 12;
/**
 * Random bytes drawn from the CSPRNG 4 KiB at a time (one call for 341 branches rather than one per
 * branch: a forwarded request's branch was one OpenSSL call of its own); each byte is used once.
 */
const pool = Buffer.alloc(4092);
let poolOffset = pool.length;

/**
 * A new globally unique branch parameter: `z9hG4bK`, then `prefix` and a dot
 * when given (the loop-detection hash of RFC 3261 §16.6 step 8), then 12
 * random bytes in base64url (16 characters).
 */
export function newBranch(prefix?: string): string {
  if (poolOffset + BRANCH_RANDOM_BYTES > pool.length) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const random = pool.toString('base64url', poolOffset, poolOffset + BRANCH_RANDOM_BYTES);
  poolOffset += BRANCH_RANDOM_BYTES;
  return MAGIC_COOKIE + (prefix ? `${prefix}.` : '') + random;
}
