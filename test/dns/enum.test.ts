/**
 * ENUM (RFC 6116 / RFC 3761) against a real DNS server (bind9 on loopback with
 * an e164.arpa zone written here): regexp rewriting with back-references,
 * order and preference, services, non-terminal records, several suffixes,
 * unusable regexps refused; then the URI goes through RFC 3263 location.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWithPeers } from '../../interop/harness/peers.js';
import { startNamed, zoneFile, type Named } from '../../interop/harness/named.js';
import { makeTempDir, removeTempDir } from '../../interop/harness/temp-dir.js';
import type { DnsResolver } from '../../src/dns/resolver.js';
import { testResolver } from './test-resolver.js';
import { lookupEnum } from '../../src/dns/enum.js';
import { e164FromUri } from '../../src/dns/e164.js';
import { locateSipServerList } from '../../src/dns/server-location.js';
import { parseUri } from '../../src/sip/uri.js';

// In zone-file strings a backslash escapes the next character: "\\1" is \1 on the wire.
const E164_ARPA = zoneFile(
  'e164.arpa',
  [
    '$ORIGIN 3.8.0.0.6.9.2.3.6.1.4.4.e164.arpa.',
    '@ IN NAPTR 100 20 "u" "E2U+sip" "!^\\\\+44(.*)$!sip:\\\\1@alt.beta.test!" .',
    '@ IN NAPTR 100 10 "u" "E2U+sip" "!^.*$!sip:bob@beta.test!" .',
    '@ IN NAPTR 200 10 "u" "E2U+sip" "!^.*$!sip:never@beta.test!" .',
    '@ IN NAPTR 90 10 "u" "E2U+email:mailto" "!^.*$!mailto:bob@beta.test!" .',
    '$ORIGIN 1.0.0.0.5.5.5.1.e164.arpa.',
    '@ IN NAPTR 10 10 "u" "E2U+sip" "!^(\\\\+?[0-9]+)+$!sip:evil@beta.test!" .',
    '@ IN NAPTR 10 20 "u" "E2U+sip" "!^.*$!http://beta.test/!" .',
    '@ IN NAPTR 20 10 "u" "E2U+sip" "/^\\\\+1555(.*)$/sip:ext\\\\1@beta.test;user=phone/i" .',
    '$ORIGIN 2.0.0.0.5.5.5.1.e164.arpa.',
    '@ IN NAPTR 10 10 "" "E2U+sip" "" nt.e164.arpa.',
    '$ORIGIN e164.arpa.',
    'nt IN NAPTR 10 10 "u" "E2U+sip" "!^(.*)$!sip:\\\\1@gamma.test!" .',
    '$ORIGIN 4.0.0.0.5.5.5.1.e164.arpa.',
    '@ IN NAPTR 10 10 "u" "E2U+sips" "!^.*$!sips:dave@beta.test!" .',
  ].join('\n'),
);
const PRIVATE = zoneFile(
  'e164.example.test',
  ['$ORIGIN 3.0.0.0.5.5.5.1.e164.example.test.', '@ IN NAPTR 10 10 "u" "E2U+sip" "!^.*$!sip:carol@beta.test!" .'].join('\n'),
);
const BETA = zoneFile('beta.test', ['_sips._tcp IN SRV 0 0 5061 sip', 'sip IN A 127.0.0.2', '@ IN NAPTR 10 10 "s" "SIPS+D2T" "" _sips._tcp'].join('\n'));

let dir: string;
let named: Named;
let dns: DnsResolver;
const suffixes = ['e164.arpa', 'e164.example.test'];

describeWithPeers(['named'])('ENUM against bind9', () => {
  beforeAll(async () => {
    dir = makeTempDir('enum');
    named = await startNamed({ dir, zones: { 'e164.arpa': E164_ARPA, 'e164.example.test': PRIVATE, 'beta.test': BETA } });
    dns = testResolver(named.server);
  });
  afterAll(async () => {
    dns?.close();
    await named?.stop();
    removeTempDir(dir);
  });

  it('applies E2U+sip regexps with back-references, lowest order first, by preference inside it', async () => {
    const r = await lookupEnum('+441632960083', { dns, suffixes });
    expect(r.domain).toBe('3.8.0.0.6.9.2.3.6.1.4.4.e164.arpa');
    expect(r.uris.map((u) => [u.uri, u.order, u.preference])).toEqual([
      ['sip:bob@beta.test', 100, 10],
      ['sip:1632960083@alt.beta.test', 100, 20],
    ]);
    expect(r.rejected).toEqual([]);
  });

  it('refuses a nested-quantifier regexp and a non-SIP result, then uses the next order (flag i, user=phone output)', async () => {
    const r = await lookupEnum('+15550001', { dns, suffixes });
    expect(r.uris.map((u) => u.uri)).toEqual(['sip:ext0001@beta.test;user=phone']);
    expect(r.rejected.map((x) => x.reason)).toEqual([
      expect.stringContaining('nested quantifier'),
      expect.stringContaining('regexp output is not a SIP URI'),
    ]);
  });

  it('follows a non-terminal record to the domain it names', async () => {
    const r = await lookupEnum('+15550002', { dns, suffixes });
    expect(r.uris.map((u) => u.uri)).toEqual(['sip:+15550002@gamma.test']);
  });

  it('tries the next suffix when the first has no entry, and gives [] when none has', async () => {
    expect((await lookupEnum('+15550003', { dns, suffixes })).uris.map((u) => u.uri)).toEqual(['sip:carol@beta.test']);
    expect((await lookupEnum('+15550003', { dns, suffixes: ['e164.arpa'] })).uris).toEqual([]);
    expect(await lookupEnum('+99999', { dns, suffixes })).toEqual({ uris: [], rejected: [] });
  });

  it('accepts E2U+sips and rejects what is not a number', async () => {
    expect((await lookupEnum('+15550004', { dns, suffixes })).uris.map((u) => u.uri)).toEqual(['sips:dave@beta.test']);
    await expect(lookupEnum('15550004', { dns, suffixes })).rejects.toThrow(RangeError);
  });

  it('takes a tel: Request-URI through ENUM and RFC 3263 to a TLS target that must name beta.test', async () => {
    const number = e164FromUri(parseUri('tel:+44-1632-960083'));
    expect(number).toBe('+441632960083');
    const { uris } = await lookupEnum(number!, { dns, suffixes });
    const targets = await locateSipServerList(parseUri(uris[0]!.uri), { dns });
    expect(targets).toEqual([{ transport: 'tls', address: '127.0.0.2', port: 5061, tlsName: 'beta.test' }]);
  });
});
