// Memory, pauses and server-side response times under a sustained REGISTER
// load, and a soak.
//
//   node bench/memory.mjs [--rates 750,1500] [--seconds 60] [--after 60] [--users 100] [--repeat 3] [--trace-gc]
//   node bench/memory.mjs --soak-minutes 20 [--rate 750]   (any duration: --soak-minutes 2 to check the script)
//   node bench/memory.mjs --overload 1500 [--seconds 20]   (2 × 1500/s, then 1500/s)
//   --node-args '--max-semi-space-size=8'   options for the server's node
//   --cli /path/to/other/dist/cli/main.js   baseline: another build (RSS only if it has no summary line)
//   --dump file                              append the server's summary lines to file
//   --repeat N                               each rate N times (fresh server each), then the range of each figure
//   --workers N                              sip.workers (default 1 on builds that have the key)
//   --trace-gc                               run the server with node --trace-gc and count its collections
//                                            during the load by kind (Scavenge, Mark-Compact, ...) with the longest pause,
//                                            and the V8 heap allocated per server transaction (KB)
//
// For each rate: start rtcedge (UDP, log level info, summary line every
// 5 s), wait 10 s idle (the baseline), run SIPp's digest REGISTER scenario
// (bench/sip.mjs) at that rate for --seconds, then stay idle --after seconds.
// RSS comes from /proc/<pid>/status (VmRSS) every 5 s; heap, event-loop lag
// server-side response-time percentiles (request parsed → final response
// handed to the socket), the event-loop delay histogram (perf_hooks
// monitorEventLoopDelay: p99.9 and max per interval) and the longest GC
// pause per interval come from the server's own summary lines.
// A second table says where the RSS is at idle, at the end of the load and
// --after s later: /proc/<pid>/smaps split into mapped files (node's code),
// the brk heap (glibc's main malloc arena) and other anonymous memory, beside
// V8's heapUsed / heapTotal and external from the summary line.
// Users are added with one `rtcedge user import` when the build has it.
// The soak samples every 30 s. Prints Markdown for bench/RESULTS.md.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runProcess, stopProcess, tempDir, sleep, arg } from './lib.mjs';
import { startRtcedge } from './rtcedge.mjs';
import { lastStat, epoch } from './sip.mjs';
import { REGISTER_SCENARIO as SCENARIO } from './sip-scenarios.mjs';

const SIP_PORT = 28260;
const SIPP_PORT = 28261;

function rssMB(pid) {
  try {
    const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmRSS:\s+(\d+) kB/m);
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

/**
 * Where a process's RSS is, MB, from /proc/<pid>/smaps: `file` (mapped files: node's own code and libraries,
 * shared with every other node process), `brk` (the [heap] mapping: glibc's main malloc arena), `anon` (other
 * anonymous mappings: the V8 heap, mapped buffers, thread stacks, other malloc arenas).
 */
export function smapsMB(pid) {
  const out = { file: 0, brk: 0, anon: 0 };
  let kind = 'anon';
  try {
    for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
      const m = line.match(/^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/);
      if (m) {
        const name = m[1].trim();
        kind = name === '[heap]' ? 'brk' : name.startsWith('/') ? 'file' : 'anon';
      } else if (line.startsWith('Rss:')) out[kind] += Number(line.split(/\s+/)[1]) / 1024;
    }
  } catch {
    return { file: NaN, brk: NaN, anon: NaN };
  }
  return out;
}

/** Summary lines the server logged so far (parsed JSON). */
function summaries(proc) {
  const out = [];
  for (const line of proc.stdout.split('\n')) {
    if (!line.includes('"summary"')) continue;
    try {
      const j = JSON.parse(line);
      if (j.msg === 'summary') out.push(j);
    } catch {}
  }
  return out;
}

