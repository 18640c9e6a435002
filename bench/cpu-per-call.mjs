// Server CPU seconds per 1,000 authenticated calls through the record-routing proxy (the cost per call),
// for this build and optionally other builds, back to back.
//
//   node bench/cpu-per-call.mjs [--rate 500] [--calls 5000] [--repeat 3] [--workers 2] [--transport udp|tcp|tls]
//        [--baseline /path/to/other/dist/cli/main.js | NAME=PATH,NAME=PATH] [--cpu-prof DIR] [--users 1000]
//        [--node-args '--perf-basic-prof']
//        [--per-process yes]   (also each server process's CPU s per 1,000 calls, context switches and minor page
//                               faults per call; over TCP the workers holding the caller's and the callee's connections are named)
//        [--server-log DIR]   (each round's server output, its log lines, written to DIR/<build>-<n>.log)
//        [--mesh yes]   (also the SIP workers' mesh frames, bytes and writes per call, from their summary lines:
//                        the server runs at log level info with log.summary_interval 1)
//
// Each round starts rtcedge (UDP, TCP and TLS on 127.0.0.1, log level warn, TURN off, sip.workers --workers,
// per-user call limits off), imports --users users and the callee, registers the callee's Contact (a SIPp UAS
// answering every INVITE with 200, over --transport), runs 1,000 warm-up calls, then --calls more with SIPp's
// call scenario of bench/sip-scenarios.mjs (INVITE → 407 → ACK → INVITE with credentials → 200 → ACK → BYE →
// 200) at --rate per second over one socket or connection, and reads the server's CPU time (user + system of
// its process tree, /proc) around the measured run. TLS (a listener beside them; Debian's SIPp has no TLS):
// bench/sip-client.mjs's call scenario instead, the callee a second TLS connection of the client process that
// registers its own Contact (its CPU is the client's, not counted). The server's idle CPU over the same time (measured after
// the run) is printed beside it: the per-call figure includes it; so are the server's context switches per call
// (every thread of every process: each wake-up of a worker costs CPU of its own).
// With --baseline, every round runs the baseline build first and this build right after, so both see the same
// machine load; the rounds give ranges. --cpu-prof DIR runs this build's server (primary and workers) under
// `node --cpu-prof` (one profile per process in DIR when the server stops; open them in Chrome DevTools).
// A shared or busy machine makes single figures noise: compare ranges, and note `uptime`.
import { writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runProcess, startProcess, stopProcess, tempDir, cpuSeconds, sleep, threadDirs, compareBuilds, arg, processStats, processBreakdown, socketHolder, meshTraffic } from './lib.mjs';
import { startRtcedge } from './rtcedge.mjs';
import { sippCounts, registerContact } from './sip.mjs';
import { loadInProcess } from './sip-client.mjs';
import { CALL_UAC_SCENARIO, CALL_UAS_SCENARIO } from './sip-scenarios.mjs';

const SIP_PORT = 28370;
const SIPP_PORT = 28371;
const UAS_PORT = 28372;
const WARMUP = 1000;
const CALLEE = 'callee';

const RATE = Number(arg('rate', 500));
const CALLS = Number(arg('calls', 5000));
const REPEAT = Number(arg('repeat', 3));
const USERS = Number(arg('users', 1000));
const WORKERS = arg('workers', '2');
const TRANSPORT = arg('transport', 'udp');
const BASELINE = arg('baseline', undefined);
const CPU_PROF = arg('cpu-prof', undefined);
/** More node options for this build's server, space-separated (e.g. --perf-basic-prof for `perf record`). */
const NODE_ARGS = (arg('node-args', '') ?? '').split(' ').filter(Boolean);
if (!['udp', 'tcp', 'tls'].includes(TRANSPORT)) throw new Error(`--transport must be udp, tcp or tls, not ${TRANSPORT}`);
const TLS_PORT = 28373;
/** The callee of bench/sip-client.mjs's call scenario (TLS): a second connection of the client process. */
const TLS_CALLEE = 'calleetls';
const SIPP_T = TRANSPORT === 'udp' ? 'u1' : 't1';
const PER_PROCESS = arg('per-process', 'no') !== 'no';
const MESH = arg('mesh', 'no') !== 'no';
const SERVER_LOG = arg('server-log', undefined);
let logRound = 0;

