/**
 * STUN message header and attribute TLV codec (RFC 8489 §5, §14).
 *
 * A message is a 20-byte header (type, length, magic cookie, 96-bit
 * transaction id) followed by attributes, each type(16) length(16) value,
 * padded to a multiple of 4 bytes. This module only frames attributes;
 * stun-attributes.ts gives their values meaning and stun-integrity.ts adds
 * MESSAGE-INTEGRITY and FINGERPRINT.
 */
import { computeFingerprint, computeMessageIntegrity, computeMessageIntegritySha256 } from './stun-integrity.js';

/** The fixed magic cookie (RFC 8489 §5). */
export const MAGIC_COOKIE = 0x2112a442;
/** STUN header length in bytes. */
export const STUN_HEADER_LENGTH = 20;
/** Largest STUN message this codec accepts, in bytes (bounded by UDP and our TCP framer). */
export const STUN_MAX_MESSAGE_LENGTH = 65535 + STUN_HEADER_LENGTH;

/** Message class (RFC 8489 §5: C1 C0 bits). */
export type StunClass = 'request' | 'indication' | 'success' | 'error';

/** STUN/TURN methods (RFC 8489 §18.2, RFC 8656 §17). */
export const StunMethod = {
  Binding: 0x001,
  Allocate: 0x003,
  Refresh: 0x004,
  Send: 0x006,
  Data: 0x007,
  CreatePermission: 0x008,
  ChannelBind: 0x009,
  /** RFC 6062 §6.1 */
  Connect: 0x00a,
  ConnectionBind: 0x00b,
  ConnectionAttempt: 0x00c,
} as const;

/** Attribute types used here (RFC 8489 §18.3, RFC 8656 §18). */
export const AttributeType = {
  MappedAddress: 0x0001,
  Username: 0x0006,
  MessageIntegrity: 0x0008,
  ErrorCode: 0x0009,
  UnknownAttributes: 0x000a,
  ChannelNumber: 0x000c,
  Lifetime: 0x000d,
  XorPeerAddress: 0x0012,
  Data: 0x0013,
  Realm: 0x0014,
  Nonce: 0x0015,
  XorRelayedAddress: 0x0016,
  RequestedAddressFamily: 0x0017,
  EvenPort: 0x0018,
  RequestedTransport: 0x0019,
  DontFragment: 0x001a,
  MessageIntegritySha256: 0x001c,
  PasswordAlgorithm: 0x001d,
  Userhash: 0x001e,
  XorMappedAddress: 0x0020,
  ReservationToken: 0x0022,
  /** RFC 6062 §6.2 */
  ConnectionId: 0x002a,
  Priority: 0x0024,
  UseCandidate: 0x0025,
  /** RFC 8656 §18.11-18.12 */
  AdditionalAddressFamily: 0x8000,
  AddressErrorCode: 0x8001,
  /** RFC 8489 §14.11 */
  PasswordAlgorithms: 0x8002,
  Software: 0x8022,
  AlternateServer: 0x8023,
  Fingerprint: 0x8028,
  IceControlled: 0x8029,
  IceControlling: 0x802a,
} as const;

/**
 * One attribute as on the wire. `padding` keeps non-zero padding bytes seen
 * on decode (RFC 8489 §14 lets senders put anything there) so re-encoding
 * reproduces the input; the encoder writes zeros when it is absent.
 */
export interface StunAttribute {
  type: number;
  value: Buffer;
  padding?: Buffer;
}

/** A decoded STUN message. `transactionId` is 12 bytes. */
export interface StunMessage {
  method: number;
  class: StunClass;
  transactionId: Buffer;
  attributes: StunAttribute[];
}

/** A message that cannot be framed; maps to STUN 400 Bad Request when a response can be formed. */
export class StunDecodeError extends Error {
  /** STUN error code this maps to (RFC 8489 §14.8). */
  readonly status = 400;
  override readonly name = 'StunDecodeError';
}

const CLASS_BITS: Record<StunClass, number> = { request: 0, indication: 1, success: 2, error: 3 };
const CLASS_BY_BITS: StunClass[] = ['request', 'indication', 'success', 'error'];

