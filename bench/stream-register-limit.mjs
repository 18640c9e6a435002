// Which process limits authenticated REGISTERs over one TCP or TLS connection: the SIP worker that holds
// the connection, the other worker(s), the primary, or the load generator. Each process's CPU (utime+stime
// of all its threads, /proc) and its busiest thread's, as shares of one core, over a run at a fixed rate.
//
//   node bench/stream-register-limit.mjs [--transport tls|tcp] [--rates 2000,3000,4000] [--seconds 8]
//        [--workers 2] [--users 1000] [--baseline /path/to/other/dist/cli/main.js] [--repeat 1]
//
// Each rate and build: a fresh rtcedge (UDP and the stream listener on 127.0.0.1, log level warn, TURN off,
// sip.overload off so no registration is answered 503), users imported while it runs, 2,000 warm-up
// registrations, then bench/sip-client.mjs (its own process, one connection) at the rate for --seconds. The
// worker holding the connection is found with `ss -tnp` (the process with the accepted socket). With
// --baseline, every rate runs the baseline build first and this build right after.
import { writeFileSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { cpus } from 'node:os';
import { runProcess, stopProcess, startProcess, tempDir, sleep, arg, processTree, CLK_TCK } from './lib.mjs';
import { startRtcedge, ROOT } from './rtcedge.mjs';

const cores = cpus().length;
const SIP_PORT = 28370;
const STREAM_PORT = 28371;
const TRANSPORT = arg('transport', 'tls');
const RATES = arg('rates', '2000,3000,4000').split(',').map(Number);
const SECONDS = Number(arg('seconds', 8));
const USERS = Number(arg('users', 1000));
const WORKERS = arg('workers', '2');
const REPEAT = Number(arg('repeat', 1));
const BASELINE = arg('baseline', undefined);
if (!['tls', 'tcp'].includes(TRANSPORT)) throw new Error(`--transport must be tls or tcp, not ${TRANSPORT}`);

/** utime+stime ticks of every thread of `pid`, by thread id, with the thread's name. */
function threadTicks(pid) {
  const out = new Map();
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        const s = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
        const name = s.slice(s.indexOf('(') + 1, s.lastIndexOf(')'));
        const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
        out.set(tid, { name, ticks: Number(f[11]) + Number(f[12]) });
      } catch {}
    }
  } catch {}
  return out;
}

/** Per process of the trees rooted at `roots`: its threads' ticks now. */
function snapshot(roots) {
  const out = new Map();
  for (const root of roots) for (const pid of processTree(root)) out.set(pid, threadTicks(pid));
  return out;
}

