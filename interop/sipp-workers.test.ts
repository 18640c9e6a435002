/**
 * A short bounded SIPp load against rtcedge with two SIP workers
 * (`sip.workers: 2`, started as a process): 2,000 users register with digest
 * (one SIPp instance, users from an injection file), then 300 authenticated
 * calls go from a SIPp uac through the record-routing proxy to a registered
 * SIPp uas. Every SIPp run must end with exit status 0 and no failed call in
 * its statistics file; then every binding is read back through each worker
 * (a REGISTER without Contact, RFC 3261 §10.2.3, whose Call-ID that worker
 * owns) and must list the SIPp contact.
 *
 * Bounded: SIPp runs have -m and -timeout; the binding check sends 2 × 2,000
 * authenticated queries, 100 at a time.
 * Ports: rtcedge 27350 (UDP); SIPp 27351–27353; the query UA an ephemeral one.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWithPeers } from './harness/peers.js';
import { assertPortsFree } from './harness/ports.js';
import { runCommand, spawnProcess, stopAllStarted } from './harness/process.js';
import { REPO_ROOT, startRtcedge, type Rtcedge } from './harness/rtcedge.js';
import { makeTempDir, removeTempDir } from './harness/temp-dir.js';
import { UdpUa } from '../test/helpers/udp-ua.js';
import { callIdOwner } from '../src/transport/call-id-owner.js';
import { getHeader, type SipRequest, type SipResponse } from '../src/sip/message.js';

const SIP_PORT = 27350;
const REG_PORT = 27351;
const UAS_PORT = 27352;
const UAC_PORT = 27353;
const WORKERS = 2;
const USERS = 2000;
const CALLS = 300;
const SCENARIOS = join(REPO_ROOT, 'interop', 'sipp');
const password = (n: number) => `load-pw-${n}`;

/** The last line of a SIPp statistics file (-trace_stat, ';'-separated with a header line) as a record. */
function lastStats(file: string): Record<string, string> {
  const lines = readFileSync(file, 'utf8').trim().split('\n');
  const head = lines[0]!.split(';');
  const last = lines[lines.length - 1]!.split(';');
  return Object.fromEntries(head.map((h, i) => [h, last[i] ?? '']));
}

/** A Call-ID that worker `owner` owns. */
function callIdFor(owner: number): string {
  for (;;) {
    const id = `${randomBytes(6).toString('hex')}@127.0.0.1`;
    if (callIdOwner(id, WORKERS) === owner) return id;
  }
}

