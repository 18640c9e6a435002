import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { StreamFramer, contentLengthOf, type FramerEvent } from '../../src/sip/stream-framer.js';
import { SipParseError } from '../../src/sip/errors.js';
import { parseMessage } from '../../src/sip/parser.js';
import { crlf, fixture } from './fixtures.js';

const MSG1 = Buffer.concat([crlf(
  'MESSAGE sip:bob@example.com SIP/2.0',
  'Via: SIP/2.0/TCP h.example.com;branch=z9hG4bK1',
  'From: <sip:a@example.com>;tag=1',
  'To: <sip:bob@example.com>',
  'Call-ID: c1',
  'CSeq: 1 MESSAGE',
  'l: 7',
  '',
), Buffer.from('ab\r\n\r\ncd'.slice(0, 7))]);
const MSG2 = crlf('OPTIONS sip:bob@example.com SIP/2.0', 'Via: SIP/2.0/TCP h.example.com;branch=z9hG4bK2', 'From: <sip:a@example.com>;tag=1',
  'To: <sip:bob@example.com>', 'Call-ID: c2', 'CSeq: 2 OPTIONS', 'Content-Length: 0', '');

function summary(events: FramerEvent[]): string[] {
  return events.map((e) => (e.type === 'message' ? `message:${e.data.toString('latin1')}` : e.type === 'keepalive' ? e.kind : `error:${e.error.status} ${e.error.reason}`));
}

