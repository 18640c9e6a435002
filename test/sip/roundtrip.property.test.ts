/**
 * Property-based round trip of the parser and serializer (fast-check):
 * serialize(parse(bytes)) gives back every header field (name as written,
 * value, order) and the body byte for byte, for generated requests and
 * responses with compact header names, values holding commas, quotes, IPv6
 * references and UTF-8, and binary bodies.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parseMessage } from '../../src/sip/parser.js';
import { serializeMessage } from '../../src/sip/serializer.js';
import { canonicalName, type SipHeader } from '../../src/sip/message.js';

const alnum = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
const tokenChars = `${alnum}-.!%*_+\`'~`;
const token = (max = 12) => fc.string({ unit: fc.constantFrom(...tokenChars), minLength: 1, maxLength: max });
const word = (max = 10) => fc.string({ unit: fc.constantFrom(...alnum), minLength: 1, maxLength: max });

const ipv4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((p) => p.join('.'));
const ipv6 = fc.array(fc.nat(0xffff).map((n) => n.toString(16)), { minLength: 1, maxLength: 5 }).map((g) => `[2001:db8::${g.join(':')}]`);
const hostname = fc.array(word(8), { minLength: 1, maxLength: 3 }).map((l) => `${l.join('.')}.test`);
const host = fc.oneof(ipv4, ipv6, hostname);
const hostport = fc.tuple(host, fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined })).map(([h, p]) => (p === undefined ? h : `${h}:${p}`));
const sipUri = fc.tuple(fc.constantFrom('sip', 'sips'), fc.option(word(), { nil: undefined }), hostport).map(([s, u, hp]) => `${s}:${u ? `${u}@` : ''}${hp}`);

/** A quoted display name with commas, escaped quotes and UTF-8. */
const displayName = fc
  .string({ unit: fc.constantFrom(...'ab ,;:<>@', '\\"', '\\\\', 'é', '中', '😀'), minLength: 0, maxLength: 12 })
  .map((s) => `"${s}"`);
const nameAddr = fc.tuple(fc.option(displayName, { nil: undefined }), sipUri, word()).map(([d, u, tag]) => `${d ? `${d} ` : ''}<${u}>;tag=${tag}`);
const via = fc
  .tuple(fc.constantFrom('UDP', 'TCP', 'TLS', 'WS', 'SCTP'), hostport, token(16), fc.boolean())
  .map(([t, hp, b, rport]) => `SIP/2.0/${t} ${hp};branch=z9hG4bK${b}${rport ? ';rport' : ''}`);

/** A header value: any printable ASCII or UTF-8 text without CR/LF, not starting or ending with whitespace. */
const valueChar = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c)) },
  { weight: 2, arbitrary: fc.constantFrom(' ', '\t', ',', '"', '<', '>', ';', '=', ':') },
  { weight: 1, arbitrary: fc.constantFrom('é', 'ß', '中', '😀', '\u00a0') },
);
const freeValue = fc
  .string({ unit: valueChar, maxLength: 40 })
  .map((s) => s.replace(/^[ \t]+|[ \t]+$/g, ''))
  .filter((s) => s.length === 0 || s.trim() === s);
const listValue = fc.array(fc.oneof(sipUri.map((u) => `<${u}>`), ipv6, token(), displayName), { minLength: 1, maxLength: 4 }).map((l) => l.join(', '));

/** Header names of the mandatory fields in either form; the generator picks one per field. */
const FORMS: Record<string, string[]> = {
  via: ['Via', 'v', 'VIA', 'V'],
  from: ['From', 'f', 'F'],
  to: ['To', 't', 'T'],
  'call-id': ['Call-ID', 'i', 'call-id'],
  cseq: ['CSeq', 'cseq'],
  'content-length': ['Content-Length', 'l', 'L'],
};
const RESERVED = new Set([...Object.keys(FORMS), 'max-forwards']);
/** Other header names: compact forms of optional headers, known names, and arbitrary tokens. */
const otherName = fc
  .oneof(fc.constantFrom('m', 'c', 'k', 's', 'o', 'u', 'Contact', 'Route', 'Record-Route', 'Subject', 'User-Agent', 'X-Extension-1', 'Authorization'), token(20))
  .filter((n) => !RESERVED.has(canonicalName(n)));
const extraHeader = fc.tuple(otherName, fc.oneof(freeValue, listValue)).map(([name, value]) => ({ name, value }));

const METHODS = ['INVITE', 'ACK', 'BYE', 'CANCEL', 'OPTIONS', 'REGISTER', 'MESSAGE', 'X-NEW.method!'];

