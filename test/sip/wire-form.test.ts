import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parseMessage } from '../../src/sip/parser.js';
import { serializeMessage } from '../../src/sip/serializer.js';
import { getHeaderValues, setHeader, type SipResponse } from '../../src/sip/message.js';
import { withoutTopVia } from '../../src/sip/wire-form.js';

const crlf = (lines: string[]) => lines.join('\r\n');

/** A 180 as a UAS writes it after a proxy: the proxy's Via on top, then the caller's; compact and unknown headers. */
const RINGING = crlf([
  'SIP/2.0 180 Ringing',
  'Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKproxy;rport=5060',
  'v:SIP/2.0/UDP 198.51.100.7:5062;branch=z9hG4bKcaller;received=198.51.100.7',
  'f: <sip:alice@a.example>;tag=1',
  'X-Odd:    spaced   value ',
  't: <sip:bob@b.example>;tag=2',
  'i: call-1@a.example',
  'CSeq: 1 INVITE',
  'm: <sip:bob@203.0.113.9>',
  'l: 4',
  '',
  'v=0\r',
]);

function parseResponse(text: string): SipResponse {
  const m = parseMessage(Buffer.from(text, 'latin1'));
  if (m.kind !== 'response') throw new Error('not a response');
  return m;
}

/** `text` without the line(s) from the one starting with `from` up to (not including) the one starting with `to`. */
function cut(text: string, from: string, to: string): string {
  const a = text.indexOf(from);
  const b = text.indexOf(to, a + 1);
  return text.slice(0, a) + text.slice(b);
}

