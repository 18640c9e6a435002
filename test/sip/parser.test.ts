import { describe, expect, it } from 'vitest';
import { parseMessage, DEFAULT_LIMITS } from '../../src/sip/parser.js';
import { SipParseError } from '../../src/sip/errors.js';
import { getHeader, getHeaderValues, type SipRequest, type SipResponse } from '../../src/sip/message.js';
import { crlf } from './fixtures.js';

const BASIC = [
  'INVITE sip:bob@biloxi.example.com SIP/2.0',
  'Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds',
  'Max-Forwards: 70',
  'To: Bob <sip:bob@biloxi.example.com>',
  'From: Alice <sip:alice@atlanta.example.com>;tag=1928301774',
  'Call-ID: a84b4c76e66710@pc33.atlanta.example.com',
  'CSeq: 314159 INVITE',
  'Contact: <sip:alice@pc33.atlanta.example.com>',
];

function req(lines: string[], body = ''): Buffer {
  return Buffer.concat([crlf(...lines, ...(body ? [`Content-Length: ${Buffer.byteLength(body)}`] : []), ''), Buffer.from(body)]);
}

function expectError(buf: Buffer, status: number, reason: string, partial = true): SipParseError {
  let err: unknown;
  try {
    parseMessage(buf);
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(SipParseError);
  const pe = err as SipParseError;
  expect(pe.status).toBe(status);
  expect(pe.reason).toBe(reason);
  expect(pe.partial !== undefined).toBe(partial);
  return pe;
}

describe('parseMessage: valid messages', () => {
  it('parses a request: start line, headers in order, body', () => {
    const m = parseMessage(req(BASIC, 'v=0\r\n')) as SipRequest;
    expect(m.kind).toBe('request');
    expect(m.method).toBe('INVITE');
    expect(m.uri).toBe('sip:bob@biloxi.example.com');
    expect(m.headers.map((h) => h.name)).toEqual(['Via', 'Max-Forwards', 'To', 'From', 'Call-ID', 'CSeq', 'Contact', 'Content-Length']);
    expect(m.headers[3].value).toBe('Alice <sip:alice@atlanta.example.com>;tag=1928301774');
    expect(m.body.toString()).toBe('v=0\r\n');
  });

  it('parses a response with reason phrase containing spaces', () => {
    const m = parseMessage(crlf('SIP/2.0 180 Ringing Now', ...BASIC.slice(1), 'Content-Length: 0', '')) as SipResponse;
    expect(m.kind).toBe('response');
    expect(m.status).toBe(180);
    expect(m.reason).toBe('Ringing Now');
    expect(m.body.length).toBe(0);
  });

  it('accepts compact forms, LWS before the colon and empty values', () => {
    const m = parseMessage(
      crlf('OPTIONS sip:a@example.com SIP/2.0', 'v : SIP/2.0/TCP h.example.com;branch=z9hG4bK1', 'f: <sip:b@example.com>;tag=1', 't:sip:a@example.com',
        'i: abc', 'CSeq: 1 OPTIONS', 'Subject:', 'l: 3', '', 'abcEXTRA'),
    );
    expect(getHeader(m, 'via')).toBe('SIP/2.0/TCP h.example.com;branch=z9hG4bK1');
    expect(m.headers[0].name).toBe('v');
    expect(getHeader(m, 'to')).toBe('sip:a@example.com');
    expect(getHeader(m, 'subject')).toBe('');
    expect(m.body.toString()).toBe('abc');
  });

  it('unfolds continuation lines into one space', () => {
    const m = parseMessage(crlf('OPTIONS sip:a@example.com SIP/2.0', 'Via: SIP/2.0/UDP h.example.com', '   ;branch=z9hG4bK1', 'From: <sip:b@example.com>;tag=1',
      'To: <sip:a@example.com>', 'Call-ID: x', 'CSeq: 2', '\tOPTIONS', 'Subject: a', ' b', '\t c', 'Content-Length: 0', ''));
    expect(getHeader(m, 'via')).toBe('SIP/2.0/UDP h.example.com ;branch=z9hG4bK1');
    expect(getHeader(m, 'cseq')).toBe('2 OPTIONS');
    expect(getHeader(m, 'subject')).toBe('a b c');
  });

  it('keeps multi-value headers as written and splits them on demand', () => {
    const m = parseMessage(req([...BASIC, 'Via: SIP/2.0/UDP p1.example.com;branch=z9hG4bKa, SIP/2.0/UDP p2.example.com;branch=z9hG4bKb', 'Route: <sip:r1.example.com;lr>,<sip:r2.example.com;lr>']));
    expect(getHeaderValues(m, 'via')).toEqual([
      'SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds',
      'SIP/2.0/UDP p1.example.com;branch=z9hG4bKa',
      'SIP/2.0/UDP p2.example.com;branch=z9hG4bKb',
    ]);
    expect(getHeaderValues(m, 'route')).toEqual(['<sip:r1.example.com;lr>', '<sip:r2.example.com;lr>']);
  });

  it('accepts IPv6 Request-URIs (RFC 5118)', () => {
    const lines = [...BASIC];
    lines[0] = 'INVITE sip:bob@[2001:db8::10]:5070;transport=tcp SIP/2.0';
    expect((parseMessage(req(lines)) as SipRequest).uri).toBe('sip:bob@[2001:db8::10]:5070;transport=tcp');
    lines[0] = 'INVITE sips:[::ffff:192.0.2.1] SIP/2.0';
    expect((parseMessage(req(lines)) as SipRequest).uri).toBe('sips:[::ffff:192.0.2.1]');
  });

  it('skips leading CRLFs, accepts the version case-insensitively, and keeps binary bodies', () => {
    const body = Buffer.from([0, 1, 2, 0xff, 0x0d, 0x0a, 0x0d, 0x0a, 0x80]);
    const lines = [...BASIC];
    lines[0] = 'INVITE sip:bob@biloxi.example.com sip/2.0';
    const buf = Buffer.concat([Buffer.from('\r\n\r\n'), crlf(...lines, `Content-Length: ${body.length}`, ''), body]);
    const m = parseMessage(buf);
    expect(m.body.equals(body)).toBe(true);
  });

  it('takes the rest of a datagram as body when Content-Length is absent', () => {
    const m = parseMessage(Buffer.concat([crlf(...BASIC, ''), Buffer.from('hello')]));
    expect(m.body.toString()).toBe('hello');
  });

  it('accepts tel: and unknown-scheme Request-URIs as raw strings', () => {
    const lines = [...BASIC];
    lines[0] = 'INVITE tel:+1-201-555-0123 SIP/2.0';
    expect((parseMessage(req(lines)) as SipRequest).uri).toBe('tel:+1-201-555-0123');
    lines[0] = 'INVITE urn:service:sos SIP/2.0';
    expect((parseMessage(req(lines)) as SipRequest).uri).toBe('urn:service:sos');
  });

  it('accepts a response without reason phrase', () => {
    const m = parseMessage(crlf('SIP/2.0 100 ', ...BASIC.slice(1), '')) as SipResponse;
    expect(m.status).toBe(100);
    expect(m.reason).toBe('');
  });
});

describe('parseMessage: malformed messages', () => {
  it('rejects a SIP version other than 2.0 with 505', () => {
    const lines = [...BASIC];
    lines[0] = 'INVITE sip:bob@biloxi.example.com SIP/3.0';
    const e = expectError(req(lines), 505, 'Version Not Supported');
    expect((e.partial as SipRequest).method).toBe('INVITE');
  });

  it('names each missing mandatory header', () => {
    for (const [name, label] of [['Via', 'Via'], ['From', 'From'], ['To', 'To'], ['Call-ID', 'Call-ID'], ['CSeq', 'CSeq']]) {
      const lines = BASIC.filter((l) => !l.startsWith(`${name}:`));
      // Via and CSeq are what a response needs; without From, To or Call-ID one can still be sent (RFC 4475 §3.3.1).
      expectError(req(lines), 400, `Bad Request: missing ${label}`, !['Via', 'CSeq'].includes(name));
    }
  });

  it('checks CSeq', () => {
    const with_ = (cseq: string) => req(BASIC.map((l) => (l.startsWith('CSeq:') ? `CSeq: ${cseq}` : l)));
    expectError(with_('abc INVITE'), 400, 'Bad Request: malformed CSeq');
    expectError(with_('2147483648 INVITE'), 400, 'Bad Request: malformed CSeq');
    expectError(with_('1'), 400, 'Bad Request: malformed CSeq');
    expectError(with_('1 BYE'), 400, 'Bad Request: CSeq method does not match Request-Line');
    expect(() => parseMessage(with_('2147483647 INVITE'))).not.toThrow();
  });

  it('checks Max-Forwards and Content-Length', () => {
    expectError(req(BASIC.map((l) => (l.startsWith('Max-Forwards') ? 'Max-Forwards: -1' : l))), 400, 'Bad Request: malformed Max-Forwards');
    expectError(req(BASIC.map((l) => (l.startsWith('Max-Forwards') ? 'Max-Forwards: 256' : l))), 400, 'Bad Request: malformed Max-Forwards');
    expectError(crlf(...BASIC, 'Content-Length: 1a', ''), 400, 'Bad Request: malformed Content-Length');
    expectError(crlf(...BASIC, 'l: 10', '', 'short'), 400, 'Bad Request: Content-Length larger than message');
  });

  it('rejects malformed start lines', () => {
    expectError(crlf('INVITE', ...BASIC.slice(1), ''), 400, 'Bad Request: malformed Request-Line', false);
    expectError(crlf('INV@TE sip:a@b SIP/2.0', ...BASIC.slice(1), ''), 400, 'Bad Request: malformed Request-Line', false);
    expectError(crlf('INVITE sip:a@[2001:db8::1 SIP/2.0', ...BASIC.slice(1), ''), 400, 'Bad Request: malformed Request-URI');
    expectError(crlf('INVITE sip:a@2001:db8::1 SIP/2.0', ...BASIC.slice(1), ''), 400, 'Bad Request: malformed Request-URI');
    expectError(crlf('INVITE <sip:a@b> SIP/2.0', ...BASIC.slice(1), ''), 400, 'Bad Request: malformed Request-URI');
    expectError(crlf('SIP/2.0 99 Odd', ...BASIC.slice(1), ''), 400, 'Bad Request: malformed Status-Code', false);
    expectError(crlf('SIP/2.0 700 Odd', ...BASIC.slice(1), ''), 400, 'Bad Request: malformed Status-Code', false);
    expectError(crlf('SIP/2.0 2000 Odd', ...BASIC.slice(1), ''), 400, 'Bad Request: malformed Status-Code', false);
    expectError(Buffer.from('\r\n\r\n'), 400, 'Bad Request: empty message', false);
  });

  it('rejects header lines without a colon, keeping a partial request', () => {
    const e = expectError(req([...BASIC, 'NoColonHere']), 400, 'Bad Request: malformed header field');
    expect(getHeader(e.partial!, 'call-id')).toBe('a84b4c76e66710@pc33.atlanta.example.com');
  });

  it('rejects repeated single-value headers', () => {
    expectError(req([...BASIC, 'Call-ID: other']), 400, 'Bad Request: multiple Call-ID header fields');
  });

  it('enforces the size limits', () => {
    const big = Buffer.concat([crlf(...BASIC, ''), Buffer.alloc(DEFAULT_LIMITS.maxMessageBytes)]);
    expectError(big, 413, 'Message Too Large', false);
    const many = Array.from({ length: DEFAULT_LIMITS.maxHeaders }, (_, i) => `X-H${i}: ${i}`);
    expectError(req([...BASIC, ...many]), 400, 'Bad Request: too many header fields', false);
    expectError(req([...BASIC, `X-Long: ${'a'.repeat(DEFAULT_LIMITS.maxLineBytes)}`]), 400, 'Bad Request: line too long', false);
    const limits = { maxMessageBytes: 100, maxHeaders: 3, maxLineBytes: 50 };
    expect(() => parseMessage(req(BASIC), limits)).toThrow(SipParseError);
  });
});
