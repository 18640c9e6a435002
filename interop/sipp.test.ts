/**
 * SIPp (Debian package sip-tester, 3.6.1) against rtcedge started as a
 * process, over UDP on loopback, with the scenarios of interop/sipp/:
 * REGISTER with digest; a call through the record-routing proxy to a
 * registered SIPp UAS; a CANCEL before answer; a call forked to two
 * registered SIPp UAS of one AOR where one answers and the other sees the
 * CANCEL; a call to a user without bindings (480); SIPp's built-in uac and
 * uas, whose ACK goes to the Request-URI of the INVITE (the server's own
 * address) without a Route. Every SIPp run must end with exit status 0 (each
 * of its calls succeeded).
 *
 * Ports: rtcedge 27160 (UDP); SIPp 27161–27169.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWithPeers } from './harness/peers.js';
import { assertPortsFree } from './harness/ports.js';
import { runCommand, spawnProcess, stopAllStarted, type ManagedProcess } from './harness/process.js';
import { REPO_ROOT, startRtcedge, type Rtcedge } from './harness/rtcedge.js';
import { makeTempDir, removeTempDir } from './harness/temp-dir.js';

const SIP_PORT = 27160;
const CALLER_PORT = 27161;
const UAS_A_PORT = 27162;
const UAS_B_PORT = 27163;
const REG_PORT = 27164;
const BUILTIN_UAS_PORT = 27165;
const BUILTIN_UAC_PORT = 27166;
/** The built-in uac calls from another loopback address: its From (sipp@<its address>) is then not one of the server's own, so it is not challenged. */
const BUILTIN_UAC_ADDRESS = '127.0.0.2';
const SCENARIOS = join(REPO_ROOT, 'interop', 'sipp');
const PW = { alice: 'alice-sipp-pw', bob: 'bob-sipp-pw', carol: 'carol-sipp-pw', dave: 'dave-sipp-pw', erin: 'erin-sipp-pw', frank: 'frank-sipp-pw' };

/**
 * Common SIPp options: UDP on `localIp` (default 127.0.0.1), one call, no keyboard, bounded run that fails on timeout.
 * `scenario` is a file of interop/sipp/, or `builtin:<name>` for one of SIPp's own scenarios (-sn).
 */
function sippArgs(dir: string, scenario: string, localPort: number, service: string, extra: string[] = [], localIp = '127.0.0.1'): string[] {
  const builtin = scenario.startsWith('builtin:') ? scenario.slice('builtin:'.length) : undefined;
  return [
    `127.0.0.1:${SIP_PORT}`,
    ...(builtin ? ['-sn', builtin] : ['-sf', join(SCENARIOS, scenario)]),
    '-i', localIp,
    '-p', String(localPort),
    '-s', service,
    '-m', '1',
    '-nostdin',
    '-timeout', '20s',
    '-timeout_error',
    '-recv_timeout', '15000',
    // No BYE of its own on a failed call: the scenario alone decides what is sent.
    '-default_behaviors', 'all,-bye',
    '-trace_err',
    '-error_file', join(dir, `sipp-${scenario.replace('.xml', '').replace(':', '-')}-${localPort}-errors.log`),
    ...extra,
  ];
}