const f = (x, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');
const max = (a) => a.reduce((m, x) => Math.max(m, x), -Infinity);
const median = (a) => {
  const s = [...a].sort((x, y) => x - y);
  return s.length ? s[Math.floor(s.length / 2)] : NaN;
};

const TRACE_GC = process.argv.includes('--trace-gc');
const NODE_ARGS = [...arg('node-args', '').split(' ').filter(Boolean), ...(TRACE_GC ? ['--trace-gc'] : [])];
const REPEAT = Number(arg('repeat', '1'));

/**
 * Collections in node --trace-gc output `text`, by kind: how many, the
 * longest and the total pause, ms, and how many paused over 10 and 50 ms. A line reads e.g.
 * `[pid:0x...]  40123 ms: Mark-Compact 210.3 (250.1) -> 120.4 (240.0) MB, 45.67 / 0.12 ms  (...)`;
 * the first figure after the sizes is the pause on the main thread.
 * `allocatedMB`: what JavaScript allocated on the V8 heap between the collections, the sum over lines of
 * (heap size before this collection − heap size after the previous one), MB.
 */
export function gcPauses(text) {
  const kinds = {};
  let allocatedMB = 0;
  let afterMB;
  for (const m of text.matchAll(/ ms: ([A-Za-z-]+(?: [A-Za-z-]+)?(?: \(reduce\))?) ([\d.]+) \([\d.]+\) -> ([\d.]+) \([\d.]+\) MB, ([\d.]+) \/ [\d.]+ ms/g)) {
    const k = (kinds[m[1]] ??= { count: 0, maxMs: 0, totalMs: 0, over10: 0, over50: 0 });
    const ms = Number(m[4]);
    k.count++;
    k.totalMs += ms;
    if (ms > 10) k.over10++;
    if (ms > 50) k.over50++;
    if (ms > k.maxMs) k.maxMs = ms;
    if (afterMB !== undefined) allocatedMB += Math.max(0, Number(m[2]) - afterMB);
    afterMB = Number(m[3]);
  }
  return { kinds, allocatedMB };
}

const gcText = ({ kinds }) =>
  Object.entries(kinds)
    .map(([k, v]) => `${k} ${v.count}× (total ${v.totalMs.toFixed(0)} ms, ${v.over10} over 10 ms, ${v.over50} over 50 ms, longest ${v.maxMs.toFixed(1)} ms)`)
    .join(', ') || 'n/a';
// --cli <path>: a build of another commit, for a baseline in the same window (it may predate the summary line:
// then only RSS is measured).
const CLI_PATH = arg('cli', undefined);
const SUMMARY = !CLI_PATH || hasSummaryLine(CLI_PATH);
// --workers N: sip.workers of the server. Default 1 when the build knows the key: RSS, heap and pauses are
// those of the one process measured (with workers, /proc/<pid> would be the primary's only).
const WORKERS = arg('workers', undefined) ?? (knowsWorkers(CLI_PATH) ? 1 : undefined);

/** Whether the build whose CLI is `cli` (default this checkout's) has the sip.workers key. */
function knowsWorkers(cli) {
  try {
    const schema = cli ? join(dirname(cli), '..', 'config', 'schema.js') : join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'config', 'schema.js');
    return readFileSync(schema, 'utf8').includes('workers');
  } catch {
    return false;
  }
}

/** Whether the build whose CLI is `cli` (default this checkout's) has `rtcedge user import` (one process for all users). */
function hasUserImport(cli) {
  const dist = cli ? join(dirname(cli), '..') : join(dirname(fileURLToPath(import.meta.url)), '..', 'dist');
  return existsSync(join(dist, 'cli', 'import-users.js'));
}

/** Whether the build whose CLI is `cli` (…/dist/cli/main.js) logs the periodic summary line (dist/log.js). */
function hasSummaryLine(cli) {
  try {
    return readFileSync(join(dirname(cli), '..', 'log.js'), 'utf8').includes("'summary'");
  } catch {
    return false;
  }
}
const DUMP = arg('dump', '');