describe('StreamFramer', () => {
  it('emits pipelined messages and keepalives in order', () => {
    const f = new StreamFramer();
    const stream = Buffer.concat([Buffer.from('\r\n\r\n'), MSG1, MSG2, Buffer.from('\r\n'), MSG1]);
    expect(summary(f.push(stream))).toEqual(['ping', `message:${MSG1.toString('latin1')}`, `message:${MSG2.toString('latin1')}`, 'pong', `message:${MSG1.toString('latin1')}`]);
    expect(parseMessage(Buffer.from(MSG1)).body.toString()).toBe('ab\r\n\r\nc');
  });

  it('reassembles messages split at every byte boundary', () => {
    const stream = Buffer.concat([MSG1, Buffer.from('\r\n\r\n'), MSG2]);
    const want = [`message:${MSG1.toString('latin1')}`, 'ping', `message:${MSG2.toString('latin1')}`];
    for (let cut = 1; cut < stream.length; cut++) {
      const f = new StreamFramer();
      const got = [...f.push(stream.subarray(0, cut)), ...f.push(stream.subarray(cut))];
      // A ping split after its first CRLF reads as pong, then ping.
      const expected = cut === MSG1.length + 2 ? [want[0], 'pong', 'ping', want[2]] : want;
      expect([cut, summary(got)]).toEqual([cut, expected]);
    }
    const f = new StreamFramer();
    const got: FramerEvent[] = [];
    for (let i = 0; i < stream.length; i++) got.push(...f.push(stream.subarray(i, i + 1)));
    expect(summary(got)).toEqual([want[0], 'pong', 'ping', want[2]]);
  });

  it('reports a pong followed later by a message as one pong', () => {
    const f = new StreamFramer();
    expect(summary(f.push(Buffer.from('\r\n')))).toEqual(['pong']);
    expect(summary(f.push(MSG2))).toEqual([`message:${MSG2.toString('latin1')}`]);
    expect(summary(f.push(Buffer.from('\r\n\r')))).toEqual([]);
    expect(summary(f.push(Buffer.from('\n')))).toEqual(['ping']);
  });

  it('frames a binary multipart body by Content-Length', () => {
    const buf = fixture('rfc4475/mpart01.dat');
    const f = new StreamFramer();
    const ev = [...f.push(buf.subarray(0, 700)), ...f.push(buf.subarray(700)), ...f.push(MSG2)];
    expect(ev.length).toBe(2);
    expect(ev[0].type === 'message' && ev[0].data.equals(buf)).toBe(true);
  });

  it('waits for the body (RFC 4475 clerr on a stream)', () => {
    const f = new StreamFramer();
    expect(f.push(fixture('rfc4475/clerr.dat'))).toEqual([]);
  });

  it('reports framing errors and then stays silent', () => {
    let f = new StreamFramer();
    expect(summary(f.push(crlf('OPTIONS sip:a@b SIP/2.0', 'Call-ID: x', '')))).toEqual(['error:400 Bad Request: missing Content-Length']);
    expect(f.push(MSG2)).toEqual([]);
    f = new StreamFramer();
    expect(summary(f.push(fixture('rfc4475/ncl.dat')))).toEqual(['error:400 Bad Request: malformed Content-Length']);
    f = new StreamFramer();
    expect(summary(f.push(fixture('rfc4475/mcl01.dat')))).toEqual(['error:400 Bad Request: malformed Content-Length']);
    f = new StreamFramer({ maxMessageBytes: 200, maxHeaders: 10, maxLineBytes: 100 });
    const ev = f.push(Buffer.alloc(150, 0x41));
    expect(ev).toEqual([]);
    expect(summary(f.push(Buffer.alloc(60, 0x41)))).toEqual(['error:413 Message Too Large']);
    f = new StreamFramer({ maxMessageBytes: 200, maxHeaders: 10, maxLineBytes: 100 });
    expect(summary(f.push(crlf('OPTIONS sip:a@b SIP/2.0', 'l: 500', '')))).toEqual(['error:413 Message Too Large']);
  });

  it('handles many messages fed in small chunks in linear fashion', () => {
    const f = new StreamFramer();
    const n = 2000;
    const stream = Buffer.concat(Array.from({ length: n }, () => MSG2));
    let count = 0;
    for (let i = 0; i < stream.length; i += 7) count += f.push(stream.subarray(i, i + 7)).length;
    expect(count).toBe(n);
  });

  it('gives every message intact however the stream is cut, also once later chunks have arrived', () => {
    // Messages are views of a chunk when nothing was buffered before it and copies otherwise: a view of
    // the framer's own buffer would be overwritten by the next push, so everything is compared at the end.
    const parts = [MSG1, MSG2, Buffer.from('\r\n\r\n')];
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 2 }), { minLength: 1, maxLength: 12 }), fc.array(fc.integer({ min: 1, max: 400 }), { minLength: 1, maxLength: 30 }), (which, cuts) => {
        const stream = Buffer.concat(which.map((i) => parts[i]));
        const f = new StreamFramer();
        const messages: Buffer[] = [];
        for (let at = 0, k = 0; at < stream.length; k++) {
          const len = cuts[k % cuts.length];
          // A fresh buffer per chunk, as a socket gives.
          for (const ev of f.push(Buffer.from(stream.subarray(at, at + len)))) if (ev.type === 'message') messages.push(ev.data);
          at += len;
        }
        const want = which.filter((i) => i < 2).map((i) => parts[i].toString('latin1'));
        expect(messages.map((m) => m.toString('latin1'))).toEqual(want);
      }),
      { numRuns: 300, seed: 11 },
    );
  });
});

describe('StreamFramer framing errors carry the request for a 400 (RFC 4475 §3.1.2.3, §3.3.9)', () => {
  for (const [name, reason] of [
    ['ncl.dat', 'Bad Request: malformed Content-Length'],
    ['mcl01.dat', 'Bad Request: malformed Content-Length'],
  ] as const) {
    it(`${name}: error with a partial request`, () => {
      const events = new StreamFramer().push(fixture(`rfc4475/${name}`));
      const err = events.find((e) => e.type === 'error');
      expect(err?.type === 'error' && [err.error.status, err.error.reason]).toEqual([400, reason]);
      const partial = err?.type === 'error' ? err.error.partial : undefined;
      expect(partial?.kind === 'request' && partial.method).toBe(name === 'ncl.dat' ? 'INVITE' : 'OPTIONS');
    });
  }
  it('a header section that is no request has no partial', () => {
    const events = new StreamFramer().push(Buffer.from('C\r\n\r\n'));
    expect(events).toHaveLength(1);
    expect(events[0].type === 'error' && events[0].error.partial).toBeUndefined();
  });
});

