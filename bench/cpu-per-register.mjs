// Server CPU seconds per 1,000 authenticated REGISTERs (the cost per
// message), for this build and optionally other builds, back to back.
//
//   node bench/cpu-per-register.mjs [--rate 1000] [--registrations 20000] [--repeat 3]
//        [--baseline /path/to/other/dist/cli/main.js | NAME=PATH,NAME=PATH] [--cpu-prof DIR] [--users 1000]
//        [--workers auto|N]   (sip.workers; default the configuration's default, auto)
//        [--per-process yes]   (also print each server process's CPU per 1,000, context switches and minor
//                               page faults per REGISTER)
//        [--mesh yes]   (also print the SIP workers' mesh frames, bytes and writes per REGISTER, from their
//                        summary lines: the server runs at log level info with log.summary_interval 1)
//        [--transport udp|tcp|tls]   (default udp)
//        [--client node|sipp]   (TCP only: bench/sip-client.mjs, the default, or SIPp over one connection, `-t t1`,
//                                as the SIP table's TCP row)
//        [--overload off]   (no 503s or drops for load: sip.overload lag_ms 0, drop_lag_ms 0, target_utilization 1)
//        [--gc yes]   (every build's server runs with --trace-gc-nvp; prints, per registration of the
//                      measured run, the bytes V8 allocated and promoted, and scavenges and full
//                      collections per 1,000 with their pause ms)
//        [--node-args '--max-semi-space-size=4']   (node options of this build's server only; with
//        --baseline SAME=dist/cli/main.js the same build without them runs beside it)
//
// Each round starts rtcedge (UDP on 127.0.0.1, with TCP and TLS beside it for those transports,
// log level warn, TURN off),
// imports --users users with `rtcedge user import` while it runs (another
// process writing the store), sends 2,000 warm-up registrations, then
// --registrations more with the digest REGISTER scenario (bench/sip.mjs:
// REGISTER, 401, REGISTER with credentials, 200) at --rate per second, and
// reads the server's CPU time (user + system, /proc) around the measured run,
// and its read and write system calls (/proc/<pid>/io) per registration.
// UDP: SIPp over one socket. TCP and TLS: bench/sip-client.mjs over one
// connection (Debian's SIPp has no TLS; the same client for both, so the
// difference between the two is what TLS costs), in its own process; a
// registration it does not get a 200 for counts as failed.
// With --baseline, every round runs the baseline build first and this build
// right after, so both see the same machine load; the rounds give ranges.
// --cpu-prof DIR runs this build's server under `node --cpu-prof` (profiles
// written to DIR when the server stops; open them in Chrome DevTools).
// A shared or busy machine makes single figures noise: compare ranges.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runProcess, stopProcess, tempDir, cpuSeconds, ioSyscalls, sleep, compareBuilds, arg, processStats, meshTraffic, processBreakdown, socketHolder } from './lib.mjs';
import { startRtcedge, ROOT } from './rtcedge.mjs';
import { sippCounts } from './sip.mjs';
import { loadInProcess } from './sip-client.mjs';
import { REGISTER_SCENARIO as SCENARIO } from './sip-scenarios.mjs';

const SIP_PORT = 28360;
const SIPP_PORT = 28361;
const TLS_PORT = 28362;
const WARMUP = 2000;

const RATE = Number(arg('rate', 1000));
const REGISTRATIONS = Number(arg('registrations', 20000));
const REPEAT = Number(arg('repeat', 3));
const USERS = Number(arg('users', 1000));
const BASELINE = arg('baseline', undefined);
const CPU_PROF = arg('cpu-prof', undefined);
const TRANSPORT = arg('transport', 'udp');
/** Who loads a TCP listener: bench/sip-client.mjs or SIPp (`-t t1`). UDP is always SIPp, TLS always the Node client. */
const CLIENT = arg('client', 'node');
/** On a busy shared machine load shedding answers part of the load 503 (cheaper): off, every registration is served. */
const OVERLOAD_LINES = arg('overload', 'on') === 'off' ? ['  overload: { lag_ms: 0, drop_lag_ms: 0, target_utilization: 1 }'] : [];
const MESH = arg('mesh', 'no') !== 'no';
const GC = arg('gc', 'no') !== 'no';
if (!['udp', 'tcp', 'tls'].includes(TRANSPORT)) throw new Error(`--transport must be udp, tcp or tls, not ${TRANSPORT}`);
if (!['node', 'sipp'].includes(CLIENT) || (CLIENT === 'sipp' && TRANSPORT === 'tls')) throw new Error(`--client must be node or sipp (sipp: udp or tcp), not ${CLIENT}`);
const SIPP = TRANSPORT === 'udp' || (TRANSPORT === 'tcp' && CLIENT === 'sipp');