async function withServer(users, fn) {
  const proc = await startRtcedge({
    sipPort: SIP_PORT,
    users,
    logLevel: SUMMARY ? 'info' : 'warn',
    summaryInterval: SUMMARY ? 5 : undefined,
    workers: WORKERS,
    addParallel: 8,
    importUsers: hasUserImport(CLI_PATH),
    nodeArgs: NODE_ARGS,
    cli: CLI_PATH,
  });
  try {
    return await fn(proc);
  } finally {
    if (DUMP) writeFileSync(DUMP, summaries(proc).map((l) => JSON.stringify(l)).join('\n') + '\n', { flag: 'a' });
    await stopProcess(proc);
  }
}

function startSipp(dir, rate, seconds) {
  const stf = join(dir, `stat-${rate}.csv`);
  const args = [
    `127.0.0.1:${SIP_PORT}`,
    '-sf', join(dir, 'register.xml'),
    '-inf', join(dir, 'users.csv'),
    '-i', '127.0.0.1', '-p', String(SIPP_PORT), '-t', 'u1',
    '-r', String(rate), '-rp', '1000', '-l', String(Math.max(rate * 4, 100)),
    '-m', String(rate * seconds),
    '-timeout', String(seconds * 2 + 30), '-timeout_error',
    '-recv_timeout', '8000',
    '-nostdin', '-nd',
    '-trace_stat', '-stf', stf, '-fd', '5',
  ];
  const done = runProcess('sipp', args, { timeoutMs: (seconds * 2 + 60) * 1000 });
  return { done, stf, command: 'sipp ' + args.join(' ').replaceAll(dir, '$DIR') };
}

/** Window of summary lines logged between two Date.now() values. */
function window(lines, fromMs, toMs) {
  return lines.filter((l) => l.time > fromMs && l.time <= toMs);
}

function sippResult(stf) {
  const st = lastStat(stf);
  if (!st) return { ok: NaN, failed: NaN, retrans: NaN, elapsedS: NaN };
  return {
    ok: Number(st['SuccessfulCall(C)']),
    failed: Number(st['FailedCall(C)']),
    retrans: Number(st['Retransmissions(C)']),
    elapsedS: epoch(st['CurrentTime']) - epoch(st['StartTime']),
  };
}

async function loadRun(dir, users, rate, seconds, afterS, log) {
  return withServer(users, async (proc) => {
    await sleep(10_000);
    const idleRss = rssMB(proc.pid);
    const idleHeap = summaries(proc).at(-1)?.heapMB ?? NaN;
    const idleSmaps = smapsMB(proc.pid);
    const idleLine = summaries(proc).at(-1);
    const tLoad = Date.now();
    const stdoutAtLoad = proc.stdout.length;
    const sipp = startSipp(dir, rate, seconds);
    const rssDuring = [];
    let running = true;
    sipp.done.then(() => (running = false));
    while (running) {
      await sleep(5000);
      rssDuring.push(rssMB(proc.pid));
    }
    const tEnd = Date.now();
    const endSmaps = smapsMB(proc.pid);
    const endLine = summaries(proc).at(-1);
    const gcDuringLoad = TRACE_GC ? gcPauses(proc.stdout.slice(stdoutAtLoad)) : undefined;
    await sleep(afterS * 1000);
    await sleep(5500); // one more summary line
    const rssAfter = rssMB(proc.pid);
    const afterSmaps = smapsMB(proc.pid);
    const lines = summaries(proc);
    const during = window(lines, tLoad + 5000, tEnd);
    const after = lines.filter((l) => l.time > tEnd + afterS * 1000 - 5000);
    const s = sippResult(sipp.stf);
    const r = {
      rate,
      seconds,
      command: sipp.command,
      server: proc.cmdline.replaceAll(proc.dir, '$RDIR'),
      ...s,
      idleRss,
      idleHeap,
      peakRss: max(rssDuring),
      peakHeap: max(during.map((l) => l.heapMB)),
      endRss: rssDuring.at(-1),
      rssAfter,
      heapAfter: after.at(-1)?.heapMB ?? NaN,
      p50: median(during.map((l) => l.responseP50Ms)),
      p99: max(during.map((l) => l.responseP99Ms)),
      p999: max(during.map((l) => l.responseP999Ms)),
      maxResp: max(during.map((l) => l.responseMaxMs)),
      maxLag: max(during.map((l) => l.maxLagMs)),
      delayP999: max(during.map((l) => l.loopDelayP999Ms)),
      delayMax: max(during.map((l) => l.loopDelayMaxMs)),
      gcMax: max(during.map((l) => l.gcMaxPauseMs)),
      gcMajor: during.reduce((a, l) => a + (l.gcMajorCount ?? 0), 0),
      gcTrace: gcDuringLoad && gcText(gcDuringLoad),
      // V8 heap allocated per server transaction during the load (the garbage a request makes), KB.
      allocKBPerTransaction: gcDuringLoad && (gcDuringLoad.allocatedMB * 1024) / window(lines, tLoad, tEnd + 5000).reduce((a, l) => a + (l.serverTransactions ?? 0), 0),
      refused: during.reduce((a, l) => a + Object.values(l.refused503 ?? {}).reduce((x, y) => x + y, 0), 0),
      held: max(during.map((l) => l.serverTransactionsHeld)),
      // Where the RSS is at idle, at the end of the load and 60 s after: smaps split and V8's own figures.
      where: [
        ['idle', idleRss, idleSmaps, idleLine],
        ['end of load', rssDuring.at(-1), endSmaps, endLine],
        [`${afterS} s after`, rssAfter, afterSmaps, after.at(-1)],
      ].map(([when, rss, sm, l]) => ({ when, rss, ...sm, heapUsed: l?.heapMB, heapTotal: l?.heapTotalMB, external: l?.externalMB, arrayBuffers: l?.arrayBuffersMB, held: l?.heldResponsesMB })),
    };
    log(JSON.stringify(r));
    return r;
  });
}