describeWithPeers(['sipp'])('SIPp scenarios through rtcedge', () => {
  let dir: string;
  let server: Rtcedge | undefined;

  beforeAll(async () => {
    await assertPortsFree('127.0.0.1', [SIP_PORT, CALLER_PORT, UAS_A_PORT, UAS_B_PORT, REG_PORT, BUILTIN_UAS_PORT]);
    dir = makeTempDir('sipp');
    server = await startRtcedge({
      dir: join(dir, 'server'),
      ports: { udp: SIP_PORT },
      users: Object.entries(PW).map(([u, password]) => ({ aor: `${u}@example.test`, password })),
    });
  });

  afterAll(async () => {
    await server?.stop();
    await stopAllStarted();
    removeTempDir(dir);
  });

  /** Run one SIPp client scenario to completion; resolves with its output and exit code. */
  async function runSipp(scenario: string, localPort: number, service: string, extra: string[] = [], localIp?: string) {
    return runCommand('sipp', sippArgs(dir, scenario, localPort, service, extra, localIp), { cwd: dir, timeoutMs: 30_000 });
  }

  /** Start a SIPp UAS (one call) in the background. */
  function startUas(scenario: string, port: number, service: string, extra: string[] = []): ManagedProcess {
    return spawnProcess('sipp', sippArgs(dir, scenario, port, service, extra), { cwd: dir });
  }

  /** Register `user` with the Contact of a SIPp instance on `port` (SIPp's own REGISTER with digest). */
  async function register(user: keyof typeof PW, port: number): Promise<void> {
    const r = await runSipp('register.xml', port, user, ['-au', user, '-ap', PW[user]]);
    expect(r.code, r.output).toBe(0);
  }

  /** Call `callee` as alice with the uac scenario; returns the SIPp result. */
  function call(scenario: string, callee: string) {
    return runSipp(scenario, CALLER_PORT, callee, ['-au', 'alice', '-ap', PW.alice, '-key', 'caller', 'alice']);
  }

  it('REGISTER with digest: 401, then 200 listing the binding, stored in SQLite', async () => {
    // erin is nobody's callee: a binding to a port where nothing answers would hold up every fork to her.
    await register('erin', REG_PORT);
    const rows = server!.bindings('sip:erin@example.test');
    expect(rows.map((b) => b.contact_uri)).toEqual([`sip:erin@127.0.0.1:${REG_PORT}`]);
    // The log is read from the server's stdout pipe: wait for the 200's line before reading the whole exchange.
    await server!.waitForLog((l) => l.msg === 'sip send' && typeof l.startLine === 'string' && l.startLine.startsWith('SIP/2.0 200') && l.cseq === '2 REGISTER', 5000);
    const regs = server!.sipLog((e) => e.direction === 'send' && e.cseqMethod === 'REGISTER' && e.status !== undefined);
    expect(regs.map((e) => e.status)).toEqual([401, 200]);
  });

  it('a call to a registered SIPp UAS: 407, INVITE, 180, 200, ACK and BYE along the Record-Route', async () => {
    await register('bob', UAS_A_PORT);
    const uas = startUas('uas-answer.xml', UAS_A_PORT, 'bob');
    try {
      const uac = await call('uac-call.xml', 'bob');
      expect(uac.code, uac.output).toBe(0);
      const st = await uas.exited;
      expect(st.code, uas.output()).toBe(0);
    } finally {
      await uas.stop();
    }
    // The ACK and BYE went through the proxy (they carry its Route, recorded at the INVITE).
    await server!.waitForLog((l) => l.msg === 'sip send' && typeof l.startLine === 'string' && l.startLine.startsWith('BYE sip:bob@127.0.0.1:27162'), 5000);
    const viaProxy = server!.sipLog({ direction: 'send' }).filter((e) => /^(ACK|BYE) sip:bob@127\.0\.0\.1:27162/.test(e.startLine));
    expect(viaProxy.map((e) => e.startLine.split(' ')[0])).toEqual(expect.arrayContaining(['ACK', 'BYE']));
  });

  it('CANCEL before answer: 200 for the CANCEL, 487 for the INVITE, the UAS sees the CANCEL', async () => {
    await register('bob', UAS_A_PORT);
    const uas = startUas('uas-cancelled.xml', UAS_A_PORT, 'bob');
    try {
      const uac = await call('uac-cancel.xml', 'bob');
      expect(uac.code, uac.output).toBe(0);
      const st = await uas.exited;
      expect(st.code, uas.output()).toBe(0);
    } finally {
      await uas.stop();
    }
  });

  it('a forked call: two UAS of one AOR ring, one answers, the other gets CANCEL', async () => {
    // carol has two bindings: one SIPp that answers, one that only rings.
    await register('carol', UAS_A_PORT);
    await register('carol', UAS_B_PORT);
    expect(server!.bindings('sip:carol@example.test').map((b) => b.contact_uri).sort()).toEqual([
      `sip:carol@127.0.0.1:${UAS_A_PORT}`,
      `sip:carol@127.0.0.1:${UAS_B_PORT}`,
    ]);
    const answering = startUas('uas-answer.xml', UAS_A_PORT, 'carol');
    const ringing = startUas('uas-cancelled.xml', UAS_B_PORT, 'carol');
    try {
      const uac = await call('uac-call.xml', 'carol');
      expect(uac.code, uac.output).toBe(0);
      expect((await answering.exited).code, answering.output()).toBe(0);
      expect((await ringing.exited).code, ringing.output()).toBe(0);
    } finally {
      await answering.stop();
      await ringing.stop();
    }
    await server!.waitForLog((l) => l.msg === 'sip send' && typeof l.startLine === 'string' && l.startLine.startsWith(`CANCEL sip:carol@127.0.0.1:${UAS_B_PORT}`), 5000);
    const cancels = server!.sipLog({ direction: 'send' }).filter((e) => e.startLine.startsWith(`CANCEL sip:carol@127.0.0.1:${UAS_B_PORT}`));
    expect(cancels.length).toBeGreaterThanOrEqual(1);
  });

  it("SIPp's built-in uac calls its built-in uas: the ACK sent to the server's address reaches the UAS once", async () => {
    await register('frank', BUILTIN_UAS_PORT);
    const messages = join(dir, 'sipp-builtin-uas-messages.log');
    const uas = startUas('builtin:uas', BUILTIN_UAS_PORT, 'frank', ['-trace_msg', '-message_file', messages]);
    try {
      // The uac sends INVITE, then ACK and BYE, to sip:frank@127.0.0.1:27160 without a Route (it ignores the Record-Route).
      const uac = await runSipp('builtin:uac', BUILTIN_UAC_PORT, 'frank', [], BUILTIN_UAC_ADDRESS);
      expect(uac.code, uac.output).toBe(0);
      const st = await uas.exited;
      expect(st.code, uas.output()).toBe(0);
    } finally {
      await uas.stop();
    }
    const log = readFileSync(messages, 'utf8');
    const acks = log.match(/^ACK sip:frank@127\.0\.0\.1:27165 SIP\/2\.0$/gm) ?? [];
    expect(acks, log).toHaveLength(1);
    // The server received the ACK once: it did not forward it to itself.
    const received = server!.sipLog((e) => e.direction === 'recv' && e.startLine.startsWith('ACK sip:frank@'));
    expect(received.map((e) => e.startLine)).toEqual([`ACK sip:frank@127.0.0.1:${SIP_PORT} SIP/2.0`]);
  });

  it('a call to a user without bindings gets 480', async () => {
    const uac = await call('uac-unavailable.xml', 'dave');
    expect(uac.code, uac.output).toBe(0);
  });
});