const users = Array.from({ length: USERS }, (_, i) => [`user${i}`, `pw-user${i}`]);

/** Run SIPp for `calls` registrations at RATE; returns SIPp's successful and failed counts. */
async function sipp(dir, calls, tag) {
  const stf = join(dir, `stat-${tag}.csv`);
  const args = [
    `127.0.0.1:${SIP_PORT}`,
    '-sf', join(dir, 'register.xml'),
    '-inf', join(dir, 'users.csv'),
    '-i', '127.0.0.1', '-p', String(SIPP_PORT), '-t', TRANSPORT === 'tcp' ? 't1' : 'u1',
    '-r', String(RATE), '-rp', '1000', '-l', String(Math.max(RATE * 2, 100)),
    '-m', String(calls),
    '-timeout', String(Math.ceil(calls / RATE) * 3 + 20), '-timeout_error',
    '-recv_timeout', '4000', '-nostdin', '-nd',
    '-trace_stat', '-stf', stf, '-fd', '1',
  ];
  const r = await runProcess('sipp', args, { timeoutMs: (Math.ceil(calls / RATE) * 3 + 40) * 1000 });
  return { ...sippCounts(stf), exit: r.code };
}

/** bench/sip-client.mjs for `calls` registrations at RATE over one TCP or TLS connection; same result shape as {@link sipp}. */
async function streamClient(calls) {
  const out = await loadInProcess({ port: TRANSPORT === 'tls' ? TLS_PORT : SIP_PORT, transport: TRANSPORT, rate: RATE, count: calls, users: USERS });
  return { ok: out.ok, failed: out.failed, retrans: 0, exit: out.exit, failures: out.failures };
}

/** The load of `calls` registrations over --transport. */
const load = (dir, calls, tag) => (SIPP ? sipp(dir, calls, tag) : streamClient(calls));

/**
 * What `--trace-gc-nvp` lines in `text` (the server's stdout of the measured run) say, per successful
 * registration: bytes allocated and promoted, and per 1,000 registrations the scavenges and full
 * (mark-compact) collections and their pause ms.
 */
function gcPerRegistration(text, ok) {
  const g = { allocated: 0, promoted: 0, scavenges: 0, fulls: 0, pauseMs: 0 };
  for (const line of text.split('\n')) {
    const kind = /\bgc=(\w+)/.exec(line)?.[1];
    if (!kind) continue;
    if (kind === 's') g.scavenges++;
    else g.fulls++;
    // A mark-compact line can carry a wrapped-around `allocated` (~2^63): such a figure is left out.
    const allocated = Number(/\ballocated=(\d+)/.exec(line)?.[1] ?? 0);
    if (allocated < 2 ** 40) g.allocated += allocated;
    g.promoted += Number(/\bpromoted=(\d+)/.exec(line)?.[1] ?? 0);
    g.pauseMs += Number(/\bpause=([\d.]+)/.exec(line)?.[1] ?? 0);
  }
  return `allocated ${(g.allocated / ok).toFixed(0)} B, promoted ${(g.promoted / ok).toFixed(0)} B per REGISTER; per 1,000: ${((g.scavenges / ok) * 1000).toFixed(1)} scavenges, ${((g.fulls / ok) * 1000).toFixed(2)} full collections, ${((g.pauseMs / ok) * 1000).toFixed(1)} ms paused`;
}