/** Builds the 14-bit message type from method (12 bits) and class (RFC 8489 §5, Figure 3). */
export function messageType(method: number, cls: StunClass): number {
  const c = CLASS_BITS[cls];
  return (method & 0x000f) | ((method & 0x0070) << 1) | ((method & 0x0f80) << 2) | ((c & 1) << 4) | ((c & 2) << 7);
}

/** Splits a 14-bit message type into method and class (RFC 8489 §5). */
export function splitMessageType(type: number): { method: number; class: StunClass } {
  const method = (type & 0x000f) | ((type & 0x00e0) >> 1) | ((type & 0x3e00) >> 2);
  const c = ((type >> 4) & 1) | ((type >> 7) & 2);
  return { method, class: CLASS_BY_BITS[c]! };
}

/**
 * Quick check that `buf` starts like a STUN message: top two bits zero,
 * magic cookie present, length a multiple of 4 (RFC 8489 §6.3). Does not
 * check that the whole message is present.
 */
export function looksLikeStun(buf: Buffer): boolean {
  return buf.length >= STUN_HEADER_LENGTH && (buf[0]! & 0xc0) === 0 && buf.readUInt32BE(4) === MAGIC_COOKIE && (buf.readUInt16BE(2) & 3) === 0;
}

/**
 * Decodes a whole STUN message (exactly `buf`, no trailing bytes).
 * Attributes after MESSAGE-INTEGRITY other than FINGERPRINT, and anything after
 * FINGERPRINT, are dropped as RFC 8489 §14.5/§14.7 require.
 * @throws StunDecodeError on a bad header, length mismatch or truncated attribute.
 */
export function decodeStunMessage(buf: Buffer): StunMessage {
  if (buf.length < STUN_HEADER_LENGTH) throw new StunDecodeError('STUN message shorter than its header');
  if ((buf[0]! & 0xc0) !== 0) throw new StunDecodeError('first two bits of a STUN message must be zero');
  if (buf.readUInt32BE(4) !== MAGIC_COOKIE) throw new StunDecodeError('magic cookie missing');
  const length = buf.readUInt16BE(2);
  if (length % 4 !== 0) throw new StunDecodeError('STUN message length is not a multiple of 4');
  if (length + STUN_HEADER_LENGTH !== buf.length) throw new StunDecodeError(`STUN length ${length} does not match ${buf.length - STUN_HEADER_LENGTH} bytes present`);
  const { method, class: cls } = splitMessageType(buf.readUInt16BE(0));
  const transactionId = Buffer.from(buf.subarray(8, 20));
  const attributes: StunAttribute[] = [];
  let off = STUN_HEADER_LENGTH;
  let sawIntegrity = false;
  let sawFingerprint = false;
  let count = 0;
  while (off < buf.length) {
    if (++count > 512) throw new StunDecodeError('too many attributes');
    if (off + 4 > buf.length) throw new StunDecodeError('truncated attribute header');
    const type = buf.readUInt16BE(off);
    const len = buf.readUInt16BE(off + 2);
    const padLen = (4 - (len % 4)) % 4;
    if (off + 4 + len + padLen > buf.length) throw new StunDecodeError(`attribute 0x${type.toString(16)} overruns the message`);
    const value = Buffer.from(buf.subarray(off + 4, off + 4 + len));
    const pad = buf.subarray(off + 4 + len, off + 4 + len + padLen);
    off += 4 + len + padLen;
    if (sawFingerprint) continue;
    if (sawIntegrity && type !== AttributeType.Fingerprint && type !== AttributeType.MessageIntegritySha256) continue;
    const attr: StunAttribute = { type, value };
    if (pad.some((b) => b !== 0)) attr.padding = Buffer.from(pad);
    attributes.push(attr);
    if (type === AttributeType.MessageIntegrity || type === AttributeType.MessageIntegritySha256) sawIntegrity = true;
    if (type === AttributeType.Fingerprint) sawFingerprint = true;
  }
  return { method, class: cls, transactionId, attributes };
}

