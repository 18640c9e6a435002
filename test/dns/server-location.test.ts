/**
 * RFC 3263 §4 server location against a real DNS server (bind9 `named` on
 * loopback, started here with zones written here): NAPTR → SRV → A/AAAA,
 * SRV priorities and weights, SRV-only and A-only domains, AAAA, explicit
 * ports, numeric hosts, sips: filtering, negative caching, TTL expiry and the
 * failed-target table.
 */
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { describeWithPeers } from '../../interop/harness/peers.js';
import { startNamed, zoneFile, type Named } from '../../interop/harness/named.js';
import { makeTempDir, removeTempDir } from '../../interop/harness/temp-dir.js';
import { DnsLookupError, type DnsResolver, type DnsResolverOptions } from '../../src/dns/resolver.js';
import { testResolver } from './test-resolver.js';
import { FailedTargets } from '../../src/dns/failed-targets.js';
import { locateSipServerList, locateSipServers, type LocateOptions, type SipTarget } from '../../src/dns/server-location.js';
import { parseUri } from '../../src/sip/uri.js';
import { SipError } from '../../src/sip/errors.js';

const BETA = (serial: number, extra = ''): string =>
  zoneFile(
    'beta.test',
    [
      '@ IN NAPTR 10 50 "s" "SIPS+D2T" "" _sips._tcp.beta.test.',
      '@ IN NAPTR 20 50 "s" "SIP+D2U" "" _sip._udp.beta.test.',
      '@ IN NAPTR 30 50 "s" "SIP+D2X" "" _sip._x.beta.test.',
      '@ IN A 127.0.0.9',
      '_sips._tcp IN SRV 10 50 5061 sip1',
      '_sip._udp IN SRV 10 50 5070 sip2',
      'sip1 IN A 127.0.0.2',
      'sip1 IN AAAA ::1',
      'sip2 IN A 127.0.0.3',
      'ttl5 5 IN A 127.0.0.10',
      extra,
    ].join('\n'),
    60,
    serial,
  );

const ZONES = {
  'beta.test': BETA(1),
  'weighted.test': zoneFile(
    'weighted.test',
    [
      '_sip._udp IN SRV 10 90 5060 heavy',
      '_sip._udp IN SRV 10 10 5060 light',
      '_sip._udp IN SRV 20 0 5062 backup',
      'heavy IN A 127.0.1.1',
      'light IN A 127.0.1.2',
      'backup IN A 127.0.1.3',
    ].join('\n'),
  ),
  'srvonly.test': zoneFile('srvonly.test', ['_sip._tcp IN SRV 0 0 5080 pbx', 'pbx IN A 127.0.0.4'].join('\n')),
  'aonly.test': zoneFile('aonly.test', '@ IN A 127.0.0.5'),
  'v6.test': zoneFile('v6.test', ['@ IN A 127.0.0.6', '@ IN AAAA ::1'].join('\n')),
  'plain.test': zoneFile(
    'plain.test',
    ['@ IN NAPTR 10 50 "s" "SIP+D2U" "" _sip._udp.plain.test.', '_sip._udp IN SRV 0 0 5060 @', '@ IN A 127.0.0.8'].join('\n'),
  ),
};

let dir: string;
let named: Named;
let nowMs = 1_000_000;
let resolver: DnsResolver;

function newResolver(over: Partial<DnsResolverOptions> = {}): DnsResolver {
  return testResolver(named.server, { nowMs: () => nowMs, ...over });
}

function locate(uri: string, opts: Partial<LocateOptions> = {}): Promise<SipTarget[]> {
  return locateSipServerList(parseUri(uri), { dns: resolver, ...opts });
}

const t = (transport: SipTarget['transport'], address: string, port: number, tlsName: string): SipTarget => ({ transport, address, port, tlsName });

