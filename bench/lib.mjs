// Shared helpers for the benchmarks: processes started and stopped by PID,
// CPU accounting from /proc, readiness probes, temp dirs.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import dgram from 'node:dgram';

export const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

export function tempDir(prefix) {
  return mkdtempSync(join(tmpdir(), `rtcedge-bench-${prefix}-`));
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** [utime, stime] of one process (all its threads; or one thread: `<pid>/task/<tid>`), in clock ticks; [0, 0] if gone. */
function statTicks(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised comm; utime and stime are fields 14 and 15.
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return [Number(f[11]), Number(f[12])];
  } catch {
    return [0, 0];
  }
}

/** Minor page faults of one process so far (all its threads; field 10 of /proc/<pid>/stat), 0 if gone. */
function minorFaults(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[7]);
  } catch {
    return 0;
  }
}

/** utime+stime of one process (all its threads), in clock ticks; 0 if gone. */
function ticksOf(pid) {
  const [u, st] = statTicks(pid);
  return u + st;
}

function ppidOf(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return -1;
  }
}

/** The PID and all its descendants that are alive now. */
export function processTree(root) {
  const children = new Map();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const pid = Number(d);
    const pp = ppidOf(pid);
    if (!children.has(pp)) children.set(pp, []);
    children.get(pp).push(pid);
  }
  const out = [];
  const stack = [root];
  while (stack.length) {
    const p = stack.pop();
    out.push(p);
    for (const c of children.get(p) ?? []) stack.push(c);
  }
  return out;
}

/** CPU seconds (user+system) used so far by a process and its descendants. */
export function cpuSeconds(root) {
  let t = 0;
  for (const p of processTree(root)) t += ticksOf(p);
  return t / CLK_TCK;
}

/** User and system CPU seconds used so far by a process and its descendants: {userS, systemS}. */
export function cpuSplit(root) {
  let user = 0;
  let system = 0;
  for (const p of processTree(root)) {
    const [u, st] = statTicks(p);
    user += u;
    system += st;
  }
  return { userS: user / CLK_TCK, systemS: system / CLK_TCK };
}

/** CPU seconds (user+system) of a process's main thread (a Node process's event loop), 0 if gone. */
export function mainThreadCpuSeconds(pid) {
  const [u, st] = statTicks(`${pid}/task/${pid}`);
  return (u + st) / CLK_TCK;
}

/**
 * Per process of a tree: CPU seconds (utime+stime), voluntary and involuntary context switches
 * (/proc/<pid>/status, summed over threads), minor page faults and command line, keyed by PID; for a
 * breakdown of where a multi-process server spends its time (primary, workers).
 */
export function processStats(root) {
  const out = new Map();
  for (const p of processTree(root)) {
    let vol = 0;
    let invol = 0;
    try {
      for (const t of readdirSync(`/proc/${p}/task`)) {
        const st = readFileSync(`/proc/${p}/task/${t}/status`, 'utf8');
        vol += Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(st)?.[1] ?? 0);
        invol += Number(/^nonvoluntary_ctxt_switches:\s+(\d+)/m.exec(st)?.[1] ?? 0);
      }
    } catch {}
    let cmd = '';
    try {
      cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').join(' ').trim();
    } catch {}
    out.set(p, { cpuS: ticksOf(p) / CLK_TCK, vol, invol, minflt: minorFaults(p), cmd });
  }
  return out;
}

/**
 * Read and write system calls made so far by a process and its descendants (`syscr`/`syscw` of
 * /proc/<pid>/io: read/readv/recvmsg… and write/writev/sendmsg… of every thread); {syscr, syscw}.
 */
export function ioSyscalls(root) {
  let syscr = 0;
  let syscw = 0;
  for (const p of processTree(root)) {
    try {
      const io = readFileSync(`/proc/${p}/io`, 'utf8');
      syscr += Number(/^syscr: (\d+)/m.exec(io)?.[1] ?? 0);
      syscw += Number(/^syscw: (\d+)/m.exec(io)?.[1] ?? 0);
    } catch {}
  }
  return { syscr, syscw };
}

/**
 * Start a long-running process. Output goes to arrays (bounded) and to
 * optional line callbacks; `exited` resolves with the exit code.
 */