/**
 * How the framer read Content-Length before it read the bytes: decode the header section as latin1 and
 * look at each line's trimmed name and value. The byte reading must agree with it on any input.
 */
function contentLengthFromText(head: string): number | string {
  let found = -1;
  for (const line of head.split('\n')) {
    const c0 = line.charAt(0).toLowerCase();
    const colon = line.indexOf(':');
    if ((c0 !== 'l' && c0 !== 'c') || colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    if (name !== 'l' && name !== 'content-length') continue;
    const v = line.slice(colon + 1).trim();
    if (v.length === 0 || v.length > 10 || !/^[0-9]+$/.test(v)) return 'malformed';
    if (found >= 0 && found !== Number(v)) return 'malformed';
    found = Number(v);
  }
  return found < 0 ? 'missing' : found;
}

describe('StreamFramer reads Content-Length from the bytes (RFC 3261 §20.14, §7.3.1)', () => {
  const outcome = (r: number | SipParseError) => (typeof r === 'number' ? r : r.reason.endsWith('missing Content-Length') ? 'missing' : 'malformed');
  const read = (head: Buffer) => outcome(contentLengthOf(head, 0, head.length));

  it('reads the compact and full forms in any case, with spaces around the colon and the value', () => {
    expect(read(Buffer.from('INVITE sip:a@b SIP/2.0\r\nl: 12\r\n'))).toBe(12);
    expect(read(Buffer.from('INVITE sip:a@b SIP/2.0\r\nCONTENT-length \t:\t 0 \r\n'))).toBe(0);
    expect(read(Buffer.from('INVITE sip:a@b SIP/2.0\r\nContent-Length: 5\r\nl: 5\r\n'))).toBe(5);
    expect(read(Buffer.from('INVITE sip:a@b SIP/2.0\r\nContent-Length: 5\r\nl: 6\r\n'))).toBe('malformed');
    expect(read(Buffer.from('INVITE sip:a@b SIP/2.0\r\nContent-Length: 12345678901\r\n'))).toBe('malformed');
    expect(read(Buffer.from('INVITE sip:a@b SIP/2.0\r\nContent-Length: -1\r\n'))).toBe('malformed');
    expect(read(Buffer.from('INVITE sip:a@b SIP/2.0\r\nContent-Length:\r\n'))).toBe('malformed');
    // A CR where the hyphen is, or a name that only starts like it, is another header.
    expect(read(Buffer.from('INVITE sip:a@b SIP/2.0\r\nContent\rLength: 3\r\nContent-Lengths: 4\r\n'))).toBe('missing');
    expect(read(Buffer.from('INVITE sip:a@b SIP/2.0\r\nCall-ID: l: 5\r\n'))).toBe('missing');
  });

  it('gives what the latin1 text gave for any header section', () => {
    const names = ['l', 'L', 'Content-Length', 'content-LENGTH', 'c', 'Call-ID', 'Content-Type', 'Contact', 'x'];
    const spaces = ['', ' ', '\t', '\x0b', '\xa0', '\r'];
    const values = ['0', '7', '007', '12345678901', '1234567890', '', '-1', '1 2', '٣', '+4', '5\xa0'];
    const line = fc.tuple(fc.constantFrom(...names), fc.constantFrom(...spaces), fc.constantFrom(...spaces), fc.constantFrom(...values), fc.constantFrom(...spaces), fc.boolean())
      .map(([n, s1, s2, v, s3, colon]) => `${n}${s1}${colon ? ':' : ''}${s2}${v}${s3}`);
    fc.assert(
      fc.property(fc.array(line, { maxLength: 6 }), fc.constantFrom('\r\n', '\n'), (lines, eol) => {
        const text = ['OPTIONS sip:a@b SIP/2.0', ...lines].map((l) => l + eol).join('');
        expect(read(Buffer.from(text, 'latin1'))).toBe(contentLengthFromText(text));
      }),
      { numRuns: 2000, seed: 12 },
    );
  });
});
