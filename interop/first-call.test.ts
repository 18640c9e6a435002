/**
 * First end-to-end milestone, against real peers on loopback:
 * (a) two baresip UAs register over TLS with digest and call each other
 *     through rtcedge; the debug log shows every hop of the dialog;
 * (b) sipsak registers over UDP with digest (binding in SQLite), OPTIONS gets
 *     200, a wrong password is refused;
 * (c) rtcedge restarts on the same data dir and routes a new call with the
 *     bindings it persisted, without the UAs registering again.
 *
 * Ports: rtcedge 25060 (UDP+TCP), 25061 (TLS); baresip alice 25100/25101,
 * bob 25200/25201; ctrl_tcp 25444/25445; RTP 25300-25399 / 25400-25499.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWithPeers } from './harness/peers.js';
import { startBaresip, type BaresipUa } from './harness/baresip.js';
import { assertPortsFree } from './harness/ports.js';
import { stopAllStarted } from './harness/process.js';
import { startRtcedge, type Rtcedge } from './harness/rtcedge.js';
import { describeSipLog, headerValues, type SipLogEntry } from './harness/sip-log.js';
import { runSipsak, sipsakRegisterArgs } from './harness/sipsak.js';
import { makeTempDir, removeTempDir } from './harness/temp-dir.js';

const SIP_PORT = 25060;
const TLS_PORT = 25061;
const ALICE_SIP = 25100;
const BOB_SIP = 25200;
const ALICE_CTRL = 25444;
const BOB_CTRL = 25445;
const ALICE_PW = 'alice-secret-1';
const BOB_PW = 'bob-secret-2';
const CAROL_PW = 'carol-secret-3';

/** Address baresip bob listens for TLS on (its Contact). */
const BOB_TLS_ADDR = `127.0.0.1:${BOB_SIP + 1}`;