describeWithPeers(['named'])('RFC 3263 server location against bind9', () => {
  beforeAll(async () => {
    dir = makeTempDir('dns');
    named = await startNamed({ dir, zones: ZONES });
  });
  afterAll(async () => {
    await named?.stop();
    if (process.env.DEBUG_NAMED) console.log(named.process.output());
    removeTempDir(dir);
  });
  beforeEach(() => {
    resolver?.close();
    resolver = newResolver();
  });

  it('follows NAPTR → SRV → A/AAAA in NAPTR order, leaving out services we do not know', async () => {
    expect(await locate('sip:bob@beta.test')).toEqual([
      t('tls', '127.0.0.2', 5061, 'beta.test'),
      t('tls', '::1', 5061, 'beta.test'),
      t('udp', '127.0.0.3', 5070, 'beta.test'),
    ]);
  });

  it('keeps only SIPS+ services for sips:, and only the transports we have', async () => {
    expect(await locate('sips:bob@beta.test')).toEqual([t('tls', '127.0.0.2', 5061, 'beta.test'), t('tls', '::1', 5061, 'beta.test')]);
    expect(await locate('sip:bob@beta.test', { transports: ['udp'] })).toEqual([t('udp', '127.0.0.3', 5070, 'beta.test')]);
    // plain.test publishes only SIP+D2U: a sips: request never goes to UDP.
    const sips = await locate('sips:carol@plain.test');
    expect(sips).toEqual([t('tls', '127.0.0.8', 5061, 'plain.test')]);
  });

  it('is lazy: the first target comes before the later NAPTR branches are asked', async () => {
    const it = locateSipServers(parseUri('sip:bob@beta.test'), { dns: resolver })[Symbol.asyncIterator]();
    expect((await it.next()).value).toEqual(t('tls', '127.0.0.2', 5061, 'beta.test'));
    const before = resolver.queries;
    await it.return?.(undefined);
    expect(before).toBe(4); // NAPTR, SRV _sips._tcp, A and AAAA of sip1; not yet SRV _sip._udp
  });

  it('uses the transport parameter: SRV of that transport only, no NAPTR', async () => {
    expect(await locate('sip:bob@beta.test;transport=udp')).toEqual([t('udp', '127.0.0.3', 5070, 'beta.test')]);
    // No _sip._tcp record: A of the host, default port.
    expect(await locate('sip:bob@beta.test;transport=tcp')).toEqual([t('tcp', '127.0.0.9', 5060, 'beta.test')]);
    await expect(locate('sip:bob@beta.test;transport=sctp')).rejects.toMatchObject({ status: 503 });
    await expect(locate('sips:bob@beta.test;transport=udp')).rejects.toMatchObject({ status: 400 });
  });

  it('skips NAPTR and SRV for an explicit port (A/AAAA of the host, that port)', async () => {
    expect(await locate('sip:bob@beta.test:5099')).toEqual([t('udp', '127.0.0.9', 5099, 'beta.test')]);
    expect(await locate('sip:bob@beta.test:5099;transport=tcp')).toEqual([t('tcp', '127.0.0.9', 5099, 'beta.test')]);
    expect(await locate('sips:bob@beta.test:5999')).toEqual([t('tls', '127.0.0.9', 5999, 'beta.test')]);
    expect(await locate('sip:bob@beta.test:5099', { transports: ['tcp', 'tls'] })).toEqual([t('tcp', '127.0.0.9', 5099, 'beta.test')]);
  });

  it('asks no DNS at all for a numeric host (IPv4, IPv6, maddr)', async () => {
    expect(await locate('sip:bob@127.0.0.7')).toEqual([t('udp', '127.0.0.7', 5060, '127.0.0.7')]);
    expect(await locate('sips:bob@[::1]')).toEqual([t('tls', '::1', 5061, '::1')]);
    expect(await locate('sip:bob@beta.test;maddr=127.0.0.12;transport=tcp')).toEqual([t('tcp', '127.0.0.12', 5060, '127.0.0.12')]);
    await expect(locate('sips:bob@127.0.0.7', { transports: ['udp', 'tcp'] })).rejects.toMatchObject({
      status: 503,
      reason: 'Service Unavailable: no tls transport for 127.0.0.7',
    });
    expect(resolver.queries).toBe(0);
  });

  it('uses SRV when there is no NAPTR, and A when there is neither', async () => {
    expect(await locate('sip:bob@srvonly.test')).toEqual([t('tcp', '127.0.0.4', 5080, 'srvonly.test')]);
    expect(await locate('sip:bob@aonly.test')).toEqual([t('udp', '127.0.0.5', 5060, 'aonly.test')]);
    expect(await locate('sips:bob@aonly.test')).toEqual([t('tls', '127.0.0.5', 5061, 'aonly.test')]);
    expect(await locate('sip:bob@aonly.test', { transports: ['tcp', 'tls'] })).toEqual([t('tcp', '127.0.0.5', 5060, 'aonly.test')]);
  });

  it('includes AAAA targets, after A unless IPv6 is preferred, and honours the families we can send to', async () => {
    expect(await locate('sip:bob@v6.test')).toEqual([t('udp', '127.0.0.6', 5060, 'v6.test'), t('udp', '::1', 5060, 'v6.test')]);
    expect(await locate('sip:bob@v6.test', { preferIpv6: true })).toEqual([t('udp', '::1', 5060, 'v6.test'), t('udp', '127.0.0.6', 5060, 'v6.test')]);
    expect(await locate('sip:bob@v6.test', { families: [6] })).toEqual([t('udp', '::1', 5060, 'v6.test')]);
  });

  it('orders SRV by priority and picks by weight inside a priority (90/10 over many picks)', async () => {
    let heavyFirst = 0;
    const picks = 2000;
    for (let i = 0; i < picks; i++) {
      const list = await locate('sip:bob@weighted.test');
      expect(list).toHaveLength(3);
      expect(list[2]).toEqual(t('udp', '127.0.1.3', 5062, 'weighted.test'));
      if (list[0]!.address === '127.0.1.1') heavyFirst++;
      else expect(list[0]!.address).toBe('127.0.1.2');
    }
    // Binomial(2000, 0.9 * 91/101 + ...): the exact RFC 2782 pick gives heavy first with p = 91/101 ≈ 0.90; sd ≈ 0.7 %.
    expect(heavyFirst / picks).toBeGreaterThan(0.85);
    expect(heavyFirst / picks).toBeLessThan(0.95);
    // Every answer came from the cache after the first lookups.
    expect(resolver.queries).toBe(10); // NAPTR, 3 SRV, A and AAAA of 3 hosts
  });

  it('caches negative answers briefly, then asks again', async () => {
    await expect(locate('sip:bob@later.beta.test')).rejects.toMatchObject({ status: 503, reason: 'Service Unavailable: cannot resolve later.beta.test' });
    await named.reload({ 'beta.test': BETA(2, 'later IN A 127.0.0.11') });
    nowMs += 10_000; // within negative_ttl_seconds (30 s)
    await expect(locate('sip:bob@later.beta.test')).rejects.toBeInstanceOf(SipError);
    nowMs += 25_000;
    expect(await locate('sip:bob@later.beta.test')).toEqual([t('udp', '127.0.0.11', 5060, 'later.beta.test')]);
  });

  it('keeps an A answer for its TTL and no longer', async () => {
    await named.reload({ 'beta.test': BETA(3) });
    expect(await locate('sip:bob@ttl5.beta.test:5060')).toEqual([t('udp', '127.0.0.10', 5060, 'ttl5.beta.test')]);
    await named.reload({ 'beta.test': BETA(4).replace('ttl5 5 IN A 127.0.0.10', 'ttl5 5 IN A 127.0.0.13') });
    nowMs += 4000;
    expect((await locate('sip:bob@ttl5.beta.test:5060'))[0]!.address).toBe('127.0.0.10');
    nowMs += 2000;
    expect((await locate('sip:bob@ttl5.beta.test:5060'))[0]!.address).toBe('127.0.0.13');
  });

  it('keeps NAPTR/SRV answers for naptr_srv_ttl_seconds (c-ares gives no TTL for them), then asks again', async () => {
    const zone = (serial: number, port: number): string =>
      zoneFile('srvonly.test', [`_sip._tcp IN SRV 0 0 ${port} pbx`, 'pbx IN A 127.0.0.4'].join('\n'), 60, serial);
    expect((await locate('sip:bob@srvonly.test'))[0]!.port).toBe(5080);
    await named.reload({ 'srvonly.test': zone(2, 5081) });
    nowMs += 59_000;
    expect((await locate('sip:bob@srvonly.test'))[0]!.port).toBe(5080);
    nowMs += 2000;
    expect((await locate('sip:bob@srvonly.test'))[0]!.port).toBe(5081);
    await named.reload({ 'srvonly.test': zone(3, 5080) });
  });

  it('skips a failed target for dns.failed_target_seconds', async () => {
    const failed = new FailedTargets(30, 10, () => nowMs);
    failed.markFailed({ transport: 'tls', address: '127.0.0.2', port: 5061 }, 'ECONNREFUSED');
    expect(await locate('sip:bob@beta.test', { failed })).toEqual([t('tls', '::1', 5061, 'beta.test'), t('udp', '127.0.0.3', 5070, 'beta.test')]);
    failed.markFailed({ transport: 'udp', address: '127.0.0.5', port: 5060 }, '503');
    await expect(locate('sip:bob@aonly.test', { failed })).rejects.toMatchObject({
      status: 503,
      reason: 'Service Unavailable: every server of aonly.test failed in the last seconds',
    });
    nowMs += 31_000;
    expect((await locate('sip:bob@beta.test', { failed }))[0]).toEqual(t('tls', '127.0.0.2', 5061, 'beta.test'));
    expect(await locate('sip:bob@aonly.test', { failed })).toEqual([t('udp', '127.0.0.5', 5060, 'aonly.test')]);
  });

  it('answers 503 naming the DNS failure when the server does not answer', async () => {
    const port = named.port;
    const dead = newResolver({ servers: [`127.0.0.1:${port === 65535 ? port - 1 : port + 1}`], timeout_ms: 200, tries: 1 });
    const err = await locate('sip:bob@beta.test', { dns: dead }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DnsLookupError);
    expect(err).toMatchObject({ status: 503, queryType: 'NAPTR', queryName: 'beta.test' });
    expect((err as DnsLookupError).reason).toMatch(/^Service Unavailable: DNS NAPTR beta\.test failed \((ECONNREFUSED|ETIMEOUT)\)$/);
    dead.close();
  });
});
