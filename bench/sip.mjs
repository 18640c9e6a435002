// SIP benchmark: rtcedge against Kamailio with the same load, back to back per scenario.
//
// - SIPp 3.6.1 over UDP (one socket, -t u1) and TCP (one connection, -t t1): REGISTER with a fresh digest
//   challenge each time over SIP_BENCH_USERS users, and calls (INVITE → 407 → ACK → INVITE with
//   credentials → 200 → ACK → BYE) through the record-routing proxy to a SIPp UAS registered behind it.
// - TLS over one connection: bench/sip-client.mjs (Debian's SIPp has no TLS) runs the REGISTER scenario.
// - Step search: per server and scenario the rate rises by SIP_BENCH_FACTOR from SIP_BENCH_START_* until a
//   step fails, then SIP_BENCH_REFINE bisection steps between the last pass and the first failure.
//   A step passes with < 1 % failed calls, < 1 % retransmissions (of the requests SIPp sent with a timer),
//   mean response ≤ 100 ms, and SIPp keeping the rate (done within 1.25 × the step's length + 1 s).
// - Memory per idle registered TLS connection at SIP_BENCH_IDLE_CONNECTIONS connections (PSS of the
//   server's process tree before and after; Kamailio also its shared memory, core.shmmem real_used).
// - Two Kamailio configurations (bench/kamailio.mjs): `kamailio`, bindings in shared memory only (usrloc
//   db_mode 0), for every scenario; `kamailio-pg`, bindings written through to a PostgreSQL cluster the bench
//   starts (usrloc db_mode 1: the binding is in the database before the 200, as rtcedge commits it to SQLite
//   before its 200; fsync=off, synchronous_commit=on, as rtcedge's WAL with synchronous=NORMAL), for the
//   REGISTER scenarios only (calls read bindings from memory in both). kamailio-pg's CPU is Kamailio's process
//   tree plus the PostgreSQL cluster's; its rows reuse rtcedge's search of the same scenario and round.
//
// Environment (defaults give ≤ 15 minutes on an idle 2-core machine):
//   SIP_BENCH_STEP_S=5  SIP_BENCH_FACTOR=2  SIP_BENCH_REFINE=2  SIP_BENCH_MAX_RATE=40000  SIP_BENCH_USERS=1000
//   SIP_BENCH_START_REGISTER=1000  SIP_BENCH_START_CALL=250
//   SIP_BENCH_SCENARIOS=register-udp,call-udp,register-tcp,call-tcp,register-tls,call-tls,memory-tls
//   SIP_BENCH_SERVERS=rtcedge,kamailio,kamailio-pg  SIP_BENCH_IDLE_CONNECTIONS=1000,5000
//   SIP_BENCH_SEARCH_BUDGET_S=600 (all searches together; each gets an equal share, then starts no new step;
//   kamailio-pg's searches get the same share on top)
//   RTCEDGE_SIP_WORKERS=auto (sip.workers)  KAMAILIO_CHILDREN=4
//   SIP_BENCH_SIPP_BUFFER_BYTES=4194304 (SIPp's -buff_size, its sockets' receive and send buffers; SIPp's default 65535)
//   RTCEDGE_BENCH_CLI=/path/to/other/dist/cli/main.js (measure another build)
//   SIP_BENCH_ROUNDS=1 (each scenario's searches repeated this many times, the servers' order alternating
//   between rounds; the table gives every round's rates and ratios and their median; the budget is per round)
// Quick check: SIP_BENCH_STEP_S=2 SIP_BENCH_REFINE=0 SIP_BENCH_MAX_RATE=400 SIP_BENCH_IDLE_CONNECTIONS=50 node bench/sip.mjs
import { writeFileSync, readFileSync, existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { pathToFileURL, fileURLToPath } from 'node:url';
import { availableParallelism } from 'node:os';
import { startProcess, stopProcess, tempDir, cpuSeconds, sleep, processTree, threadDirs, udpRcvbufErrors, udpSocketDrops, CLK_TCK } from './lib.mjs';
import { startRtcedge, sipLinesAccepted } from './rtcedge.mjs';
import { startKamailio, stopKamailio, kamailioShmUsed, KAMAILIO_CHILDREN } from './kamailio.mjs';
import { REGISTER_SCENARIO, CALL_UAC_SCENARIO, CALL_UAS_SCENARIO, REPARTITION_MS } from './sip-scenarios.mjs';
import { SipConnection, registerOnce } from './sip-client.mjs';
import { debVersion } from './turn.mjs';
import { pgVersion } from './postgres.mjs';

const env = (k, d) => process.env[k] ?? d;
const envN = (k, d) => Number(env(k, String(d)));
const envList = (k, d) => env(k, d).split(',').map((s) => s.trim()).filter(Boolean);

const STEP_S = envN('SIP_BENCH_STEP_S', 5);
const FACTOR = envN('SIP_BENCH_FACTOR', 2);
const REFINE = envN('SIP_BENCH_REFINE', 2);
const MAX_RATE = envN('SIP_BENCH_MAX_RATE', 40000);
const USERS = envN('SIP_BENCH_USERS', 1000);
const START = { register: envN('SIP_BENCH_START_REGISTER', 1000), call: envN('SIP_BENCH_START_CALL', 250) };
const SCENARIOS = envList('SIP_BENCH_SCENARIOS', 'register-udp,call-udp,register-tcp,call-tcp,register-tls,call-tls,memory-tls');
const SERVERS = envList('SIP_BENCH_SERVERS', 'rtcedge,kamailio,kamailio-pg');
const IDLE_CONNECTIONS = envList('SIP_BENCH_IDLE_CONNECTIONS', '1000,5000').map(Number);
const WORKERS = env('RTCEDGE_SIP_WORKERS', 'auto');
/**
 * SIPp's socket buffers (`-buff_size`: SO_RCVBUF and SO_SNDBUF, bytes; the kernel caps them at net.core.rmem_max
 * and wmem_max). SIPp's own default, 65,535, lets one SIPp socket that stands for 1,000 UAs drop answers that
 * arrive in a burst while it is busy, which then counts as the server's retransmissions.
 */
const SIPP_BUFFER_BYTES = envN('SIP_BENCH_SIPP_BUFFER_BYTES', 4194304);
/** Another build's dist/cli/main.js to measure instead of this checkout's (e.g. a branch built elsewhere). */
const CLI = process.env.RTCEDGE_BENCH_CLI || undefined;
/** Time for all step searches together, s; each search gets an equal share and stops starting steps past it. */
const SEARCH_BUDGET_S = envN('SIP_BENCH_SEARCH_BUDGET_S', 600);
/** Searches per server and scenario; odd rounds run the servers in reverse order, so neither always goes first. */
const ROUNDS = Math.max(1, Math.floor(envN('SIP_BENCH_ROUNDS', 1)));

/** Pass criteria of a step. */
export const PASS = { maxFailedShare: 0.01, maxRetransShare: 0.01, maxMeanMs: 100 };

const PORTS = {
  rtcedge: { udp: 28160, tcp: 28160, tls: 28161 },
  kamailio: { udp: 28170, tcp: 28170, tls: 28171 },
  'kamailio-pg': { udp: 28174, tcp: 28174, tls: 28175 },
};
/** SIPp's local ports rotate over this range (a TCP port just closed may still be in TIME_WAIT). */
const SIPP_PORT0 = 28180;
const UAS_PORT = { udp: 28191, tcp: 28192 };
/** Digits of the users, passwords pw-<user>; the callee of the call scenarios per transport. */
const userList = (n) => Array.from({ length: n }, (_, i) => [`user${i}`, `pw-user${i}`]);
const CALLEE = { udp: 'calleeudp', tcp: 'calleetcp', tls: 'calleetls' };
const BENCH_JS = dirname(fileURLToPath(import.meta.url));

const f = (x, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');
const pct = (x) => (Number.isFinite(x) ? (100 * x).toFixed(2) + ' %' : 'n/a');

/** Parse SIPp's -trace_stat CSV (semicolon separated); returns the last row keyed by column. */
export function lastStat(file) {
  if (!existsSync(file)) return null;
  const lines = readFileSync(file, 'utf8').trim().split('\n');
  if (lines.length < 2) return null;
  const head = lines[0].split(';');
  const row = lines[lines.length - 1].split(';');
  return Object.fromEntries(head.map((h, i) => [h, row[i]]));
}

/**
 * The call counters of SIPp's -trace_stat file `file` at the end of a run: `ok` (0 when there is no row),
 * `failed` and `retrans` (NaN when there is no row).
 */
export function sippCounts(file) {
  const st = lastStat(file);
  return {
    ok: st ? Number(st['SuccessfulCall(C)']) : 0,
    failed: st ? Number(st['FailedCall(C)']) : NaN,
    retrans: st ? Number(st['Retransmissions(C)']) : NaN,
    failures: st ? failureKinds(st) : {},
  };
}

/** SIPp durations "HH:MM:SS:uuuuuu" -> seconds */
export function hms(v) {
  if (!v) return NaN;
  const p = v.split(':').map(Number);
  return p[0] * 3600 + p[1] * 60 + p[2] + (p[3] ?? 0) / 1e6;
}

/** SIPp time stamps "date\ttime\tepoch" -> epoch seconds */
export function epoch(v) {
  return v ? Number(v.split('\t')[2]) : NaN;
}

/**
 * SIPp's response-time repartition summed over its rtds: counts per bin (bin k: < REPARTITION_MS[k],
 * the last: ≥ the largest bound), and the mean (each rtd's cumulative mean weighted by its count).
 */
export function responseTimes(st, rtds) {
  const bins = new Array(REPARTITION_MS.length + 1).fill(0);
  let n = 0;
  let sum = 0;
  for (let r = 1; r <= rtds; r++) {
    let count = 0;
    REPARTITION_MS.forEach((b, k) => {
      const c = Number(st[`ResponseTimeRepartition${r}_<${b}`] ?? 0);
      bins[k] += c;
      count += c;
    });
    const over = Number(st[`ResponseTimeRepartition${r}_>=${REPARTITION_MS.at(-1)}`] ?? 0);
    bins[REPARTITION_MS.length] += over;
    count += over;
    n += count;
    sum += hms(st[`ResponseTime${r}(C)`]) * 1000 * count;
  }
  const upTo = (q) => {
    let acc = 0;
    for (let k = 0; k < bins.length; k++) {
      acc += bins[k];
      if (acc >= q * n && n > 0) return k < REPARTITION_MS.length ? `<${REPARTITION_MS[k]}` : `≥${REPARTITION_MS.at(-1)}`;
    }
    return 'n/a';
  };
  return { responses: n, meanMs: n ? sum / n : NaN, p50: upTo(0.5), p90: upTo(0.9), p99: upTo(0.99) };
}

/**
 * Runs a command to completion with a time limit; on time-out its whole process tree (ours) is killed.
 * With `cpuFile`, the command runs under sh, which writes the child's utime+stime (clock ticks, fields
 * cutime/cstime of its own /proc stat) there when it ends.
 */
async function runTimed(cmd, args, timeoutMs, cpuFile, onStart) {
  const p = cpuFile
    ? startProcess('sh', ['-c', 'f=$1; shift; "$@"; rc=$?; cut -d" " -f16-17 /proc/$$/stat > "$f"; exit $rc', 'timed', cpuFile, cmd, ...args])
    : startProcess(cmd, args);
  onStart?.(p);
  let timer;
  const res = await Promise.race([p.exited, new Promise((r) => (timer = setTimeout(() => r('timeout'), timeoutMs)))]);
  clearTimeout(timer);
  if (res === 'timeout') {
    for (const pid of processTree(p.pid).reverse()) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {}
    }
    await p.exited;
  }
  let cpuS = NaN;
  if (cpuFile && existsSync(cpuFile)) {
    const [u, s] = readFileSync(cpuFile, 'utf8').trim().split(' ').map(Number);
    cpuS = (u + s) / 100;
  }
  return { code: res === 'timeout' ? 'timeout' : res, stdout: p.stdout, stderr: p.stderr, cpuS };
}

/**
 * The PIDs whose process trees are a started server's work: its own process, and for Kamailio on PostgreSQL
 * also the postmaster (the database's work is the registrar's, as rtcedge's SQLite work is inside its processes).
 */
const serverRoots = (proc) => proc.cpuRoots ?? [proc.pid];

/** CPU seconds (user+system) used so far by a server's process trees (serverRoots). */
function serverCpuSeconds(proc) {
  return serverRoots(proc).reduce((t, pid) => t + cpuSeconds(pid), 0);
}

/** CPU seconds used so far by the PostgreSQL cluster of a Kamailio on PostgreSQL (part of serverCpuSeconds); undefined for other servers. */
function dbCpuSeconds(proc) {
  return proc.pg ? cpuSeconds(proc.pg.pid) : undefined;
}

/**
 * Shares of one core used by the server (all of serverRoots), the load generator, the UAS and the whole
 * machine during the load phase only: from 0.5 s after the generator starts to 0.5 s before its load should
 * end (the generator is still alive then; the tail of a failing step, waiting for time-outs, is left out).
 */
function loadPhaseCpu(serverProc, uasPid) {
  const probe = { done: undefined };
  const sample = (clientPid) => ({
    threads: threadTicks(serverRoots(serverProc)),
    server: serverCpuSeconds(serverProc),
    uas: uasPid ? cpuSeconds(uasPid) : 0,
    client: clientPid ? cpuSeconds(clientPid) : 0,
    machine: machineBusySeconds(),
  });
  probe.onStart = (p) => {
    const margin = Math.min(0.5, STEP_S / 4);
    probe.done = sleep(margin * 1000).then(async () => {
      const t0 = performance.now();
      const s0 = sample(p.pid);
      await sleep((STEP_S - 2 * margin) * 1000);
      const s1 = sample(p.pid);
      const t = (performance.now() - t0) / 1000;
      let busiest = 0;
      for (const [id, ticks] of s1.threads) busiest = Math.max(busiest, (ticks - (s0.threads.get(id) ?? 0)) / CLK_TCK / t);
      const shares = Object.fromEntries(['server', 'uas', 'client', 'machine'].map((k) => [k, (s1[k] - s0[k]) / t]));
      return { ...shares, busiestThread: busiest };
    });
  };
  return probe;
}

/** utime+stime (clock ticks) of every thread of the process trees of `roots` (PIDs), keyed "pid/tid". */
function threadTicks(roots) {
  const out = new Map();
  for (const task of roots.flatMap((root) => threadDirs(root))) {
    try {
      const st = readFileSync(`${task}/stat`, 'utf8');
      const fields = st.slice(st.lastIndexOf(')') + 2).split(' ');
      out.set(task.slice('/proc/'.length).replace('/task/', '/'), Number(fields[11]) + Number(fields[12]));
    } catch {}
  }
  return out;
}

/** CPU seconds all CPUs of the machine have been busy (user, nice, system, irq, softirq, steal in /proc/stat). */
function machineBusySeconds() {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  return (f[0] + f[1] + f[2] + f[5] + f[6] + f[7]) / CLK_TCK;
}

/**
 * Waits (at most 10 s) until the server uses less than a tenth of a core over half a second: a step that
 * failed may leave a backlog the next step should not inherit.
 */
async function settle(proc) {
  for (let t = 0; t < 20; t++) {
    const c0 = serverCpuSeconds(proc);
    await sleep(500);
    if (serverCpuSeconds(proc) - c0 < 0.05) return;
  }
}

let portTurn = 0;
/** Requests per call that SIPp sends with a retransmission timer (the denominator of the retransmission share). */
const TIMED_REQUESTS = { register: 2, call: 3 };

/** One SIPp step at `rate` for STEP_S seconds; returns its measures and whether it passed. */
async function sippStep(ctx, rate) {
  const { kind, transport, server, dir } = ctx;
  const calls = Math.max(1, Math.round(rate * STEP_S));
  const tag = `${server.name}-${kind}-${transport}-${rate}`;
  const stf = join(dir, `stat-${tag}.csv`);
  const localPort = SIPP_PORT0 + (portTurn++ % 10);
  const args = [
    `127.0.0.1:${server.ports[transport]}`,
    '-sf', join(dir, `${kind}.xml`),
    '-inf', join(dir, 'users.csv'),
    ...(kind === 'call' ? ['-s', CALLEE[transport]] : []),
    '-i', '127.0.0.1', '-p', String(localPort), '-t', transport === 'udp' ? 'u1' : 't1',
    // Calls open at once: twice a second's worth, below SIPp's open-files bound (ulimit -n 20000 here).
    '-r', String(rate), '-rp', '1000', '-l', String(Math.min(Math.max(rate * 2, 200), 9000)),
    '-m', String(calls),
    '-timeout', String(STEP_S * 3 + 10), '-timeout_error',
    '-recv_timeout', '4000',
    '-default_behaviors', 'all,-bye',
    '-nostdin', '-nd', '-buff_size', String(SIPP_BUFFER_BYTES),
    '-trace_stat', '-stf', stf, '-fd', '1',
  ];
  await settle(server.proc);
  const drops0 = udpRcvbufErrors();
  const serverDrops0 = transport === 'udp' ? udpSocketDrops(server.ports.udp) : 0;
  const uasDrops0 = transport === 'udp' && ctx.uas ? udpSocketDrops(UAS_PORT.udp) : 0;
  const uasCpu0 = ctx.uas ? cpuSeconds(ctx.uas.pid) : 0;
  const cpu0 = serverCpuSeconds(server.proc);
  const db0 = dbCpuSeconds(server.proc);
  const t0 = performance.now();
  const probe = loadPhaseCpu(server.proc, ctx.uas?.pid);
  const r = await runTimed('sipp', args, (STEP_S * 3 + 20) * 1000, join(dir, `cpu-${tag}`), probe.onStart);
  const loadCpu = await probe.done;
  const wallS = (performance.now() - t0) / 1000;
  const cpu1 = serverCpuSeconds(server.proc);
  const db1 = dbCpuSeconds(server.proc);
  const uasCpuS = ctx.uas ? cpuSeconds(ctx.uas.pid) - uasCpu0 : 0;
  const st = lastStat(stf) ?? {};
  const ok = Number(st['SuccessfulCall(C)'] ?? 0);
  const failed = Number(st['FailedCall(C)'] ?? NaN);
  const retrans = Number(st['Retransmissions(C)'] ?? NaN);
  const elapsedS = epoch(st['CurrentTime']) - epoch(st['StartTime']);
  const rt = responseTimes(st, kind === 'call' ? 3 : 2);
  const row = {
    server: server.label, serverName: server.name, kind, transport, client: 'SIPp',
    rate, calls, ok, failed, elapsedS, wallS,
    okPerS: ok / elapsedS,
    retrans,
    retransShare: retrans / (calls * TIMED_REQUESTS[kind]),
    failedShare: (calls - ok) / calls,
    failedBy: { ...failureKinds(st), ...fatal(r) },
    drops: udpRcvbufErrors() - drops0,
    // The server's and the UAS's sockets outlive the step, so their own counters tell their share; the rest of
    // the host-wide count is the load generator's socket (SIPp's closes with it) and anything else on the host.
    serverDrops: transport === 'udp' ? udpSocketDrops(server.ports.udp) - serverDrops0 : undefined,
    uasDrops: transport === 'udp' && ctx.uas ? udpSocketDrops(UAS_PORT.udp) - uasDrops0 : undefined,
    ...rt,
    cpuS: cpu1 - cpu0,
    dbCpuS: db0 === undefined ? undefined : db1 - db0,
    clientCpuS: r.cpuS,
    uasCpuS,
    loadCpu,
    exit: r.code,
    command: 'sipp ' + args.join(' ').replaceAll(dir, '$DIR'),
  };
  row.cpuPer1000 = (row.cpuS / ok) * 1000;
  row.pass = passes(row);
  return row;
}

/** A load generator that stopped with an error (SIPp: exit 255 and the like), with the last line it wrote. */
function fatal(r) {
  if (r.code === 0 || r.code === 1) return {};
  const last = (r.stderr + r.stdout).trim().split('\n').filter((l) => /\w/.test(l)).at(-1) ?? '';
  return { [`exit ${r.code}${last ? ': ' + last.replace(/^[\d\s.:-]+/, '').slice(0, 160) : ''}`]: 1 };
}

/** SIPp's non-zero Failed* counters, e.g. { TimeoutOnRecv: 12, UnexpectedMessage: 3 }. */
function failureKinds(st) {
  const out = {};
  for (const [k, v] of Object.entries(st)) {
    const m = /^Failed(\w+)\(C\)$/.exec(k);
    if (m && m[1] !== 'Call' && Number(v) > 0) out[m[1]] = Number(v);
  }
  return out;
}

function passes(r) {
  return (
    r.ok > 0 &&
    r.failedShare < PASS.maxFailedShare &&
    !(r.retransShare >= PASS.maxRetransShare) &&
    r.meanMs <= PASS.maxMeanMs &&
    r.elapsedS <= STEP_S * 1.25 + 1
  );
}

/**
 * A TLS step: bench/sip-client.mjs in its own process over one connection (REGISTER, or calls to a second
 * connection of the same process registered as the callee).
 */
async function tlsStep(ctx, rate) {
  const { server, dir, kind } = ctx;
  const args = [
    join(BENCH_JS, 'sip-client.mjs'), 'load', '--port', String(server.ports.tls), '--transport', 'tls', '--rate', String(rate),
    '--seconds', String(STEP_S), '--users', String(USERS), '--scenario', kind, ...(kind === 'call' ? ['--callee', CALLEE.tls] : []),
  ];
  const cpu0 = serverCpuSeconds(server.proc);
  const db0 = dbCpuSeconds(server.proc);
  await settle(server.proc);
  const probe = loadPhaseCpu(server.proc);
  const r = await runTimed(process.execPath, args, (STEP_S * 3 + 20) * 1000, join(dir, `cpu-tls-${server.name}-${kind}-${rate}`), probe.onStart);
  const loadCpu = await probe.done;
  const cpu1 = serverCpuSeconds(server.proc);
  const db1 = dbCpuSeconds(server.proc);
  let j = {};
  try {
    j = JSON.parse(r.stdout.trim().split('\n').at(-1));
  } catch {}
  const row = {
    server: server.label, serverName: server.name, kind, transport: 'tls', client: 'bench/sip-client.mjs',
    rate, calls: j.calls ?? Math.round(rate * STEP_S), ok: j.ok ?? 0, failed: j.failed ?? NaN,
    elapsedS: j.elapsedS ?? NaN, okPerS: (j.ok ?? 0) / j.elapsedS,
    retrans: 0, retransShare: 0,
    failedShare: ((j.calls ?? 1) - (j.ok ?? 0)) / (j.calls ?? 1),
    // A client that printed no result names its exit code and the last line of its stderr (the error).
    failedBy: j.failures ?? { [`client exit ${r.code}${lastLine(r.stderr)}`]: 1 },
    meanMs: j.meanMs ?? NaN,
    p50: f(j.p50Ms, 2), p90: f(j.p90Ms, 2), p99: f(j.p99Ms, 2), responses: j.responses ?? 0,
    cpuS: cpu1 - cpu0, dbCpuS: db0 === undefined ? undefined : db1 - db0, clientCpuS: r.cpuS, uasCpuS: 0, loadCpu, exit: r.code,
    command: `node bench/sip-client.mjs ${args.slice(1).join(' ')}`,
  };
  row.cpuPer1000 = (row.cpuS / row.ok) * 1000;
  row.pass = passes(row);
  return row;
}

/**
 * Step search: raise the rate by FACTOR from `start` until a step fails (or MAX_RATE), then REFINE
 * bisections between the last passing and the first failing rate. If `start` fails, lower it first.
 */
async function search(step, start, log, budgetMs) {
  const steps = [];
  const t0 = Date.now();
  let truncated = false;
  const run = async (rate) => {
    if (steps.length > 0 && Date.now() - t0 > budgetMs) {
      truncated = true;
      return undefined;
    }
    const r = await step(rate);
    steps.push(r);
    log(fmtRow(r));
    return r;
  };
  let pass;
  let fail;
  let rate = start;
  for (let down = 0; ; ) {
    const r = await run(rate);
    if (!r) break;
    if (r.pass) {
      pass = r;
      if (fail) break;
      if (rate >= MAX_RATE) break;
      rate = Math.min(MAX_RATE, Math.round(rate * FACTOR));
    } else {
      fail = r;
      if (pass || ++down > 3 || rate <= 10) break;
      rate = Math.max(10, Math.round(rate / FACTOR));
    }
  }
  for (let k = 0; k < REFINE && pass && fail && fail.rate - pass.rate > pass.rate * 0.05; k++) {
    const r = await run(Math.round((pass.rate + fail.rate) / 2));
    if (!r) break;
    if (r.pass) pass = r;
    else fail = r;
  }
  return { steps, best: pass, firstFail: fail, truncated };
}

/** One sentence on what limited a search, from the CPU use of server, load generator and UAS in its first failing step. */
function limitOf(s, serverCores, withDb = false) {
  const r = s.firstFail;
  const cut = s.truncated ? ` (the search stopped at its share of SIP_BENCH_SEARCH_BUDGET_S, ${f(SEARCH_BUDGET_S / s.searches)} s)` : '';
  if (!r) return (s.best ? `no step failed up to ${s.best.rate}/s` : 'no step ran') + (cut || ` (SIP_BENCH_MAX_RATE ${MAX_RATE}/s)`);
  const parts = [];
  // Shares of one core during the load phase.
  const { server, client, uas, machine } = r.loadCpu;
  const why = [];
  if (r.failedShare >= PASS.maxFailedShare) why.push(`${pct(r.failedShare)} failed (${Object.entries(r.failedBy).map(([k, v]) => `${k} ${v}`).join(', ') || 'unfinished'})`);
  if (r.retransShare >= PASS.maxRetransShare) why.push(`${pct(r.retransShare)} retransmissions` + (r.drops > 0 ? ` (${r.drops} datagrams dropped by full receive buffers${dropsSplit(r)})` : ''));
  if (!(r.meanMs <= PASS.maxMeanMs)) why.push(`mean response ${f(r.meanMs, 1)} ms`);
  if (r.elapsedS > STEP_S * 1.25 + 1) why.push(`the step took ${f(r.elapsedS, 1)} s for ${STEP_S} s of load`);
  parts.push(`at ${r.rate}/s: ${why.join(', ') || 'failed'}`);
  const others = Math.max(0, machine - server - client - uas);
  // A Kamailio on PostgreSQL: the cluster's processes are the server's (loadPhaseCpu counts them there).
  const db = withDb ? ` (Kamailio and PostgreSQL)` : '';
  const shares = `server${db} ${f(server * 100)} %, ${r.client} ${f(client * 100)} %${uas ? `, UAS ${f(uas * 100)} %` : ''}, other processes ${f(others * 100)} % of a core`;
  let verdict;
  if (client >= 0.85) verdict = `the load generator's own CPU (${shares})`;
  else if (r.loadCpu.busiestThread >= 0.85) verdict = `one server thread or process at ${f(r.loadCpu.busiestThread * 100)} % of a core (${shares})`;
  else if (server >= 0.85 * serverCores) verdict = `the server's CPU: ${serverCores} core${serverCores > 1 ? 's' : ''} it can use (${shares})`;
  else if (machine >= 1.7) verdict = `the 2 shared cores, all busy (${shares})`;
  else verdict = `not CPU: cores to spare (${shares})`;
  return `${verdict}; ${parts.join('')}${cut}`;
}

/** Registers `user` (password pw-<user>) over UDP with the given Contact; throws unless 200. */
export async function registerContact(port, user, contact) {
  const c = await new SipConnection({ port, transport: 'udp' }).open();
  try {
    const r = await registerOnce(c, { user, password: `pw-${user}`, contact });
    if (r.status !== 200) throw new Error(`REGISTER of ${user} got ${r.status}`);
  } finally {
    c.close();
  }
}

/** PSS of a process tree, kB (sum of Pss in /proc/<pid>/smaps_rollup); RSS beside it. */
function memoryKb(root) {
  let pss = 0;
  let rss = 0;
  for (const pid of processTree(root)) {
    try {
      const t = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
      pss += Number(/^Pss:\s+(\d+)/m.exec(t)?.[1] ?? 0);
      rss += Number(/^Rss:\s+(\d+)/m.exec(t)?.[1] ?? 0);
    } catch {}
  }
  return { pss, rss };
}

/** Memory per idle registered TLS connection: fresh server, `n` connections from sip-client.mjs idle mode. */
async function idleMemory(server, n, log) {
  const p = await server.start({ memory: true });
  try {
    await sleep(2000);
    const m0 = memoryKb(p.pid);
    const shm0 = server.name === 'kamailio' ? await kamailioShmUsed(p) : NaN;
    const client = startProcess(process.execPath, [join(BENCH_JS, 'sip-client.mjs'), 'idle', '--port', String(server.ports.tls), '--transport', 'tls', '--connections', String(n)], { stdin: undefined });
    let ready;
    const t0 = Date.now();
    while (!ready && Date.now() - t0 < 300_000 && client.child.exitCode === null) {
      await sleep(500);
      const line = client.stdout.split('\n').find((l) => l.startsWith('{"ready"'));
      if (line) ready = JSON.parse(line);
    }
    await sleep(3000);
    const m1 = memoryKb(p.pid);
    const shm1 = server.name === 'kamailio' ? await kamailioShmUsed(p) : NaN;
    await stopProcess(client);
    const row = {
      server: server.name === 'kamailio' ? server.label.replace(/\)$/, ', tcp_children=1)') : server.label, serverName: server.name, connections: n,
      registered: ready?.registered ?? 0, open: ready?.open ?? 0, failures: ready?.failures ?? { 'client did not get ready': 1 },
      pss0: m0.pss, pss1: m1.pss, rss0: m0.rss, rss1: m1.rss,
      pssPerConnKb: (m1.pss - m0.pss) / n, rssPerConnKb: (m1.rss - m0.rss) / n,
      shmPerConnKb: (shm1 - shm0) / 1024 / n,
      setupS: (Date.now() - t0) / 1000,
    };
    log(`${row.server} ${n} idle TLS connections (${row.registered} registered, ${row.open} open): PSS ${row.pss0} → ${row.pss1} kB = ${f(row.pssPerConnKb, 1)} kB each, RSS ${f(row.rssPerConnKb, 1)} kB each${Number.isFinite(row.shmPerConnKb) ? `, shared memory ${f(row.shmPerConnKb, 1)} kB each` : ''}`);
    return row;
  } finally {
    await server.stop(p);
  }
}

