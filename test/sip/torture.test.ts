import { describe, expect, it } from 'vitest';
import { parseMessage } from '../../src/sip/parser.js';
import { SipParseError } from '../../src/sip/errors.js';
import { parseUri, unescapeUri } from '../../src/sip/uri.js';
import { getHeaderValues, getHeader, type SipRequest, type SipResponse } from '../../src/sip/message.js';
import { parseVia } from '../../src/sip/headers.js';
import { fixture, fixtureCrlf } from './fixtures.js';

function rejects(buf: Buffer): SipParseError {
  try {
    parseMessage(buf);
  } catch (e) {
    expect(e).toBeInstanceOf(SipParseError);
    return e as SipParseError;
  }
  throw new Error('parsed a message expected to be rejected');
}

describe('RFC 4475 §3.1.1 valid messages', () => {
  const valid = ['wsinv', 'intmeth', 'esc01', 'escnull', 'esc02', 'lwsdisp', 'longreq', 'dblreq', 'semiuri', 'transports', 'mpart01', 'unreason', 'noreason'];
  for (const name of valid) {
    it(`${name}.dat parses`, () => {
      expect(() => parseMessage(fixture(`rfc4475/${name}.dat`))).not.toThrow();
    });
  }

  it('wsinv.dat: folded, odd-case headers read correctly', () => {
    const m = parseMessage(fixture('rfc4475/wsinv.dat')) as SipRequest;
    expect(m.method).toBe('INVITE');
    expect(m.uri).toBe('sip:vivekg@chair-dnrc.example.com;unknownparam');
    expect(getHeader(m, 'to')).toBe('sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n');
    expect(getHeader(m, 'cseq')).toBe('0009 INVITE');
    expect(getHeader(m, 'max-forwards')).toBe('0068');
    expect(getHeaderValues(m, 'via').length).toBe(3);
    expect(parseVia(getHeaderValues(m, 'via')[1])).toEqual({ transport: 'TCP', host: 'spindle.example.com', params: { branch: 'z9hG4bK9ikj8' } });
    expect(m.body.length).toBe(150);
  });

  it('intmeth.dat: unusual method token, NUL bytes kept', () => {
    const m = parseMessage(fixture('rfc4475/intmeth.dat')) as SipRequest;
    expect(m.method).toBe("!interesting-Method0123456789_*+`.%indeed'~");
    expect(getHeader(m, 'cseq')).toBe("139122385 !interesting-Method0123456789_*+`.%indeed'~");
  });

  it('esc01.dat: escaped R-URI user decodes to sips:user@example.com', () => {
    const m = parseMessage(fixture('rfc4475/esc01.dat')) as SipRequest;
    expect(unescapeUri(parseUri(m.uri).user!)).toBe('sips:user@example.com');
  });

  it('esc02.dat: RE%47IST%45R is not REGISTER', () => {
    const m = parseMessage(fixture('rfc4475/esc02.dat')) as SipRequest;
    expect(m.method).toBe('RE%47IST%45R');
    expect(getHeaderValues(m, 'contact').length).toBe(2);
  });

  it('dblreq.dat: only the first message of the datagram', () => {
    const m = parseMessage(fixture('rfc4475/dblreq.dat')) as SipRequest;
    expect(m.method).toBe('REGISTER');
    expect(m.body.length).toBe(0);
  });

  it('semiuri.dat: user part holds ;par=', () => {
    const m = parseMessage(fixture('rfc4475/semiuri.dat')) as SipRequest;
    const u = parseUri(m.uri);
    expect(unescapeUri(u.user!)).toBe('user;par=u@example.net');
    expect(u.host).toBe('example.com');
  });

  it('mpart01.dat: binary multipart body of exactly Content-Length bytes', () => {
    const buf = fixture('rfc4475/mpart01.dat');
    const m = parseMessage(buf);
    expect(m.body.length).toBe(Number(getHeader(m, 'content-length')));
    expect(m.body.equals(buf.subarray(buf.length - m.body.length))).toBe(true);
  });

  it('noreason.dat / unreason.dat: responses', () => {
    const n = parseMessage(fixture('rfc4475/noreason.dat')) as SipResponse;
    expect(n.status).toBe(100);
    expect(n.reason).toBe('');
    const u = parseMessage(fixture('rfc4475/unreason.dat')) as SipResponse;
    expect(u.status).toBe(200);
    expect(u.reason.length).toBeGreaterThan(10);
  });
});

