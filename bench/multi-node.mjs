// Several nodes on one Redis: authenticated REGISTER/s and calls/s
// for one, two and three rtcedge nodes sharing a redis-server, against one
// node on the SQLite default, with the CPU each operation costs (every rtcedge
// process plus redis-server, user + system). On a 2-core machine the figure
// that means something is the cost per operation, not the scaling.
//
//   node bench/multi-node.mjs [--seconds 5] [--register-rate 300[,1000,...]] [--call-rate 40[,150,...]] [--setups sqlite,1,2,3] [--write]
//                             [--idle] [--cpu-prof DIR] [--load-first] [--baseline /path/to/other/dist/cli/main.js] [--no-call-limits]
//                             [--repeat N]
//
// Every node is one process (sip.workers: 1) unless its setup says otherwise: a setup `S:W` runs its nodes with
// `sip.workers: W` (a number or auto), e.g. `--setups sqlite,sqlite:auto,1,1:2` compares one node on SQLite with
// one process and with its default workers, and one node on Redis with one process and with two SIP workers
// (the node's CPU is its primary and every worker). --repeat N runs the list of setups N times in turn
// (alternating, so each setup meets the machine's moods as the others do) and ends with a table of each
// setup's CPU per REGISTER and per call over the rounds (min–max, median).
// Load (SIPp 3.6, UDP, 127.0.0.1): one SIPp per node, the target rate split
// evenly, users shared (added once through the first node's CLI):
// - REGISTER → 401 → REGISTER with credentials → 200 (bench/sip.mjs's scenario);
// - INVITE → 407 → ACK → INVITE with credentials → 200 → ACK → BYE → 200 to
//   `callee`, a SIPp UAS registered once (UDP, so no node holds its flow: every
//   node reaches it), the call entering at each node in turn.
// --register-rate and --call-rate take lists, paired by position (the shorter list repeats its last rate): each
// setup's nodes are started once and loaded at every pair in turn, and the table gains one row per setup and
// rate, its percentages against the first setup at the same rate. Per row the bench also prints what the nodes
// did per operation: voluntary context switches (wake-ups, all threads), user and system CPU, the main threads' CPU
// (the event loop; the rest is V8's and libuv's helper threads), and on Redis the
// transactions and scripts (MULTI + EVALSHA: commits and call admissions) per operation.
// --write replaces the section between the multi-node markers of bench/RESULTS.md.
// --idle first measures the same processes for --seconds without load (CPU ms per second,
// printed after the table). --cpu-prof DIR has every node write a V8 CPU profile
// (node --cpu-prof) into DIR/<setup>/ when it stops. --load-first sends all load to the
// first node, so the others' CPU is what following its changes costs. --baseline runs every setup with
// that build first, then with this checkout's, back to back (rows marked "baseline"; the percentages
// stay relative to the first row). A setup `1u` (`2u`, `3u`) is 1 (2, 3) nodes reaching redis-server over its
// Unix socket (`store.redis.url: unix:/path`) instead of TCP loopback, this build only (no baseline row).
// redis-server runs with appendonly yes (appendfsync everysec, its default) and no RDB snapshots: what a
// deployment keeping bindings across a Redis restart runs; the fsync once a second is a background thread's.
// Node 2's CPU with --load-first --setups 2 is what one REGISTER made at another node costs a node (with read-through: nothing, unless it looked the AOR up since).
// --no-call-limits turns `sip.security.calls` off (both limits 0) on every node: no call admission at all, so on
// Redis no admission transaction per call (what the shared count costs a call is the difference).
// --steady-register-worker: with several SIP workers, every REGISTER of a user carries a Call-ID the same worker owns
// (SIPp's Call-IDs are `<call number>-<run tag>@bench`, `-cid_str`, and its injection file gives call n a user of the
// worker that owns call n's Call-ID), as a UA that keeps its Call-ID across refreshes (RFC 3261 §10.2.4) stays on
// one worker; by default a user's REGISTERs land on either worker at random.
// --read-back-causes runs this build's nodes with log.level info, reads each process's `AOR read-backs by cause` line
// when it stops (RedisStore.readBacks: why commits read an AOR back with SORT_RO, counted over the node's life; and
// why a commit's answer was not kept) and prints them summed per setup and round (info logging costs CPU: compare
// CPU figures from runs without it).
// --split-users gives each node's REGISTER load its own users (user i to node i mod n: a UA registers at one
// node, as DNS SRV keeps it there), instead of every node registering every user in turn (the default,
// where every REGISTER invalidates the AOR at the other nodes, which read it again at their next REGISTER).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startProcess, runProcess, stopProcess, tempDir, cpuSeconds, cpuSplit, mainThreadCpuSeconds, processStats, processTree, sleep, waitFor } from './lib.mjs';
import { startRtcedge, ROOT } from './rtcedge.mjs';
import { lastStat, hms, epoch } from './sip.mjs';
import { REGISTER_SCENARIO } from './sip-scenarios.mjs';
import { availableParallelism } from 'node:os';
import { callIdOwner } from '../dist/transport/call-id-owner.js';