/** The rtcedge and Kamailio servers as the bench drives them. */
async function servers(notes, commands) {
  const users = [...userList(Math.max(USERS, ...IDLE_CONNECTIONS)), ...Object.values(CALLEE).map((u) => [u, `pw-${u}`])];
  const workersLine = `  workers: ${/^\d+$/.test(WORKERS) ? WORKERS : `'${WORKERS}'`}`;
  if (CLI) notes.push(`rtcedge measured from another build: RTCEDGE_BENCH_CLI=${CLI}`);
  const accepted = await sipLinesAccepted([workersLine], CLI);
  if (!accepted.ok) notes.push(`this build does not accept sip.workers (${accepted.message.split('\n')[0]}): rtcedge ran with its default, one worker`);
  const sipLines = [
    ...(accepted.ok ? [workersLine] : []),
    // The bench's callers are 1,000 users calling one callee: the per-user call limits would refuse them.
    '  security: { calls: { max_concurrent_per_user: 0, max_attempts_per_minute: 0 } }',
  ];
  const rtcedgeCores = accepted.ok ? Math.min(availableParallelism(), WORKERS === 'auto' ? Infinity : Number(WORKERS)) : 1;
  const all = {
    rtcedge: {
      name: 'rtcedge',
      label: `rtcedge (${accepted.ok ? `sip.workers ${WORKERS}` : 'one worker'})`,
      cores: rtcedgeCores,
      ports: PORTS.rtcedge,
      start: async () => {
        const p = await startRtcedge({
          sipPort: PORTS.rtcedge.udp,
          sipStreams: [{ transport: 'tcp', port: PORTS.rtcedge.tcp }, { transport: 'tls', port: PORTS.rtcedge.tls }],
          sipLines,
          users,
          importUsers: true,
          cli: CLI,
        });
        commands.add(`rtcedge: ${p.cmdline.replaceAll(p.dir, '$RDIR')}  (sip.listen udp+tcp 127.0.0.1:${PORTS.rtcedge.udp}, tls 127.0.0.1:${PORTS.rtcedge.tls} with the generated certificate; ${sipLines.map((l) => 'sip.' + l.trim()).join('; ')}; turn disabled; log.level warn; ${users.length} users by rtcedge user import)`);
        return p;
      },
      stop: (p) => stopProcess(p),
    },
    kamailio: {
      name: 'kamailio',
      label: `Kamailio ${debVersion('kamailio')} (children=${KAMAILIO_CHILDREN})`,
      cores: 2,
      ports: PORTS.kamailio,
      // For the idle TLS connections: one TCP/TLS worker. Debian's Kamailio 5.6.3 with OpenSSL 3 corrupts its
      // shared memory and crashes when several TLS workers take handshakes at once (kamailio/kamailio#3791;
      // the tls_threads_mode fix came in later versions); connections live in shared memory either way.
      start: async (o = {}) => {
        const p = await startKamailio(PORTS.kamailio, o.memory ? 1 : KAMAILIO_CHILDREN);
        commands.add(`kamailio: ${p.cmdline}${o.memory ? '  (idle TLS connections: tcp_children=1)' : ''}`);
        if (!o.memory) all.kamailio.cfgText = p.cfgText;
        return p;
      },
      stop: (p) => stopKamailio(p),
    },
    // The same Kamailio with usrloc written through to PostgreSQL (db_mode 1): durable bindings before the 200,
    // as rtcedge's. REGISTER scenarios only: calls read bindings from memory in both usrloc modes.
    'kamailio-pg': {
      name: 'kamailio-pg',
      label: `Kamailio ${debVersion('kamailio')} (children=${KAMAILIO_CHILDREN}, bindings written through to PostgreSQL ${pgVersion()})`,
      cores: 2,
      ports: PORTS['kamailio-pg'],
      kinds: ['register'],
      start: async () => {
        const p = await startKamailio(PORTS['kamailio-pg'], KAMAILIO_CHILDREN, 'postgres');
        commands.add(`kamailio (bindings in PostgreSQL): ${p.cmdline}`);
        commands.add(`postgresql (for kamailio-pg): ${p.pg.cmdline}  (initdb --auth=trust --no-sync; database kamailio from /usr/share/kamailio/postgres/standard-create.sql and usrloc-create.sql)`);
        all['kamailio-pg'].cfgText = p.cfgText;
        return p;
      },
      stop: (p) => stopKamailio(p),
    },
  };
  for (const s of SERVERS) if (!all[s]) notes.push(`SIP_BENCH_SERVERS: unknown server ${s} (expected ${Object.keys(all).join(', ')})`);
  return SERVERS.map((s) => all[s]).filter(Boolean);
}

