import { describe, expect, it } from 'vitest';
import { formatNameAddr, formatVia, getTag, parseCSeq, parseNameAddr, parseParams, parseVia } from '../../src/sip/headers.js';
import { SipParseError } from '../../src/sip/errors.js';

function reason(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(SipParseError);
    expect((e as SipParseError).status).toBe(400);
    return (e as SipParseError).reason;
  }
  return 'no error';
}

describe('parseVia / formatVia', () => {
  it('parses transport, sent-by and params', () => {
    expect(parseVia('SIP/2.0/UDP pc33.atlanta.example.com:5066;branch=z9hG4bK776asdhds;rport;received=192.0.2.1')).toEqual({
      transport: 'UDP', host: 'pc33.atlanta.example.com', port: 5066,
      params: { branch: 'z9hG4bK776asdhds', rport: null, received: '192.0.2.1' },
    });
  });
  it('allows LWS around "/" and ":" and lowercase protocol', () => {
    expect(parseVia('sip / 2.0 / tcp  host.example.com : 5070 ; Branch = z9hG4bKx')).toEqual({
      transport: 'TCP', host: 'host.example.com', port: 5070, params: { branch: 'z9hG4bKx' },
    });
  });
  it('IPv6 sent-by and received in both forms (RFC 5118 §4.5)', () => {
    expect(parseVia('SIP/2.0/UDP [2001:db8::9:1]:5060;received=[2001:db8::9:255];branch=z9hG4bKas3-111')).toEqual({
      transport: 'UDP', host: '[2001:db8::9:1]', port: 5060, params: { received: '[2001:db8::9:255]', branch: 'z9hG4bKas3-111' },
    });
    expect(parseVia('SIP/2.0/UDP [2001:db8::9:1];received=2001:db8::9:255;branch=z9hG4bKas3').params).toEqual({ received: '2001:db8::9:255', branch: 'z9hG4bKas3' });
  });
  it('accepts unknown transports', () => {
    expect(parseVia('SIP/2.0/UNKNOWN t4.example.com;branch=z9hG4bKasd0f3en').transport).toBe('UNKNOWN');
  });
  it('rejects malformed values', () => {
    for (const bad of ['', 'SIP/2.0/UDP', 'SIP/2.0 UDP host', 'SIP/2.0/UDP host;', 'SIP/2.0/UDP 192.0.2.15;;', 'SIP/2.0/UDP host:abc',
      'SIP/2.0/UDP host:70000', 'SIP/3.0/UDP host', 'SIP/2.0/UDP 2001:db8::1', 'SIP/2.0/UDP host;branch=a b', 'SIP/2.0/UDP host, SIP/2.0/UDP other']) {
      expect([bad, reason(() => parseVia(bad))]).toEqual([bad, 'Bad Request: malformed Via']);
    }
  });
  it('formats', () => {
    expect(formatVia({ transport: 'TLS', host: '[::1]', port: 5061, params: { branch: 'z9hG4bK1', rport: '5061', received: '::1' } }))
      .toBe('SIP/2.0/TLS [::1]:5061;branch=z9hG4bK1;rport=5061;received=::1');
    expect(formatVia(parseVia('SIP/2.0/UDP h.example.com;branch=z9hG4bK2;rport'))).toBe('SIP/2.0/UDP h.example.com;branch=z9hG4bK2;rport');
  });
});

