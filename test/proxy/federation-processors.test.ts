/**
 * The federation processors on plain requests: sips-transport (RFC 5630),
 * domain-policy (RFC 5922 §7 mutual TLS, allow/deny lists) with certificates
 * made by openssl from a test CA, and enum-lookup (RFC 6116) against bind9 on
 * loopback with an e164.arpa zone written here.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { describeWithPeers } from '../../interop/harness/peers.js';
import { startNamed, zoneFile, type Named } from '../../interop/harness/named.js';
import { makeTestCa } from '../../interop/harness/test-ca.js';
import { makeTempDir, removeTempDir } from '../../interop/harness/temp-dir.js';
import { FailedTargets } from '../../src/dns/failed-targets.js';
import { silentLogger } from '../../src/log.js';
import type { Federation } from '../../src/proxy/federation.js';
import { domainPolicy } from '../../src/proxy/processors/domain-policy.js';
import { enumLookup, pstnUri } from '../../src/proxy/processors/enum-lookup.js';
import { sipsTransport } from '../../src/proxy/processors/sips-transport.js';
import type { Source } from '../../src/transport/types.js';
import { testResolver } from '../dns/test-resolver.js';
import { DOMAIN, openSipWorld, sipRequest, UA_SOURCE, type SipWorld } from '../helpers/sip-world.js';

const TLS_SOURCE: Source = { ...UA_SOURCE, transport: 'tls', flowId: 'tls-1' };
const FROM_BETA = '<sip:bob@beta.test>;tag=b1';

/** A federation with no DNS server behind it (the processors under test ask none) unless `over` gives one. */
function federation(over: Partial<Federation> = {}): Federation {
  return {
    dns: testResolver('127.0.0.1:9'),
    failedTargets: new FailedTargets(30, 100),
    enumSuffixes: ['e164.arpa'],
    requireTls: true,
    allowDomains: [],
    denyDomains: [],
    wildcards: false,
    logger: silentLogger,
    ...over,
  };
}

describe('sips-transport processor (RFC 5630)', () => {
  let world: SipWorld;
  beforeEach(() => (world = openSipWorld()));
  afterEach(() => world.close());

  it('refuses a sips: request that came over UDP with 480 naming the check', () => {
    expect(sipsTransport.process(world.context(sipRequest('INVITE', `sips:bob@${DOMAIN}`)))).toEqual({
      kind: 'reply',
      status: 480,
      reason: 'Temporarily Unavailable: sips: request over UDP (RFC 5630: TLS on every hop)',
    });
  });

  it('lets a sips: request over TLS, a sip: request over UDP and a REGISTER through', () => {
    expect(sipsTransport.process(world.context(sipRequest('INVITE', `sips:bob@${DOMAIN}`), TLS_SOURCE))).toBe('continue');
    expect(sipsTransport.process(world.context(sipRequest('INVITE', `sip:bob@${DOMAIN}`)))).toBe('continue');
    expect(sipsTransport.process(world.context(sipRequest('REGISTER', `sips:${DOMAIN}`)))).toBe('continue');
  });
});

describeWithPeers(['openssl'])('domain-policy processor (RFC 5922 §7)', () => {
  let dir: string;
  let betaCert: X509Certificate;
  let otherCert: X509Certificate;
  let world: SipWorld;

  beforeAll(async () => {
    dir = makeTempDir('domain-policy');
    const ca = await makeTestCa(dir);
    betaCert = new X509Certificate(readFileSync((await ca.issue('beta', ['beta.test'])).cert));
    otherCert = new X509Certificate(readFileSync((await ca.issue('other', ['other.test'])).cert));
  });
  afterAll(() => removeTempDir(dir));
  afterEach(() => world?.close());

  const invite = () => sipRequest('INVITE', `sip:alice@${DOMAIN}`, { from: FROM_BETA });

  it('does nothing without federation settings or for senders of our domain', () => {
    world = openSipWorld();
    expect(domainPolicy.process(world.context(invite()))).toBe('continue');
    world.close();
    world = openSipWorld({}, { federation: federation() });
    expect(domainPolicy.process(world.context(sipRequest('INVITE', 'sip:carol@far.test')))).toBe('continue');
  });

  it('accepts another domain over TLS whose verified certificate names the From domain', () => {
    world = openSipWorld({}, { federation: federation() });
    expect(domainPolicy.process(world.context(invite(), { ...TLS_SOURCE, tlsPeerCertificate: betaCert }))).toBe('continue');
  });

  it('answers 403 naming the check: not TLS, no certificate, a certificate of another domain', () => {
    world = openSipWorld({}, { federation: federation() });
    const reasonOf = (source: Source) => (domainPolicy.process(world.context(invite(), source)) as { status: number; reason: string });
    expect(reasonOf(UA_SOURCE)).toMatchObject({ status: 403, reason: 'Forbidden: requests from beta.test must come over mutual TLS (federation.require_tls)' });
    expect(reasonOf(TLS_SOURCE)).toMatchObject({ status: 403, reason: 'Forbidden: no verified client certificate from beta.test (RFC 5922 mutual TLS)' });
    expect(reasonOf({ ...TLS_SOURCE, tlsPeerCertificate: otherCert })).toMatchObject({ status: 403, reason: 'Forbidden: the client certificate does not name beta.test (RFC 5922 §7)' });
  });

  it('leaves in-dialog requests along a route it recorded alone (their From is the first request\'s To)', () => {
    world = openSipWorld({}, { federation: federation() });
    const bye = sipRequest('BYE', 'sip:alice@127.0.0.1:40000', { from: FROM_BETA, to: `<sip:alice@${DOMAIN}>;tag=a1` });
    const ctx = world.context(bye);
    ctx.removedRoutes = 1;
    expect(domainPolicy.process(ctx)).toBe('continue');
    expect(domainPolicy.process(world.context(sipRequest('BYE', 'sip:alice@127.0.0.1:40000', { from: FROM_BETA, to: `<sip:alice@${DOMAIN}>;tag=a1` })))).toMatchObject({ status: 403 });
  });

  it('leaves a From whose host is an address alone: it claims no domain', () => {
    world = openSipWorld({}, { federation: federation() });
    expect(domainPolicy.process(world.context(sipRequest('INVITE', `sip:alice@${DOMAIN}`, { from: '<sip:sipp@127.0.0.2>;tag=s1' })))).toBe('continue');
  });

  it('applies deny_domains before allow_domains, and allow_domains when not empty; require_tls false lets plain SIP in', () => {
    world = openSipWorld({}, { federation: federation({ denyDomains: ['beta.test'] }) });
    expect(domainPolicy.process(world.context(invite(), { ...TLS_SOURCE, tlsPeerCertificate: betaCert }))).toMatchObject({ status: 403, reason: 'Forbidden: domain beta.test is in federation.deny_domains' });
    world.close();
    world = openSipWorld({}, { federation: federation({ allowDomains: ['gamma.test'] }) });
    expect(domainPolicy.process(world.context(invite(), { ...TLS_SOURCE, tlsPeerCertificate: betaCert }))).toMatchObject({ status: 403, reason: 'Forbidden: domain beta.test is not in federation.allow_domains' });
    world.close();
    world = openSipWorld({}, { federation: federation({ requireTls: false }) });
    expect(domainPolicy.process(world.context(invite()))).toBe('continue');
  });
});