async function soak(dir, users, rate, minutes, log) {
  return withServer(users, async (proc) => {
    await sleep(10_000);
    const idleRss = rssMB(proc.pid);
    const t0 = Date.now();
    const sipp = startSipp(dir, rate, minutes * 60);
    const rows = [];
    let running = true;
    sipp.done.then(() => (running = false));
    let last = t0;
    while (running) {
      await sleep(30_000);
      const now = Date.now();
      const w = window(summaries(proc), last, now);
      rows.push({
        t: Math.round((now - t0) / 1000),
        rss: rssMB(proc.pid),
        heap: w.at(-1)?.heapMB ?? NaN,
        p50: median(w.map((l) => l.responseP50Ms)),
        p99: max(w.map((l) => l.responseP99Ms)),
        p999: max(w.map((l) => l.responseP999Ms)),
        lag: max(w.map((l) => l.maxLagMs)),
        delayP999: max(w.map((l) => l.loopDelayP999Ms)),
        gcMax: max(w.map((l) => l.gcMaxPauseMs)),
        n: w.reduce((a, l) => a + (l.serverTransactions ?? 0), 0),
      });
      log(JSON.stringify(rows.at(-1)));
      last = now;
    }
    const s = sippResult(sipp.stf);
    return { rate, minutes, idleRss, rows, ...s, command: sipp.command, server: proc.cmdline.replaceAll(proc.dir, '$RDIR') };
  });
}