describe('parseNameAddr / formatNameAddr', () => {
  it('name-addr with quoted display name and params', () => {
    expect(parseNameAddr('"Alice \\"A\\" Liddell" <sip:alice@atlanta.example.com>;tag=1928301774;Expires=60')).toEqual({
      displayName: '"Alice \\"A\\" Liddell"', uri: 'sip:alice@atlanta.example.com', params: { tag: '1928301774', expires: '60' },
    });
  });
  it('token display name and no LWS before <', () => {
    expect(parseNameAddr('Bob Smith<sip:bob@biloxi.example.com>')).toEqual({ displayName: 'Bob Smith', uri: 'sip:bob@biloxi.example.com', params: {} });
    expect(parseNameAddr('<sip:bob@biloxi.example.com;lr>')).toEqual({ uri: 'sip:bob@biloxi.example.com;lr', params: {} });
  });
  it('addr-spec: ; params belong to the header', () => {
    expect(parseNameAddr('sip:caller@example.net;tag=134161461246')).toEqual({ uri: 'sip:caller@example.net', params: { tag: '134161461246' } });
    expect(parseNameAddr(' sip:a@b.example.com ;  tag  = 1918181833n')).toEqual({ uri: 'sip:a@b.example.com', params: { tag: '1918181833n' } });
  });
  it('keeps quoted parameter values', () => {
    const n = parseNameAddr('<sip:bob@192.0.2.4;ob>;+sip.instance="<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>";reg-id=1;q=0.7');
    expect(n.params).toEqual({ '+sip.instance': '"<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>"', 'reg-id': '1', q: '0.7' });
    expect(formatNameAddr(n)).toBe('<sip:bob@192.0.2.4;ob>;+sip.instance="<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>";reg-id=1;q=0.7');
  });
  it('rejects the RFC 4475 malformed forms', () => {
    for (const bad of ['"Mr. J. User <sip:j.user@example.com>', 'Bell, Alexander <sip:a.g.bell@example.com>;tag=43', '"Watson, Thomas" < sip:t.watson@example.org >',
      'sip:user@example.com?Route=%3Csip:sip.example.com%3E', '<sip:a@b', '<sip:a@b> junk', '*', '', '<sip:a@b>;;']) {
      expect([bad, reason(() => parseNameAddr(bad))]).toEqual([bad, 'Bad Request: malformed name-addr']);
    }
  });
  it('formats with <>', () => {
    expect(formatNameAddr({ displayName: '"A"', uri: 'sip:a@b', params: { tag: 'x', lr: null } })).toBe('"A" <sip:a@b>;tag=x;lr');
    expect(formatNameAddr(parseNameAddr('sip:a@b;tag=9'))).toBe('<sip:a@b>;tag=9');
  });
});

describe('parseCSeq', () => {
  it('parses number and method', () => {
    expect(parseCSeq('314159 INVITE')).toEqual({ seq: 314159, method: 'INVITE' });
    expect(parseCSeq(' 0009 \t INVITE ')).toEqual({ seq: 9, method: 'INVITE' });
    expect(parseCSeq('2147483647 X')).toEqual({ seq: 2147483647, method: 'X' });
  });
  it('rejects malformed values', () => {
    for (const bad of ['', 'INVITE', '1', '1INVITE', '-1 INVITE', '2147483648 INVITE', '36893488147419103232 REGISTER', '1 INVITE x', '1 INV@TE']) {
      expect([bad, reason(() => parseCSeq(bad))]).toEqual([bad, 'Bad Request: malformed CSeq']);
    }
  });
});

describe('parseParams / getTag', () => {
  it('parses flags, values and quoted values', () => {
    expect(parseParams(';a=b;c')).toEqual({ a: 'b', c: null });
    expect(parseParams('A = "x;y" ; B')).toEqual({ a: '"x;y"', b: null });
    expect(parseParams('')).toEqual({});
    expect(parseParams(';a=1;a=2')).toEqual({ a: '1' });
    expect(parseParams(';constructor=1;__proto__=2').__proto__).toBe('2');
  });
  it('rejects malformed params', () => {
    for (const bad of [';', ';a=', ';a="x', ';=b', ';a b', ';a;;b']) {
      expect([bad, reason(() => parseParams(bad))]).toEqual([bad, 'Bad Request: malformed parameters']);
    }
  });
  it('getTag', () => {
    expect(getTag('Alice <sip:alice@atlanta.example.com>;tag=1928301774')).toBe('1928301774');
    expect(getTag('sip:alice@atlanta.example.com;tag=88')).toBe('88');
    expect(getTag('<sip:alice@atlanta.example.com;tag=uri-param>')).toBeUndefined();
    expect(getTag('<sip:a@b>;tag')).toBeUndefined();
    expect(getTag('"unterminated <sip:a@b>;tag=1')).toBeUndefined();
  });
});