describeWithPeers(['baresip', 'sipsak'])('first call: baresip to baresip through rtcedge over TLS; sipsak over UDP; restart', () => {
  let dir: string;
  let server: Rtcedge | undefined;
  let alice: BaresipUa | undefined;
  let bob: BaresipUa | undefined;
  let firstCallDone = false;

  beforeAll(async () => {
    await assertPortsFree('127.0.0.1', [SIP_PORT, TLS_PORT, ALICE_SIP, ALICE_SIP + 1, BOB_SIP, BOB_SIP + 1, ALICE_CTRL, BOB_CTRL]);
    dir = makeTempDir('first-call');
    server = await startRtcedge({
      dir: join(dir, 'server'),
      ports: { udp: SIP_PORT, tcp: SIP_PORT, tls: TLS_PORT },
      users: [
        { aor: 'alice@example.test', password: ALICE_PW },
        { aor: 'bob@example.test', password: BOB_PW },
        { aor: 'carol@example.test', password: CAROL_PW },
      ],
    });
    // alice in the style of PEERS.md (the server's address as AOR host); bob
    // with the domain as AOR and rtcedge as outbound proxy.
    alice = await startBaresip({
      name: 'alice',
      parentDir: dir,
      sipPort: ALICE_SIP,
      ctrlPort: ALICE_CTRL,
      rtpPorts: [25300, 25399],
      cafile: server.certPath,
      accounts: [{ aor: `sip:alice@127.0.0.1:${TLS_PORT};transport=tls`, password: ALICE_PW, regint: 3600 }],
      lifetimeS: 110,
    });
    bob = await startBaresip({
      name: 'bob',
      parentDir: dir,
      sipPort: BOB_SIP,
      ctrlPort: BOB_CTRL,
      rtpPorts: [25400, 25499],
      cafile: server.certPath,
      accounts: [
        {
          aor: 'sip:bob@example.test',
          password: BOB_PW,
          regint: 3600,
          answermode: 'auto',
          outbound: `sip:127.0.0.1:${TLS_PORT};transport=tls`,
        },
      ],
      lifetimeS: 110,
    });
  });

  afterAll(async () => {
    await Promise.all([alice?.stop(), bob?.stop()]);
    await server?.stop();
    await stopAllStarted();
    removeTempDir(dir);
  });

  /** Remote addresses rtcedge saw REGISTERs of `user` come from, plus extra ones given. */
  function registerRemotes(user: string, extra: string[] = []): string[] {
    const from = server!
      .sipLog({ direction: 'recv', method: 'REGISTER' })
      .filter((e) => headerValues(e.message, 'From').some((v) => v.includes(`sip:${user}@`)));
    return [...new Set([...from.map((e) => e.remote), ...extra])];
  }

  /**
   * Places a call alice -> bob, holds it ~2 s, hangs up at alice; returns the
   * Call-ID. Asserts CALL_ESTABLISHED and CALL_CLOSED on both UAs.
   */
  async function callAndHangUp(): Promise<string> {
    const a0 = alice!.events.length;
    const b0 = bob!.events.length;
    const dial = await alice!.dial(`sip:bob@127.0.0.1:${TLS_PORT}`);
    expect(dial.ok).toBe(true);
    const ea = await alice!.waitForEventType('CALL_ESTABLISHED', 10_000, a0);
    const eb = await bob!.waitForEventType('CALL_ESTABLISHED', 10_000, b0);
    expect(ea.direction).toBe('outgoing');
    expect(eb.direction).toBe('incoming');
    expect(ea.id).toBeTruthy();
    expect(eb.id).toBe(ea.id);
    await new Promise((r) => setTimeout(r, 2000));
    expect((await alice!.hangup()).ok).toBe(true);
    await alice!.waitForEventType('CALL_CLOSED', 8000, a0);
    await bob!.waitForEventType('CALL_CLOSED', 8000, b0);
    return ea.id!;
  }

  /**
   * Asserts from rtcedge's debug log that, for this Call-ID and run, rtcedge
   * sent: INVITE towards bob, 200 (INVITE) towards alice, ACK towards bob,
   * BYE towards bob, 200 (BYE) towards alice.
   */
  async function assertProxiedDialog(callId: string, run: number): Promise<void> {
    // The 200 for BYE may be logged a moment after alice reports the call closed.
    await server!
      .waitForLog((l) => l.msg === 'sip send' && l.callId === callId && l._run === run && /^SIP\/2\.0 200/.test(String(l.startLine)) && /BYE/.test(String(l.cseq)), 5000)
      .catch(() => undefined);
    const all = server!.sipLog({ callId, run });
    const why = `rtcedge log for Call-ID ${callId}:\n${describeSipLog(all)}`;
    const aliceInvite = all.find((e) => e.direction === 'recv' && e.method === 'INVITE');
    expect(aliceInvite, why).toBeDefined();
    expect(aliceInvite!.transport, why).toBe('tls');
    const aliceAt = aliceInvite!.remote;
    const bobAt = registerRemotes('bob', [BOB_TLS_ADDR]);
    const sent = (pred: (e: SipLogEntry) => boolean): SipLogEntry | undefined =>
      all.find((e) => e.direction === 'send' && pred(e));

    const invite = sent((e) => e.method === 'INVITE' && bobAt.includes(e.remote));
    expect(invite, `INVITE towards bob (${bobAt.join(' | ')})\n${why}`).toBeDefined();
    expect(invite!.transport).toBe('tls');
    expect(invite!.startLine).toMatch(/^INVITE sip:bob/);
    const ok = sent((e) => e.status === 200 && e.cseqMethod === 'INVITE' && e.remote === aliceAt);
    expect(ok, `200 (INVITE) towards alice at ${aliceAt}\n${why}`).toBeDefined();
    const ack = sent((e) => e.method === 'ACK' && bobAt.includes(e.remote));
    expect(ack, `ACK towards bob\n${why}`).toBeDefined();
    const bye = sent((e) => e.method === 'BYE' && bobAt.includes(e.remote));
    expect(bye, `BYE towards bob\n${why}`).toBeDefined();
    const byeOk = sent((e) => e.status === 200 && e.cseqMethod === 'BYE' && e.direction === 'send');
    expect(byeOk, `200 (BYE) towards alice\n${why}`).toBeDefined();
    const aliceAddrs = [...new Set(all.filter((e) => e.direction === 'recv' && e.method === 'BYE').map((e) => e.remote))];
    expect(aliceAddrs.length, why).toBeGreaterThan(0);
    expect(aliceAddrs, why).toContain(byeOk!.remote);
    // In this order on the wire.
    const order = [invite!, ok!, ack!, bye!, byeOk!].map((e) => all.indexOf(e));
    expect([...order].sort((x, y) => x - y), why).toEqual(order);
  }

  it('(a) alice and bob register over TLS with digest; alice calls bob through rtcedge', async () => {
    await Promise.all([alice!.waitForRegistered(10_000), bob!.waitForRegistered(10_000)]);
    // Registration went through a digest challenge over TLS.
    const challenged = await server!.waitForSipLog({ direction: 'send', status: 401, cseqMethod: 'REGISTER', transport: 'tls' }, 5000, 2);
    expect(challenged.length).toBeGreaterThanOrEqual(2);
    const accepted = await server!.waitForSipLog({ direction: 'send', status: 200, cseqMethod: 'REGISTER', transport: 'tls' }, 5000, 2);
    expect(accepted.length).toBeGreaterThanOrEqual(2);

    const callId = await callAndHangUp();
    await assertProxiedDialog(callId, 0);
    firstCallDone = true;
  });

  it('(b) sipsak registers over UDP with digest; OPTIONS gets 200; a wrong password is refused', async () => {
    const before = Math.floor(Date.now() / 1000);
    const reg = await runSipsak(
      sipsakRegisterArgs({
        target: `sip:carol@127.0.0.1:${SIP_PORT}`,
        contact: 'sip:carol@127.0.0.1:7777',
        user: 'carol',
        password: CAROL_PW,
        expires: 60,
      }),
      { timeoutMs: 15_000 },
    );
    expect(reg.code, reg.output).toBe(0);
    const rows = server!.bindings('sip:carol@example.test');
    expect(rows.map((r) => r.contact_uri)).toEqual(['sip:carol@127.0.0.1:7777']);
    expect(rows[0]!.expires).toBeGreaterThanOrEqual(before + 55);
    expect(rows[0]!.expires).toBeLessThanOrEqual(Math.floor(Date.now() / 1000) + 65);
    expect((await server!.waitForSipLog({ direction: 'send', status: 200, cseqMethod: 'REGISTER', transport: 'udp' })).length).toBeGreaterThanOrEqual(1);

    // sipsak 0.9.8.1 keeps only 4 digits of the port in the Request-URI it
    // writes (`-s sip:127.0.0.1:25060` goes out as `OPTIONS sip:127.0.0.1:2506`),
    // so the server is named by address alone and reached with -p.
    const options = await runSipsak(['-v', '-s', 'sip:127.0.0.1', '-p', `127.0.0.1:${SIP_PORT}`], { timeoutMs: 10_000 });
    expect(options.code, options.output).toBe(0);
    expect(options.statusCodes).toContain(200);
    expect(options.output).toMatch(/SIP\/2\.0 200/);
    const optionsIn = await server!.waitForSipLog({ direction: 'recv', method: 'OPTIONS', transport: 'udp' });
    expect(optionsIn.map((e) => e.startLine)).toContain('OPTIONS sip:127.0.0.1 SIP/2.0');
    const optionsOk = await server!.waitForSipLog({ direction: 'send', status: 200, cseqMethod: 'OPTIONS', transport: 'udp' });
    expect(optionsOk.length).toBeGreaterThanOrEqual(1);
    expect(headerValues(optionsOk[0]!.message, 'Allow').join(',')).toMatch(/INVITE/);

    const wrong = await runSipsak(
      sipsakRegisterArgs({
        target: `sip:carol@127.0.0.1:${SIP_PORT}`,
        contact: 'sip:carol@127.0.0.1:7778',
        user: 'carol',
        password: 'not-the-password',
        expires: 60,
      }),
      { timeoutMs: 15_000 },
    );
    expect(wrong.code, wrong.output).not.toBe(0);
    expect(wrong.timedOut, 'sipsak should get a final answer, not time out').toBe(false);
    const wrongTries = await server!.waitForSipLog(
      (e) => e.direction === 'recv' && e.method === 'REGISTER' && e.transport === 'udp' && headerValues(e.message, 'Contact').some((v) => v.includes('127.0.0.1:7778')),
    );
    expect(wrongTries.length).toBeGreaterThanOrEqual(1);
    const answers = await server!.waitForSipLog({ direction: 'send', callId: wrongTries[0]!.callId, cseqMethod: 'REGISTER' });
    expect(answers.length).toBeGreaterThanOrEqual(1);
    expect(answers.every((e) => e.status === 401 || e.status === 403), describeSipLog(answers)).toBe(true);
    // Nothing was bound for the refused contact.
    expect(server!.bindings('sip:carol@example.test').map((r) => r.contact_uri)).toEqual(['sip:carol@127.0.0.1:7777']);
  });

  it('(c) after a restart on the same data dir, alice calls bob again without registering again', async () => {
    expect(firstCallDone, 'needs (a)').toBe(true);
    const now = Math.floor(Date.now() / 1000);
    const st = await server!.stop();
    expect(st.signal, 'rtcedge should exit on SIGTERM by itself').toBeNull();
    expect(st.code).toBe(0);

    const aliceRows = server!.bindings('sip:alice@example.test');
    const bobRows = server!.bindings('sip:bob@example.test');
    expect(aliceRows).toHaveLength(1);
    expect(bobRows).toHaveLength(1);
    expect(aliceRows[0]!.contact_uri).toContain(`@127.0.0.1:${ALICE_SIP + 1}`);
    expect(bobRows[0]!.contact_uri).toContain(`@${BOB_TLS_ADDR}`);
    expect(aliceRows[0]!.expires).toBeGreaterThan(now + 3000);
    expect(bobRows[0]!.expires).toBeGreaterThan(now + 3000);

    await server!.restart();
    const callId = await callAndHangUp();
    await assertProxiedDialog(callId, 1);
    // Neither UA registered with the new process before or during the call.
    expect(server!.sipLog({ run: 1, direction: 'recv', method: 'REGISTER' }), describeSipLog(server!.sipLog({ run: 1 }))).toEqual([]);
  });
});
