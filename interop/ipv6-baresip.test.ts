/**
 * A baresip call over IPv6 sockets: rtcedge listens on [::1] (UDP and TCP)
 * only, two baresip UAs (`sip_listen [::1]:port`, `net_interface ::1`)
 * register there with digest and alice calls bob through rtcedge. Every SIP
 * message of the dialog crosses rtcedge over IPv6: the debug log shows
 * INVITE, 200, ACK, BYE and 200 relayed with [::1] addresses on both sides,
 * and bob's binding in the store names [::1].
 *
 * Ports: rtcedge 29890 (UDP+TCP on ::1); baresip alice 29891, bob 29893 (on
 * ::1); ctrl_tcp 29895/29896 (127.0.0.1); RTP 29900-29919 / 29920-29939.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWithPeers } from './harness/peers.js';
import { startBaresip, type BaresipUa } from './harness/baresip.js';
import { assertPortsFree } from './harness/ports.js';
import { stopAllStarted } from './harness/process.js';
import { startRtcedge, type Rtcedge } from './harness/rtcedge.js';
import { describeSipLog } from './harness/sip-log.js';
import { makeTempDir, removeTempDir } from './harness/temp-dir.js';

const SERVER = 29890;
const ALICE = 29891;
const BOB = 29893;
const ALICE_CTRL = 29895;
const BOB_CTRL = 29896;
const ALICE_PW = 'alice-v6-pw-7';
const BOB_PW = 'bob-v6-pw-8';
const OUTBOUND = `sip:[::1]:${SERVER}`;

describeWithPeers(['baresip'])('baresip registers and calls over [::1]', () => {
  let dir: string;
  let server: Rtcedge | undefined;
  let alice: BaresipUa | undefined;
  let bob: BaresipUa | undefined;

  beforeAll(async () => {
    await assertPortsFree('127.0.0.1', [ALICE_CTRL, BOB_CTRL]);
    dir = makeTempDir('ipv6-baresip');
    server = await startRtcedge({
      dir: join(dir, 'server'),
      ports: {},
      users: [
        { aor: 'alice@example.test', password: ALICE_PW },
        { aor: 'bob@example.test', password: BOB_PW },
      ],
      config: {
        sip: {
          listen: [
            { transport: 'udp', host: '::1', port: SERVER },
            { transport: 'tcp', host: '::1', port: SERVER },
          ],
        },
      },
    });
    const ua = (name: string, sipPort: number, ctrlPort: number, rtp: [number, number], password: string, answer?: 'auto') =>
      startBaresip({
        name,
        parentDir: dir,
        host: '::1',
        sipPort,
        ctrlPort,
        rtpPorts: rtp,
        tlsListener: false,
        accounts: [{ aor: `sip:${name}@example.test`, password, regint: 600, outbound: OUTBOUND, ...(answer ? { answermode: answer } : {}) }],
        lifetimeS: 60,
      });
    alice = await ua('alice', ALICE, ALICE_CTRL, [29900, 29919], ALICE_PW);
    bob = await ua('bob', BOB, BOB_CTRL, [29920, 29939], BOB_PW, 'auto');
  }, 60_000);

  afterAll(async () => {
    await alice?.stop();
    await bob?.stop();
    await server?.stop();
    await stopAllStarted();
    removeTempDir(dir);
  });

  it('both register over [::1] and the binding names [::1]', async () => {
    await alice!.waitForRegistered(10_000);
    await bob!.waitForRegistered(10_000);
    const bindings = server!.bindings('sip:bob@example.test').map((b) => b.contact_uri);
    expect(bindings).toHaveLength(1);
    expect(bindings[0]).toMatch(new RegExp(`@\\[::1\\]:${BOB}(;|$)`));
    const registers = server!.sipLog({ direction: 'recv', method: 'REGISTER' });
    expect(registers.length).toBeGreaterThan(0);
    expect(registers.every((e) => e.remote.startsWith('[::1]:') && e.local === `[::1]:${SERVER}`), describeSipLog(registers)).toBe(true);
  });

  it('alice calls bob through rtcedge over IPv6; the whole dialog is relayed over [::1]', async () => {
    const a0 = alice!.events.length;
    const b0 = bob!.events.length;
    expect((await alice!.dial('sip:bob@example.test')).ok).toBe(true);
    const established = await alice!.waitForEventType('CALL_ESTABLISHED', 10_000, a0);
    await bob!.waitForEventType('CALL_ESTABLISHED', 10_000, b0);
    await new Promise((r) => setTimeout(r, 1000));
    expect((await alice!.hangup()).ok).toBe(true);
    await alice!.waitForEventType('CALL_CLOSED', 8000, a0);
    await bob!.waitForEventType('CALL_CLOSED', 8000, b0);
    const callId = established.id!;
    await server!.waitForLog((l) => l.msg === 'sip send' && l.callId === callId && /^SIP\/2\.0 200/.test(String(l.startLine)) && /BYE/.test(String(l.cseq)), 5000).catch(() => undefined);
    const log = server!.sipLog({ callId });
    const why = describeSipLog(log);
    const sent = log.filter((e) => e.direction === 'send').map((e) => `${e.method ?? e.status} ${e.remote}`);
    expect(sent, why).toEqual(expect.arrayContaining([`INVITE [::1]:${BOB}`, `200 [::1]:${ALICE}`, `ACK [::1]:${BOB}`, `BYE [::1]:${BOB}`]));
    expect(log.every((e) => e.local === `[::1]:${SERVER}` && e.remote.startsWith('[::1]:')), why).toBe(true);
  });
});
