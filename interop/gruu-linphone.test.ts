/**
 * GRUU (RFC 5627) with an independent UA: linphone-daemon (liblinphone 5.1)
 * registers bob with `Supported: gruu` and a `+sip.instance`; rtcedge's 200
 * gives that Contact a pub-gruu and a temp-gruu. baresip (alice) then calls
 * bob's pub-gruu through rtcedge: the INVITE reaches linphone's binding (and
 * only it: bob has a second, plain binding at a socket that must see nothing),
 * linphone auto-answers with its GRUU as Contact, the call is established,
 * and baresip's BYE, addressed to that GRUU, reaches linphone too.
 *
 * How linphone runs headless: harness/linphone.ts.
 *
 * Ports: rtcedge 29870 (UDP), linphone 29871 (UDP), bob's second binding
 * 29872 (UDP), baresip alice 29880 (ctrl 29884, RTP 29900-29919); all 127.0.0.1.
 */
import dgram from 'node:dgram';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWithPeers } from './harness/peers.js';
import { startBaresip, type BaresipUa } from './harness/baresip.js';
import { assertPortsFree } from './harness/ports.js';
import { stopAllStarted } from './harness/process.js';
import { startLinphone, type DaemonClient, type LinphoneUa } from './harness/linphone.js';
import { startRtcedge, type Rtcedge } from './harness/rtcedge.js';
import { describeSipLog, headerValues } from './harness/sip-log.js';
import { runSipsak, sipsakRegisterArgs } from './harness/sipsak.js';
import { makeTempDir, removeTempDir } from './harness/temp-dir.js';

const SERVER = 29870;
const LINPHONE = 29871;
const OTHER = 29872;
const ALICE = 29880;
const ALICE_CTRL = 29884;
const REALM = 'example.test';
const BOB = `sip:bob@${REALM}`;
const BOB_PW = 'bob-gruu-pw-5';
const ALICE_PW = 'alice-gruu-pw-6';

/** A Contact parameter's value without its quotes. */
function contactParam(contact: string, name: string): string | undefined {
  const m = new RegExp(`;${name}="([^"]*)"`, 'i').exec(contact);
  return m?.[1];
}