const users = Array.from({ length: USERS }, (_, i) => [`user${i}`, `pw-user${i}`]);

/** Run SIPp's caller for `calls` calls at RATE; returns SIPp's successful, failed and retransmission counts. */
async function sipp(dir, calls, tag) {
  const stf = join(dir, `stat-${tag}.csv`);
  const seconds = Math.ceil(calls / RATE);
  const args = [
    `127.0.0.1:${SIP_PORT}`,
    '-sf', join(dir, 'call.xml'),
    '-inf', join(dir, 'users.csv'),
    '-s', CALLEE,
    '-i', '127.0.0.1', '-p', String(SIPP_PORT), '-t', SIPP_T,
    '-r', String(RATE), '-rp', '1000', '-l', String(Math.min(Math.max(RATE * 2, 200), 9000)),
    '-m', String(calls),
    '-timeout', String(seconds * 3 + 20), '-timeout_error',
    '-recv_timeout', '4000', '-default_behaviors', 'all,-bye',
    '-nostdin', '-nd',
    '-trace_stat', '-stf', stf, '-fd', '1',
  ];
  const r = await runProcess('sipp', args, { timeoutMs: (seconds * 3 + 40) * 1000 });
  return { ...sippCounts(stf), exit: r.code, ms: r.ms };
}

/** TLS: bench/sip-client.mjs's call scenario for `calls` calls at RATE (the callee is its second connection); as {@link sipp}. */
async function tlsClient(calls) {
  const out = await loadInProcess({ port: TLS_PORT, transport: 'tls', rate: RATE, count: calls, users: USERS, scenario: 'call', callee: TLS_CALLEE });
  return { ok: out.ok, failed: out.failed, failures: out.failures, retrans: 0, exit: out.exit, ms: out.ms };
}

/** The caller's load over --transport. */
const load = (dir, calls, tag) => (TRANSPORT === 'tls' ? tlsClient(calls) : sipp(dir, calls, tag));

/** One round for one build: CPU s per 1,000 successful calls, and the idle CPU over as long a time. */
async function round(dir, name, cli, nodeArgs) {
  const server = await startRtcedge({
    sipPort: SIP_PORT,
    sipStreams: [{ transport: 'tcp', port: SIP_PORT }, { transport: 'tls', port: TLS_PORT }],
    sipLines: [`  workers: ${WORKERS}`, '  security: { calls: { max_concurrent_per_user: 0, max_attempts_per_minute: 0 } }'],
    users: [...users, [CALLEE, `pw-${CALLEE}`], [TLS_CALLEE, `pw-${TLS_CALLEE}`]],
    importUsers: true,
    cli,
    nodeArgs,
    ...(MESH ? { logLevel: 'info', summaryInterval: 1 } : {}),
  });
  let uas;
  try {
    if (TRANSPORT !== 'tls') {
      await registerContact(SIP_PORT, CALLEE, `<sip:${CALLEE}@127.0.0.1:${UAS_PORT};transport=${TRANSPORT}>`);
      uas = startProcess('sipp', ['-sf', join(dir, 'uas.xml'), '-i', '127.0.0.1', '-p', String(UAS_PORT), '-t', SIPP_T, '-s', CALLEE, '-nostdin', '-nd']);
      await sleep(500);
    }
    await load(dir, WARMUP, `${name}-warm`);
    await sleep(MESH ? 1100 : 1000);
    const t0 = Date.now();
    const switches0 = contextSwitches(server.pid);
    const ps0 = PER_PROCESS ? processStats(server.pid) : undefined;
    const cpu0 = cpuSeconds(server.pid);
    // The workers holding the caller's connection and the callee's (streams), once the measured run's are open.
    const marks = new Map();
    const look =
      TRANSPORT === 'tcp' && PER_PROCESS
        ? setTimeout(() => {
            const caller = socketHolder(`( sport = :${SIP_PORT} )`);
            const callee = socketHolder(`( dport = :${UAS_PORT} )`);
            if (caller) marks.set(caller, "the caller's connection");
            if (callee) marks.set(callee, marks.has(callee) ? "both connections" : "the callee's connection");
          }, 1500)
        : undefined;
    const r = await load(dir, CALLS, name);
    clearTimeout(look);
    const cpuS = cpuSeconds(server.pid) - cpu0;
    const switches = contextSwitches(server.pid) - switches0;
    const perProcess = ps0 ? processBreakdown(ps0, processStats(server.pid), server.pid, r.ok, marks) : undefined;
    let mesh;
    if (MESH) {
      const t1 = Date.now();
      await sleep(1100);
      mesh = meshTraffic(server.stdout, t0, t1 + 1000);
    }
    // The same time idle, for the part of the figure that does not depend on the calls.
    const idle0 = cpuSeconds(server.pid);
    await sleep(r.ms);
    const idleS = cpuSeconds(server.pid) - idle0;
    return { name, ...r, cpuS, idleS, per1000: (cpuS / r.ok) * 1000, switchesPerCall: switches / r.ok, perProcess, mesh };
  } finally {
    if (uas) await stopProcess(uas);
    await stopProcess(server);
    if (SERVER_LOG) writeFileSync(join(SERVER_LOG, `${name.replace(/\W+/g, '-')}-${++logRound}.log`), server.stdout + server.stderr);
  }
}

