import { describe, expect, it } from 'vitest';
import { parseMessage } from '../../src/sip/parser.js';
import { cloneMessage, prependHeader, removeFirstValue, setHeader, type SipRequest } from '../../src/sip/message.js';
import { cseqOf, fromHeader, fromUri, requestUri, toHeader, toTag, toUri, topVia } from '../../src/sip/parsed-headers.js';
import { createResponse } from '../../src/sip/response.js';
import { serializeMessage } from '../../src/sip/serializer.js';
import { crlf } from './fixtures.js';

function request(): SipRequest {
  return parseMessage(
    crlf(
      'REGISTER sip:example.test SIP/2.0',
      'Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-top;rport, SIP/2.0/UDP 127.0.0.2;branch=z9hG4bK-second',
      'Max-Forwards: 70',
      'From: <sip:alice@example.test>;tag=f1',
      'To: Alice <sip:alice@example.test>',
      'Call-ID: c1@127.0.0.1',
      'CSeq: 7 REGISTER',
      'Contact: <sip:alice@127.0.0.1:5070>',
      'Content-Length: 0',
      '',
    ),
  ) as SipRequest;
}

describe('header values parsed once per message (sip/parsed-headers.ts)', () => {
  it('answers from what the parser parsed, the same objects each time', () => {
    const req = request();
    expect(topVia(req)).toEqual({ transport: 'UDP', host: '127.0.0.1', port: 5070, params: { branch: 'z9hG4bK-top', rport: null } });
    expect(topVia(req)).toBe(topVia(req));
    expect(requestUri(req).host).toBe('example.test');
    expect(requestUri(req)).toBe(req.parsed?.uri);
    expect(fromHeader(req).params.tag).toBe('f1');
    expect(toHeader(req).displayName).toBe('Alice');
    expect(toTag(req)).toBeUndefined();
    expect(fromUri(req).user).toBe('alice');
    expect(toUri(req)).toBe(toUri(req));
    expect(cseqOf(req)).toEqual({ seq: 7, method: 'REGISTER' });
  });

  it('parses again once a header or the Request-URI was changed', () => {
    const req = request();
    const before = topVia(req);
    removeFirstValue(req, 'via');
    expect(topVia(req).host).toBe('127.0.0.2');
    prependHeader(req, 'Via', 'SIP/2.0/TCP [::1]:5080;branch=z9hG4bK-new');
    expect(topVia(req)).toEqual({ transport: 'TCP', host: '[::1]', port: 5080, params: { branch: 'z9hG4bK-new' } });
    expect(before.host).toBe('127.0.0.1');

    setHeader(req, 'To', '<sip:bob@example.test>;tag=t9');
    expect(toHeader(req).uri).toBe('sip:bob@example.test');
    expect(toUri(req).user).toBe('bob');
    expect(toTag(req)).toBe('t9');
    setHeader(req, 'CSeq', '8 REGISTER');
    expect(cseqOf(req).seq).toBe(8);
    req.uri = 'sip:other.test';
    expect(requestUri(req).host).toBe('other.test');
  });

  it('a clone edits its own cache; the original keeps answering for its own headers', () => {
    const req = request();
    topVia(req);
    const copy = cloneMessage(req);
    prependHeader(copy, 'Via', 'SIP/2.0/UDP 127.0.0.9;branch=z9hG4bK-proxy');
    expect(topVia(copy).host).toBe('127.0.0.9');
    expect(topVia(req).host).toBe('127.0.0.1');
    expect(req.parsed).not.toBe(copy.parsed);
  });

  it('a response built from the request carries its parsed top Via, and throws for a missing Via', () => {
    const req = request();
    const res = createResponse(req, 200, { toTag: 'abc' });
    expect(res.parsed?.via).toBe(topVia(req));
    expect(topVia(res)).toBe(topVia(req));
    expect(serializeMessage(res).toString()).toContain('To: Alice <sip:alice@example.test>;tag=abc\r\n');
    res.headers = res.headers.filter((h) => h.name !== 'Via');
    expect(() => topVia(res)).toThrow('missing Via');
  });

  it('a malformed value is not kept: every call throws', () => {
    const req = request();
    setHeader(req, 'To', 'not a uri');
    expect(() => toHeader(req)).toThrow();
    expect(() => toHeader(req)).toThrow();
    expect(toTag(req)).toBeUndefined();
  });
});