describeWithPeers(['linphone-daemon', 'baresip', 'sipsak'])('GRUU: linphone registers with gruu, a call to its pub-gruu reaches it', () => {
  let dir: string;
  let server: Rtcedge | undefined;
  let linphone: LinphoneUa | undefined;
  let control: DaemonClient | undefined;
  let alice: BaresipUa | undefined;
  let other: dgram.Socket | undefined;
  const atOther: string[] = [];

  beforeAll(async () => {
    await assertPortsFree('127.0.0.1', [SERVER, LINPHONE, OTHER, ALICE, ALICE_CTRL]);
    dir = makeTempDir('gruu-linphone');
    server = await startRtcedge({
      dir: join(dir, 'server'),
      ports: { udp: SERVER },
      users: [
        { aor: `bob@${REALM}`, password: BOB_PW },
        { aor: `alice@${REALM}`, password: ALICE_PW },
      ],
    });
    other = dgram.createSocket('udp4');
    other.on('message', (m) => atOther.push(m.toString('latin1')));
    await new Promise<void>((r) => other!.bind(OTHER, '127.0.0.1', () => r()));
    linphone = startLinphone(dir, 'gruu', { sipPort: LINPHONE, serverPort: SERVER, aor: BOB, username: 'bob', password: BOB_PW, realm: REALM, expiresS: 600 }, ['--auto-answer']);
  }, 60_000);

  afterAll(async () => {
    control?.close();
    await alice?.stop();
    await linphone?.stop(3000);
    other?.close();
    await server?.stop();
    await stopAllStarted();
    removeTempDir(dir);
  });

  let pubGruu = '';

  it('linphone asks for a GRUU and gets pub-gruu and temp-gruu in the 200', async () => {
    const ok = await server!
      .waitForLog((l) => l.msg === 'transaction' && l.method === 'REGISTER' && l.status === 200, 20_000)
      .catch((err: Error) => {
        throw new Error(`${err.message}\n${linphone!.diagnostics()}`);
      });
    const callId = String(ok.callId);
    const register = server!.sipLog({ direction: 'recv', method: 'REGISTER', callId }).at(-1)!;
    expect(headerValues(register.message, 'Supported').join(',').toLowerCase()).toContain('gruu');
    const instance = /\+sip\.instance="<(urn:uuid:[0-9a-f-]+)>"/i.exec(headerValues(register.message, 'Contact')[0] ?? '')?.[1];
    expect(instance, register.message).toBeDefined();

    const answer = server!.sipLog({ direction: 'send', status: 200, cseqMethod: 'REGISTER', callId }).at(-1)!;
    const contact = headerValues(answer.message, 'Contact').find((c) => c.includes(`:${LINPHONE}`))!;
    pubGruu = contactParam(contact, 'pub-gruu')!;
    expect(pubGruu).toBe(`${BOB};gr=${instance}`);
    expect(contactParam(contact, 'temp-gruu')).toMatch(/^sip:tgruu\.[A-Za-z0-9_-]+@example\.test;gr$/);
    expect(headerValues(answer.message, 'Supported').join(',')).toContain('gruu');

    control = await linphone!.control();
    expect(await linphone!.waitForRegistered(control, 5000)).toMatch(/State: LinphoneRegistrationOk/);
  });

  it('a call from baresip to the pub-gruu reaches linphone and no other binding of bob', async () => {
    expect(pubGruu).not.toBe('');
    // bob's second binding, without an instance: a call to bob's AOR would fork to it, a call to the GRUU must not.
    const reg = await runSipsak(sipsakRegisterArgs({ target: `sip:bob@127.0.0.1:${SERVER}`, contact: `sip:bob@127.0.0.1:${OTHER}`, user: 'bob', password: BOB_PW, expires: 600 }));
    expect(server!.bindings(BOB), reg.output).toHaveLength(2);

    alice = await startBaresip({
      name: 'alice',
      parentDir: dir,
      sipPort: ALICE,
      ctrlPort: ALICE_CTRL,
      rtpPorts: [29900, 29919],
      tlsListener: false,
      accounts: [{ aor: `sip:alice@${REALM}`, password: ALICE_PW, regint: 600, outbound: `sip:127.0.0.1:${SERVER}` }],
      lifetimeS: 60,
    });
    await alice.waitForRegistered(10_000);
    const from = alice.events.length;
    await alice.dial(`<${pubGruu}>`);
    await alice.waitForEventType('CALL_ESTABLISHED', 15_000, from).catch((err: Error) => {
      throw new Error(`${err.message}\n${describeSipLog(server!.sipLog({ method: 'INVITE' }))}\n${linphone!.diagnostics()}`);
    });
    // The server's log reaches the test after baresip's event: wait for the 200 it received for the INVITE.
    await server!.waitForLog((l) => l.msg === 'sip recv' && /^SIP\/2\.0 200/.test(String(l.startLine)) && /INVITE/.test(String(l.cseq)), 5000);
    const invites = server!.sipLog({ direction: 'send', method: 'INVITE' });
    expect(invites.length).toBeGreaterThanOrEqual(1);
    expect(invites.every((e) => e.remote === `127.0.0.1:${LINPHONE}`), describeSipLog(invites)).toBe(true);
    expect(atOther.filter((m) => m.startsWith('INVITE'))).toEqual([]);
    // linphone answers with its GRUU as Contact (RFC 5627 §4.2), so the in-dialog BYE is addressed to the GRUU
    // and reaches linphone through the same routing.
    const answer = server!.sipLog({ direction: 'recv', status: 200, cseqMethod: 'INVITE' }).at(-1)!;
    expect(headerValues(answer.message, 'Contact')[0]).toContain(pubGruu.slice(4));
    await alice.hangup();
    await alice.waitForEventType('CALL_CLOSED', 10_000, from);
    await server!.waitForLog((l) => l.msg === 'sip send' && /^SIP\/2\.0 200/.test(String(l.startLine)) && /BYE/.test(String(l.cseq)), 5000);
    const byes = server!.sipLog({ direction: 'send', method: 'BYE' });
    expect(byes.map((e) => e.remote), describeSipLog(byes)).toEqual([`127.0.0.1:${LINPHONE}`]);
    expect(byes[0]!.startLine).toMatch(/^BYE sip:bob@127\.0\.0\.1:29871/);
  });
});