const message = fc
  .record({
    kind: fc.constantFrom('request', 'response'),
    method: fc.oneof(fc.constantFrom(...METHODS), token(10)),
    ruri: sipUri,
    status: fc.integer({ min: 100, max: 699 }),
    reason: freeValue,
    vias: fc.array(via, { minLength: 1, maxLength: 4 }),
    from: nameAddr,
    to: nameAddr,
    callId: fc.tuple(token(20), fc.option(host, { nil: undefined })).map(([a, h]) => (h ? `${a}@${h}` : a)),
    seq: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
    forms: fc.record(Object.fromEntries(Object.entries(FORMS).map(([k, v]) => [k, fc.constantFrom(...v)])) as Record<string, fc.Arbitrary<string>>),
    extra: fc.array(extraHeader, { maxLength: 10 }),
    body: fc.uint8Array({ maxLength: 300 }),
    seed: fc.nat(),
  })
  .map((g) => {
    const method = g.method;
    const mandatory: SipHeader[] = [
      ...g.vias.map((v) => ({ name: g.forms.via, value: v })),
      { name: g.forms.from, value: g.from },
      { name: g.forms.to, value: g.to },
      { name: g.forms['call-id'], value: g.callId },
      { name: g.forms.cseq, value: `${g.seq} ${method}` },
      { name: 'Max-Forwards', value: String(g.seed % 256) },
    ];
    // Interleave the extra fields among the mandatory ones (deterministically from the seed); Content-Length anywhere.
    const headers: SipHeader[] = [...mandatory];
    let s = g.seed;
    for (const h of g.extra) {
      s = (s * 1103515245 + 12345) >>> 0;
      headers.splice(s % (headers.length + 1), 0, h);
    }
    s = (s * 1103515245 + 12345) >>> 0;
    headers.splice(s % (headers.length + 1), 0, { name: g.forms['content-length'], value: String(g.body.length) });
    const startLine = g.kind === 'request' ? `${method} ${g.ruri} SIP/2.0` : `SIP/2.0 ${g.status} ${g.reason}`;
    return { startLine, headers, body: Buffer.from(g.body) };
  });

function wire(startLine: string, headers: SipHeader[], body: Buffer, sep = ': '): Buffer {
  const head = `${startLine}\r\n${headers.map((h) => `${h.name}${sep}${h.value}\r\n`).join('')}\r\n`;
  return Buffer.concat([Buffer.from(head, 'utf8'), body]);
}

describe('serialize(parse(m)) round trip (fast-check)', () => {
  it('keeps every header (name, value, order) and the body, byte for byte', () => {
    fc.assert(
      fc.property(message, ({ startLine, headers, body }) => {
        const bytes = wire(startLine, headers, body);
        const parsed = parseMessage(bytes);
        expect(parsed.headers).toEqual(headers);
        expect(parsed.body.equals(body)).toBe(true);
        if (parsed.kind === 'request') expect(`${parsed.method} ${parsed.uri} SIP/2.0`).toBe(startLine);
        else expect(`SIP/2.0 ${parsed.status} ${parsed.reason}`).toBe(startLine);
        expect(serializeMessage(parsed).equals(bytes)).toBe(true);
      }),
      { numRuns: 400 },
    );
  });

  it('reads folded lines and spaces around the colon as the same fields, and writes them in canonical form', () => {
    fc.assert(
      fc.property(message, fc.constantFrom(':', ' : ', '\t:  ', ':\r\n '), ({ startLine, headers, body }, sep) => {
        const noisy = wire(startLine, headers, body, sep);
        const parsed = parseMessage(noisy);
        // Folding (CRLF + whitespace) reads as one space, which the value's trimming removes at its start (§7.3.1).
        expect(parsed.headers).toEqual(headers);
        expect(parsed.body.equals(body)).toBe(true);
        expect(serializeMessage(parsed).equals(wire(startLine, headers, body))).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it('keeps a binary body with NUL, CR and LF octets exactly Content-Length long, ignoring octets after it', () => {
    fc.assert(
      fc.property(message, fc.uint8Array({ minLength: 1, maxLength: 40 }), ({ startLine, headers, body }, trailing) => {
        const bytes = Buffer.concat([wire(startLine, headers, body), Buffer.from(trailing)]);
        const parsed = parseMessage(bytes);
        expect(parsed.body.equals(body)).toBe(true);
        expect(serializeMessage(parsed).equals(wire(startLine, headers, body))).toBe(true);
      }),
      { numRuns: 200 },
    );
  });
});