export function loadTable(rows) {
  return [
    '| REGISTER/s × s | successful | failed | SIPp retransmissions | idle RSS MB | peak RSS MB | RSS MB at end of load | RSS MB 60 s after | after/idle | idle heap MB | peak heap MB | heap MB 60 s after | transactions held (max) | response p50 / p99 / p99.9 / max ms | max event-loop lag ms | loop delay p99.9 / max ms | longest GC pause ms (full GCs) | 503 sent |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | --- | --- | ---: |',
    ...rows.map(
      (r) =>
        `| ${r.rate} × ${r.seconds} | ${r.ok} | ${r.failed} | ${r.retrans} | ${f(r.idleRss)} | ${f(r.peakRss)} | ${f(r.endRss)} | ${f(r.rssAfter)} | ${f(r.rssAfter / r.idleRss, 2)} | ${f(r.idleHeap)} | ${f(r.peakHeap)} | ${f(r.heapAfter)} | ${r.held} | ${f(r.p50, 2)} / ${f(r.p99, 2)} / ${f(r.p999, 2)} / ${f(r.maxResp, 1)} | ${f(r.maxLag)} | ${f(r.delayP999, 1)} / ${f(r.delayMax, 1)} | ${f(r.gcMax, 1)} (${r.gcMajor}) | ${r.refused} |`,
    ),
    '',
    'Where the RSS is (MB): mapped files (node\'s code, shared with other node processes), the brk heap (glibc\'s main',
    'malloc arena), other anonymous memory (V8 heap, mapped buffers, stacks, other arenas); V8 heapUsed / heapTotal',
    'and external (Buffers and mapped ArrayBuffers; "of which Buffers": process.memoryUsage().arrayBuffers, without the',
    'mapped ones), and the final responses held for Timer J (mapped pages, counted in',
    '"other anonymous" and in external), from the summary line nearest in time.',
    '',
    '| REGISTER/s | when | RSS | files | brk heap | other anonymous | V8 heapUsed | V8 heapTotal | external | of which Buffers | responses held |',
    '| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rows.flatMap((r) =>
      (r.where ?? []).map((w) => `| ${r.rate} | ${w.when} | ${f(w.rss)} | ${f(w.file)} | ${f(w.brk)} | ${f(w.anon)} | ${f(w.heapUsed)} | ${f(w.heapTotal)} | ${f(w.external)} | ${f(w.arrayBuffers)} | ${f(w.held)} |`),
    ),
    ...(rows.some((r) => r.gcTrace) ? ['', 'Collections during the load (node --trace-gc):', '', ...rows.map((r) => `- ${r.rate}/s: ${r.gcTrace}; V8 heap allocated per server transaction ${f(r.allocKBPerTransaction, 1)} KB`)] : []),
  ].join('\n');
}

/** For --repeat: per rate, the range (min–max over the runs) of the pause and memory figures. */
export function rangeTable(rows) {
  const rates = [...new Set(rows.map((r) => r.rate))];
  const range = (a, d = 0) => `${f(Math.min(...a), d)}–${f(Math.max(...a), d)}`;
  return [
    '| REGISTER/s | runs | response p99 ms | response p99.9 ms | loop delay p99.9 ms | longest GC pause ms | peak RSS MB | RSS after / idle |',
    '| ---: | ---: | --- | --- | --- | --- | --- | --- |',
    ...rates.map((rate) => {
      const rs = rows.filter((r) => r.rate === rate);
      return `| ${rate} | ${rs.length} | ${range(rs.map((r) => r.p99), 1)} | ${range(rs.map((r) => r.p999), 1)} | ${range(rs.map((r) => r.delayP999), 1)} | ${range(rs.map((r) => r.gcMax), 1)} | ${range(rs.map((r) => r.peakRss))} | ${range(rs.map((r) => r.rssAfter / r.idleRss), 2)} |`;
    }),
  ].join('\n');
}

export function soakTable(res) {
  return [
    `${res.rate} REGISTER/s for ${res.minutes} min: ${res.ok} successful, ${res.failed} failed, ${res.retrans} SIPp retransmissions; idle RSS before the load ${f(res.idleRss)} MB.`,
    '',
    '| t s | RSS MB | heap MB | response p50 / p99 / p99.9 ms (per 30 s) | max event-loop lag ms | loop delay p99.9 ms | longest GC pause ms | transactions |',
    '| ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |',
    ...res.rows.map((r) => `| ${r.t} | ${f(r.rss)} | ${f(r.heap)} | ${f(r.p50, 2)} / ${f(r.p99, 2)} / ${f(r.p999, 2)} | ${f(r.lag)} | ${f(r.delayP999, 1)} | ${f(r.gcMax, 1)} | ${r.n} |`),
  ].join('\n');
}

/**
 * Overload: SIPp at 2 × `capacity` REGISTER/s for `seconds` with the
 * scenario that accepts 503 + Retry-After (interop/sipp/register-or-503.xml),
 * then at `capacity` for 15 s; goodput (200s/s) and 503s/s per 5 s from the
 * server's summary lines.
 */
