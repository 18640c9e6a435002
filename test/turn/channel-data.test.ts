import { describe, expect, it } from 'vitest';
import { ChannelDataError, decodeChannelData, encodeChannelData, looksLikeChannelData } from '../../src/turn/channel-data.js';

describe('ChannelData codec (RFC 8656 §12.4)', () => {
  it('encodes without padding for UDP and with padding for TCP', () => {
    expect(encodeChannelData(0x4001, Buffer.from('abcde')).toString('hex')).toBe('400100056162636465');
    expect(encodeChannelData(0x7fff, Buffer.from('abcde'), true).toString('hex')).toBe('7fff00056162636465000000');
    expect(encodeChannelData(0x4000, Buffer.alloc(0), true).toString('hex')).toBe('40000000');
  });
  it('decodes and ignores padding', () => {
    const d = decodeChannelData(Buffer.from('7fff00056162636465000000', 'hex'));
    expect(d.channel).toBe(0x7fff);
    expect(d.data.toString()).toBe('abcde');
    expect(looksLikeChannelData(Buffer.from('40000000', 'hex'))).toBe(true);
    expect(looksLikeChannelData(Buffer.from('00010000', 'hex'))).toBe(false);
  });
  it('rejects bad channel numbers and truncated data', () => {
    expect(() => decodeChannelData(Buffer.from('3fff0000', 'hex'))).toThrow(ChannelDataError);
    expect(() => decodeChannelData(Buffer.from('800000000', 'hex'))).toThrow(ChannelDataError);
    expect(() => decodeChannelData(Buffer.from('40000005616263', 'hex'))).toThrow(/overruns/);
    expect(() => decodeChannelData(Buffer.from('4000', 'hex'))).toThrow(ChannelDataError);
    expect(() => encodeChannelData(0x3fff, Buffer.alloc(1))).toThrow(RangeError);
    expect(() => encodeChannelData(0x8000, Buffer.alloc(1))).toThrow(RangeError);
  });
});
