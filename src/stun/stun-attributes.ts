/**
 * Values of the STUN/TURN attributes this server reads and writes
 * (RFC 8489 §14, RFC 8656 §18). Each function encodes or decodes one
 * attribute value (the bytes after the TLV header).
 */
import { formatIp, type IpFamily, parseIp } from '../security/ip-address.js';
import { MAGIC_COOKIE, StunDecodeError } from './stun-message.js';

/** A transport address: IP text (no brackets), port. */
export interface TransportAddress {
  family: IpFamily;
  address: string;
  port: number;
}

const FAMILY_CODE: Record<IpFamily, number> = { IPv4: 0x01, IPv6: 0x02 };

function encodeAddressRaw(addr: TransportAddress): { family: number; port: number; bytes: Buffer } {
  const p = parseIp(addr.address);
  if (!p) throw new RangeError(`not an IP address: ${addr.address}`);
  return { family: FAMILY_CODE[p.family], port: addr.port, bytes: p.bytes };
}

function decodeAddressRaw(value: Buffer): { family: IpFamily; port: number; bytes: Buffer } {
  if (value.length < 4) throw new StunDecodeError('address attribute too short');
  const fam = value[1];
  const port = value.readUInt16BE(2);
  if (fam === 0x01 && value.length === 8) return { family: 'IPv4', port, bytes: Buffer.from(value.subarray(4, 8)) };
  if (fam === 0x02 && value.length === 20) return { family: 'IPv6', port, bytes: Buffer.from(value.subarray(4, 20)) };
  throw new StunDecodeError(`bad address family 0x${(fam ?? 0).toString(16)} or length ${value.length}`);
}

function xorBytes(bytes: Buffer, transactionId: Buffer): Buffer {
  const key = Buffer.alloc(16);
  key.writeUInt32BE(MAGIC_COOKIE, 0);
  transactionId.copy(key, 4);
  const out = Buffer.alloc(bytes.length);
  for (let i = 0; i < bytes.length; i++) out[i] = bytes[i]! ^ key[i]!;
  return out;
}

/** MAPPED-ADDRESS value (RFC 8489 §14.1). @throws RangeError on a bad address. */
export function encodeMappedAddress(addr: TransportAddress): Buffer {
  const r = encodeAddressRaw(addr);
  const out = Buffer.alloc(4 + r.bytes.length);
  out[1] = r.family;
  out.writeUInt16BE(r.port, 2);
  r.bytes.copy(out, 4);
  return out;
}

/** Decodes MAPPED-ADDRESS (RFC 8489 §14.1). @throws StunDecodeError. */
export function decodeMappedAddress(value: Buffer): TransportAddress {
  const r = decodeAddressRaw(value);
  return { family: r.family, address: formatIp(r.bytes), port: r.port };
}

/**
 * XOR-MAPPED-ADDRESS / XOR-PEER-ADDRESS / XOR-RELAYED-ADDRESS value
 * (RFC 8489 §14.2, RFC 8656 §18.3, §18.5): port xor the top 16 bits of the
 * magic cookie, address xor cookie (IPv4) or cookie||transaction id (IPv6).
 * @throws RangeError on a bad address.
 */
export function encodeXorAddress(addr: TransportAddress, transactionId: Buffer): Buffer {
  const r = encodeAddressRaw(addr);
  const out = Buffer.alloc(4 + r.bytes.length);
  out[1] = r.family;
  out.writeUInt16BE(r.port ^ (MAGIC_COOKIE >>> 16), 2);
  xorBytes(r.bytes, transactionId).copy(out, 4);
  return out;
}

/** Decodes an XOR-*-ADDRESS value. @throws StunDecodeError on a bad family or length. */
export function decodeXorAddress(value: Buffer, transactionId: Buffer): TransportAddress {
  const r = decodeAddressRaw(value);
  return { family: r.family, address: formatIp(xorBytes(r.bytes, transactionId)), port: r.port ^ (MAGIC_COOKIE >>> 16) };
}