/** Busy and total jiffies of the whole machine (/proc/stat, every core). */
function machineTicks() {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const idle = f[3] + f[4];
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

/** The PID of the process holding the accepted end of the stream connection (local port STREAM_PORT). */
function connectionHolder() {
  const text = execFileSync('ss', ['-tnpH', 'state', 'established', `( sport = :${STREAM_PORT} )`]).toString();
  const m = /pid=(\d+)/.exec(text);
  return m ? Number(m[1]) : undefined;
}

function role(pid, serverPid, holder, clientPid) {
  if (pid === clientPid) return 'client';
  if (pid === serverPid) return 'primary';
  if (pid === holder) return 'connection worker';
  return 'other worker';
}

async function round(dir, name, cli, rate) {
  const server = await startRtcedge({
    sipPort: SIP_PORT,
    users: [],
    cli,
    workers: WORKERS,
    sipStreams: [{ transport: TRANSPORT, port: STREAM_PORT }],
    sipLines: ['  overload: { lag_ms: 0, drop_lag_ms: 0, target_utilization: 1 }'],
  });
  try {
    const imp = await runProcess(process.execPath, [cli ?? join(ROOT, 'dist', 'cli', 'main.js'), 'user', 'import', join(dir, 'import.csv'), '-c', server.config], { timeoutMs: 120_000 });
    if (imp.code !== 0) throw new Error(`rtcedge user import failed: ${imp.stderr.trim()}`);
    await sleep(1000);
    const clientArgs = (r, s) => [join(ROOT, 'bench', 'sip-client.mjs'), 'load', '--port', String(STREAM_PORT), '--transport', TRANSPORT, '--rate', String(r), '--seconds', String(s), '--users', String(USERS)];
    await runProcess(process.execPath, clientArgs(1000, 2), { timeoutMs: 60_000 });
    const client = startProcess(process.execPath, clientArgs(rate, SECONDS));
    // Let the connection open and the rate settle, then measure the middle of the run.
    await sleep(1000);
    const holder = connectionHolder();
    const t0 = performance.now();
    const s0 = snapshot([server.pid, client.pid]);
    const m0 = machineTicks();
    await sleep((SECONDS - 2) * 1000);
    const s1 = snapshot([server.pid, client.pid]);
    const m1 = machineTicks();
    const wallS = (performance.now() - t0) / 1000;
    const code = await client.exited;
    let result;
    try {
      result = JSON.parse(client.stdout.trim().split('\n').at(-1));
    } catch {
      throw new Error(`client failed (${code}): ${client.stderr.slice(-1000)}`);
    }
    const rows = [];
    for (const [pid, threads] of s1) {
      const before = s0.get(pid) ?? new Map();
      let total = 0;
      let busiest = { name: '', ticks: 0 };
      for (const [tid, t] of threads) {
        const d = t.ticks - (before.get(tid)?.ticks ?? 0);
        total += d;
        if (d > busiest.ticks) busiest = { name: t.name, ticks: d };
      }
      const share = (ticks) => ((ticks / CLK_TCK / wallS) * 100).toFixed(0);
      rows.push({ role: role(pid, server.pid, holder, client.pid), pct: share(total), busiest: `${busiest.name} ${share(busiest.ticks)}` });
    }
    rows.sort((a, b) => a.role.localeCompare(b.role));
    const ours = rows.reduce((a, r) => a + Number(r.pct), 0);
    const machine = ((m1.busy - m0.busy) / (m1.total - m0.total)) * cores * 100;
    rows.push({ role: 'everything else on the machine', pct: Math.max(0, machine - ours).toFixed(0), busiest: undefined });
    rows.push({ role: `machine busy (of ${cores * 100})`, pct: machine.toFixed(0), busiest: undefined });
    return { name, rate, result, rows };
  } finally {
    await stopProcess(server);
  }
}

const dir = tempDir('stream-register-limit');
writeFileSync(join(dir, 'import.csv'), 'user,password\n' + Array.from({ length: USERS }, (_, i) => `user${i}@example.test,pw-user${i}`).join('\n') + '\n');
const builds = [...(BASELINE ? [{ name: 'baseline', cli: BASELINE }] : []), { name: 'this build', cli: undefined }];
console.log(`REGISTERs over one ${TRANSPORT.toUpperCase()} connection, sip.workers ${WORKERS}, ${SECONDS} s per rate (the middle ${SECONDS - 2} s measured); shares of one core`);
for (let i = 0; i < REPEAT; i++) {
  for (const rate of RATES) {
    for (const b of builds) {
      const r = await round(dir, b.name, b.cli, rate);
      const res = r.result;
      const procs = r.rows.map((x) => `${x.role} ${x.pct} %${x.busiest ? ` (busiest thread ${x.busiest} %)` : ''}`).join('; ');
      console.log(
        `${b.name.padEnd(10)} ${rate}/s: ok ${res.ok}/${res.calls} failed ${res.failed} in ${res.elapsedS.toFixed(1)} s (${(res.ok / res.elapsedS).toFixed(0)}/s), ` +
          `response p50/p90/p99 ${[res.p50Ms, res.p90Ms, res.p99Ms].map((x) => Number(x ?? NaN).toFixed(1)).join('/')} ms\n    ${procs}`,
      );
      await sleep(500);
    }
  }
}
