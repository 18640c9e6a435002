/**
 * The byte scan that picks what a worker not owning a message's Call-ID may
 * answer where it lands (transport/answer-here.ts): requests without
 * credentials outside a dialog, and ACKs whose To tag has the challenge prefix.
 */
import { describe, expect, it } from 'vitest';
import { landingCandidate } from '../../src/transport/answer-here.js';
import { CHALLENGE_TAG_PREFIX } from '../../src/transaction/server-transaction.js';

/** A message: start line, then header lines, CRLF-separated, with the empty line. */
function msg(start: string, ...headers: string[]): Buffer {
  return Buffer.from(`${start}\r\n${headers.join('\r\n')}\r\n\r\n`);
}
const via = 'Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKabc';
const scan = (b: Buffer) => landingCandidate(b, CHALLENGE_TAG_PREFIX);

describe('landingCandidate', () => {
  it('a REGISTER or INVITE without credentials or To tag is a challenge candidate, whatever the header case or form', () => {
    expect(scan(msg('REGISTER sip:example.test SIP/2.0', via, 'To: <sip:a@example.test>', 'Call-ID: x'))).toBe('challenge');
    expect(scan(msg('INVITE sip:b@example.test SIP/2.0', via, 't : <sip:b@example.test>', 'i: x'))).toBe('challenge');
    // Leading CRLFs (a keepalive before the message) are skipped.
    expect(scan(Buffer.concat([Buffer.from('\r\n\r\n'), msg('OPTIONS sip:example.test SIP/2.0', 'TO: sip:x@example.test')]))).toBe('challenge');
    // A header whose name starts like To is not To.
    expect(scan(msg('MESSAGE sip:b@example.test SIP/2.0', 'Timestamp: 1;tag=x', 'To: <sip:b@example.test>'))).toBe('challenge');
  });

  it('credentials, a To tag, CANCEL, responses and messages without To go to the owner', () => {
    expect(scan(msg('REGISTER sip:example.test SIP/2.0', 'To: <sip:a@example.test>', 'Authorization: Digest username="a"'))).toBeUndefined();
    expect(scan(msg('INVITE sip:b@example.test SIP/2.0', 'To: <sip:b@example.test>', 'proxy-authorization : Digest username="a"'))).toBeUndefined();
    expect(scan(msg('BYE sip:b@example.test SIP/2.0', 'To: <sip:b@example.test> ; TAG = 12ab'))).toBeUndefined();
    expect(scan(msg('CANCEL sip:b@example.test SIP/2.0', 'To: <sip:b@example.test>'))).toBeUndefined();
    expect(scan(msg('SIP/2.0 401 Unauthorized', 'To: <sip:b@example.test>;tag=ch1'))).toBeUndefined();
    expect(scan(msg('INVITE sip:b@example.test SIP/2.0', via))).toBeUndefined();
    // Headers after the empty line are the body's business.
    expect(scan(Buffer.from('INVITE sip:b@example.test SIP/2.0\r\nTo: <sip:b@example.test>\r\n\r\nAuthorization: x\r\n'))).toBe('challenge');
  });

  it('an ACK is a candidate only when its To tag starts with the challenge prefix', () => {
    expect(scan(msg('ACK sip:b@example.test SIP/2.0', via, `To: <sip:b@example.test>;tag=${CHALLENGE_TAG_PREFIX}1x2y`))).toBe('challenge-ack');
    expect(scan(msg('ACK sip:b@example.test SIP/2.0', via, 'To: <sip:b@example.test>;tag=b0b'))).toBeUndefined();
    expect(scan(msg('ACK sip:b@example.test SIP/2.0', via, 'To: <sip:b@example.test>'))).toBeUndefined();
  });
});
