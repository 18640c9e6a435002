// CPU per binding commit on Redis, without SIP: one RedisStore with client-side caching on (as a
// node runs it) commits one binding refresh at a time through commitAndRead (what a REGISTER's 200
// waits for; with the version the previous commit of the AOR answered, as a node's cache holds it), paced like a registrar at ~300 REGISTER/s, and the CPU of this process (the node's
// side: ioredis, the script call, the answer's parsing) and of redis-server is divided by the commits.
// Also Redis's own time per command (INFO commandstats; EVALSHA's time includes its commands'), this
// process's voluntary context switches (wake-ups, all threads) and the invalidation messages its
// tracking connection received, per commit (with NOLOOP a node's own commits send it none).
//
//   node bench/redis-commit-cost.mjs [--commits 1500] [--pace-ms 3] [--repeat 3] [--baseline /other/dist]
//                                    [--admit] [--unix | --tcp-and-unix | --unix-and-tcp | --aof-and-none]
//
// --baseline runs another build's dist/ first, then this checkout's, alternating --repeat times on
// the same redis-server (appendonly yes, as bench/multi-node.mjs). --pace-ms 0 commits back to back.
// --admit: each operation is a call's admission against the shared call limits instead
// (RedisCallCounter.admit with the default limits, 10 concurrent and 30 a minute, over 500 users,
// and its end, batched as a node sends ends). --unix: the store reaches redis-server over its Unix
// socket instead of TCP loopback; --tcp-and-unix: this checkout over TCP, then over the Unix socket,
// alternating (no baseline); --unix-and-tcp the same, the Unix socket first. --aof-and-none: this checkout
// with redis-server's append-only file on (appendfsync everysec), then off (CONFIG SET appendonly), alternating.
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import pino from 'pino';
import { cpuSeconds, processStats, runProcess, startProcess, stopProcess, tempDir, sleep, waitFor } from './lib.mjs';
import { ROOT } from './rtcedge.mjs';

const args = process.argv.slice(2);
const opt = (name, def) => (args.includes(name) ? args[args.indexOf(name) + 1] : def);
const COMMITS = Number(opt('--commits', 1500));
const PACE_MS = Number(opt('--pace-ms', 3));
const REPEAT = Number(opt('--repeat', 3));
const BASELINE = opt('--baseline', undefined);
const PORT = 28191;
const ADMIT = args.includes('--admit');
const UNIX = args.includes('--unix');
const TCP_AND_UNIX = args.includes('--tcp-and-unix');
const UNIX_AND_TCP = args.includes('--unix-and-tcp');
const AOF_AND_NONE = args.includes('--aof-and-none');

/** Redis's calls and µs per command since the last reset. */
async function commandStats() {
  const { stdout } = await runProcess('redis-cli', ['-p', String(PORT), 'INFO', 'commandstats'], { timeoutMs: 5000 });
  return [...stdout.matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm)].map((m) => ({ cmd: m[1], calls: Number(m[2]), usec: Number(m[3]) }));
}

/** CONFIG SET appendonly `yes`/`no`, and wait until a rewrite that turning it on starts is done. */
async function setAppendOnly(value) {
  await runProcess('redis-cli', ['-p', String(PORT), 'CONFIG', 'SET', 'appendonly', value], { timeoutMs: 5000 });
  await waitFor(async () => {
    const { stdout } = await runProcess('redis-cli', ['-p', String(PORT), 'INFO', 'persistence'], { timeoutMs: 5000 });
    return /aof_rewrite_in_progress:0/.test(stdout) && /aof_rewrite_scheduled:0/.test(stdout) && new RegExp(`aof_enabled:${value === 'yes' ? 1 : 0}`).test(stdout);
  }, 10_000, 'appendonly');
}