/**
 * One sentence on what Kamailio on PostgreSQL (`proc`, still running) wrote to its `location` table: rows,
 * inserts and updates counted by PostgreSQL (pg_stat_user_tables), against the REGISTERs it answered 200 in
 * the steps of `searches`. A backend flushes its counts to the statistics at most 10 s after it goes idle
 * (PostgreSQL 15's PGSTAT_IDLE_INTERVAL), so the counts are read until they reach that number or 15 s pass.
 */
async function bindingWrites(proc, searches) {
  const ok = searches.filter((s) => s.serverName === 'kamailio-pg').flatMap((s) => s.steps).reduce((n, r) => n + r.ok, 0);
  try {
    let rows, ins, upd, del;
    for (const t0 = Date.now(); Date.now() - t0 < 15_000; await sleep(1000)) {
      [rows, ins, upd, del] = (await proc.pg.psql("SELECT (SELECT count(*) FROM location), n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_user_tables WHERE relname = 'location'")).trim().split('|').map(Number);
      if (ins + upd >= ok) break;
    }
    return `Kamailio on PostgreSQL wrote its bindings: ${rows} rows in location at the end, ${ins} inserts, ${upd} updates and ${del} deletes counted by PostgreSQL (pg_stat_user_tables), for ${ok} REGISTERs it answered 200 in the steps`;
  } catch (e) {
    return `Kamailio on PostgreSQL: its location table could not be read at the end (${e.message.slice(0, 200)}); it answered ${ok} REGISTERs 200 in the steps`;
  }
}

