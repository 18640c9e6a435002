/**
 * MESSAGE-INTEGRITY (HMAC-SHA1, RFC 8489 §14.5), FINGERPRINT (CRC-32 xor
 * 0x5354554e, RFC 8489 §14.7) and the long-term credential key (§9.2.2).
 * Works on raw message bytes so verification sees exactly what was received.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

const ATTR_MESSAGE_INTEGRITY = 0x0008;
const ATTR_MESSAGE_INTEGRITY_SHA256 = 0x001c;
const ATTR_FINGERPRINT = 0x8028;
const HEADER = 20;
const FINGERPRINT_XOR = 0x5354554e;

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 (ISO 3309 / ITU-T V.42, as in zlib) of `data`, as an unsigned 32-bit number. */
export function crc32(data: Buffer): number {
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) c = CRC_TABLE[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/**
 * FINGERPRINT value over `msgSoFar` (header length already covering the
 * FINGERPRINT attribute): CRC-32 xor 0x5354554e (RFC 8489 §14.7).
 */
export function computeFingerprint(msgSoFar: Buffer): number {
  return (crc32(msgSoFar) ^ FINGERPRINT_XOR) >>> 0;
}

/**
 * MESSAGE-INTEGRITY value (20 bytes): HMAC-SHA1 with `key` over `msgSoFar`,
 * whose header length must already count the 24-byte MESSAGE-INTEGRITY attribute (RFC 8489 §14.5).
 */
export function computeMessageIntegrity(msgSoFar: Buffer, key: Buffer): Buffer {
  return createHmac('sha1', key).update(msgSoFar).digest();
}

/**
 * MESSAGE-INTEGRITY-SHA256 value (32 bytes): HMAC-SHA256 with `key` over
 * `msgSoFar`, whose header length already counts the attribute (RFC 8489 §14.6).
 */
export function computeMessageIntegritySha256(msgSoFar: Buffer, key: Buffer): Buffer {
  return createHmac('sha256', key).update(msgSoFar).digest();
}

/**
 * Long-term credential key for PASSWORD-ALGORITHM SHA-256:
 * SHA-256(username ":" realm ":" password), 32 bytes (RFC 8489 §9.2.2, §18.5.1.2).
 */
export function longTermKeySha256(username: string, realm: string, password: string): Buffer {
  return createHash('sha256').update(`${username}:${realm}:${password}`, 'utf8').digest();
}

/** USERHASH value: SHA-256(username ":" realm), 32 bytes (RFC 8489 §14.4). */
export function userhash(username: string, realm: string): Buffer {
  return createHash('sha256').update(`${username}:${realm}`, 'utf8').digest();
}

/**
 * Long-term credential key: MD5(username ":" realm ":" password), 16 bytes (RFC 8489 §9.2.2).
 * Strings are taken as already SASLprep/OpaqueString-processed and encoded as UTF-8.
 */
export function longTermKey(username: string, realm: string, password: string): Buffer {
  return createHash('md5').update(`${username}:${realm}:${password}`, 'utf8').digest();
}

/** Byte offset of the first attribute of `type` in raw message bytes, or -1 (walks the TLVs; tolerant of truncation). */
export function findAttributeOffset(raw: Buffer, type: number): number {
  let off = HEADER;
  for (let i = 0; i < 512 && off + 4 <= raw.length; i++) {
    const t = raw.readUInt16BE(off);
    if (t === type) return off;
    const len = raw.readUInt16BE(off + 2);
    off += 4 + len + ((4 - (len % 4)) % 4);
  }
  return -1;
}

/**
 * Verifies MESSAGE-INTEGRITY of received bytes with `key` (RFC 8489 §14.5):
 * HMAC over the message up to the attribute, with the header length set to
 * end just after it. Returns false if the attribute is absent or malformed.
 */
export function verifyMessageIntegrity(raw: Buffer, key: Buffer): boolean {
  const off = findAttributeOffset(raw, ATTR_MESSAGE_INTEGRITY);
  if (off < 0 || off + 24 > raw.length || raw.readUInt16BE(off + 2) !== 20) return false;
  const head = Buffer.from(raw.subarray(0, off));
  head.writeUInt16BE(off + 24 - HEADER, 2);
  const expected = computeMessageIntegrity(head, key);
  return timingSafeEqual(expected, raw.subarray(off + 4, off + 24));
}

/**
 * Verifies FINGERPRINT (RFC 8489 §14.7): it must be the last attribute and
 * equal CRC-32 of everything before it xor 0x5354554e. False if absent.
 */
export function verifyFingerprint(raw: Buffer): boolean {
  if (raw.length < HEADER + 8) return false;
  const off = raw.length - 8;
  if (raw.readUInt16BE(off) !== ATTR_FINGERPRINT || raw.readUInt16BE(off + 2) !== 4) return false;
  return computeFingerprint(raw.subarray(0, off)) === raw.readUInt32BE(off + 4);
}

/**
 * Verifies MESSAGE-INTEGRITY-SHA256 of received bytes with `key` (RFC 8489
 * §14.6): the value may be truncated to 16-32 bytes in steps of 4, and is
 * compared with as many leading bytes of the HMAC-SHA256. False if absent or malformed.
 */
export function verifyMessageIntegritySha256(raw: Buffer, key: Buffer): boolean {
  const off = findAttributeOffset(raw, ATTR_MESSAGE_INTEGRITY_SHA256);
  if (off < 0) return false;
  const len = raw.readUInt16BE(off + 2);
  if (len < 16 || len > 32 || len % 4 !== 0 || off + 4 + len > raw.length) return false;
  const head = Buffer.from(raw.subarray(0, off));
  head.writeUInt16BE(off + 4 + len - HEADER, 2);
  const expected = computeMessageIntegritySha256(head, key).subarray(0, len);
  return timingSafeEqual(expected, raw.subarray(off + 4, off + 4 + len));
}