const args = process.argv.slice(2);
const opt = (name, def) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : def);
const SECONDS = opt('--seconds', 5);
/** A comma-separated list of rates (positive numbers) after `name`, or `def`. */
const rates = (name, def) => {
  const list = (args.includes(name) ? args[args.indexOf(name) + 1] : def).split(',').map(Number);
  if (list.some((r) => !(r > 0))) throw new Error(`bench/multi-node.mjs: ${name} takes rates per second separated by commas`);
  return list;
};
const REGISTER_RATES = rates('--register-rate', '300');
const CALL_RATES = rates('--call-rate', '40');
/** Load steps, [REGISTER/s, calls/s], paired by position; the shorter list repeats its last rate. */
const STEPS = Array.from({ length: Math.max(REGISTER_RATES.length, CALL_RATES.length) }, (_, i) => [
  REGISTER_RATES[Math.min(i, REGISTER_RATES.length - 1)],
  CALL_RATES[Math.min(i, CALL_RATES.length - 1)],
]);
const WRITE = args.includes('--write');
const IDLE = args.includes('--idle');
/** All load at the first node (the others only follow its binding changes: their cost per operation is that of following). */
const LOAD_FIRST = args.includes('--load-first');
/** This build's nodes log why commits read AORs back when they stop (see above). */
const READ_BACK_CAUSES = args.includes('--read-back-causes');
/** Each node registers its own users (see above). */
const SPLIT_USERS = args.includes('--split-users');
/** `sip.security.calls` limits off on every node. */
const NO_CALL_LIMITS = args.includes('--no-call-limits');
/** Each user's REGISTERs owned by one worker (see above). */
const STEADY_REGISTER_WORKER = args.includes('--steady-register-worker');
const CPU_PROF = args.includes('--cpu-prof') ? args[args.indexOf('--cpu-prof') + 1] : undefined;
/** Which setups, in order: `sqlite` and node counts on Redis; the first is the base of the percentages. */
const SETUPS = (args.includes('--setups') ? args[args.indexOf('--setups') + 1] : 'sqlite,1,2,3').split(',');
/** Rounds over the list of setups (each setup once per round, in order). */
const REPEAT = opt('--repeat', 1);
/** Another build's dist/cli/main.js, run before this checkout's for every setup. */
const BASELINE = args.includes('--baseline') ? args[args.indexOf('--baseline') + 1] : undefined;

const REDIS_PORT = 28190;
const NODE_PORTS = [28200, 28202, 28204];
const SIPP_PORTS = [28210, 28212, 28214];
const UAS_PORT = 28220;
/**
 * Callers, taken in turn: enough that none places more than 20 calls in a minute, under the
 * default `sip.security.calls.max_attempts_per_minute` (30) whatever --seconds and --call-rate are
 * (the steps of one setup follow each other within a minute, so their calls are added up).
 */
const USERS = Math.max(20, Math.ceil(CALL_RATES.reduce((t, r) => t + r * Math.min(SECONDS, 60), 0) / 20));
const users = Array.from({ length: USERS }, (_, i) => [`user${i}`, `pw-user${i}`]);
const MARK_BEGIN = '<!-- multi-node:begin -->';
const MARK_END = '<!-- multi-node:end -->';

/** REGISTER of the UAS's address for `callee` (the REGISTER scenario with a fixed Contact). */
const UAS_REGISTER = REGISTER_SCENARIO.replaceAll(/Contact: <sip:\[field0\]@\[local_ip\]:[^>]*>/g, `Contact: <sip:[field0]@127.0.0.1:${UAS_PORT}>`);
if (!UAS_REGISTER.includes(`@127.0.0.1:${UAS_PORT}>`)) throw new Error('bench/multi-node.mjs: the REGISTER scenario has no Contact to rewrite');