describe('relayed responses as received bytes (RFC 3261 §16.7 step 3)', () => {
  it('keeps the bytes a response was read from, leading CRLFs and octets after the body left out; serializes it canonically', () => {
    const res = parseResponse('\r\n' + RINGING + 'trailing junk');
    const w = res.wire!;
    expect(w.received).toBe(true);
    expect(w.bytes.subarray(w.start, w.end).toString('latin1')).toBe(RINGING);
    expect(serializeMessage(res).toString('latin1')).toMatch(/^SIP\/2\.0 180 Ringing\r\nVia: SIP\/2\.0\/UDP 192\.0\.2\.1:5060;branch=z9hG4bKproxy;rport=5060\r\nv: SIP/);
    const relayed = withoutTopVia(res);
    // The relayed copy, parsed by the next hop and relayed again, keeps the bytes too.
    const next = parseResponse(serializeMessage(relayed).toString('latin1'));
    expect(next.headers).toEqual(relayed.headers);
  });

  it('the relayed copy is the received bytes less the top Via line: compact forms, unknown headers, spacing and order kept', () => {
    const res = parseResponse(RINGING);
    const out = withoutTopVia(res);
    const wire = serializeMessage(out).toString('latin1');
    expect(wire).toBe(cut(RINGING, 'Via: ', 'v:'));
    expect(getHeaderValues(out, 'via')).toEqual(['SIP/2.0/UDP 198.51.100.7:5062;branch=z9hG4bKcaller;received=198.51.100.7']);
    // The original is unchanged.
    expect(res.headers.length).toBe(out.headers.length + 1);
    expect(res.wire!.bytes.subarray(res.wire!.start, res.wire!.end).toString('latin1')).toBe(RINGING);
    // What the relayed bytes parse to is what the copy says.
    const again = parseMessage(serializeMessage(out));
    expect(again.headers).toEqual(out.headers);
    expect(again.body.toString()).toBe('v=0\r');
  });

  it('cuts a folded top Via with its continuation lines, and a top Via that is the last header field', () => {
    const folded = crlf(['SIP/2.0 200 OK', 'Via: SIP/2.0/UDP 192.0.2.1:5060', '  ;branch=z9hG4bKp', 'Via: SIP/2.0/UDP 198.51.100.7;branch=z9hG4bKc', 'From: <sip:a@x>;tag=1', 'To: <sip:b@y>;tag=2', 'Call-ID: c', 'CSeq: 2 BYE', 'Content-Length: 0', '', '']);
    expect(serializeMessage(withoutTopVia(parseResponse(folded))).toString()).toBe(cut(folded, 'Via: SIP/2.0/UDP 192', 'Via: SIP/2.0/UDP 198'));
    const last = crlf(['SIP/2.0 200 OK', 'From: <sip:a@x>;tag=1', 'To: <sip:b@y>;tag=2', 'Call-ID: c', 'CSeq: 2 BYE', 'Content-Length: 0', 'Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKp', 'Via: SIP/2.0/UDP 198.51.100.7;branch=z9hG4bKc', '', '']);
    expect(serializeMessage(withoutTopVia(parseResponse(last))).toString()).toBe(cut(last, 'Via: SIP/2.0/UDP 192', 'Via: SIP/2.0/UDP 198'));
    const lf = ['SIP/2.0 200 OK', 'From: <sip:a@x>;tag=1', 'To: <sip:b@y>;tag=2', 'Call-ID: c', 'CSeq: 2 BYE', 'Content-Length: 0', 'Via: SIP/2.0/UDP 198.51.100.7;branch=z9hG4bKc', 'Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKp', '', ''];
    const onlyLf = lf.join('\n');
    // The top Via here is the one before the blank line's predecessor: the first Via field, whatever its place.
    expect(serializeMessage(withoutTopVia(parseResponse(onlyLf))).toString()).toBe(cut(onlyLf, 'Via: SIP/2.0/UDP 198', 'Via: SIP/2.0/UDP 192'));
  });

  it('a top Via sharing its field with the next ones (SIPp\'s [last_Via:]) loses its element and the comma after it', () => {
    const head = ['SIP/2.0 180 Ringing', 'From: <sip:a@x>;tag=1', 'To: <sip:b@y>;tag=2', 'Call-ID: c', 'CSeq: 1 INVITE', 'Content-Length: 0'];
    const text = crlf([head[0], 'Via:  SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKp;x="a,b" ,\tSIP/2.0/UDP 198.51.100.7;branch=z9hG4bKc,SIP/2.0/TCP h;branch=z9hG4bKd', ...head.slice(1), '', '']);
    const out = withoutTopVia(parseResponse(text));
    expect(out.wire?.received).toBe(false);
    expect(serializeMessage(out).toString()).toBe(text.replace('SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKp;x="a,b" ,\t', ''));
    expect(getHeaderValues(out, 'via')).toEqual(['SIP/2.0/UDP 198.51.100.7;branch=z9hG4bKc', 'SIP/2.0/TCP h;branch=z9hG4bKd']);
    expect(getHeaderValues(parseMessage(serializeMessage(out)), 'via')).toEqual(getHeaderValues(out, 'via'));
    // Folded after the comma, or an empty first element: serialized from the fields instead.
    for (const via of ['Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKp,\r\n SIP/2.0/UDP 198.51.100.7;branch=z9hG4bKc', 'Via: , SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKp, SIP/2.0/UDP 198.51.100.7;branch=z9hG4bKc']) {
      const odd = withoutTopVia(parseResponse(crlf([head[0], via, ...head.slice(1), '', ''])));
      expect(odd.wire).toBeUndefined();
      expect(getHeaderValues(odd, 'via')).toEqual(['SIP/2.0/UDP 198.51.100.7;branch=z9hG4bKc']);
      expect(serializeMessage(odd).toString()).toContain('\r\nVia: SIP/2.0/UDP 198.51.100.7;branch=z9hG4bKc\r\n');
    }
  });

  it('an edited response is serialized from its fields, not sent as the bytes it came in as', () => {
    const res = parseResponse(RINGING);
    const edited = { ...withoutTopVia(res), status: 183, reason: 'Session Progress' };
    expect(serializeMessage(edited).toString('latin1')).toMatch(/^SIP\/2\.0 183 Session Progress\r\nv: SIP\/2\.0\/UDP 198/);
    const withHeader = withoutTopVia(res);
    setHeader(withHeader, 'X-Odd', 'changed');
    const wire = serializeMessage(withHeader).toString('latin1');
    expect(wire).toContain('X-Odd: changed\r\n');
    expect(wire).not.toContain('spaced');
    const body = withoutTopVia(res);
    body.body = Buffer.from('v=1\r\n');
    expect(serializeMessage(body).toString('latin1')).toMatch(/l: 5\r\n\r\nv=1\r\n$/);
    // A response without Content-Length gets one when relayed (serialized path).
    const noCl = RINGING.replace('l: 4\r\n', '').replace('v=0\r', '');
    const out = withoutTopVia(parseResponse(noCl));
    expect(out.wire).toBeUndefined();
    expect(serializeMessage(out).toString()).toMatch(/Content-Length: 0\r\n\r\n$/);
  });
});