/** Voluntary + involuntary context switches of every thread of a process tree so far (/proc/<pid>/task/<tid>/status). */
function contextSwitches(root) {
  let n = 0;
  for (const task of threadDirs(root)) {
    try {
      for (const m of readFileSync(`${task}/status`, 'utf8').matchAll(/^(?:non)?voluntary_ctxt_switches:\s+(\d+)/gm)) n += Number(m[1]);
    } catch {}
  }
  return n;
}

const dir = tempDir('cpu-per-call');
writeFileSync(join(dir, 'call.xml'), CALL_UAC_SCENARIO);
writeFileSync(join(dir, 'uas.xml'), CALL_UAS_SCENARIO);
writeFileSync(join(dir, 'users.csv'), 'SEQUENTIAL\n' + users.map(([u, p]) => `${u};${p};`).join('\n') + '\n');
console.log(`${CALLS} calls at ${RATE}/s over ${TRANSPORT.toUpperCase()}, sip.workers ${WORKERS}, ${USERS} callers, ${REPEAT} round(s)${BASELINE ? `, baseline ${BASELINE}` : ''}`);
await compareBuilds({
  baseline: BASELINE,
  nodeArgs: [...NODE_ARGS, ...(CPU_PROF ? ['--cpu-prof', '--cpu-prof-dir', CPU_PROF] : [])],
  repeat: REPEAT,
  round: (b) => round(dir, b.name, b.cli, b.nodeArgs),
  line: (i, b, r) =>
    `round ${i + 1} ${b.name.padEnd(14)} ok ${r.ok} failed ${r.failed} retrans ${r.retrans} cpu ${r.cpuS.toFixed(2)} s in ${(r.ms / 1000).toFixed(1)} s ` +
    `(idle ${r.idleS.toFixed(2)} s over as long) = ${r.per1000.toFixed(3)} s per 1,000 calls, ${r.switchesPerCall.toFixed(1)} context switches per call` +
    (r.failures && r.failed ? ` ${JSON.stringify(r.failures)}` : '') +
    (MESH ? `\n    mesh per call: ${r.mesh ? `frames ${(r.mesh.frames / r.ok).toFixed(2)}, bytes ${(r.mesh.bytes / r.ok).toFixed(0)}, writes ${(r.mesh.writes / r.ok).toFixed(2)} (handed off ${(r.mesh.handedOff / r.ok).toFixed(2)})` : 'no counters (one worker, or a build without them)'}` : '') +
    (r.perProcess ? `\n    per process (s per 1,000 calls; context switches voluntary+involuntary and minor page faults per call): ${r.perProcess}` : ''),
  heading: 'CPU s per 1,000 calls',
});
if (CPU_PROF) console.log(`\nCPU profiles in ${CPU_PROF}`);