/**
 * Runs the SIP benchmark. Returns { searches, memory, notes, commands, kamailioCfg, settings }:
 * searches[] = { scenario, server, steps[], best, firstFail, limit }.
 */
export async function runSipBench(log = console.log) {
  const t0 = Date.now();
  const dir = tempDir('sipp');
  writeFileSync(join(dir, 'register.xml'), REGISTER_SCENARIO);
  writeFileSync(join(dir, 'call.xml'), CALL_UAC_SCENARIO);
  writeFileSync(join(dir, 'uas.xml'), CALL_UAS_SCENARIO);
  writeFileSync(join(dir, 'users.csv'), 'SEQUENTIAL\n' + userList(USERS).map(([u, p]) => `${u};${p};`).join('\n') + '\n');
  const notes = [];
  const commands = new Set();
  const list = await servers(notes, commands);
  const searches = [];
  const memory = [];
  const running = new Map();
  const searchScenarios = SCENARIOS.filter((s) => !s.startsWith('memory'));
  /** Whether `server` runs the searches of `scenario` (kamailio-pg: REGISTER only). */
  const runs = (server, scenario) => !server.kinds || server.kinds.includes(scenario.split('-')[0]);
  // Each search's share of the budget: the budget over the searches of rtcedge and Kamailio in memory, as before
  // kamailio-pg existed (so their searches keep their length); kamailio-pg's searches get the same share on top.
  const searchCount = Math.max(1, searchScenarios.reduce((n, scenario) => n + list.filter((server) => server.name !== 'kamailio-pg' && runs(server, scenario)).length, 0));
  try {
    for (const scenario of searchScenarios) {
      const [kind, transport] = scenario.split('-');
      for (let round = 0; round < ROUNDS; round++)
      for (const server of (round % 2 ? [...list].reverse() : list).filter((server) => runs(server, scenario))) {
        const label = `${server.label}, ${scenario}${ROUNDS > 1 ? `, round ${round + 1}` : ''}`;
        try {
          if (!running.has(server.name)) running.set(server.name, await server.start());
          server.proc = running.get(server.name);
          const ctx = { kind, transport, server, dir };
          let step;
          if (transport === 'tls') step = (rate) => tlsStep(ctx, rate);
          else step = (rate) => sippStep(ctx, rate);
          if (kind === 'call' && transport !== 'tls') {
            await registerContact(server.ports.udp, CALLEE[transport], `<sip:${CALLEE[transport]}@127.0.0.1:${UAS_PORT[transport]};transport=${transport}>`);
            const uasArgs = ['-sf', join(dir, 'uas.xml'), '-i', '127.0.0.1', '-p', String(UAS_PORT[transport]), '-t', transport === 'udp' ? 'u1' : 't1', '-s', CALLEE[transport], '-nostdin', '-nd', '-buff_size', String(SIPP_BUFFER_BYTES)];
            ctx.uas = startProcess('sipp', uasArgs);
            commands.add('sipp ' + uasArgs.join(' ').replaceAll(dir, '$DIR') + '  (the UAS, registered as ' + CALLEE[transport] + ')');
            await sleep(500);
          }
          log(`-- ${label}`);
          try {
            const s = await search(step, START[kind], log, (SEARCH_BUDGET_S * 1000) / searchCount);
            s.searches = searchCount;
            for (const r of s.steps) commands.add(r.command.replace(/-r \d+ /, '-r <rate> ').replace(/-l \d+ -m \d+/, '-l <min(max(2 × rate, 200), 9000)> -m <rate × step s>').replace(/stat-[^ ]+\.csv/, 'stat.csv').replace(/--rate \d+/, '--rate <rate>').replace(/-p 2818\d/, '-p <28180…28189>'));
            searches.push({ scenario, kind, transport, round, server: server.label, serverName: server.name, ...s, limit: limitOf(s, server.cores, server.name === 'kamailio-pg') });
          } finally {
            if (ctx.uas) await stopProcess(ctx.uas);
            const gone = (p) => p && (p.child.exitCode !== null || p.child.signalCode !== null);
            if (gone(server.proc) || gone(server.proc.pg?.proc)) {
              // A server that died (or its database) is noted with its last words, stopped, and started afresh for the next scenario.
              const words = (p) => p.stderr.split('\n').filter((l) => /CRITICAL|ALERT|Error|FATAL|PANIC/i.test(l)).slice(-3).join(' / ').slice(0, 600);
              notes.push(`${label}: the server exited during the run: ${gone(server.proc) ? words(server.proc) : `its PostgreSQL exited: ${words(server.proc.pg.proc)}`}`);
              await server.stop(server.proc);
              running.delete(server.name);
            }
          }
        } catch (e) {
          notes.push(`${label} failed: ${e.message}`);
          log(`${label} failed: ${e.message}`);
        }
      }
    }
  } finally {
    for (const server of list) {
      if (!running.has(server.name)) continue;
      if (server.name === 'kamailio-pg') notes.push(await bindingWrites(running.get(server.name), searches));
      await server.stop(running.get(server.name));
    }
  }
  if (SCENARIOS.includes('memory-tls')) {
    for (const n of IDLE_CONNECTIONS) {
      for (const server of list.filter((server) => runs(server, 'memory-tls'))) {
        try {
          memory.push(await idleMemory(server, n, log));
        } catch (e) {
          notes.push(`${server.label}, ${n} idle TLS connections failed: ${e.message}`);
          log(`${server.label}, ${n} idle TLS connections failed: ${e.message}`);
        }
      }
    }
    commands.add(`node bench/sip-client.mjs idle --port <tls port> --transport tls --connections <n>`);
  }
  const kam = list.find((s) => s.name === 'kamailio');
  const kamPg = list.find((s) => s.name === 'kamailio-pg');
  return {
    searches, memory, notes, commands: [...commands], kamailioCfg: kam?.cfgText ?? '', kamailioPgCfg: kamPg?.cfgText ?? '',
    minutes: (Date.now() - t0) / 60_000,
    settings: { STEP_S, FACTOR, REFINE, MAX_RATE, USERS, START, IDLE_CONNECTIONS, WORKERS, KAMAILIO_CHILDREN, SEARCH_BUDGET_S, ROUNDS, SIPP_BUFFER_BYTES },
  };
}