const HEAD = (cseq, method, uri = 'sip:callee@example.test', to = '<sip:callee@example.test>') => `${method} ${uri} SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];rport;branch=[branch]
Max-Forwards: 70
From: <sip:[field0]@example.test>;tag=[pid]SIPpTag[call_number]
To: ${to}
Call-ID: [call_id]
CSeq: ${cseq} ${method}
Contact: <sip:[field0]@[local_ip]:[local_port]>`;

const SDP = `Content-Type: application/sdp
Content-Length: [len]

v=0
o=- 1 1 IN IP4 [local_ip]
s=-
c=IN IP4 [local_ip]
t=0 0
m=audio 9 RTP/AVP 0`;

/** A call through the record-routing proxy with proxy authentication, ended at once. */
const CALL_SCENARIO = `<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="authenticated call">
  <send retrans="500" start_rtd="1"><![CDATA[
${HEAD(1, 'INVITE')}
${SDP}
]]></send>
  <recv response="100" optional="true"/>
  <recv response="407" auth="true"/>
  <send><![CDATA[
ACK sip:callee@example.test SIP/2.0
[last_Via:]
Max-Forwards: 70
[last_From:]
[last_To:]
[last_Call-ID:]
CSeq: 1 ACK
Content-Length: 0

]]></send>
  <send retrans="500"><![CDATA[
${HEAD(2, 'INVITE')}
[authentication username="[field0]" password="[field1]"]
${SDP}
]]></send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="200" rrs="true" rtd="1"/>
  <send><![CDATA[
${HEAD(2, 'ACK', '[next_url]', '<sip:callee@example.test>[peer_tag_param]')}
[routes]
Content-Length: 0

]]></send>
  <send retrans="500"><![CDATA[
${HEAD(3, 'BYE', '[next_url]', '<sip:callee@example.test>[peer_tag_param]')}
[routes]
Content-Length: 0

]]></send>
  <recv response="200"/>
</scenario>
`;

/** The callee: answers each INVITE with 200 (copying Record-Route, RFC 3261 §12.1.1), takes the ACK, answers the BYE. */
const UAS_SCENARIO = `<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="callee">
  <recv request="INVITE" crlf="true"/>
  <send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_Record-Route:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:callee@[local_ip]:[local_port]>
${SDP}
]]></send>
  <recv request="ACK"/>
  <recv request="BYE"/>
  <send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]></send>
</scenario>
`;

async function startRedis(dir) {
  const proc = startProcess('redis-server', ['--bind', '127.0.0.1', '--port', String(REDIS_PORT), '--unixsocket', join(dir, 'redis.sock'), '--unixsocketperm', '700', '--dir', dir, '--appendonly', 'yes', '--save', '', '--protected-mode', 'no']);
  proc.socket = join(dir, 'redis.sock');
  await waitFor(async () => proc.stdout.includes('Ready to accept connections'), 10_000, 'redis-server');
  return proc;
}

/** Redis's calls and µs spent per command (INFO commandstats: `calls`, `usec`), or an empty map without Redis. */
async function commandCounts(redis) {
  const out = new Map();
  if (!redis) return out;
  const { stdout } = await runProcess('redis-cli', ['-p', String(REDIS_PORT), 'INFO', 'commandstats'], { timeoutMs: 5000 });
  for (const m of stdout.matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm)) out.set(m[1], { calls: Number(m[2]), usec: Number(m[3]) });
  return out;
}

/**
 * The nodes' voluntary context switches (all threads), user and system CPU seconds, and the CPU seconds
 * of their main threads (the event loop; the rest is V8's and libuv's helper threads), summed. A node's
 * processes are its primary and every SIP worker (the primary's descendants): each one's main thread counts,
 * as every process counts in the other columns.
 */
function nodeCounters(pids) {
  const out = { vol: 0, userS: 0, systemS: 0, mainS: 0 };
  for (const pid of pids) {
    for (const st of processStats(pid).values()) out.vol += st.vol;
    const { userS, systemS } = cpuSplit(pid);
    out.userS += userS;
    out.systemS += systemS;
    for (const p of processTree(pid)) out.mainS += mainThreadCpuSeconds(p);
  }
  return out;
}