export function startProcess(cmd, args, opts = {}) {
  const child = spawn(cmd, args, {
    stdio: [opts.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
    env: opts.env ?? process.env,
    cwd: opts.cwd,
  });
  const proc = { child, pid: child.pid, cmd: [cmd, ...args].join(' '), stdout: '', stderr: '' };
  const keep = (k, chunk) => {
    proc[k] += chunk.toString();
    if (proc[k].length > 2_000_000) proc[k] = proc[k].slice(-1_000_000);
  };
  child.stdout.on('data', (c) => {
    keep('stdout', c);
    opts.onStdout?.(c.toString());
  });
  child.stderr.on('data', (c) => {
    keep('stderr', c);
    opts.onStderr?.(c.toString());
  });
  proc.exited = new Promise((resolve) => {
    child.on('exit', (code, sig) => resolve(code ?? (sig ? 128 : -1)));
    child.on('error', () => resolve(-1));
  });
  if (opts.stdin) {
    child.stdin.end(opts.stdin);
  }
  return proc;
}

/** Run a process to completion with a hard time limit; returns {code, stdout, stderr, ms}. */
export async function runProcess(cmd, args, opts = {}) {
  const t0 = performance.now();
  const p = startProcess(cmd, args, opts);
  const limit = opts.timeoutMs ?? 60_000;
  let timer;
  const timedOut = new Promise((r) => {
    timer = setTimeout(() => r('timeout'), limit);
  });
  const res = await Promise.race([p.exited, timedOut]);
  clearTimeout(timer);
  if (res === 'timeout') {
    await stopProcess(p);
  }
  const code = res === 'timeout' ? 'timeout' : res;
  return { code, stdout: p.stdout, stderr: p.stderr, ms: performance.now() - t0, cmd: p.cmd };
}

/** SIGTERM the process we started, then SIGKILL after a grace period. */
export async function stopProcess(proc, graceMs = 3000) {
  if (!proc || proc.child.exitCode !== null || proc.child.signalCode !== null) return;
  try {
    process.kill(proc.pid, 'SIGTERM');
  } catch {
    return;
  }
  const killed = await Promise.race([proc.exited.then(() => true), sleep(graceMs).then(() => false)]);
  if (!killed) {
    try {
      process.kill(proc.pid, 'SIGKILL');
    } catch {}
    await Promise.race([proc.exited, sleep(1000)]);
  }
}

/** Stop a daemon known only by a PID file it wrote (a process tree we started). */
export async function stopPid(pid, graceMs = 3000) {
  if (!pid) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const t0 = Date.now();
  while (Date.now() - t0 < graceMs) {
    if (!existsSync(`/proc/${pid}`)) return;
    await sleep(100);
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch {}
}

/** Send one UDP datagram and wait for any reply. */
export function udpProbe(host, port, payload, timeoutMs = 300) {
  return new Promise((resolve) => {
    const s = dgram.createSocket('udp4');
    const t = setTimeout(() => {
      s.close();
      resolve(false);
    }, timeoutMs);
    s.on('message', () => {
      clearTimeout(t);
      s.close();
      resolve(true);
    });
    s.on('error', () => {
      clearTimeout(t);
      s.close();
      resolve(false);
    });
    s.send(payload, port, host);
  });
}

/** A STUN Binding request (RFC 8489 §6) with a random transaction ID. */
export function stunBinding() {
  const b = Buffer.alloc(20);
  b.writeUInt16BE(0x0001, 0);
  b.writeUInt16BE(0, 2);
  b.writeUInt32BE(0x2112a442, 4);
  for (let i = 8; i < 20; i++) b[i] = Math.floor(Math.random() * 256);
  return b;
}

/** A SIP OPTIONS request from a throwaway local port (any response means the server is up). */
export function sipOptions(host, port) {
  const branch = 'z9hG4bK' + Math.random().toString(36).slice(2);
  return Buffer.from(
    `OPTIONS sip:${host}:${port} SIP/2.0\r\n` +
      `Via: SIP/2.0/UDP 127.0.0.1:9;rport;branch=${branch}\r\n` +
      `Max-Forwards: 70\r\nFrom: <sip:probe@127.0.0.1>;tag=p1\r\nTo: <sip:${host}:${port}>\r\n` +
      `Call-ID: ${branch}@127.0.0.1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n`,
  );
}

/** Poll until `probe()` is true or the deadline passes. */
export async function waitFor(probe, timeoutMs, what) {
  const t0 = Date.now();
  while (Date.now() - t0 < timeoutMs) {
    if (await probe()) return;
    await sleep(200);
  }
  throw new Error(`timed out waiting for ${what}`);
}

export function readPidFile(path) {
  try {
    return Number(readFileSync(path, 'utf8').trim()) || 0;
  } catch {
    return 0;
  }
}

/** Host-wide UDP RcvbufErrors counter (datagrams dropped because a socket's receive buffer was full). */
export function udpRcvbufErrors() {
  try {
    const lines = readFileSync('/proc/net/snmp', 'utf8').split('\n').filter((l) => l.startsWith('Udp:'));
    const head = lines[0].split(/\s+/);
    const vals = lines[1].split(/\s+/);
    return Number(vals[head.indexOf('RcvbufErrors')]);
  } catch {
    return NaN;
  }
}

/**
 * Receive-buffer drops of the UDP sockets bound to local `port`, summed (the last column of /proc/net/udp and
 * /proc/net/udp6: datagrams the kernel dropped because the socket's receive buffer was full), in the network
 * namespace of this process. 0 when no socket has the port; NaN when /proc cannot be read.
 * @param {number} port
 * @returns {number}
 */
export function udpSocketDrops(port) {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  let drops = 0;
  try {
    for (const file of ['/proc/net/udp', '/proc/net/udp6']) {
      for (const line of readFileSync(file, 'utf8').split('\n').slice(1)) {
        const fields = line.trim().split(/\s+/);
        if (fields.length > 2 && fields[1].endsWith(hex)) drops += Number(fields[fields.length - 1]) || 0;
      }
    }
  } catch {
    return NaN;
  }
  return drops;
}

/** Every thread of a process tree as `/proc/<pid>/task/<tid>` paths (threads that exit meanwhile are skipped by readers). */
export function threadDirs(root) {
  const out = [];
  for (const pid of processTree(root)) {
    try {
      for (const tid of readdirSync(`/proc/${pid}/task`)) out.push(`/proc/${pid}/task/${tid}`);
    } catch {}
  }
  return out;
}

/**
 * Runs `round(build)` `repeat` times for every build, back to back: the baselines of `baseline` (a
 * dist/cli/main.js path, or NAME=PATH,NAME=PATH, e.g. one build per commit) in that order, then this
 * build (`cli` undefined) with `nodeArgs`. Prints `line(i, build, result)` after each round, then a
 * table of each build's `result.per1000` (min–max over rounds, median) headed `heading`.
 * @returns the results by build name.
 */
export async function compareBuilds({ baseline, nodeArgs, repeat, round, line, heading }) {
  const baselines = (baseline ?? '')
    .split(',')
    .filter(Boolean)
    .map((b, i) => (b.includes('=') ? { name: b.slice(0, b.indexOf('=')), cli: b.slice(b.indexOf('=') + 1) } : { name: i ? `baseline${i + 1}` : 'baseline', cli: b }));
  const builds = [...baselines.map((b) => ({ ...b, nodeArgs: [] })), { name: 'this build', cli: undefined, nodeArgs }];
  const results = Object.fromEntries(builds.map((b) => [b.name, []]));
  for (let i = 0; i < repeat; i++) {
    for (const b of builds) {
      const r = await round(b);
      results[b.name].push(r);
      console.log(line(i, b, r));
      await sleep(500);
    }
  }
  console.log(`\n| build | ${heading} (min–max over rounds) | median |`);
  console.log('| --- | ---: | ---: |');
  for (const b of builds) {
    const xs = results[b.name].map((r) => r.per1000).sort((a, c) => a - c);
    console.log(`| ${b.name} | ${xs[0].toFixed(3)}–${xs[xs.length - 1].toFixed(3)} | ${xs[Math.floor(xs.length / 2)].toFixed(3)} |`);
  }
  return results;
}

/**
 * The SIP workers' mesh traffic in a server's summary lines (log level info, `log.summary_interval`) whose time is
 * in (fromMs, toMs]: frames, bytes and socket writes sent, messages handed to the Call-ID's owner and responses
 * sent through another worker, summed over the workers. Undefined when no line carries mesh counters (one
 * worker, or a build without them).
 */
export function meshTraffic(stdout, fromMs, toMs) {
  const sum = { frames: 0, bytes: 0, writes: 0, handedOff: 0, relayedOut: 0 };
  let seen = false;
  for (const line of stdout.split('\n')) {
    if (!line.includes('"msg":"summary"')) continue;
    let rec;
    try {
      rec = JSON.parse(line);
    } catch {
      continue;
    }
    if (!(rec.time > fromMs && rec.time <= toMs) || rec.meshFramesSent === undefined) continue;
    seen = true;
    sum.frames += rec.meshFramesSent;
    sum.bytes += rec.meshBytesSent;
    sum.writes += rec.meshWrites;
    sum.handedOff += rec.handedOff ?? 0;
    sum.relayedOut += rec.relayedOut ?? 0;
  }
  return seen ? sum : undefined;
}

/**
 * The PID of the process holding an established TCP socket matching an `ss` filter (e.g.
 * `( sport = :5060 )` for the accepted end of a client's connection, `( dport = :5070 )` for a connection the
 * server opened); undefined when there is none or `ss` is missing.
 */
export function socketHolder(filter) {
  try {
    const text = execFileSync('ss', ['-tnpH', 'state', 'established', filter]).toString();
    const m = /pid=(\d+)/.exec(text);
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Each server process's share of a run, from two {@link processStats} snapshots: its role (the primary is
 * the server's PID, a SIP worker runs worker-main.js; `marks` names pids, e.g. the worker holding a
 * connection), CPU s per 1,000 successful operations, context switches (voluntary + involuntary) and minor
 * page faults per operation.
 */
export function processBreakdown(before, after, rootPid, ok, marks = new Map()) {
  const rows = [];
  let w = 0;
  for (const [pid, a] of after) {
    const b = before.get(pid) ?? { cpuS: 0, vol: 0, invol: 0, minflt: 0 };
    let role = pid === rootPid ? 'primary' : a.cmd.includes('worker-main') ? `worker ${w++}` : a.cmd.split(' ')[0];
    if (marks.has(pid)) role += ` (${marks.get(pid)})`;
    rows.push(`${role} ${(((a.cpuS - b.cpuS) / ok) * 1000).toFixed(3)} s, ctxt ${((a.vol - b.vol) / ok).toFixed(2)}+${((a.invol - b.invol) / ok).toFixed(2)}, faults ${((a.minflt - b.minflt) / ok).toFixed(2)}`);
  }
  return rows.join('; ');
}

/** The value after `--name` on the command line (a string), or `def` when the option is absent. */
export function arg(name, def) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : def;
}