/** ERROR-CODE value (RFC 8489 §14.8): class = code / 100, number = code % 100, UTF-8 reason. @throws RangeError if code is not 300-699. */
export function encodeErrorCode(code: number, reason: string): Buffer {
  if (!Number.isInteger(code) || code < 300 || code > 699) throw new RangeError(`bad STUN error code ${code}`);
  const r = Buffer.from(reason, 'utf8').subarray(0, 763);
  const out = Buffer.alloc(4 + r.length);
  out[2] = Math.floor(code / 100);
  out[3] = code % 100;
  r.copy(out, 4);
  return out;
}

/** Decodes ERROR-CODE (RFC 8489 §14.8). @throws StunDecodeError if shorter than 4 bytes. */
export function decodeErrorCode(value: Buffer): { code: number; reason: string } {
  if (value.length < 4) throw new StunDecodeError('ERROR-CODE too short');
  return { code: (value[2]! & 0x07) * 100 + value[3]!, reason: value.subarray(4).toString('utf8') };
}

/** A 32-bit unsigned value (LIFETIME in s, RFC 8656 §18.2; PRIORITY). */
export function encodeUint32(n: number): Buffer {
  const out = Buffer.alloc(4);
  out.writeUInt32BE(n >>> 0, 0);
  return out;
}

/** Decodes a 4-byte unsigned value. @throws StunDecodeError if the length is not 4. */
export function decodeUint32(value: Buffer): number {
  if (value.length !== 4) throw new StunDecodeError('expected a 4-byte attribute value');
  return value.readUInt32BE(0);
}

/** CHANNEL-NUMBER value: number(16) + RFFU(16) (RFC 8656 §18.1). */
export function encodeChannelNumber(channel: number): Buffer {
  const out = Buffer.alloc(4);
  out.writeUInt16BE(channel, 0);
  return out;
}

/** Decodes CHANNEL-NUMBER. @throws StunDecodeError if the length is not 4. */
export function decodeChannelNumber(value: Buffer): number {
  if (value.length !== 4) throw new StunDecodeError('CHANNEL-NUMBER must be 4 bytes');
  return value.readUInt16BE(0);
}

/** REQUESTED-TRANSPORT: the IP protocol number (17 = UDP) in the first byte (RFC 8656 §18.7). @throws StunDecodeError. */
export function decodeRequestedTransport(value: Buffer): number {
  if (value.length !== 4) throw new StunDecodeError('REQUESTED-TRANSPORT must be 4 bytes');
  return value[0]!;
}

/** REQUESTED-TRANSPORT value for a protocol number. */
export function encodeRequestedTransport(protocol: number): Buffer {
  return Buffer.from([protocol & 0xff, 0, 0, 0]);
}

/** REQUESTED-ADDRESS-FAMILY: 0x01 IPv4, 0x02 IPv6 in the first byte (RFC 8656 §18.8). @throws StunDecodeError. */
export function decodeRequestedAddressFamily(value: Buffer): number {
  if (value.length !== 4) throw new StunDecodeError('REQUESTED-ADDRESS-FAMILY must be 4 bytes');
  return value[0]!;
}

/** EVEN-PORT: R bit = ask to reserve the next port (RFC 8656 §18.6). @throws StunDecodeError if empty. */
export function decodeEvenPort(value: Buffer): { reserve: boolean } {
  if (value.length < 1) throw new StunDecodeError('EVEN-PORT must have 1 byte');
  return { reserve: (value[0]! & 0x80) !== 0 };
}

/** UNKNOWN-ATTRIBUTES value: a list of 16-bit types (RFC 8489 §14.9). */
export function encodeUnknownAttributes(types: number[]): Buffer {
  const out = Buffer.alloc(types.length * 2);
  types.forEach((t, i) => out.writeUInt16BE(t, i * 2));
  return out;
}