/** Runs one SIPp client per node at rate/n for SECONDS; returns totals. */
async function load(dir, scenario, rate, nodeCount, cpuPids, redis, workers = 1) {
  const commands0 = await commandCounts(redis);
  const nodePids = cpuPids.slice(0, nodeCount);
  const nodes0 = nodeCounters(nodePids);
  const loaded = LOAD_FIRST ? 1 : nodeCount;
  const per = rate / loaded;
  const calls = Math.round(per * SECONDS);
  const cpu0 = cpuPids.map((p) => cpuSeconds(p));
  const runs = await Promise.all(
    NODE_PORTS.slice(0, loaded).map((port, i) => {
      const stf = join(dir, `stat-${scenario}-${nodeCount}-${i}.csv`);
      let inf = join(dir, 'users.csv');
      let cidArgs = [];
      if (SPLIT_USERS && scenario === 'register') {
        inf = join(dir, `users-${loaded}-${i}.csv`);
        writeFileSync(inf, 'SEQUENTIAL\n' + users.filter((_, k) => k % loaded === i).map(([u, p]) => `${u};${p};`).join('\n') + '\n');
      }
      const workerCount = workers === 'auto' ? availableParallelism() : workers;
      if (STEADY_REGISTER_WORKER && scenario === 'register' && workerCount > 1) {
        const steady = steadyRegisterUsers(dir, `${Date.now().toString(36)}${i}`, calls, workerCount, users);
        inf = steady.inf;
        cidArgs = ['-cid_str', steady.cidStr];
      }
      const a = [
        `127.0.0.1:${port}`, '-sf', join(dir, `${scenario}.xml`), '-inf', inf,
        '-i', '127.0.0.1', '-p', String(SIPP_PORTS[i]), '-t', 'u1', ...cidArgs,
        // SIPp takes whole numbers: calls per 10 s.
        '-r', String(Math.round(per * 10)), '-rp', '10000', '-l', String(Math.ceil(Math.max(per * 4, 50))), '-m', String(calls),
        '-timeout', String(SECONDS * 4 + 10), '-timeout_error', '-recv_timeout', '4000',
        '-nostdin', '-nd', '-trace_stat', '-stf', stf, '-fd', '1',
        '-trace_err', '-error_file', join(dir, `errors-${scenario}-${nodeCount}-${i}.log`),
      ];
      return runProcess('sipp', a, { timeoutMs: (SECONDS * 4 + 20) * 1000 }).then(() => lastStat(stf));
    }),
  );
  const byProcess = cpuPids.map((p, i) => cpuSeconds(p) - cpu0[i]);
  const nodes1 = nodeCounters(nodePids);
  const commands = [...(await commandCounts(redis))]
    .map(([c, n]) => [c, n.calls - (commands0.get(c)?.calls ?? 0), n.usec - (commands0.get(c)?.usec ?? 0)])
    .filter(([, n]) => n > 0);
  const cpu = byProcess.reduce((t, s) => t + s, 0);
  let ok = 0;
  let failed = 0;
  let elapsed = 0;
  let rtSum = 0;
  for (const st of runs) {
    if (!st) continue;
    const n = Number(st['SuccessfulCall(C)']);
    ok += n;
    failed += Number(st['FailedCall(C)']);
    elapsed = Math.max(elapsed, epoch(st.CurrentTime) - epoch(st.StartTime));
    rtSum += hms(st['ResponseTime1(C)'] ?? st['CallLength(C)']) * 1000 * n;
  }
  const perOp = (k) => (nodes1[k] - nodes0[k]) / ok;
  const countOf = (name) => commands.find(([c]) => c === name)?.[1] ?? 0;
  return {
    ok, failed, okPerS: ok / elapsed, rtMs: rtSum / ok, cpuS: cpu, cpuMsPerOp: (cpu / ok) * 1000, byProcessMsPerOp: byProcess.map((s) => (s / ok) * 1000),
    commandsPerOp: commands.map(([c, n, us]) => `${c} ${f(n / ok, 2)} (${f(us / ok, 1)} µs)`).join(', '),
    wakeupsPerOp: perOp('vol'), userMsPerOp: perOp('userS') * 1000, systemMsPerOp: perOp('systemS') * 1000, mainMsPerOp: perOp('mainS') * 1000,
    roundTripsPerOp: redis ? (countOf('multi') + countOf('evalsha') + countOf('eval')) / ok : undefined,
  };
}

