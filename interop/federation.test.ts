/**
 * Federation between two domains, against real peers on loopback:
 * bind9 serves alpha.test, beta.test, mallory.test and an ENUM zone; two
 * rtcedge processes serve alpha.test (127.0.0.2) and beta.test (127.0.0.3),
 * each with a certificate from a test CA made here with openssl; baresip
 * alice (registered at alpha) calls baresip bob (registered at beta):
 * - by SIP URI: the first-priority SRV target of beta.test (127.0.0.4) is
 *   down, the INVITE reaches beta within 3 s, over TLS with both
 *   certificates verified (the servers' logs name the verified peer domain);
 * - by E.164 number: ENUM (e164.arpa) turns it into bob's SIP URI;
 * - mallory.test presents a certificate naming another domain: the call
 *   fails (503) and nothing but the TLS handshake reached mallory (its
 *   UDP/TCP 5060 and its TLS application data stay empty), though its NAPTR
 *   also offers UDP;
 * - Kamailio serves gamma.test (127.0.0.6) with mutual TLS (its certificate
 *   from the same CA, peers must present one): alice calls carol@gamma.test
 *   (located by DNS, TLS verified), and carol calls alice@alpha.test through
 *   Kamailio (alpha verifies Kamailio's client certificate names gamma.test).
 *
 * Ports: rtcedge 5060/5061 on 127.0.0.2 and 127.0.0.3; mallory 5060/5061 on
 * 127.0.0.5; Kamailio 5060/5061 on 127.0.0.6; baresip alice 26100, bob 26200,
 * carol 26700 (127.0.0.1); ctrl 26444/26445/26446; RTP 26300-26399 /
 * 26400-26499 / 26500-26599; named on a free port.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import tls from 'node:tls';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWithPeers } from './harness/peers.js';
import { startBaresip, type BaresipUa } from './harness/baresip.js';
import { startNamed, zoneFile, type Named } from './harness/named.js';
import { assertPortsFree } from './harness/ports.js';
import { stopAllStarted } from './harness/process.js';
import { startRtcedge, type Rtcedge } from './harness/rtcedge.js';
import { makeTestCa } from './harness/test-ca.js';
import { startKamailio, type Kamailio } from './harness/kamailio.js';
import { makeTempDir, removeTempDir } from './harness/temp-dir.js';

const ALPHA = '127.0.0.2';
const BETA = '127.0.0.3';
const DOWN = '127.0.0.4';
const MALLORY = '127.0.0.5';
const GAMMA = '127.0.0.6';
const ALICE_PW = 'alice-fed-1';
const BOB_PW = 'bob-fed-2';
const BOB_NUMBER = '+4930123456';

const ZONES = {
  'alpha.test': zoneFile(
    'alpha.test',
    ['@ IN NAPTR 10 10 "s" "SIPS+D2T" "" _sips._tcp.alpha.test.', '_sips._tcp IN SRV 10 0 5061 sip.alpha.test.', `sip IN A ${ALPHA}`].join('\n'),
  ),
  'beta.test': zoneFile(
    'beta.test',
    [
      '@ IN NAPTR 10 10 "s" "SIPS+D2T" "" _sips._tcp.beta.test.',
      '@ IN NAPTR 20 10 "s" "SIP+D2U" "" _sip._udp.beta.test.',
      // The first-priority server is down (nothing listens on 127.0.0.4).
      '_sips._tcp IN SRV 10 0 5061 down.beta.test.',
      '_sips._tcp IN SRV 20 0 5061 sip.beta.test.',
      '_sip._udp IN SRV 10 0 5060 sip.beta.test.',
      `down IN A ${DOWN}`,
      `sip IN A ${BETA}`,
    ].join('\n'),
  ),
  'mallory.test': zoneFile(
    'mallory.test',
    [
      '@ IN NAPTR 10 10 "s" "SIPS+D2T" "" _sips._tcp.mallory.test.',
      '@ IN NAPTR 20 10 "s" "SIP+D2U" "" _sip._udp.mallory.test.',
      '_sips._tcp IN SRV 10 0 5061 sip.mallory.test.',
      '_sip._udp IN SRV 10 0 5060 sip.mallory.test.',
      `sip IN A ${MALLORY}`,
    ].join('\n'),
  ),
  'gamma.test': zoneFile(
    'gamma.test',
    ['@ IN NAPTR 10 10 "s" "SIPS+D2T" "" _sips._tcp.gamma.test.', '_sips._tcp IN SRV 10 0 5061 sip.gamma.test.', `sip IN A ${GAMMA}`].join('\n'),
  ),
  'e164.arpa': zoneFile('e164.arpa', `${BOB_NUMBER.slice(1).split('').reverse().join('.')} IN NAPTR 10 10 "u" "E2U+sip" "!^.*$!sip:bob@beta.test!" .`),
};

/** What reached mallory's listeners. */
const malloryGot = { udp: 0, tcp: 0, tlsData: 0, tlsHandshakes: 0 };