/** ", of it PostgreSQL x s (y s per 1000)" for a Kamailio on PostgreSQL; '' for other servers. */
const dbPart = (r) => (r.dbCpuS === undefined ? '' : `, of it PostgreSQL ${f(r.dbCpuS, 2)} s (${f((r.dbCpuS / r.ok) * 1000, 3)} s per 1000)`);

/** ": server socket x, UAS y, load generator and others z" for a UDP step whose sockets were read; '' else. */
function dropsSplit(r) {
  if (r.serverDrops === undefined || Number.isNaN(r.serverDrops)) return '';
  const uas = r.uasDrops ?? 0;
  return `: server's socket ${r.serverDrops}` + (r.uasDrops !== undefined ? `, UAS ${uas}` : '') + `, load generator and others ${r.drops - r.serverDrops - uas}`;
}

const loadShares = (r) => ['server', 'busiestThread', 'client', 'uas', 'machine'].map((k) => f(100 * r.loadCpu[k])).join(' / ');

export function fmtRow(r) {
  return (
    `${r.pass ? 'pass' : 'FAIL'} ${r.server} ${r.kind}-${r.transport} ${r.rate}/s × ${STEP_S} s: ${r.ok}/${r.calls} ok, ${r.failed} failed ` +
    `${JSON.stringify(r.failedBy)} in ${f(r.elapsedS, 2)} s = ${f(r.okPerS)}/s, mean response ${f(r.meanMs, 2)} ms ` +
    `(p50 ${r.p50}, p90 ${r.p90}, p99 ${r.p99}), ${r.retrans} retransmissions (${pct(r.retransShare)}), ` +
    (r.drops !== undefined ? `${r.drops} UDP receive-buffer drops (host-wide${dropsSplit(r)}), ` : '') +
    `server CPU ${f(r.cpuS, 2)} s (${f(r.cpuPer1000, 3)} s per 1000)${dbPart(r)}, ${r.client} CPU ${f(r.clientCpuS, 2)} s` +
    (r.uasCpuS ? `, UAS CPU ${f(r.uasCpuS, 2)} s` : '') + `; load phase server / busiest server thread / generator / UAS / machine ${loadShares(r)} % of a core` + (r.exit !== 0 ? ` [exit ${r.exit}]` : '')
  );
}