/**
 * For --steady-register-worker: SIPp's `-cid_str` for a run and an injection file whose line n-1 (call n's) names a
 * user of the worker owning call n's Call-ID (users split among the workers by index, each group taken in turn).
 */
function steadyRegisterUsers(dir, tag, calls, workers, userList) {
  const cidStr = `%u-${tag}@bench`;
  const groups = Array.from({ length: workers }, (_, w) => userList.filter((_, k) => k % workers === w));
  const next = new Array(workers).fill(0);
  const lines = [];
  for (let n = 1; n <= calls; n++) {
    const w = callIdOwner(`${n}-${tag}@bench`, workers);
    const [u, p] = groups[w][next[w]++ % groups[w].length];
    lines.push(`${u};${p};`);
  }
  const inf = join(dir, `users-steady-${tag}.csv`);
  writeFileSync(inf, 'SEQUENTIAL\n' + lines.join('\n') + '\n');
  return { inf, cidStr };
}

async function runSetup(name, nodeCount, redis, cli, unix = false, workers = 1) {
  const dir = tempDir('multi-node');
  writeFileSync(join(dir, 'register.xml'), REGISTER_SCENARIO);
  writeFileSync(join(dir, 'call.xml'), CALL_SCENARIO);
  writeFileSync(join(dir, 'uas-register.xml'), UAS_REGISTER);
  writeFileSync(join(dir, 'uas.xml'), UAS_SCENARIO);
  writeFileSync(join(dir, 'users.csv'), 'SEQUENTIAL\n' + users.map(([u, p]) => `${u};${p};`).join('\n') + '\n');
  writeFileSync(join(dir, 'callee.csv'), 'SEQUENTIAL\ncallee;pw-callee;\n');
  const prefix = `bench${Date.now()}:`;
  const nodes = [];
  let result;
  const uas = startProcess('sipp', ['-sf', join(dir, 'uas.xml'), '-i', '127.0.0.1', '-p', String(UAS_PORT), '-t', 'u1', '-nostdin', '-nd']);
  try {
    for (let i = 0; i < nodeCount; i++) {
      const extra = redis
        ? [`store: { type: redis, redis: { url: "${unix ? `unix:${redis.socket}` : `redis://127.0.0.1:${REDIS_PORT}`}", key_prefix: "${prefix}" } }`, `node: { uri: "sip:127.0.0.1:${NODE_PORTS[i]}" }`, 'admin: { enabled: false }']
        : [];
      const nodeArgs = CPU_PROF ? ['--cpu-prof', '--cpu-prof-dir', join(CPU_PROF, `${cli ? 'baseline-' : ''}${redis ? nodeCount : 'sqlite'}`)] : [];
      const sipLines = NO_CALL_LIMITS ? ['  security: { calls: { max_concurrent_per_user: 0, max_attempts_per_minute: 0 } }'] : [];
      const logLevel = READ_BACK_CAUSES && !cli ? 'info' : undefined;
      nodes.push(await startRtcedge({ sipPort: NODE_PORTS[i], workers, users: i === 0 ? [...users, ['callee', 'pw-callee']] : [], importUsers: i === 0, extraYaml: extra, sipLines, nodeArgs, cli, logLevel }));
    }
    const reg = await runProcess('sipp', [`127.0.0.1:${NODE_PORTS[0]}`, '-sf', join(dir, 'uas-register.xml'), '-inf', join(dir, 'callee.csv'), '-i', '127.0.0.1', '-p', String(SIPP_PORTS[0]), '-m', '1', '-nostdin', '-nd', '-timeout', '10', '-timeout_error'], { timeoutMs: 20_000 });
    if (reg.code !== 0) throw new Error(`registering the UAS failed: ${reg.stderr.slice(-500)}`);
    await sleep(300);
    const pids = [...nodes.map((n) => n.pid), ...(redis ? [redis.pid] : [])];
    let idleMsPerS;
    if (IDLE) {
      const cpu0 = pids.reduce((t, p) => t + cpuSeconds(p), 0);
      await sleep(SECONDS * 1000);
      idleMsPerS = ((pids.reduce((t, p) => t + cpuSeconds(p), 0) - cpu0) / SECONDS) * 1000;
    }
    const steps = [];
    for (const [registerRate, callRate] of STEPS) {
      const register = await load(dir, 'register', registerRate, nodeCount, pids, redis, workers);
      await sleep(500);
      const call = await load(dir, 'call', callRate, nodeCount, pids, redis, workers);
      await sleep(500);
      steps.push({ registerRate, callRate, register, call });
    }
    result = { name, nodeCount, steps, idleMsPerS };
    return result;
  } finally {
    for (const n of nodes) await stopProcess(n, 10_000);
    await stopProcess(uas);
    if (result && READ_BACK_CAUSES && !cli) result.readBackCauses = readBackCauses(nodes);
  }
}

/** The `AOR read-backs by cause` lines of the nodes' processes (one per process on Redis, at its stop), summed. */
function readBackCauses(nodes) {
  const sum = { lines: 0 };
  for (const n of nodes) {
    for (const line of n.stdout.split('\n')) {
      if (!line.includes('"AOR read-backs by cause"')) continue;
      const o = JSON.parse(line);
      sum.lines += 1;
      for (const [group, counts] of [['readBack', o.readBacks], ['dropped', o.droppedAtAnswer]]) for (const [k, v] of Object.entries(counts ?? {})) sum[`${group}.${k}`] = (sum[`${group}.${k}`] ?? 0) + v;
    }
  }
  return sum;
}

const f = (x, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');

/** One table row per load step and setup (steps in order, setups in order within a step); percentages against the step's first setup. */
function table(rows) {
  const head =
    '| target REGISTER/s, calls/s | setup | REGISTER/s | failed | CPU ms per REGISTER | vs SQLite | calls/s | failed | CPU ms per call | vs SQLite |\n' +
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |';
  const lines = [];
  STEPS.forEach((_, k) => {
    const base = rows[0].steps[k];
    for (const r of rows) {
      const s = r.steps[k];
      lines.push(
        `| ${s.registerRate}, ${s.callRate} | ${r.name} | ${f(s.register.okPerS)} | ${s.register.failed} | ${f(s.register.cpuMsPerOp, 3)} | ${f((s.register.cpuMsPerOp / base.register.cpuMsPerOp) * 100)} % | ` +
          `${f(s.call.okPerS, 1)} | ${s.call.failed} | ${f(s.call.cpuMsPerOp, 3)} | ${f((s.call.cpuMsPerOp / base.call.cpuMsPerOp) * 100)} % |`,
      );
    }
  });
  return [head, ...lines].join('\n');
}

/** min–max and median of `xs` as text with `d` decimals. */
function minMaxMedian(xs, d) {
  const v = [...xs].sort((a, b) => a - b);
  const mid = v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
  return `${f(v[0], d)}–${f(v.at(-1), d)} | ${f(mid, d)}`;
}

/** Per setup (by name) and load step: CPU ms per REGISTER and per call over the rounds (min–max, median), and failures. */
function spread(rows) {
  const head =
    '| target REGISTER/s, calls/s | setup | rounds | CPU ms per REGISTER (min–max) | median | failed | CPU ms per call (min–max) | median | failed |\n' +
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |';
  const names = [...new Set(rows.map((r) => r.name))];
  const lines = [];
  STEPS.forEach((_, k) => {
    for (const name of names) {
      const steps = rows.filter((r) => r.name === name).map((r) => r.steps[k]);
      const sum = (g) => steps.reduce((t, s) => t + g(s), 0);
      lines.push(
        `| ${steps[0].registerRate}, ${steps[0].callRate} | ${name} | ${steps.length} | ${minMaxMedian(steps.map((s) => s.register.cpuMsPerOp), 3)} | ${sum((s) => s.register.failed)} | ` +
          `${minMaxMedian(steps.map((s) => s.call.cpuMsPerOp), 3)} | ${sum((s) => s.call.failed)} |`,
      );
    }
  });
  return [head, ...lines].join('\n');
}

const redisDir = tempDir('redis');
mkdirSync(redisDir, { recursive: true });
const redis = await startRedis(redisDir);
const rows = [];
try {
  for (let round = 0; round < REPEAT; round++) {
    for (const setup of SETUPS) {
      // `S:W`: the nodes of setup S with `sip.workers: W` (a number or auto).
      const [s, w] = setup.split(':');
      const workers = w === undefined ? 1 : w === 'auto' ? 'auto' : Number(w);
      // `1u`, `2u`, …: the nodes reach redis-server over its Unix socket (store.redis.url unix:/path; this build only).
      const unix = s.endsWith('u');
      const count = s === 'sqlite' ? 1 : parseInt(s, 10);
      // (A baseline from before several SIP workers on Redis refuses `N:W` setups on Redis: leave them out then.)
      for (const cli of BASELINE && !unix ? [BASELINE, undefined] : [undefined]) {
        const workerText = workers === 1 ? '' : workers === 'auto' ? ', workers auto' : `, ${workers} workers`;
        const name = `${s === 'sqlite' ? '1 node, SQLite' : `${count} node${count > 1 ? 's' : ''}, Redis${unix ? ' over a Unix socket' : ''}`}${workerText}${cli ? ' (baseline)' : ''}`;
        rows.push({ ...(await runSetup(name, count, s === 'sqlite' ? undefined : redis, cli, unix, workers)), round });
      }
    }
  }
} finally {
  await stopProcess(redis);
}
const text = table(rows);
console.log(text);
if (REPEAT > 1) console.log(`\n${spread(rows)}`);
if (IDLE) for (const r of rows) console.log(`${r.name}: idle ${f(r.idleMsPerS, 1)} CPU ms/s (all its processes, no load)`);
// Where the CPU of each row went: each node, then redis-server (CPU ms per operation).
// What the nodes did per operation: wake-ups, user and system CPU, round trips to Redis.
for (const r of rows) {
  for (const s of r.steps) {
    const parts = (x) => x.byProcessMsPerOp.map((v, i) => `${i < r.nodeCount ? `node ${i + 1}` : 'redis'} ${f(v, 3)}`).join(', ');
    const nodes = (x) => `nodes' wake-ups ${f(x.wakeupsPerOp, 2)}, user ${f(x.userMsPerOp, 3)} ms, system ${f(x.systemMsPerOp, 3)} ms, main threads ${f(x.mainMsPerOp, 3)} ms${x.roundTripsPerOp === undefined ? '' : `, MULTI+EVALSHA ${f(x.roundTripsPerOp, 2)}`}`;
    console.log(`${r.name} at ${s.registerRate}/s, ${s.callRate}/s: per REGISTER ${parts(s.register)} (${nodes(s.register)}); per call ${parts(s.call)} (${nodes(s.call)})`);
    if (r.readBackCauses && s === r.steps.at(-1)) {
      const registers = r.steps.reduce((t, x) => t + x.register.ok, 0);
      console.log(`  AORs read back over the nodes' life (${r.readBackCauses.lines} processes; ${registers} REGISTERs in the load steps): ${Object.entries(r.readBackCauses).filter(([k]) => k !== 'lines').map(([k, v]) => `${k} ${v} (${f(v / registers, 3)})`).join(', ')}`);
    }
    if (r.nodeCount && s.register.commandsPerOp) console.log(`  Redis commands per REGISTER (calls, µs inside Redis; a script's commands counted apart from it): ${s.register.commandsPerOp}; per call: ${s.call.commandsPerOp}`);
  }
}
if (WRITE) {
  const file = join(ROOT, 'bench', 'RESULTS.md');
  const old = readFileSync(file, 'utf8');
  const section = `${MARK_BEGIN}\n${text}\n\n${SECONDS} s of load per row (\`node bench/multi-node.mjs --seconds ${SECONDS} --register-rate ${REGISTER_RATES.join(',')} --call-rate ${CALL_RATES.join(',')} --setups ${SETUPS.join(',')}${NO_CALL_LIMITS ? ' --no-call-limits' : ''}${STEADY_REGISTER_WORKER ? ' --steady-register-worker' : ''}\`); CPU = every rtcedge process + redis-server.\n${MARK_END}`;
  const i = old.indexOf(MARK_BEGIN);
  const j = old.indexOf(MARK_END);
  writeFileSync(file, i >= 0 && j > i ? old.slice(0, i) + section + old.slice(j + MARK_END.length) : `${old.trimEnd()}\n\n## Several nodes on one Redis (bench/multi-node.mjs)\n\n${section}\n`);
}
