import { describe, expect, it } from 'vitest';
import { parseMessage } from '../../src/sip/parser.js';
import { serializeMessage } from '../../src/sip/serializer.js';
import type { SipRequest, SipResponse } from '../../src/sip/message.js';
import { crlf, fixture } from './fixtures.js';

describe('serializeMessage', () => {
  it('writes start line, headers as stored, blank line and body', () => {
    const msg: SipRequest = {
      kind: 'request', method: 'MESSAGE', uri: 'sip:bob@example.com',
      headers: [{ name: 'v', value: 'SIP/2.0/UDP h;branch=z9hG4bK1' }, { name: 'X-Empty', value: '' }],
      body: Buffer.from([0, 0xff, 0x41]),
    };
    const out = serializeMessage(msg);
    expect(out.equals(Buffer.concat([
      Buffer.from('MESSAGE sip:bob@example.com SIP/2.0\r\nv: SIP/2.0/UDP h;branch=z9hG4bK1\r\nX-Empty: \r\nContent-Length: 3\r\n\r\n'),
      Buffer.from([0, 0xff, 0x41]),
    ]))).toBe(true);
  });

  it('replaces Content-Length in place keeping its name, compact or not', () => {
    const res: SipResponse = {
      kind: 'response', status: 200, reason: 'OK',
      headers: [{ name: 'l', value: '999' }, { name: 'Call-ID', value: 'x' }],
      body: Buffer.from('hi'),
    };
    expect(serializeMessage(res).toString()).toBe('SIP/2.0 200 OK\r\nl: 2\r\nCall-ID: x\r\n\r\nhi');
    res.headers[0] = { name: 'CONTENT-LENGTH', value: '0' };
    expect(serializeMessage(res).toString()).toBe('SIP/2.0 200 OK\r\nCONTENT-LENGTH: 2\r\nCall-ID: x\r\n\r\nhi');
    expect(res.headers[0].value).toBe('0');
    res.headers.push({ name: 'Content-Length', value: '7' });
    expect(serializeMessage(res).toString()).toBe('SIP/2.0 200 OK\r\nCONTENT-LENGTH: 2\r\nCall-ID: x\r\n\r\nhi');
  });

  it('round-trips unfolded input byte for byte', () => {
    const input = Buffer.concat([crlf(
      'REGISTER sips:ss2.biloxi.example.com SIP/2.0',
      'Via: SIP/2.0/TLS client.biloxi.example.com:5061;branch=z9hG4bKnashds7',
      'Max-Forwards: 70',
      'From: Bob <sips:bob@biloxi.example.com>;tag=a73kszlfl',
      'To: Bob <sips:bob@biloxi.example.com>',
      'Call-ID: 1j9FpLxk3uxtm8tn@biloxi.example.com',
      'CSeq: 1 REGISTER',
      'Contact: <sips:bob@client.biloxi.example.com>;+sip.instance="<urn:uuid:00000000-0000-1000-8000-000A95A0E128>"',
      'l: 4',
      '',
    ), Buffer.from([0xc3, 0xa9, 0x00, 0x0a])]);
    expect(serializeMessage(parseMessage(input)).equals(input)).toBe(true);
  });

  it('re-parses RFC 4475 messages to the same fields; mpart01 byte for byte', () => {
    for (const name of ['mpart01', 'escnull', 'semiuri', 'transports', 'longreq', 'noreason']) {
      const buf = fixture(`rfc4475/${name}.dat`);
      const m = parseMessage(buf);
      const out = serializeMessage(m);
      const again = parseMessage(out);
      expect(again.headers).toEqual(m.headers);
      expect(again.body.equals(m.body)).toBe(true);
      if (name === 'mpart01') expect([name, out.toString('latin1')]).toEqual([name, buf.toString('latin1')]);
    }
  });
});
