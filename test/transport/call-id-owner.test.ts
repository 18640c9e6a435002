import { describe, expect, it } from 'vitest';
import { callIdHash, callIdOwner, callIdOwnerOf } from '../../src/transport/call-id-owner.js';
import { parseMessage } from '../../src/sip/parser.js';
import { getHeader } from '../../src/sip/message.js';

const head = 'INVITE sip:bob@example.test SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\nFrom: <sip:alice@example.test>;tag=1\r\nTo: <sip:bob@example.test>\r\n';
const tail = 'CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n';
const msg = (callIdLine: string) => Buffer.from(`${head}${callIdLine}${tail}`);

describe('Call-ID owner by a byte scan', () => {
  it('finds the long form, the compact form and any case, with white space before the colon', () => {
    const want = callIdHash(msg('Call-ID: a84b4c76e66710@pc33.example.test\r\n'));
    expect(want).toBeTypeOf('number');
    for (const line of [
      'call-id: a84b4c76e66710@pc33.example.test\r\n',
      'CALL-ID:a84b4c76e66710@pc33.example.test\r\n',
      'i: a84b4c76e66710@pc33.example.test\r\n',
      'I \t: a84b4c76e66710@pc33.example.test  \r\n',
      // A folded value (RFC 3261 §7.3.1): the continuation line belongs to it.
      'Call-ID:\r\n  a84b4c76e66710@pc33.example.test\r\n',
    ]) {
      expect(callIdHash(msg(line)), line).toBe(want);
    }
  });

  it('agrees with the parsed Call-ID and callIdOwner for 200 values, spread over the workers', () => {
    const seen = new Set<number>();
    for (let n = 0; n < 200; n++) {
      const id = `call-${n}@127.0.0.1`;
      const data = msg(`Call-ID: ${id}\r\n`);
      expect(getHeader(parseMessage(data), 'call-id')).toBe(id);
      expect(callIdOwnerOf(data, 3)).toBe(callIdOwner(id, 3));
      seen.add(callIdOwner(id, 3));
    }
    expect([...seen].sort()).toEqual([0, 1, 2]);
  });

  it('is stable: fixed values give fixed owners (every worker of every release agrees)', () => {
    expect(callIdHash(Buffer.from('OPTIONS sip:x SIP/2.0\r\nCall-ID: abc\r\n\r\n'))).toBe(0x1a47e90b);
    expect([callIdOwner('abc', 2), callIdOwner('abc', 3), callIdOwner('abcd', 2)]).toEqual([0x1a47e90b % 2, 0x1a47e90b % 3, callIdOwner('abcd', 2)]);
  });

  it('takes no header that only starts like Call-ID, and nothing from the body; undefined without one', () => {
    expect(callIdHash(msg('Call-IDx: nope\r\nIn-Reply-To: nope\r\n'))).toBeUndefined();
    expect(callIdHash(Buffer.from(`${head}${tail.replace('\r\n\r\n', '\r\n\r\nCall-ID: in-the-body\r\n')}`))).toBeUndefined();
    expect(callIdHash(Buffer.from('\r\n\r\n'))).toBeUndefined();
    expect(callIdHash(Buffer.from('garbage'))).toBeUndefined();
    expect(callIdHash(Buffer.alloc(0))).toBeUndefined();
    // The start line is never a header, even when it reads like one.
    expect(callIdHash(Buffer.from('i: x\r\n\r\n'))).toBeUndefined();
  });

  it('reads LF-only line ends and a response', () => {
    const crlf = callIdHash(Buffer.from('SIP/2.0 200 OK\r\nCall-ID: z9@h\r\n\r\n'));
    expect(callIdHash(Buffer.from('SIP/2.0 200 OK\nCall-ID: z9@h\n\n'))).toBe(crlf);
  });
});