/** Options for encodeStunMessage. */
export interface StunEncodeOptions {
  /** HMAC-SHA1 key: appends MESSAGE-INTEGRITY (RFC 8489 §14.5). Short-term: the password; long-term: MD5(user:realm:pass). */
  integrityKey?: Buffer;
  /** With `integrityKey`: 'sha256' appends MESSAGE-INTEGRITY-SHA256 (32 bytes, RFC 8489 §14.6) instead of HMAC-SHA1. */
  integrity?: 'sha1' | 'sha256';
  /** Appends FINGERPRINT (RFC 8489 §14.7). */
  fingerprint?: boolean;
}

/**
 * Encodes a message. Attributes are written in order; MESSAGE-INTEGRITY and
 * FINGERPRINT in `msg.attributes` are written as given, so pass them only to
 * reproduce captured bytes, and use `opts` to compute them.
 * @throws RangeError if the transaction id is not 12 bytes or the message exceeds 65535 bytes of attributes.
 */
export function encodeStunMessage(msg: StunMessage, opts: StunEncodeOptions = {}): Buffer {
  if (msg.transactionId.length !== 12) throw new RangeError('transaction id must be 12 bytes');
  const parts: Buffer[] = [];
  const header = Buffer.alloc(STUN_HEADER_LENGTH);
  header.writeUInt16BE(messageType(msg.method, msg.class), 0);
  header.writeUInt32BE(MAGIC_COOKIE, 4);
  msg.transactionId.copy(header, 8);
  parts.push(header);
  for (const a of msg.attributes) parts.push(encodeAttribute(a));
  let out: Buffer = Buffer.concat(parts);
  if (opts.integrityKey && opts.integrity === 'sha256') {
    out = appendWithLength(out, AttributeType.MessageIntegritySha256, 32, (m) => computeMessageIntegritySha256(m, opts.integrityKey!));
  } else if (opts.integrityKey) {
    out = appendWithLength(out, AttributeType.MessageIntegrity, 20, (m) => computeMessageIntegrity(m, opts.integrityKey!));
  }
  if (opts.fingerprint) {
    out = appendWithLength(out, AttributeType.Fingerprint, 4, (m) => {
      const v = Buffer.alloc(4);
      v.writeUInt32BE(computeFingerprint(m), 0);
      return v;
    });
  }
  if (out.length - STUN_HEADER_LENGTH > 65535) throw new RangeError('STUN message too long');
  out.writeUInt16BE(out.length - STUN_HEADER_LENGTH, 2);
  return out;
}

/** Encodes one attribute TLV with padding to 4 bytes. @throws RangeError if the value exceeds 65535 bytes. */
export function encodeAttribute(a: StunAttribute): Buffer {
  if (a.value.length > 65535) throw new RangeError('attribute value too long');
  const padLen = (4 - (a.value.length % 4)) % 4;
  const out = Buffer.alloc(4 + a.value.length + padLen);
  out.writeUInt16BE(a.type, 0);
  out.writeUInt16BE(a.value.length, 2);
  a.value.copy(out, 4);
  if (a.padding && a.padding.length === padLen) a.padding.copy(out, 4 + a.value.length);
  return out;
}

/** Sets the header length as if an attribute of `valueLen` followed, computes its value over the bytes so far, appends it. */
function appendWithLength(msg: Buffer, type: number, valueLen: number, compute: (m: Buffer) => Buffer): Buffer {
  const m = Buffer.from(msg);
  m.writeUInt16BE(m.length - STUN_HEADER_LENGTH + 4 + valueLen, 2);
  const value = compute(m);
  return Buffer.concat([m, encodeAttribute({ type, value })]);
}

/** First attribute of `type`, or undefined (RFC 8489 §14: only the first of a repeated attribute counts). */
export function getAttribute(msg: StunMessage, type: number): StunAttribute | undefined {
  return msg.attributes.find((a) => a.type === type);
}

/** Every attribute of `type`, in order (e.g. several XOR-PEER-ADDRESS in CreatePermission, RFC 8656 §9.1). */
export function getAttributes(msg: StunMessage, type: number): StunAttribute[] {
  return msg.attributes.filter((a) => a.type === type);
}
