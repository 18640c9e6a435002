/**
 * Splits a TCP byte stream from a TURN client into whole messages
 * (RFC 8656 §12.5, RFC 8489 §6.2.2): STUN messages (first two bits 00,
 * 20 + length bytes) and ChannelData (first two bits 01, 4 + length bytes
 * padded to a multiple of 4). No socket here; the server feeds it chunks.
 */

/** The stream holds something that is neither STUN nor ChannelData: the connection should be closed. */
export class StreamFramingError extends Error {
  /** Status it maps to (400); no response can be framed, so the connection is closed. */
  readonly status = 400;
  override readonly name = 'StreamFramingError';
}

/** Most bytes buffered while waiting for a message to complete. */
export const MAX_FRAME_BYTES = 65535 + 20;

/** Reassembles messages from one TCP connection. */
export class StreamFramer {
  private buf: Buffer = Buffer.alloc(0);

  /**
   * Appends `chunk` and returns every message now complete (copies, in order).
   * @throws StreamFramingError on bytes that start neither a STUN nor a ChannelData message.
   */
  push(chunk: Buffer): Buffer[] {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const out: Buffer[] = [];
    let off = 0;
    for (let i = 0; i < 100_000 && this.buf.length - off >= 4; i++) {
      const top = this.buf[off]! & 0xc0;
      const len = this.buf.readUInt16BE(off + 2);
      let frame: number;
      let msgLen: number;
      if (top === 0x00) {
        if (this.buf.length - off >= 8 && this.buf.readUInt32BE(off + 4) !== 0x2112a442) {
          throw new StreamFramingError('STUN message without magic cookie');
        }
        frame = 20 + len;
        msgLen = frame;
      } else if (top === 0x40) {
        msgLen = 4 + len;
        frame = msgLen + ((4 - (len % 4)) % 4);
      } else {
        throw new StreamFramingError('stream carries neither STUN nor ChannelData');
      }
      if (this.buf.length - off < frame) break;
      out.push(Buffer.from(this.buf.subarray(off, off + msgLen)));
      off += frame;
    }
    this.buf = off === this.buf.length ? Buffer.alloc(0) : Buffer.from(this.buf.subarray(off));
    if (this.buf.length > MAX_FRAME_BYTES + 4) throw new StreamFramingError('message too large');
    return out;
  }

  /** Returns and forgets the bytes buffered after the last whole message (when the stream stops carrying messages, RFC 6062 §5.4). */
  takeRest(): Buffer {
    const rest = this.buf;
    this.buf = Buffer.alloc(0);
    return rest;
  }
}