/** One round for one build: CPU s per 1,000 successful registrations. */
async function round(dir, name, cli, nodeArgs) {
  const sipStreams = TRANSPORT === 'udp' ? [] : [{ transport: 'tcp', port: SIP_PORT }, { transport: 'tls', port: TLS_PORT }];
  const logging = MESH ? { logLevel: 'info', summaryInterval: 1 } : {};
  const server = await startRtcedge({ sipPort: SIP_PORT, users: [], cli, nodeArgs, workers: arg('workers', undefined), sipStreams, sipLines: OVERLOAD_LINES, ...logging });
  try {
    // The users arrive while the server runs, from another process (as an operator's import would).
    const imp = await runProcess(process.execPath, [cli ?? join(ROOT, 'dist', 'cli', 'main.js'), 'user', 'import', join(dir, 'import.csv'), '-c', server.config], { timeoutMs: 120_000 });
    if (imp.code !== 0) throw new Error(`rtcedge user import failed: ${imp.stderr.trim()}`);
    await sleep(1000);
    await load(dir, WARMUP, `${name}-warm`);
    // The summary line of the second after the warm-up has none of it.
    if (MESH) await sleep(1100);
    const t0 = Date.now();
    const cpu0 = cpuSeconds(server.pid);
    const io0 = ioSyscalls(server.pid);
    const ps0 = processStats(server.pid);
    const out0 = server.stdout.length;
    // The worker holding the client's connection (streams), looked up once the measured run's connection is open.
    let holder;
    const look = TRANSPORT === 'udp' ? undefined : setTimeout(() => (holder = socketHolder(`( sport = :${TRANSPORT === 'tls' ? TLS_PORT : SIP_PORT} )`)), 1500);
    const r = await load(dir, REGISTRATIONS, name);
    clearTimeout(look);
    const gc = GC ? gcPerRegistration(server.stdout.slice(out0), r.ok) : undefined;
    const cpuS = cpuSeconds(server.pid) - cpu0;
    const io1 = ioSyscalls(server.pid);
    const perProcess = processBreakdown(ps0, processStats(server.pid), server.pid, r.ok, new Map(holder ? [[holder, 'the connection']] : []));
    let mesh;
    if (MESH) {
      // The line of the last second of the run comes up to a second later.
      const t1 = Date.now();
      await sleep(1100);
      mesh = meshTraffic(server.stdout, t0, t1 + 1000);
    }
    return { name, ...r, gc, cpuS, per1000: (cpuS / r.ok) * 1000, syscr: io1.syscr - io0.syscr, syscw: io1.syscw - io0.syscw, perProcess, mesh };
  } finally {
    await stopProcess(server);
  }
}

const dir = tempDir('cpu-per-register');
writeFileSync(join(dir, 'register.xml'), SCENARIO);
writeFileSync(join(dir, 'users.csv'), 'SEQUENTIAL\n' + users.map(([u, p]) => `${u};${p};`).join('\n') + '\n');
writeFileSync(join(dir, 'import.csv'), 'user,password\n' + users.map(([u, p]) => `${u}@example.test,${p}`).join('\n') + '\n');
console.log(`${REGISTRATIONS} REGISTERs over ${TRANSPORT} at ${RATE}/s over ${USERS} users, ${REPEAT} round(s)${BASELINE ? `, baseline ${BASELINE}` : ''}`);
await compareBuilds({
  baseline: BASELINE,
  nodeArgs: [...arg('node-args', '').split(' ').filter(Boolean), ...(CPU_PROF ? ['--cpu-prof', '--cpu-prof-dir', CPU_PROF] : [])],
  repeat: REPEAT,
  round: (b) => round(dir, b.name, b.cli, [...b.nodeArgs, ...(GC ? ['--trace-gc-nvp'] : [])]),
  line: (i, b, r) => `round ${i + 1} ${b.name.padEnd(14)} ok ${r.ok} failed ${r.failed} retrans ${r.retrans} cpu ${r.cpuS.toFixed(2)} s = ${r.per1000.toFixed(3)} s per 1,000, syscalls per REGISTER read ${(r.syscr / r.ok).toFixed(2)} write ${(r.syscw / r.ok).toFixed(2)}${MESH ? `\n    mesh per REGISTER: ${r.mesh ? `frames ${(r.mesh.frames / r.ok).toFixed(2)}, bytes ${(r.mesh.bytes / r.ok).toFixed(0)}, writes ${(r.mesh.writes / r.ok).toFixed(2)} (handed off ${(r.mesh.handedOff / r.ok).toFixed(2)}, responses relayed ${(r.mesh.relayedOut / r.ok).toFixed(2)})` : 'no counters (one worker, or a build without them)'}` : ''}${r.gc ? `\n    gc: ${r.gc}` : ''}${arg('per-process', 'no') !== 'no' ? `\n    per process (s per 1,000; context switches voluntary+involuntary and minor page faults per REGISTER): ${r.perProcess}` : ''}${r.failed ? ` ${JSON.stringify(r.failures ?? {})}` : ''}`,
  heading: 'CPU s per 1,000 REGISTERs',
});
if (CPU_PROF) console.log(`\nCPU profiles in ${CPU_PROF}`);
