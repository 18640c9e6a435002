/**
 * Netstring framing (`LEN:DATA,`), as baresip's ctrl_tcp module speaks it.
 */

/** Encodes one payload as a netstring; LEN is the UTF-8 byte length. */
export function encodeNetstring(payload: string): Buffer {
  const body = Buffer.from(payload, 'utf8');
  return Buffer.concat([Buffer.from(`${body.length}:`, 'ascii'), body, Buffer.from(',', 'ascii')]);
}

/**
 * Incremental decoder: push() bytes as they arrive, get back every complete
 * payload (UTF-8). Throws on a malformed frame.
 */
export class NetstringDecoder {
  private buf = Buffer.alloc(0);

  /** Appends bytes and returns the payloads completed by them, in order. */
  push(chunk: Buffer): string[] {
    this.buf = Buffer.concat([this.buf, chunk]);
    const out: string[] = [];
    for (;;) {
      const colon = this.buf.indexOf(0x3a);
      if (colon < 0) {
        if (this.buf.length > 10) throw new Error('netstring: no length prefix');
        return out;
      }
      const lenText = this.buf.subarray(0, colon).toString('ascii');
      if (!/^\d{1,9}$/.test(lenText)) throw new Error(`netstring: bad length ${JSON.stringify(lenText)}`);
      const len = Number(lenText);
      const end = colon + 1 + len;
      if (this.buf.length < end + 1) return out;
      if (this.buf[end] !== 0x2c) throw new Error('netstring: missing trailing comma');
      out.push(this.buf.subarray(colon + 1, end).toString('utf8'));
      this.buf = this.buf.subarray(end + 1);
    }
  }
}