describe('relayed bytes against the fields (fast-check)', () => {
  const via = fc
    .tuple(fc.constantFrom('UDP', 'TCP', 'TLS'), fc.constantFrom('192.0.2.1', '[2001:db8::1]', 'h.example.test'), fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined }), fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: 1, maxLength: 8 }), fc.constantFrom('', ';rport', ';rport=5060;received=198.51.100.7', ';x="a, b"'))
    .map(([t, h, p, b, extra]) => `SIP/2.0/${t} ${h}${p === undefined ? '' : `:${p}`};branch=z9hG4bK${b}${extra}`);
  /** The Via lines: the via-parms grouped into fields, each field under some name with some separator and folding. */
  const viaLines = fc
    .tuple(fc.array(via, { minLength: 2, maxLength: 4 }), fc.array(fc.boolean(), { minLength: 4, maxLength: 4 }), fc.constantFrom('Via', 'v', 'VIA'), fc.constantFrom(', ', ',', ' , ', ',\t', ',\r\n '), fc.constantFrom(': ', ':', ' :  '))
    .map(([vias, joins, name, sep, colon]) => {
      const fields: string[][] = [];
      vias.forEach((v, i) => (i > 0 && joins[i] ? fields[fields.length - 1].push(v) : fields.push([v])));
      return { vias, lines: fields.map((f) => `${name}${colon}${f.join(sep)}`) };
    });
  const others = ['From: <sip:a@x>;tag=1', 'To: "B, b" <sip:b@y>;tag=2', 'Call-ID: c@h', 'CSeq: 7 INVITE', 'X-Unknown:  kept  '];

  it('the relayed bytes parse to the relayed copy: every Via but the top one, every other field, the body', () => {
    fc.assert(
      fc.property(viaLines, fc.nat(others.length), fc.string({ maxLength: 30 }), fc.constantFrom('\r\n', '\n'), ({ vias, lines }, at, body, eol) => {
        const fields = [...others.slice(0, at), ...lines, ...others.slice(at), `Content-Length: ${Buffer.byteLength(body)}`];
        const res = parseResponse(['SIP/2.0 200 OK', ...fields, '', body].join(eol));
        const out = withoutTopVia(res);
        // Cut from the bytes unless the first Via field is a list folded after its first element.
        expect(out.wire?.received).toBe(lines[0].includes(',\r\n ') ? undefined : false);
        const again = parseMessage(serializeMessage(out));
        expect(getHeaderValues(again, 'via')).toEqual(vias.slice(1));
        expect(getHeaderValues(out, 'via')).toEqual(vias.slice(1));
        expect(again.headers.filter((h) => !/^(via|v)$/i.test(h.name))).toEqual(out.headers.filter((h) => !/^(via|v)$/i.test(h.name)));
        expect(again.body.toString()).toBe(body);
      }),
      { numRuns: 400 },
    );
  });
});