const NUMBER = '+4930123456';
const LOCAL_NUMBER = '+4930999999';
const ENUM_ZONE = zoneFile(
  'e164.arpa',
  [
    `${NUMBER.slice(1).split('').reverse().join('.')} IN NAPTR 10 10 "u" "E2U+sip" "!^.*$!sip:bob@beta.test!" .`,
    `${NUMBER.slice(1).split('').reverse().join('.')} IN NAPTR 20 10 "u" "E2U+sip" "!^.*$!sip:bob@backup.beta.test!" .`,
    `${LOCAL_NUMBER.slice(1).split('').reverse().join('.')} IN NAPTR 10 10 "u" "E2U+sip" "!^.*$!sip:carol@${DOMAIN}!" .`,
  ].join('\n'),
);

describeWithPeers(['named'])('enum-lookup processor (RFC 6116)', () => {
  let dir: string;
  let named: Named;
  let world: SipWorld;

  beforeAll(async () => {
    dir = makeTempDir('enum-processor');
    named = await startNamed({ dir, zones: { 'e164.arpa': ENUM_ZONE } });
  }, 30_000);
  afterAll(async () => {
    await named?.stop();
    removeTempDir(dir);
  });
  afterEach(() => world?.close());

  const withDns = (over: Partial<Federation> = {}) => openSipWorld({}, { federation: federation({ dns: testResolver(named.server), ...over }) });

  it('retargets a number a local user owns to that user, without DNS', async () => {
    world = openSipWorld({}, { federation: federation({ phoneOwner: (n) => (n === '+15551234' ? { user: 'dave', domain: DOMAIN } : undefined) }) });
    const ctx = world.context(sipRequest('INVITE', 'tel:+1-555-1234'));
    expect(await enumLookup.process(ctx)).toBe('continue');
    expect(ctx.req.uri).toBe(`sip:dave@${DOMAIN}`);
  });

  it('turns a number into the ENUM URIs, one target group each, by order', async () => {
    world = withDns();
    const outcome = await enumLookup.process(world.context(sipRequest('INVITE', `sip:${NUMBER}@${DOMAIN};user=phone`)));
    // Only the best order is used (RFC 3403 §4.1).
    expect(outcome).toEqual({ kind: 'forward', targets: [[{ uri: 'sip:bob@beta.test' }]] });
  });

  it('retargets to an ENUM URI of our own domain and lets location lookup go on', async () => {
    world = withDns();
    const ctx = world.context(sipRequest('INVITE', `tel:${LOCAL_NUMBER}`));
    expect(await enumLookup.process(ctx)).toBe('continue');
    expect(ctx.req.uri).toBe(`sip:carol@${DOMAIN}`);
  });

  it('without an ENUM entry: the PSTN route with the number, else 404; senders of other domains get 404', async () => {
    world = withDns({ pstnRoute: 'sip:gw.example.test;transport=tls' });
    expect(await enumLookup.process(world.context(sipRequest('INVITE', 'tel:+4930111111')))).toEqual({
      kind: 'forward',
      targets: [[{ uri: 'sip:+4930111111@gw.example.test;transport=tls;user=phone' }]],
    });
    world.close();
    world = withDns();
    expect(await enumLookup.process(world.context(sipRequest('INVITE', 'tel:+4930111111')))).toEqual({ kind: 'reply', status: 404, reason: 'Not Found: no ENUM entry for +4930111111' });
    expect(await enumLookup.process(world.context(sipRequest('INVITE', `tel:${NUMBER}`, { from: FROM_BETA })))).toEqual({ kind: 'reply', status: 404, reason: 'Not Found' });
  });

  it('leaves URIs that are no E.164 number alone', async () => {
    world = withDns();
    expect(await enumLookup.process(world.context(sipRequest('INVITE', `sip:bob@${DOMAIN}`)))).toBe('continue');
    expect(pstnUri('sip:pstn@gw.test', '+1555')).toBe('sip:+1555@gw.test;user=phone');
  });
});
