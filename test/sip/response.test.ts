import { describe, expect, it } from 'vitest';
import { createResponse, reasonPhrase } from '../../src/sip/response.js';
import { parseMessage } from '../../src/sip/parser.js';
import { serializeMessage } from '../../src/sip/serializer.js';
import type { SipRequest } from '../../src/sip/message.js';
import { crlf } from './fixtures.js';

const REQ = parseMessage(crlf(
  'INVITE sip:bob@biloxi.example.com SIP/2.0',
  'v: SIP/2.0/UDP p1.example.com;branch=z9hG4bKa, SIP/2.0/UDP p2.example.com;branch=z9hG4bKb',
  'Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds;received=192.0.2.1',
  'Max-Forwards: 70',
  't: Bob <sip:bob@biloxi.example.com>',
  'f: Alice <sip:alice@atlanta.example.com>;tag=1928301774',
  'i: a84b4c76e66710',
  'cseq: 314159 INVITE',
  'Timestamp: 54.2 0.1',
  'Contact: <sip:alice@pc33.atlanta.example.com>',
  'Content-Length: 0',
  '',
)) as SipRequest;

describe('reasonPhrase', () => {
  it('gives RFC 3261 §21 phrases and class fallbacks', () => {
    expect(reasonPhrase(100)).toBe('Trying');
    expect(reasonPhrase(200)).toBe('OK');
    expect(reasonPhrase(404)).toBe('Not Found');
    expect(reasonPhrase(483)).toBe('Too Many Hops');
    expect(reasonPhrase(505)).toBe('Version Not Supported');
    expect(reasonPhrase(603)).toBe('Decline');
    expect(reasonPhrase(499)).toBe('Request Failure');
    expect(reasonPhrase(299)).toBe('Successful');
    expect(reasonPhrase(99)).toBe('Unknown');
  });
});

describe('createResponse (RFC 3261 §8.2.6)', () => {
  it('copies Via, From, To, Call-ID, CSeq in full-form names and adds the To tag', () => {
    const res = createResponse(REQ, 486, { toTag: 'xyz', headers: [{ name: 'Retry-After', value: '60' }] });
    expect(res.status).toBe(486);
    expect(res.reason).toBe('Busy Here');
    expect(res.headers).toEqual([
      { name: 'Via', value: 'SIP/2.0/UDP p1.example.com;branch=z9hG4bKa, SIP/2.0/UDP p2.example.com;branch=z9hG4bKb' },
      { name: 'Via', value: 'SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds;received=192.0.2.1' },
      { name: 'To', value: 'Bob <sip:bob@biloxi.example.com>;tag=xyz' },
      { name: 'From', value: 'Alice <sip:alice@atlanta.example.com>;tag=1928301774' },
      { name: 'Call-ID', value: 'a84b4c76e66710' },
      { name: 'CSeq', value: '314159 INVITE' },
      { name: 'Retry-After', value: '60' },
    ]);
    expect(serializeMessage(res).toString()).toBe(
      'SIP/2.0 486 Busy Here\r\n' +
      'Via: SIP/2.0/UDP p1.example.com;branch=z9hG4bKa, SIP/2.0/UDP p2.example.com;branch=z9hG4bKb\r\n' +
      'Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds;received=192.0.2.1\r\n' +
      'To: Bob <sip:bob@biloxi.example.com>;tag=xyz\r\n' +
      'From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n' +
      'Call-ID: a84b4c76e66710\r\nCSeq: 314159 INVITE\r\nRetry-After: 60\r\nContent-Length: 0\r\n\r\n',
    );
  });

  it('100 Trying: no To tag, copies Timestamp', () => {
    const res = createResponse(REQ, 100, { toTag: 'xyz' });
    expect(res.reason).toBe('Trying');
    expect(res.headers.map((h) => `${h.name}: ${h.value}`)).toEqual([
      'Via: SIP/2.0/UDP p1.example.com;branch=z9hG4bKa, SIP/2.0/UDP p2.example.com;branch=z9hG4bKb',
      'Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds;received=192.0.2.1',
      'To: Bob <sip:bob@biloxi.example.com>',
      'From: Alice <sip:alice@atlanta.example.com>;tag=1928301774',
      'Call-ID: a84b4c76e66710',
      'CSeq: 314159 INVITE',
      'Timestamp: 54.2 0.1',
    ]);
  });

  it('keeps an existing To tag and takes reason and body', () => {
    const inDialog = { ...REQ, headers: REQ.headers.map((h) => (h.name === 't' ? { name: 't', value: '<sip:bob@biloxi.example.com>;tag=old' } : h)) };
    const res = createResponse(inDialog, 200, { toTag: 'new', reason: 'Fine', body: Buffer.from('x') });
    expect(res.headers.find((h) => h.name === 'To')!.value).toBe('<sip:bob@biloxi.example.com>;tag=old');
    expect(res.reason).toBe('Fine');
    expect(res.body.toString()).toBe('x');
    expect(res.headers.some((h) => h.name === 'Timestamp' || h.name === 'Contact')).toBe(false);
  });
});
