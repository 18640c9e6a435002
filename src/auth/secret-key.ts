/**
 * The HMAC key of a secret, made once per secret Buffer.
 *
 * `crypto.createHmac(alg, buffer)` imports the key bytes into a new key
 * object on every call; given a `KeyObject` it uses that one. The digest
 * path computes three HMAC-SHA256s per registration under one long-lived
 * secret (the challenge's counter, the nonce's MAC made and checked:
 * nonce.ts, sip-digest.ts), so the key is imported once per secret
 * instead (~1 µs less per HMAC, bench/RESULTS.md "CPU per REGISTER:
 * allocations..."). The MAC bytes are the same (RFC 2104).
 *
 * The cache is a WeakMap keyed by the Buffer object: bounded by the
 * secrets alive (one per configuration), an entry goes with its Buffer.
 * A secret must not be modified in place after its first use (none is:
 * secrets come from the configuration, or are generated once at start).
 */
import { createSecretKey, type KeyObject } from 'node:crypto';

const keys = new WeakMap<Buffer, KeyObject>();

/** The secret key object holding `secret`'s bytes (the same object for the same Buffer). */
export function secretKeyOf(secret: Buffer): KeyObject {
  let key = keys.get(secret);
  if (key === undefined) {
    key = createSecretKey(secret);
    keys.set(secret, key);
  }
  return key;
}
