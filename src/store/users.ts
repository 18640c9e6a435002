/**
 * Turning a password into what the store keeps: one HA1 per digest algorithm.
 */
import { computeHA1, DIGEST_ALGORITHMS } from '../auth/digest.js';
import type { Ha1Algorithm, UserRecord } from './types.js';

/** Every algorithm a user gets an HA1 for by default (RFC 7616 §3.2, RFC 8760 §2). */
export const ALL_HA1_ALGORITHMS: readonly Ha1Algorithm[] = DIGEST_ALGORITHMS;

/**
 * HA1 = H(username:realm:password) for each algorithm, with realm = domain in
 * lowercase, as the store keeps it and challenges carry it (RFC 7616 §3.4.2). The password itself is not kept anywhere.
 *
 * @param username user part, exactly as the client will send it.
 * @param domain the SIP domain, which is the digest realm.
 * @param password UTF-8 password.
 * @param algorithms which HA1s to compute.
 * @returns lowercase hex per algorithm, e.g. `{ MD5: '1f3870be...' }`.
 */
export function credentialsFor(
  username: string,
  domain: string,
  password: string,
  algorithms: readonly Ha1Algorithm[],
): UserRecord['ha1'] {
  const realm = domain.toLowerCase();
  const ha1: UserRecord['ha1'] = {};
  for (const alg of algorithms) ha1[alg] = computeHA1(alg, username, realm, password);
  return ha1;
}