describe('RFC 4475 §3.1.2 invalid messages', () => {
  const cases: [string, number, string][] = [
    ['badinv01', 400, 'Bad Request: malformed Via'],
    ['clerr', 400, 'Bad Request: Content-Length larger than message'],
    ['ncl', 400, 'Bad Request: malformed Content-Length'],
    ['scalar02', 400, 'Bad Request: malformed CSeq'],
    ['quotbal', 400, 'Bad Request: malformed To'],
    ['ltgtruri', 400, 'Bad Request: malformed Request-URI'],
    ['lwsruri', 400, 'Bad Request: malformed Request-Line'],
    ['lwsstart', 400, 'Bad Request: malformed Request-Line'],
    ['trws', 400, 'Bad Request: malformed Request-Line'],
    ['escruri', 400, 'Bad Request: malformed Request-URI'],
    ['badaspec', 400, 'Bad Request: malformed To'],
    ['baddn', 400, 'Bad Request: malformed From'],
    ['badvers', 505, 'Version Not Supported'],
    ['mismatch01', 400, 'Bad Request: CSeq method does not match Request-Line'],
    ['mismatch02', 400, 'Bad Request: CSeq method does not match Request-Line'],
    ['multi01', 400, 'Bad Request: multiple From header fields'],
    ['mcl01', 400, 'Bad Request: multiple Content-Length header fields'],
  ];
  for (const [name, status, reason] of cases) {
    it(`${name}.dat → ${status} with a partial request to answer`, () => {
      const e = rejects(fixture(`rfc4475/${name}.dat`));
      expect([e.status, e.reason]).toEqual([status, reason]);
      expect(e.partial?.kind).toBe('request');
    });
  }
  it('responses with overlarge scalars are rejected without partial (discard)', () => {
    for (const name of ['scalarlg', 'bigcode']) {
      const e = rejects(fixture(`rfc4475/${name}.dat`));
      expect(e.status).toBe(400);
      expect(e.partial).toBeUndefined();
    }
  });
  it('insuf.dat: missing From, To, Call-ID: a partial with Via and CSeq, so a 400 can be sent (§3.3.1)', () => {
    const e = rejects(fixture('rfc4475/insuf.dat'));
    expect(e.reason).toBe('Bad Request: missing From');
    expect(e.partial?.kind).toBe('request');
  });
  it('a request without Via or CSeq has no partial (nothing to answer to)', () => {
    const noVia = Buffer.from('OPTIONS sip:a@b SIP/2.0\r\nCSeq: 1 OPTIONS\r\nCall-ID: x\r\n\r\n');
    expect(rejects(noVia).partial).toBeUndefined();
    const noCseq = Buffer.from('OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nCall-ID: x\r\n\r\n');
    expect(rejects(noCseq).partial).toBeUndefined();
  });
  it('unkscm.dat: unknown R-URI scheme is syntactically valid', () => {
    expect((parseMessage(fixture('rfc4475/unkscm.dat')) as SipRequest).uri).toBe('nobodyKnowsThisScheme:totallyopaquecontent');
  });
});

describe('RFC 5118 IPv6 torture messages (CRLF form)', () => {
  const ok = ['ipv6-good', 'port-ambiguous', 'port-unambiguous', 'via-received-param-with-delim', 'via-received-param-no-delim',
    'mult-ip-in-header', 'ipv4-mapped-ipv6', 'ipv6-bug-abnf-3-colons', 'ipv6-correct-abnf-2-colons'];
  for (const name of ok) {
    it(`${name}.dat parses`, () => {
      expect(() => parseMessage(fixtureCrlf(`rfc5118/${name}.dat`))).not.toThrow();
    });
  }
  it('ipv6-bad.dat → 400 malformed Request-URI', () => {
    const e = rejects(fixtureCrlf('rfc5118/ipv6-bad.dat'));
    expect([e.status, e.reason]).toEqual([400, 'Bad Request: malformed Request-URI']);
  });
  it('port-ambiguous: the whole bracket is the address, no port', () => {
    const m = parseMessage(fixtureCrlf('rfc5118/port-ambiguous.dat')) as SipRequest;
    const u = parseUri(m.uri);
    expect([u.host, u.port]).toEqual(['[2001:db8::10:5070]', undefined]);
    const p = parseUri((parseMessage(fixtureCrlf('rfc5118/port-unambiguous.dat')) as SipRequest).uri);
    expect([p.host, p.port]).toEqual(['[2001:db8::10]', 5070]);
  });
  it('received= with and without brackets', () => {
    const a = parseMessage(fixtureCrlf('rfc5118/via-received-param-with-delim.dat'));
    expect(parseVia(getHeaderValues(a, 'via')[0]).params.received).toBe('[2001:db8::9:255]');
    const b = parseMessage(fixtureCrlf('rfc5118/via-received-param-no-delim.dat'));
    const v = parseVia(getHeaderValues(b, 'via')[0]);
    expect(v.params.received).toBe('2001:db8::9:255');
    expect(v.params.branch).toBe('z9hG4bKas3');
  });
  it('ipv6-in-sdp.dat: archive Content-Length larger than the body → 400', () => {
    const e = rejects(fixture('rfc5118/ipv6-in-sdp.dat'));
    expect(e.reason).toBe('Bad Request: Content-Length larger than message');
  });
});
