import { describe, expect, it } from 'vitest';
import { StreamFramer, StreamFramingError } from '../../src/turn/stream-framer.js';
import { encodeChannelData } from '../../src/turn/channel-data.js';
import { encodeStunMessage } from '../../src/stun/stun-message.js';

describe('StreamFramer', () => {
  const stun = encodeStunMessage({ method: 1, class: 'request', transactionId: Buffer.alloc(12, 1), attributes: [{ type: 0x8022, value: Buffer.from('abc') }] });
  const cd = encodeChannelData(0x4000, Buffer.from('hello'), true);
  it('splits STUN and padded ChannelData, byte by byte', () => {
    const f = new StreamFramer();
    const all = Buffer.concat([stun, cd, stun]);
    const out: Buffer[] = [];
    for (let i = 0; i < all.length; i++) out.push(...f.push(all.subarray(i, i + 1)));
    expect(out.map((b) => b.toString('hex'))).toEqual([stun.toString('hex'), cd.subarray(0, 9).toString('hex'), stun.toString('hex')]);
  });
  it('returns several messages from one chunk', () => {
    expect(new StreamFramer().push(Buffer.concat([cd, cd])).length).toBe(2);
  });
  it('throws on bytes that are neither', () => {
    expect(() => new StreamFramer().push(Buffer.from('ffff0000', 'hex'))).toThrow(StreamFramingError);
    // A TLS ClientHello starts with 0x16: top bits 00 but no magic cookie.
    expect(() => new StreamFramer().push(Buffer.from('160301020001000200030004', 'hex'))).toThrow(/magic cookie/);
  });
});