describeWithPeers(['sipp'])('SIPp load against two SIP workers', () => {
  let dir: string;
  let server: Rtcedge | undefined;

  beforeAll(async () => {
    await assertPortsFree('127.0.0.1', [SIP_PORT, REG_PORT, UAS_PORT, UAC_PORT]);
    dir = makeTempDir('sipp-workers');
    server = await startRtcedge({
      dir: join(dir, 'server'),
      ports: { udp: SIP_PORT },
      // Info: a debug line per message from two processes would be most of the work.
      // One caller places every call: no per-user call limit (0: none). The load checks correctness, not capacity:
      // overload shedding (503 past 200 ms of event-loop lag) would answer for a machine busy with other work.
      config: {
        sip: {
          workers: WORKERS,
          security: { calls: { max_concurrent_per_user: 0, max_attempts_per_minute: 0 } },
          overload: { lag_ms: 5000, drop_lag_ms: 10000 },
        },
        log: { level: 'info' },
      },
      users: [
        { aor: 'alice@example.test', password: 'alice-load-pw' },
        { aor: 'bob@example.test', password: 'bob-load-pw' },
      ],
    });
    const csv = ['user,password', ...Array.from({ length: USERS }, (_, n) => `u${n}@example.test,${password(n)}`)].join('\n');
    writeFileSync(join(dir, 'users-import.csv'), `${csv}\n`);
    const imported = await server.cli(['user', 'import', join(dir, 'users-import.csv')]);
    expect(imported.code, imported.output).toBe(0);
    // SIPp's injection file: SEQUENTIAL, one user per call.
    writeFileSync(join(dir, 'users.csv'), ['SEQUENTIAL', ...Array.from({ length: USERS }, (_, n) => `u${n};${password(n)}`)].join('\n') + '\n');
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
    await stopAllStarted();
    removeTempDir(dir);
  });

  /** SIPp arguments common to the runs: UDP on 127.0.0.1, no keyboard, bounded, statistics and errors to files. */
  function sippArgs(name: string, scenario: string, port: number, extra: string[]): string[] {
    return [
      `127.0.0.1:${SIP_PORT}`,
      '-sf', join(SCENARIOS, scenario),
      '-i', '127.0.0.1',
      '-p', String(port),
      '-nostdin', '-nd',
      '-timeout', '60s', '-timeout_error',
      '-recv_timeout', '10000',
      '-default_behaviors', 'all,-bye',
      '-trace_stat', '-stf', join(dir, `${name}-stats.csv`), '-fd', '1',
      '-trace_err', '-error_file', join(dir, `${name}-errors.log`),
      ...extra,
    ];
  }

  it(`${USERS} authenticated registrations, then every binding is found through every worker`, async () => {
    const reg = await runCommand('sipp', sippArgs('register', 'register-users.xml', REG_PORT, ['-inf', join(dir, 'users.csv'), '-m', String(USERS), '-r', '200', '-l', '400']), { cwd: dir, timeoutMs: 90_000 });
    expect(reg.code, reg.output).toBe(0);
    const stats = lastStats(join(dir, 'register-stats.csv'));
    expect({ ok: Number(stats['SuccessfulCall(C)']), failed: Number(stats['FailedCall(C)']) }).toEqual({ ok: USERS, failed: 0 });
    expect(server!.bindings().length).toBe(USERS);
    // Both workers wrote to the one SQLite file (WAL, busy_timeout): no commit failed (SQLITE_BUSY would log an error).
    expect(server!.logs.filter((l) => (l.level as number) >= 50 || l.msg === 'writing bindings to the store failed')).toEqual([]);

    const missing: string[] = [];
    /** REGISTER without Contact (a query) as user n, answered 401 then 200 with the bindings, at the worker that owns the Call-ID. */
    const query = async (ua: UdpUa, n: number, worker: number): Promise<void> => {
      const aor = `sip:u${n}@example.test`;
      const full = ua.request('REGISTER', 'sip:example.test', { from: aor, to: aor, callId: callIdFor(worker) });
      const req: SipRequest = { ...full, headers: full.headers.filter((h) => h.name !== 'Contact') };
      ua.send(req, SIP_PORT);
      const authed = ua.authorize(req, await ua.response(req, 401, 10_000), `u${n}`, password(n));
      ua.send(authed, SIP_PORT);
      const ok = (await ua.response(authed, 200, 10_000)) as SipResponse;
      if (!(getHeader(ok, 'contact') ?? '').includes(`sip:u${n}@127.0.0.1:${REG_PORT}`)) missing.push(`${aor} at worker ${worker}`);
    };
    for (let worker = 0; worker < WORKERS; worker++) {
      for (let first = 0; first < USERS; first += 100) {
        // A UA per batch: its log of received messages stays short.
        const ua = await UdpUa.open();
        try {
          await Promise.all(Array.from({ length: Math.min(100, USERS - first) }, (_, k) => query(ua, first + k, worker)));
        } finally {
          ua.close();
        }
      }
    }
    expect(missing).toEqual([]);
  }, 240_000);

  it(`${CALLS} authenticated calls through the proxy to a registered SIPp uas, none failed`, async () => {
    const bob = await runCommand('sipp', sippArgs('register-bob', 'register.xml', UAS_PORT, ['-s', 'bob', '-au', 'bob', '-ap', 'bob-load-pw', '-m', '1']), { cwd: dir, timeoutMs: 30_000 });
    expect(bob.code, bob.output).toBe(0);
    const uas = spawnProcess('sipp', sippArgs('uas', 'uas-answer.xml', UAS_PORT, ['-s', 'bob', '-m', String(CALLS)]), { cwd: dir });
    try {
      const uac = await runCommand(
        'sipp',
        sippArgs('uac', 'uac-call.xml', UAC_PORT, ['-s', 'bob', '-au', 'alice', '-ap', 'alice-load-pw', '-key', 'caller', 'alice', '-m', String(CALLS), '-r', '30', '-l', '200']),
        { cwd: dir, timeoutMs: 90_000 },
      );
      expect(uac.code, uac.output).toBe(0);
      const stats = lastStats(join(dir, 'uac-stats.csv'));
      expect({ ok: Number(stats['SuccessfulCall(C)']), failed: Number(stats['FailedCall(C)']) }).toEqual({ ok: CALLS, failed: 0 });
      const st = await uas.exited;
      expect(st.code, uas.output()).toBe(0);
    } finally {
      await uas.stop();
    }
  }, 180_000);
});
