/**
 * HMAC-SHA256 (RFC 2104 §2, FIPS 198-1) from two one-shot SHA-256 digests,
 * with the key's inner and outer blocks made once per key.
 *
 * Why not `createHmac`: on Node 20 with OpenSSL 3 every `createHmac` looks the
 * digest up again (three digest contexts initialised through OpenSSL's
 * provider fetch), which in a server that touches much else between two
 * MACs costs more than the hashing itself; `crypto.hash` keeps the digest it
 * fetched. The bytes are the same: a property test checks them against
 * `createHmac` (test/auth/hmac-sha256.test.ts).
 */
import { createHmac, hash } from 'node:crypto';

/** SHA-256's block size, bytes (RFC 6234 §4). */
const BLOCK_BYTES = 64;
/** SHA-256's output size, bytes. */
const DIGEST_BYTES = 32;

/** A key's blocks: K XOR ipad (64 bytes) and K XOR opad followed by room for the inner digest (96 bytes). */
interface KeyBlocks {
  inner: Buffer;
  outer: Buffer;
}

/** Blocks per key Buffer; a WeakMap, so a key that is dropped takes its blocks with it (as many entries as live keys). */
const blocksByKey = new WeakMap<Buffer, KeyBlocks>();

function blocksOf(key: Buffer): KeyBlocks {
  let b = blocksByKey.get(key);
  if (b) return b;
  const inner = Buffer.alloc(BLOCK_BYTES, 0x36);
  const outer = Buffer.alloc(BLOCK_BYTES + DIGEST_BYTES, 0x5c);
  for (let i = 0; i < key.length; i++) {
    inner[i] ^= key[i];
    outer[i] ^= key[i];
  }
  b = { inner, outer };
  blocksByKey.set(key, b);
  return b;
}

/**
 * HMAC-SHA256 of `data` followed by the UTF-8 bytes of `text` (empty by
 * default), under `key`. Returns a new 32-byte Buffer.
 *
 * The key's blocks are kept per key Buffer, so the caller must not change a
 * key's bytes after first use (keys here are secrets read once at start). A
 * key longer than 64 bytes goes through `createHmac` (RFC 2104 hashes it first).
 */
export function hmacSha256(key: Buffer, data: Buffer, text = ''): Buffer {
  if (key.length > BLOCK_BYTES) return createHmac('sha256', key).update(data).update(text).digest();
  const { inner, outer } = blocksOf(key);
  const textBytes = text.length === 0 ? 0 : Buffer.byteLength(text, 'utf8');
  const message = Buffer.allocUnsafe(BLOCK_BYTES + data.length + textBytes);
  inner.copy(message, 0);
  data.copy(message, BLOCK_BYTES);
  if (textBytes) message.write(text, BLOCK_BYTES + data.length, 'utf8');
  hash('sha256', message, 'buffer').copy(outer, BLOCK_BYTES);
  return hash('sha256', outer, 'buffer');
}