async function run(dist, redisPid, n, url) {
  const { RedisStore } = await import(pathToFileURL(join(dist, 'store', 'redis-store.js')).href);
  const { RedisBindingTracking } = await import(pathToFileURL(join(dist, 'store', 'redis-tracking.js')).href);
  const log = pino({ level: 'silent' });
  const config = { url, key_prefix: `cost${n}:`, command_timeout: 2000, connect_timeout: 2000, retry_after: 5, sentinels: [], sentinel_name: 'mymaster' };
  const store = await new RedisStore(config, log).connect();
  const tracking = new RedisBindingTracking(store, log);
  await tracking.start();
  const nowS = Math.floor(Date.now() / 1000);
  const binding = (i, cseq) => ({
    aor: `sip:user${i}@example.test`, contact: `<sip:user${i}@127.0.0.1:5060>`, contactUri: `sip:user${i}@127.0.0.1:5060`, expires: nowS + 3600, q: null,
    callId: `reg-${i}@127.0.0.1`, cseq, instance: null, regId: null, path: [], source: { transport: 'udp', address: '127.0.0.1', port: 5060, localPort: 5060 },
    userAgent: 'SIPp', updatedAt: nowS,
  });
  // What a node's cache holds of each AOR after its last commit (as the location service passes it: a refresh of a
  // binding it holds); a build whose commit answers no version ignores it and reads every AOR back.
  const held = new Map();
  const commit = async (i, cseq) => {
    const b = binding(i % 20, cseq);
    const got = (await store.commitAndRead([{ op: 'put', binding: b }], new Map(held.has(b.aor) ? [[b.aor, held.get(b.aor)]] : []))).get(b.aor);
    if (got && typeof got.version === 'number') held.set(b.aor, { version: got.version, indexed: true });
  };
  let counter;
  if (ADMIT) {
    const { RedisCallCounter } = await import(pathToFileURL(join(dist, 'store', 'redis-calls.js')).href);
    counter = new RedisCallCounter(store, { maxConcurrent: 10, maxPerMinute: 30, maxCallSeconds: 14400 }, log);
  }
  let refused = 0;
  const op = async (i, cseq) => {
    if (!ADMIT) return commit(i, cseq);
    const user = `user${i % 500}`;
    const got = await counter.admit(user, `call-${i}@bench`);
    if (got.ok) counter.ended(user, `call-${i}@bench`);
    else refused++;
  };
  for (let i = 0; i < 100; i++) await op(i, i);
  counter?.sendEnded();
  await runProcess('redis-cli', ['-p', String(PORT), 'CONFIG', 'RESETSTAT'], { timeoutMs: 5000 });
  let invalidations = 0;
  // The tracking connection (a private field of RedisBindingTracking) counts what Redis sends it.
  tracking.subscriber?.on('messageBuffer', () => invalidations++);
  const wakeups = () => processStats(process.pid).get(process.pid).vol;
  const wakeups0 = wakeups();
  const own0 = process.cpuUsage();
  const redis0 = cpuSeconds(redisPid);
  for (let i = 0; i < COMMITS; i++) {
    await op(100 + i, 1000 + i);
    if (PACE_MS > 0) await sleep(PACE_MS);
  }
  counter?.sendEnded();
  const own = process.cpuUsage(own0);
  const wakeupsPerCommit = (wakeups() - wakeups0) / COMMITS;
  const redisS = cpuSeconds(redisPid) - redis0;
  const stats = await commandStats();
  await tracking.close();
  await store.close();
  if (refused > 0) console.log(`  (${refused} admissions refused)`);
  return { nodeUs: (own.user + own.system) / COMMITS, redisUs: (redisS * 1e6) / COMMITS, stats, wakeupsPerCommit, invalidationsPerCommit: invalidations / COMMITS };
}

const dir = tempDir('redis-commit-cost');
const SOCKET = join(dir, 'redis.sock');
const redis = startProcess('redis-server', ['--bind', '127.0.0.1', '--port', String(PORT), '--unixsocket', SOCKET, '--unixsocketperm', '700', '--dir', dir, '--appendonly', 'yes', '--save', '', '--protected-mode', 'no']);
const TCP_URL = `redis://127.0.0.1:${PORT}`;
const f = (x) => x.toFixed(1);
try {
  await waitFor(async () => redis.stdout.includes('Ready to accept connections'), 10_000, 'redis-server');
  // A path as the URL: ioredis opens a Unix socket (both builds; the configuration's form is unix:/path).
  const url = UNIX ? SOCKET : TCP_URL;
  const mine = join(ROOT, 'dist');
  const builds = AOF_AND_NONE ? [['aof', mine, url, 'yes'], ['no-aof', mine, url, 'no']] : TCP_AND_UNIX ? [['tcp', mine, TCP_URL], ['unix', mine, SOCKET]] : UNIX_AND_TCP ? [['unix', mine, SOCKET], ['tcp', mine, TCP_URL]] : BASELINE ? [['baseline', BASELINE, url], ['this', mine, url]] : [['this', mine, url]];
  const rows = [];
  let n = 0;
  for (let r = 0; r < REPEAT; r++) {
    for (const [name, dist, url, aof] of builds) {
      if (aof) await setAppendOnly(aof);
      const got = await run(dist, redis.pid, n++, url);
      rows.push({ name, ...got });
      const per = got.stats.map((s) => `${s.cmd} ${f(s.calls / COMMITS)} (${f(s.usec / COMMITS)} µs)`).join(', ');
      console.log(`${name}: node ${f(got.nodeUs)} µs, redis-server ${f(got.redisUs)} µs per commit; node wake-ups ${got.wakeupsPerCommit.toFixed(2)}, invalidations received ${got.invalidationsPerCommit.toFixed(2)} per commit; Redis per commit: ${per}`);
    }
  }
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  for (const [name] of builds) {
    const mine = rows.filter((x) => x.name === name);
    console.log(`${name} median of ${mine.length}: node ${f(median(mine.map((x) => x.nodeUs)))} µs, redis-server ${f(median(mine.map((x) => x.redisUs)))} µs per commit`);
  }
} finally {
  await stopProcess(redis);
}