const LOADS = {
  'register-udp': 'authenticated REGISTERs/s, UDP (one SIPp socket)',
  'call-udp': 'authenticated calls/s, UDP (one SIPp socket)',
  'register-tcp': 'authenticated REGISTERs/s, TCP (one SIPp connection)',
  'call-tcp': 'authenticated calls/s, TCP (one SIPp connection)',
  'register-tls': 'authenticated REGISTERs/s, TLS (one connection, bench/sip-client.mjs)',
  'call-tls': 'authenticated calls/s, TLS (one connection, bench/sip-client.mjs; the callee on a second one)',
};

/** Median of a non-empty list of numbers (the mean of the middle two for an even count). */
function median(xs) {
  const v = [...xs].sort((a, b) => a - b);
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

/** The summary table: one row per load, both servers, ratio rtcedge / Kamailio, and what limits each. */
export function summaryTable(res) {
  const rounds = res.settings.ROUNDS ?? 1;
  const by = (scenario, name, round) => res.searches.find((s) => s.scenario === scenario && s.serverName === name && (s.round ?? 0) === round);
  const rows = [];
  const limits = [];
  const best = (s) => (s?.best ? s.best.rate : s ? 0 : NaN);
  const cell = (s) => (s ? (s.best ? `${s.best.rate}` : `< ${s.steps[0]?.rate ?? '?'}`) : 'not run');
  const cpu = (s) => (s?.best ? f(s.best.cpuPer1000, 3) : 'n/a');
  const lat = (s) => (s?.best ? `${s.best.p50} / ${s.best.p90} / ${s.best.p99}` : 'n/a');
  /** One value per round, then the median of the finite ones when there are several rounds. */
  const perRound = (values, fmt) => {
    const shown = values.map(fmt).join(', ');
    const finite = values.filter(Number.isFinite);
    return rounds > 1 && finite.length > 1 ? `${shown} (median ${fmt(median(finite))})` : shown;
  };
  const cells = (list) => (rounds > 1 ? perRound(list.map(best), (x) => f(x)) : cell(list[0]));
  const cpus = (list) => (rounds > 1 ? perRound(list.map((s) => s?.best?.cpuPer1000 ?? NaN), (x) => f(x, 3)) : cpu(list[0]));
  /** PostgreSQL's part of a Kamailio-on-PostgreSQL search's CPU per 1,000 at its best step (NaN without one). */
  const dbPer1000 = (s) => (s?.best?.dbCpuS === undefined ? NaN : (s.best.dbCpuS / s.best.ok) * 1000);
  for (const scenario of Object.keys(LOADS)) {
    const rs = Array.from({ length: rounds }, (_, i) => by(scenario, 'rtcedge', i));
    // The Kamailio rows: in memory (every scenario), then written through to PostgreSQL (REGISTER scenarios),
    // both against rtcedge's one search of the scenario and round.
    for (const [name, load, who] of [
      ['kamailio', LOADS[scenario], 'Kamailio'],
      ['kamailio-pg', `${LOADS[scenario]}; Kamailio's bindings written through to PostgreSQL (usrloc db_mode 1), its CPU with PostgreSQL's`, 'Kamailio (bindings in PostgreSQL)'],
    ]) {
      const ks = Array.from({ length: rounds }, (_, i) => by(scenario, name, i));
      if (name === 'kamailio-pg' && !ks.some(Boolean)) continue;
      if (!ks.some(Boolean) && !rs.some(Boolean)) continue;
      const ratios = rs.map((r, i) => best(r) / best(ks[i]));
      const kCpu = name === 'kamailio-pg' ? `${cpus(ks)} (PostgreSQL ${perRound(ks.map(dbPer1000), (x) => f(x, 3))})` : cpus(ks);
      rows.push(`| ${load} | ${cells(ks)} | ${cells(rs)} | ${perRound(ratios, (x) => f(x, 2))} | ${kCpu} | ${cpus(rs)} | ${ks.map(lat).join('; ')} | ${rs.map(lat).join('; ')} |`);
      for (let i = 0; i < rounds; i++) {
        limits.push(`- **${load}${rounds > 1 ? `, round ${i + 1}` : ''}**: ${who}: ${ks[i]?.limit ?? 'not run'}. rtcedge: ${rs[i]?.limit ?? 'not run'}.`);
      }
    }
  }
  for (const n of IDLE_CONNECTIONS) {
    const k = res.memory.find((m) => m.serverName === 'kamailio' && m.connections === n);
    const r = res.memory.find((m) => m.serverName === 'rtcedge' && m.connections === n);
    if (!k && !r) continue;
    const km = k ? `${f(k.pssPerConnKb, 1)} PSS (${f(k.shmPerConnKb, 1)} shared memory)` : 'not run';
    const rm = r ? `${f(r.pssPerConnKb, 1)} PSS` : 'not run';
    rows.push(`| memory per idle registered TLS connection, ${n} connections, kB | ${km} | ${rm} | ${f(r?.pssPerConnKb / k?.pssPerConnKb, 2)} of PSS, ${f(r?.pssPerConnKb / k?.shmPerConnKb, 2)} of Kamailio's shared memory (lower is better) | | | | |`);
    limits.push(`- **memory, ${n} TLS connections**: ${[k, r].filter(Boolean).map((m) => `${m.server}: ${m.registered} of ${n} registered, ${m.open} open, set up in ${f(m.setupS)} s, PSS ${f(m.pss0 / 1024, 1)} → ${f(m.pss1 / 1024, 1)} MB, RSS ${f(m.rssPerConnKb, 1)} kB per connection (summed over processes: shared pages counted in each)${Object.keys(m.failures).length ? `, failures ${JSON.stringify(m.failures)}` : ''}`).join('; ')}. PSS of the whole process tree before and after (shared pages counted once); Kamailio's TLS state lives in its shared memory, so its PSS and shared-memory figures overlap.`);
  }
  return [
    '| load | Kamailio | rtcedge | ratio rtcedge / Kamailio | Kamailio CPU s per 1,000 | rtcedge CPU s per 1,000 | Kamailio response p50 / p90 / p99 ms | rtcedge response p50 / p90 / p99 ms |',
    '| --- | ---: | ---: | ---: | ---: | ---: | --- | --- |',
    ...rows,
    '',
    'What limits each row (from the first failing step: CPU of the server and of its busiest thread, of the load generator, of the UAS and of everything else on the machine during its load phase, as shares of one core):',
    '',
    ...limits,
  ].join('\n');
}

/** Every step run, in order. */
export function stepsTable(res) {
  const head =
    '| server | scenario | rate /s | ok / sent | failed (SIPp counters) | elapsed s | ok /s | mean response ms | p50 / p90 / p99 ms | retransmissions | server CPU s | s per 1,000 | load generator CPU s | UAS CPU s | load phase: server / its busiest thread / generator / UAS / whole machine, % of a core | pass |\n' +
    '| --- | --- | ---: | ---: | --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | --- | --- |';
  const lines = res.searches.flatMap((s) =>
    s.steps.map(
      (r) =>
        `| ${r.server} | ${s.scenario}${(res.settings.ROUNDS ?? 1) > 1 ? `, round ${(s.round ?? 0) + 1}` : ''} | ${r.rate} | ${r.ok} / ${r.calls} | ${Object.entries(r.failedBy).map(([k, v]) => `${k} ${v}`).join(', ')} | ${f(r.elapsedS, 2)} | ${f(r.okPerS)} | ${f(r.meanMs, 2)} | ${r.p50} / ${r.p90} / ${r.p99} | ${r.retrans} (${pct(r.retransShare)}) | ${f(r.cpuS, 2)}${r.dbCpuS === undefined ? '' : ` (PostgreSQL ${f(r.dbCpuS, 2)})`} | ${f(r.cpuPer1000, 3)} | ${f(r.clientCpuS, 2)} | ${r.uasCpuS ? f(r.uasCpuS, 2) : ''} | ${loadShares(r)} | ${r.pass ? 'yes' : 'no'} |`,
    ),
  );
  return [head, ...lines].join('\n');
}

/** A warning when other processes used the machine during the load phases (the figures are then noise). */
function busyNote(res) {
  const others = res.searches.flatMap((s) => s.steps).map((r) => r.loadCpu.machine - r.loadCpu.server - r.loadCpu.client - r.loadCpu.uas);
  if (!others.length) return '';
  const mean = others.reduce((a, b) => a + b, 0) / others.length;
  if (mean < 0.3) return '';
  return `**The machine was busy with other work during this run**: other processes used on average ${f(mean * 100)} % of a core
during the load phases (the last column of the step table), so these figures are noise, not the servers' capacity.

`;
}

/**
 * The lines of configuration `b` (text) that are not in `a`, in b's order, then ports aside; `b` whole when
 * `a` is empty (Kamailio in memory not run).
 */
function cfgDiff(a, b) {
  if (!a) return b.trim();
  const have = new Set(a.split('\n'));
  return b.split('\n').filter((l) => !have.has(l) && !/^listen=/.test(l)).join('\n');
}

/** The SIP section of bench/RESULTS.md. */
export function sipSection(res, when) {
  const s = res.settings;
  return `## SIP: rtcedge against Kamailio (SIPp and bench/sip-client.mjs)

Run ${when} by \`node bench/run.mjs sip\` (bench/sip.mjs), ${f(res.minutes, 1)} minutes. Each server is searched
for its highest passing rate, ${(s.ROUNDS ?? 1) > 1 ? `${s.ROUNDS} times per scenario (SIP_BENCH_ROUNDS), rtcedge then Kamailio (in memory, then on PostgreSQL) in the first round and the other way round in the next, alternating; the table gives each round's figures in order, their ratio within the round and the medians` : 'rtcedge then Kamailio (in memory, then on PostgreSQL) per scenario'}. A step runs ${s.STEP_S} s of load; the rate starts at
${s.START.register} REGISTER/s or ${s.START.call} calls/s, is multiplied by ${s.FACTOR} until a step fails (divided while the first
fails), then ${s.REFINE} bisection steps between the last pass and the first failure; each search starts no new step past
its equal share of ${s.SEARCH_BUDGET_S} s (Kamailio on PostgreSQL: the same share on top). A step **passes** with < 1 % failed
calls, < 1 % retransmissions (of the requests SIPp sent with a timer: 2 per REGISTER scenario, 3 per call), mean
response ≤ 100 ms, and the load generator keeping the rate (the step done within 1.25 × its length + 1 s).
Tunable by environment (SIP_BENCH_STEP_S, SIP_BENCH_FACTOR, SIP_BENCH_REFINE, SIP_BENCH_MAX_RATE, SIP_BENCH_START_REGISTER,
SIP_BENCH_START_CALL, SIP_BENCH_SCENARIOS, SIP_BENCH_SERVERS, SIP_BENCH_IDLE_CONNECTIONS, SIP_BENCH_SEARCH_BUDGET_S, SIP_BENCH_ROUNDS, RTCEDGE_SIP_WORKERS,
KAMAILIO_CHILDREN, SIP_BENCH_SIPP_BUFFER_BYTES; see the head of bench/sip.mjs).

- REGISTER: REGISTER → 401 (a fresh digest challenge every time) → REGISTER with credentials → 200, over
  ${s.USERS} users (user0…user${s.USERS - 1}, password pw-userN, injected SEQUENTIAL); the Contact's port is fixed
  (5999), so each user keeps one binding per transport, refreshed by every registration.
- Calls: INVITE → 407 → ACK → INVITE with credentials → 200 → ACK → BYE → 200 through the record-routing
  proxy to a SIPp UAS registered behind it (one UAS per transport), callers from the same ${s.USERS} users.
- UDP: one SIPp socket (\`-t u1\`, its receive and send buffers \`-buff_size ${s.SIPP_BUFFER_BYTES}\` bytes, capped by the
  kernel's net.core.rmem_max and wmem_max; the step lines split the host's UDP receive-buffer drops into the
  server's socket, the UAS's and the rest, the load generator's); TCP: one connection (\`-t t1\`); TLS: one connection from bench/sip-client.mjs
  (Node; Debian's SIPp 3.6.1 is built without TLS) with the same two scenarios, no retransmissions, 4 s
  timeout; for calls the callee is a second TLS connection of the same client process (its CPU counts as the
  load generator's), which registers its own Contact so the proxy reaches it over that connection.
- Response times: SIPp's response-time repartition of every request with a timer to its final response
  (rtd; bins ${REPARTITION_MS.join(', ')} ms, so "<1" means under 1 ms), summed over the rtds; the mean is SIPp's
  (1 ms clock). For TLS: measured by bench/sip-client.mjs per request (µs clock). Both are seen from the
  client on the same machine, so they include the client's own queueing.
- CPU s per 1,000 operations: utime+stime of the server's process tree during the highest passing step,
  per 1,000 successful registrations or calls (Kamailio on PostgreSQL: Kamailio's and the PostgreSQL cluster's
  process trees, PostgreSQL's part in brackets; "other processes" in the lines on what limits a row exclude both). Load generator CPU: SIPp's (or the Node client's) utime+stime.
- Memory: a fresh server, ${s.IDLE_CONNECTIONS.join(' and ')} TLS connections opened 50 at a time, each REGISTERing
  its own user over its connection, then idle 3 s; (PSS after − PSS before) / connections, PSS summed over the
  server's process tree from /proc/<pid>/smaps_rollup. Kamailio: also \`kamcmd core.shmmem\` real_used.
- Kamailio: children=${s.KAMAILIO_CHILDREN} (UDP receivers) and tcp_children=${s.KAMAILIO_CHILDREN}; its configuration is below. For the idle
  TLS connections tcp_children=1: Debian's 5.6.3 with OpenSSL 3 corrupts its shared memory and crashes when several
  TLS workers take handshakes at once (kamailio/kamailio#3791, fixed by tls_threads_mode in later versions).
  rtcedge: ${res.notes.some((n) => n.includes('sip.workers')) ? 'one worker (this build has no sip.workers)' : `sip.workers ${s.WORKERS}`}, users in SQLite, bindings persisted.
- Two Kamailio configurations for REGISTER, because rtcedge's binding is durable before its 200 (committed to
  SQLite in WAL mode with synchronous=NORMAL: written to the OS at commit, so it survives a crash of the
  process, not a power loss) and Kamailio's usrloc with db_mode 0 keeps bindings in shared memory only:
  **Kamailio** (db_mode 0, every scenario, the figures comparable with earlier runs) and **Kamailio, bindings
  written through to PostgreSQL** (usrloc db_mode 1, write-through: save() writes the binding to the
  \`location\` table before the 200 is sent; db_postgres on a PostgreSQL ${pgVersion()} cluster the bench starts,
  fsync=off and synchronous_commit=on, so a commit write()s its WAL to the OS without fsync, as rtcedge's
  SQLite; REGISTER scenarios only, as calls read bindings from memory in both modes). Its rows reuse rtcedge's
  search of the same scenario and round. \`node bench/kamailio-writes.mjs\` checks that it writes each binding
  and sends the 200 only after the write.

${busyNote(res)}${summaryTable(res)}

### Every step

${stepsTable(res)}

Commands:

\`\`\`
${res.commands.join('\n')}
\`\`\`
${res.notes.length ? '\nNotes:\n\n' + res.notes.map((n) => '- ' + n.replaceAll('\n', ' ')).join('\n') + '\n' : ''}
<details><summary>Kamailio configuration</summary>

\`\`\`
${res.kamailioCfg.trim()}
\`\`\`

</details>
${res.kamailioPgCfg ? `
<details><summary>Kamailio configuration with bindings written through to PostgreSQL (the lines that differ)</summary>

\`\`\`
${cfgDiff(res.kamailioCfg, res.kamailioPgCfg)}
\`\`\`

</details>
` : ''}`;
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const res = await runSipBench();
  console.log('\n' + summaryTable(res));
  for (const n of res.notes) console.log('note:', n);
}

/** ": " and the last non-empty line of `text` (a process's stderr), at most 200 characters; '' when there is none. */
function lastLine(text) {
  const line = String(text ?? '').trim().split('\n').at(-1)?.trim() ?? '';
  return line ? `: ${line.slice(0, 200)}` : '';
}
