import { describe, expect, it } from 'vitest';
import { formatUri, hostPort, isIPv4, isIPv6Reference, parseUri, unescapeUri, uriEquals } from '../../src/sip/uri.js';
import { SipParseError } from '../../src/sip/errors.js';

function status(f: () => unknown): number {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(SipParseError);
    return (e as SipParseError).status;
  }
  return 0;
}

describe('parseUri', () => {
  it('parses every component', () => {
    const u = parseUri('SIPS:alice:secret@Atlanta.Example.COM:5061;Transport=TCP;lr;maddr=239.255.255.1?Subject=project%20x&Priority=urgent');
    expect(u).toEqual({
      scheme: 'sips', user: 'alice', password: 'secret', host: 'atlanta.example.com', port: 5061,
      params: { transport: 'TCP', lr: null, maddr: '239.255.255.1' },
      headers: { Subject: 'project%20x', Priority: 'urgent' },
    });
    expect(hostPort(u)).toBe('atlanta.example.com:5061');
  });

  it('parses a host-only URI', () => {
    expect(parseUri('sip:example.com')).toEqual({ scheme: 'sip', host: 'example.com', params: {}, headers: {} });
    expect(parseUri('sip:192.0.2.4:5060')).toMatchObject({ host: '192.0.2.4', port: 5060 });
  });

  it('handles RFC 5118 IPv6 references', () => {
    expect(parseUri('sip:[2001:db8::10]')).toMatchObject({ host: '[2001:db8::10]' });
    expect(parseUri('sip:user@[2001:DB8::10]:5070')).toMatchObject({ user: 'user', host: '[2001:db8::10]', port: 5070 });
    expect(parseUri('sip:[2001:db8::10:5070]').port).toBeUndefined();
    expect(parseUri('sip:[::ffff:192.0.2.1];transport=udp')).toMatchObject({ host: '[::ffff:192.0.2.1]', params: { transport: 'udp' } });
    expect(parseUri('sip:[2001:db8:::192.0.2.1]').host).toBe('[2001:db8:::192.0.2.1]');
    expect(parseUri('sip:[::1]').host).toBe('[::1]');
    expect(status(() => parseUri('sip:user@2001:db8::10'))).toBe(400);
    expect(status(() => parseUri('sip:[2001:db8::10'))).toBe(400);
    expect(status(() => parseUri('sip:[2001:db8::g]'))).toBe(400);
    expect(status(() => parseUri('sip:[1:2:3:4:5:6:7:8:9]'))).toBe(400);
    expect(status(() => parseUri('sip:[1::2::3]'))).toBe(400);
  });

  it('keeps escapes and ;-params in the user part (RFC 4475 §3.1.1.3, §3.1.1.9)', () => {
    const u = parseUri('sip:user;par=u%40example.net@example.com');
    expect(u.user).toBe('user;par=u%40example.net');
    expect(unescapeUri(u.user!)).toBe('user;par=u@example.net');
    expect(u.host).toBe('example.com');
    expect(parseUri('sip:null-%00-null@example.com').user).toBe('null-%00-null');
    expect(parseUri('sip:+1-212-555-1212:1234@gateway.com;user=phone')).toMatchObject({ user: '+1-212-555-1212', password: '1234', params: { user: 'phone' } });
  });

  it('reads tel: URIs minimally', () => {
    expect(parseUri('tel:+1-201-555-0123;phone-context=example.com')).toEqual({
      scheme: 'tel', user: '+1-201-555-0123', host: '', params: { 'phone-context': 'example.com' }, headers: {},
    });
  });

  it('rejects malformed URIs with 400 and other schemes with 416', () => {
    for (const bad of ['sip:', 'sip:user@', 'sip:a b@example.com', 'sip:example.com:99999', 'sip:example.com:5x', 'sip:example.com;;lr',
      'sip:example.com;a=', 'sip:us%4@example.com', 'example.com', '<sip:a@b>', 'sip:a@ex ample.com', 'sip:example.com?x', 'sip:-a..b']) {
      expect([bad, status(() => parseUri(bad))]).toEqual([bad, 400]);
    }
    expect(status(() => parseUri('http://example.com/'))).toBe(416);
  });

  it('formatUri round-trips normal URIs', () => {
    for (const s of ['sip:alice@atlanta.example.com', 'sips:bob:pw@[2001:db8::1]:5061;transport=tcp;lr', 'sip:example.com;maddr=[::1]?to=sip:bob%40biloxi.com&x=y',
      'tel:+15551234;phone-context=example.com', 'sip:user;par=u%40example.net@example.com']) {
      expect(formatUri(parseUri(s))).toBe(s);
    }
  });

  it('classifies hosts', () => {
    expect(isIPv4('192.0.2.255')).toBe(true);
    expect(isIPv4('192.0.2.256')).toBe(false);
    expect(isIPv4('192.0.2')).toBe(false);
    expect(isIPv4('1.2.3.4.5')).toBe(false);
    expect(isIPv6Reference('[2001:db8::1]')).toBe(true);
    expect(isIPv6Reference('2001:db8::1')).toBe(false);
    expect(isIPv6Reference('[example.com]')).toBe(false);
  });
});

describe('uriEquals (RFC 3261 §19.1.4)', () => {
  const eq = (a: string, b: string) => uriEquals(parseUri(a), parseUri(b));
  it('equivalent URIs', () => {
    expect(eq('sip:%61lice@atlanta.com;transport=TCP', 'sip:alice@AtLanTa.CoM;Transport=tcp')).toBe(true);
    expect(eq('sip:carol@chicago.com', 'sip:carol@chicago.com;newparam=5')).toBe(true);
    expect(eq('sip:carol@chicago.com', 'sip:carol@chicago.com;security=on')).toBe(true);
    expect(eq('sip:carol@chicago.com;newparam=5', 'sip:carol@chicago.com;security=on')).toBe(true);
    expect(eq('sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com', 'sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com')).toBe(true);
    expect(eq('sip:alice@atlanta.com?subject=project%20x&priority=urgent', 'sip:alice@atlanta.com?priority=urgent&subject=project%20x')).toBe(true);
  });
  it('non-equivalent URIs', () => {
    expect(eq('SIP:ALICE@AtLanTa.CoM;Transport=udp', 'sip:alice@AtLanTa.CoM;Transport=UDP')).toBe(false);
    expect(eq('sip:bob@biloxi.com', 'sip:bob@biloxi.com:5060')).toBe(false);
    expect(eq('sip:bob@biloxi.com', 'sip:bob@biloxi.com;transport=udp')).toBe(false);
    expect(eq('sip:bob@biloxi.com', 'sip:bob@biloxi.com:6000;transport=tcp')).toBe(false);
    expect(eq('sip:carol@chicago.com', 'sip:carol@chicago.com?Subject=next%20meeting')).toBe(false);
    expect(eq('sip:bob@phone21.boxesbybob.com', 'sip:bob@192.0.2.4')).toBe(false);
    expect(eq('sip:carol@chicago.com;security=on', 'sip:carol@chicago.com;security=off')).toBe(false);
    expect(eq('sip:alice@atlanta.com', 'sips:alice@atlanta.com')).toBe(false);
    expect(eq('sip:alice:a@atlanta.com', 'sip:alice:b@atlanta.com')).toBe(false);
  });
});