/** Decodes UNKNOWN-ATTRIBUTES. @throws StunDecodeError on an odd length. */
export function decodeUnknownAttributes(value: Buffer): number[] {
  if (value.length % 2 !== 0) throw new StunDecodeError('UNKNOWN-ATTRIBUTES length must be even');
  const out: number[] = [];
  for (let i = 0; i < value.length; i += 2) out.push(value.readUInt16BE(i));
  return out;
}

/** UTF-8 text of USERNAME, REALM, NONCE, SOFTWARE. @throws StunDecodeError if longer than `maxBytes`. */
export function decodeText(value: Buffer, maxBytes = 763): string {
  if (value.length > maxBytes) throw new StunDecodeError('text attribute too long');
  return value.toString('utf8');
}

/** Comprehension-required attributes are types 0x0000-0x7FFF (RFC 8489 §14). */
export function isComprehensionRequired(type: number): boolean {
  return type < 0x8000;
}

/** REQUESTED-ADDRESS-FAMILY / ADDITIONAL-ADDRESS-FAMILY value for 0x01 (IPv4) or 0x02 (IPv6) (RFC 8656 §18.8, §18.11). */
export function encodeAddressFamily(family: IpFamily): Buffer {
  return Buffer.from([FAMILY_CODE[family], 0, 0, 0]);
}

/** Decodes the family byte of REQUESTED-/ADDITIONAL-ADDRESS-FAMILY; undefined for a code other than 0x01/0x02. @throws StunDecodeError on a bad length. */
export function decodeAddressFamily(value: Buffer): IpFamily | undefined {
  const f = decodeRequestedAddressFamily(value);
  return f === 0x01 ? 'IPv4' : f === 0x02 ? 'IPv6' : undefined;
}

/** ADDRESS-ERROR-CODE value: family(8), reserved, class(3), number(8), reason (RFC 8656 §18.12). */
export function encodeAddressErrorCode(family: IpFamily, code: number, reason: string): Buffer {
  const out = encodeErrorCode(code, reason);
  out[0] = FAMILY_CODE[family];
  return out;
}

/** Decodes ADDRESS-ERROR-CODE. @throws StunDecodeError if shorter than 4 bytes. */
export function decodeAddressErrorCode(value: Buffer): { family: number; code: number; reason: string } {
  return { family: value[0] ?? 0, ...decodeErrorCode(value) };
}

/** EVEN-PORT value: one byte, R bit (0x80) asks to reserve the next port (RFC 8656 §18.6). */
export function encodeEvenPort(reserve: boolean): Buffer {
  return Buffer.from([reserve ? 0x80 : 0]);
}

/** Password algorithm numbers (RFC 8489 §18.5): 0x0001 MD5, 0x0002 SHA-256. */
export const PASSWORD_ALGORITHM = { MD5: 0x0001, 'SHA-256': 0x0002 } as const;
/** A password algorithm this server knows. */
export type PasswordAlgorithmName = keyof typeof PASSWORD_ALGORITHM;

/**
 * PASSWORD-ALGORITHM (one) or PASSWORD-ALGORITHMS (a list) value: per entry
 * algorithm(16), parameters length(16), parameters padded to 4 (RFC 8489 §14.11-14.12).
 */
export function encodePasswordAlgorithms(algs: readonly number[]): Buffer {
  const out = Buffer.alloc(algs.length * 4);
  algs.forEach((a, i) => out.writeUInt16BE(a, i * 4));
  return out;
}

/** Decodes PASSWORD-ALGORITHM(S) into algorithm numbers (parameters skipped). @throws StunDecodeError when truncated. */
export function decodePasswordAlgorithms(value: Buffer): number[] {
  const out: number[] = [];
  let off = 0;
  for (let i = 0; i < 64 && off < value.length; i++) {
    if (off + 4 > value.length) throw new StunDecodeError('truncated PASSWORD-ALGORITHM entry');
    const len = value.readUInt16BE(off + 2);
    out.push(value.readUInt16BE(off));
    off += 4 + len + ((4 - (len % 4)) % 4);
    if (off > value.length) throw new StunDecodeError('PASSWORD-ALGORITHM parameters overrun');
  }
  return out;
}