describeWithPeers(['baresip', 'named', 'openssl', 'kamailio'])('federation: alpha.test calls beta.test over verified TLS located by DNS', () => {
  let dir: string;
  let named: Named | undefined;
  let alpha: Rtcedge | undefined;
  let beta: Rtcedge | undefined;
  let alice: BaresipUa | undefined;
  let bob: BaresipUa | undefined;
  let carol: BaresipUa | undefined;
  let kamailio: Kamailio | undefined;
  const closers: (() => void)[] = [];

  beforeAll(async () => {
    await assertPortsFree(ALPHA, [5060, 5061]);
    await assertPortsFree(BETA, [5060, 5061]);
    await assertPortsFree(GAMMA, [5060, 5061]);
    await assertPortsFree('127.0.0.1', [26100, 26101, 26200, 26201, 26700, 26701, 26444, 26445, 26446]);
    dir = makeTempDir('federation');
    named = await startNamed({ dir, zones: ZONES });
    const ca = await makeTestCa(dir);
    const alphaCert = await ca.issue('alpha', ['alpha.test']);
    const betaCert = await ca.issue('beta', ['beta.test']);
    const malloryCert = await ca.issue('mallory', ['other.test']);
    const gammaCert = await ca.issue('gamma', ['gamma.test']);
    const gammaDir = join(dir, 'gamma');
    mkdirSync(gammaDir);
    kamailio = await startKamailio({
      dir: gammaDir,
      domain: 'gamma.test',
      address: GAMMA,
      ...gammaCert,
      ca: ca.cert,
      peers: { 'alpha.test': `sip:${ALPHA}:5061;transport=tls` },
    });

    // mallory: a TLS server with a certificate naming other.test, and UDP/TCP listeners that count.
    const tlsServer = tls.createServer({ cert: readFileSync(malloryCert.cert), key: readFileSync(malloryCert.key) }, (s) => {
      malloryGot.tlsHandshakes++;
      s.on('data', () => malloryGot.tlsData++);
      s.on('error', () => {});
    });
    tlsServer.on('tlsClientError', () => {});
    const tcpServer = net.createServer((s) => {
      malloryGot.tcp++;
      s.on('error', () => {});
    });
    const udp = dgram.createSocket('udp4');
    udp.on('message', () => malloryGot.udp++);
    await Promise.all([
      new Promise<void>((r) => tlsServer.listen(5061, MALLORY, r)),
      new Promise<void>((r) => tcpServer.listen(5060, MALLORY, r)),
      new Promise<void>((r) => udp.bind(5060, MALLORY, r)),
    ]);
    closers.push(() => tlsServer.close(), () => tcpServer.close(), () => udp.close());

    const serverConfig = (domain: string, address: string, cert: { cert: string; key: string }) => ({
      domains: [domain],
      sip: {
        listen: [
          { transport: 'udp', host: address, port: 5060 },
          { transport: 'tcp', host: address, port: 5060 },
          { transport: 'tls', host: address, port: 5061 },
        ],
        tls: { cert: cert.cert, key: cert.key },
      },
      dns: { servers: [named!.server] },
      federation: { require_tls: true, ca: [ca.cert], system_ca: false },
    });
    alpha = await startRtcedge({ dir: join(dir, 'alpha'), config: serverConfig('alpha.test', ALPHA, alphaCert), users: [{ aor: 'alice@alpha.test', password: ALICE_PW }] });
    beta = await startRtcedge({ dir: join(dir, 'beta'), config: serverConfig('beta.test', BETA, betaCert), users: [{ aor: 'bob@beta.test', password: BOB_PW }] });

    /** A baresip UA registered (auto-answering) at the server on `proxy` as `aor`; `n` picks its ports. */
    const ua = (name: string, n: number, aor: string, proxy: string, password?: string) =>
      startBaresip({
        name,
        parentDir: dir,
        sipPort: [26100, 26200, 26700][n],
        ctrlPort: 26444 + n,
        rtpPorts: [26300 + 100 * n, 26399 + 100 * n],
        accounts: [{ aor, password, regint: 3600, answermode: 'auto', outbound: `sip:${proxy}:5060` }],
        lifetimeS: 140,
      });
    alice = await ua('alice', 0, 'sip:alice@alpha.test', ALPHA, ALICE_PW);
    bob = await ua('bob', 1, 'sip:bob@beta.test', BETA, BOB_PW);
    carol = await ua('carol', 2, 'sip:carol@gamma.test', GAMMA);
    await Promise.all([alice.waitForRegistered(10_000), bob.waitForRegistered(10_000), carol.waitForRegistered(10_000)]);
  }, 90_000);

  afterAll(async () => {
    await Promise.all([alice?.stop(), bob?.stop(), carol?.stop()]);
    await Promise.all([alpha?.stop(), beta?.stop(), kamailio?.stop()]);
    await named?.stop();
    for (const c of closers) c();
    await stopAllStarted();
    removeTempDir(dir);
  });

  /** Dials `uri` from `caller`, waits until both sides have the call, and `hangsUp` ends it; resolves when the callee saw the end. */
  async function call(caller: BaresipUa, callee: BaresipUa, uri: string, hangsUp: BaresipUa = caller): Promise<void> {
    const a0 = caller.events.length;
    const b0 = callee.events.length;
    expect((await caller.dial(uri)).ok).toBe(true);
    await caller.waitForEventType('CALL_ESTABLISHED', 15_000, a0);
    await callee.waitForEventType('CALL_ESTABLISHED', 15_000, b0);
    expect((await hangsUp.hangup()).ok).toBe(true);
    await (hangsUp === caller ? callee : caller).waitForEventType('CALL_CLOSED', 10_000, hangsUp === caller ? b0 : a0);
  }

  /**
   * The first line of `server`'s log from index `from` on that `pred` accepts, waited for: the server's log
   * lines reach the harness through its stdout pipe, on a busy machine well after the peers saw the messages
   * (so a line read at once may be missing, and one of the previous call may still arrive after `from`).
   */
  const logged = (server: Rtcedge, pred: (l: Record<string, unknown>) => boolean, from = 0) => server.waitForLog(pred, 10_000, from);
  const isInvite = (l: Record<string, unknown>, msg: 'sip recv' | 'sip send', callId?: unknown) =>
    l.msg === msg && /^INVITE /.test(String(l.startLine)) && (callId === undefined || l.callId === callId);

  /** Dials `uri` from alice to bob (bob hangs up when `bobHangsUp`); returns the Call-ID and the time (ms) from alpha receiving the INVITE to beta receiving it. */
  async function callBob(uri: string, bobHangsUp = false): Promise<{ callId: string; elapsedMs: number }> {
    const alphaFrom = alpha!.logs.length;
    const betaFrom = beta!.logs.length;
    await call(alice!, bob!, uri, bobHangsUp ? bob! : alice!);
    const atAlpha = await logged(alpha!, (l) => isInvite(l, 'sip recv'), alphaFrom);
    const atBeta = await logged(beta!, (l) => isInvite(l, 'sip recv', atAlpha.callId), betaFrom);
    // The inter-domain hop is TLS, from alpha's listener address.
    expect(atBeta.transport).toBe('tls');
    expect(String(atBeta.remote)).toMatch(new RegExp(`^${ALPHA.replace(/\./g, '\\.')}:`));
    return { callId: String(atAlpha.callId), elapsedMs: Number(atBeta.time) - Number(atAlpha.time) };
  }

  it('calls bob@beta.test by SIP URI: DNS finds beta, the down first-priority server is skipped within 3 s, TLS is verified both ways', async () => {
    const { elapsedMs } = await callBob('sip:bob@beta.test');
    expect(elapsedMs).toBeLessThan(3000);
    await logged(alpha!, (l) => l.msg === 'target failed, trying the next one' && String(l.failed).includes(`${DOWN}:5061`));
    // alpha verified beta's certificate (chain + RFC 5922 name) and beta verified alpha's client certificate.
    await logged(alpha!, (l) => l.msg === 'inter-domain TLS connection verified' && l.peerDomain === 'beta.test');
    await logged(beta!, (l) => l.msg === 'TLS client certificate verified' && (l.peerDomains as string[]).includes('alpha.test'));
  }, 40_000);

  it('calls bob by E.164 number through ENUM; bob hangs up, his BYE goes back over the same TLS connection', async () => {
    const { callId } = await callBob(`sip:${BOB_NUMBER}@alpha.test;user=phone`, true);
    // RFC 5923: beta sends bob's BYE over the connection alpha opened (alpha's Via asked with alias), not a new one.
    // Lines of this call only: the BYE beta forwarded to bob in the previous call may reach the harness late.
    const invite = await logged(beta!, (l) => isInvite(l, 'sip recv', callId));
    const bye = await logged(beta!, (l) => l.msg === 'sip send' && /^BYE /.test(String(l.startLine)) && l.callId === callId);
    expect(bye.transport).toBe('tls');
    expect(bye.remote).toBe(invite.remote);
    const sent = await logged(alpha!, (l) => isInvite(l, 'sip send', callId));
    expect(String(sent.startLine)).toMatch(/^INVITE sip:bob@beta\.test /);
  }, 40_000);

  it('refuses mallory.test, whose certificate names another domain, and sends it no cleartext', async () => {
    const a0 = alice!.events.length;
    const alphaFrom = alpha!.logs.length;
    expect((await alice!.dial('sip:carol@mallory.test')).ok).toBe(true);
    const closed = await alice!.waitForEventType('CALL_CLOSED', 15_000, a0);
    expect(JSON.stringify(closed)).toMatch(/503/);
    // The log comes through the server's stdout pipe (written asynchronously): wait for the line.
    const failure = await alpha!.waitForLog((l) => l.msg === 'branch transport failure', 5000, alphaFrom);
    expect(String(failure?.err)).toMatch(/does not name mallory\.test/);
    await new Promise((r) => setTimeout(r, 500));
    expect(malloryGot).toMatchObject({ udp: 0, tcp: 0, tlsData: 0 });
  }, 40_000);

  it('federates with Kamailio serving gamma.test over mutual TLS: calls both ways connect', async () => {
    const alphaFrom = alpha!.logs.length;
    await call(alice!, carol!, 'sip:carol@gamma.test');
    await logged(alpha!, (l) => l.msg === 'inter-domain TLS connection verified' && l.peerDomain === 'gamma.test', alphaFrom);
    const back = alpha!.logs.length;
    await call(carol!, alice!, 'sip:alice@alpha.test');
    const invite = await logged(alpha!, (l) => isInvite(l, 'sip recv') && /^INVITE sip:alice@alpha\.test/.test(String(l.startLine)), back);
    expect(invite.transport).toBe('tls');
    await logged(alpha!, (l) => l.msg === 'TLS client certificate verified' && (l.peerDomains as string[]).includes('gamma.test'));
  }, 60_000);
});