async function overload(dir, users, capacity, seconds, log) {
  return withServer(users, async (proc) => {
    await sleep(5000);
    const scenario = join(dirname(fileURLToPath(import.meta.url)), '..', 'interop', 'sipp', 'register-or-503.xml');
    const run = (rate, secs, port) => {
      const args = [
        `127.0.0.1:${SIP_PORT}`, '-sf', scenario, '-i', '127.0.0.1', '-p', String(port), '-t', 'u1',
        '-s', users[0][0], '-au', users[0][0], '-ap', users[0][1],
        '-r', String(rate), '-rp', '1000', '-l', String(rate * 4), '-m', String(rate * secs),
        '-timeout', String(secs * 2 + 30), '-recv_timeout', '8000', '-nostdin', '-nd',
      ];
      return { done: runProcess('sipp', args, { timeoutMs: (secs * 2 + 60) * 1000 }), command: 'sipp ' + args.join(' ').replace(scenario, 'interop/sipp/register-or-503.xml') };
    };
    const t0 = Date.now();
    const over = run(2 * capacity, seconds, SIPP_PORT);
    await over.done;
    const t1 = Date.now();
    const after = run(capacity, 15, SIPP_PORT + 1);
    await after.done;
    await sleep(5500);
    const lines = summaries(proc).filter((l) => l.time > t0);
    const rows = lines.map((l) => ({
      t: Math.round((l.time - t0) / 1000),
      phase: l.time <= t1 + 2500 ? `2× (${2 * capacity}/s)` : `1× (${capacity}/s)`,
      okPerS: (l.finals?.['2xx'] ?? 0) / l.intervalS,
      refusedPerS: Object.values(l.refused503 ?? {}).reduce((a, b) => a + b, 0) / l.intervalS,
      share: l.admittedShare,
      lag: l.maxLagMs,
    }));
    for (const r of rows) log(JSON.stringify(r));
    return { capacity, seconds, rows, commands: [over.command, after.command], server: proc.cmdline.replaceAll(proc.dir, '$RDIR') };
  });
}

export function overloadTable(res) {
  return [
    '| t s | offered | 200 OK /s | 503 /s | admitted share | max lag ms |',
    '| ---: | --- | ---: | ---: | ---: | ---: |',
    ...res.rows.map((r) => `| ${r.t} | ${r.phase} | ${f(r.okPerS)} | ${f(r.refusedPerS)} | ${r.share} | ${r.lag} |`),
  ].join('\n');
}

const nUsers = Number(arg('users', '100'));
const users = Array.from({ length: nUsers }, (_, i) => [`user${i}`, `pw-user${i}`]);
const dir = tempDir('memory');
writeFileSync(join(dir, 'register.xml'), SCENARIO);
writeFileSync(join(dir, 'users.csv'), 'SEQUENTIAL\n' + users.map(([u, p]) => `${u};${p};`).join('\n') + '\n');
const soakMinutes = Number(arg('soak-minutes', '0'));
const overloadCapacity = Number(arg('overload', '0'));
if (overloadCapacity > 0) {
  const res = await overload(dir, users, overloadCapacity, Number(arg('seconds', '20')), console.log);
  console.log(`\n${res.server}\n${res.commands.join('\n')}\n`);
  console.log(overloadTable(res));
} else if (soakMinutes > 0) {
  const res = await soak(dir, users, Number(arg('rate', '750')), soakMinutes, console.log);
  console.log(`\n${res.server}\n${res.command}\n`);
  console.log(soakTable(res));
} else {
  const rows = [];
  for (const rate of arg('rates', '750,1500').split(',').map(Number)) {
    for (let i = 0; i < REPEAT; i++) rows.push(await loadRun(dir, users, rate, Number(arg('seconds', '60')), Number(arg('after', '60')), console.log));
  }
  console.log(`\n${rows[0]?.server}\n${[...new Set(rows.map((r) => r.command))].join('\n')}\n`);
  console.log(loadTable(rows));
  if (REPEAT > 1) console.log('\n' + rangeTable(rows));
}
