/**
 * ChannelData message codec (RFC 8656 §12.4): channel number(16),
 * length(16), application data. Over UDP the message may end right after the
 * data; over TCP it is padded to a multiple of 4 bytes (RFC 8656 §12.5).
 */

/** Lowest and highest channel numbers accepted: 0x4000-0x7FFF (RFC 5766 §11; RFC 8656 §12 narrows to 0x4FFF). */
export const CHANNEL_MIN = 0x4000;
export const CHANNEL_MAX = 0x7fff;

/** A ChannelData message that cannot be decoded; maps to a silent discard (no response exists for it). */
export class ChannelDataError extends Error {
  /** Status it maps to if it were reported (400). */
  readonly status = 400;
  override readonly name = 'ChannelDataError';
}

/** A decoded ChannelData message. */
export interface ChannelData {
  channel: number;
  data: Buffer;
}

/** True if the first byte marks a ChannelData message (0b01 top bits, RFC 8656 §12.4 / RFC 7983). */
export function looksLikeChannelData(buf: Buffer): boolean {
  return buf.length >= 4 && (buf[0]! & 0xc0) === 0x40;
}

/** True if `n` is a channel number in 0x4000-0x7FFF. */
export function isValidChannelNumber(n: number): boolean {
  return Number.isInteger(n) && n >= CHANNEL_MIN && n <= CHANNEL_MAX;
}

/**
 * Decodes a ChannelData message. Trailing bytes beyond the length (padding) are ignored.
 * `data` is a view into `buf`, not a copy.
 * @throws ChannelDataError if the channel is out of range or the length overruns `buf`.
 */
export function decodeChannelData(buf: Buffer): ChannelData {
  if (buf.length < 4) throw new ChannelDataError('ChannelData shorter than 4 bytes');
  const channel = buf.readUInt16BE(0);
  if (!isValidChannelNumber(channel)) throw new ChannelDataError(`channel number 0x${channel.toString(16)} out of range`);
  const len = buf.readUInt16BE(2);
  if (4 + len > buf.length) throw new ChannelDataError(`ChannelData length ${len} overruns ${buf.length - 4} bytes`);
  return { channel, data: buf.subarray(4, 4 + len) };
}

/**
 * Encodes a ChannelData message; `pad` adds zero bytes up to a multiple of 4 (TCP, RFC 8656 §12.5).
 * @throws RangeError if the channel is out of range or data exceeds 65535 bytes.
 */
export function encodeChannelData(channel: number, data: Buffer, pad = false): Buffer {
  if (!isValidChannelNumber(channel)) throw new RangeError(`channel number 0x${channel.toString(16)} out of range`);
  if (data.length > 0xffff) throw new RangeError('ChannelData payload too long');
  const padLen = pad ? (4 - (data.length % 4)) % 4 : 0;
  const out = Buffer.alloc(4 + data.length + padLen);
  out.writeUInt16BE(channel, 0);
  out.writeUInt16BE(data.length, 2);
  data.copy(out, 4);
  return out;
}

/** Total bytes a framed ChannelData message occupies on a stream (header + data + padding to 4), given its first 4 bytes. */
export function channelDataFrameLength(header: Buffer, padded: boolean): number {
  const len = header.readUInt16BE(2);
  return 4 + len + (padded ? (4 - (len % 4)) % 4 : 0);
}
