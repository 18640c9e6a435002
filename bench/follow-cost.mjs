// What following another node's binding commits costs a node on a shared Redis, split by step:
// one process commits bindings at a fixed rate through the Redis store (RedisStore + RedisBindingChannel,
// as a node's registrar does), another follows them, and the follower's CPU (every thread, from
// /proc/<pid>/task/*/schedstat: exact, not clock ticks) per commit is printed for each kind of follower:
//
//   node bench/follow-cost.mjs [--rate 300] [--seconds 10] [--followers raw,noop,parse,parse-ack,parse-skip,node]
//                              [--baseline /path/to/other/dist] [--repeat 1]
//
// - raw: a plain socket subscribed to the follower's channel, reading and dropping (the event-loop wake-up floor);
// - noop: an ioredis subscriber dropping each message (plus ioredis's parsing and events);
// - parse: noop + JSON.parse of the announcement;
// - parse-ack: parse + the acknowledgement as an ioredis PUBLISH (whose reply wakes the follower again);
// - parse-skip: parse + the acknowledgement after CLIENT REPLY SKIP (no reply);
// - node: a node's own RedisBindingChannel and LocationService (what `serve` runs).
// The raw..parse-skip followers list themselves as node `probe` (a heartbeat far in the future).
// --baseline DIR (another build's dist/) runs the `node` follower and the committer of that build first,
// then this build's, back to back; the CPU of the committing process per commit is printed too.
// Uses redis-server on 127.0.0.1:28230 (started here).
import { fork } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startProcess, stopProcess, tempDir, waitFor, sleep, arg } from './lib.mjs';
import { ROOT } from './rtcedge.mjs';

const PORT = 28230;
const URL_ = `redis://127.0.0.1:${PORT}`;
const PREFIX = 'follow:';

/** CPU ns used so far by every thread of `pid`. */
function cpuNs(pid) {
  let ns = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // the thread ended meanwhile
    }
  }
  return ns;
}

async function openStore(dist) {
  const pino = (await import('pino')).default;
  const { RedisStore, RedisBindingChannel } = await import(join(dist, 'store', 'index.js'));
  const { LocationService } = await import(join(dist, 'registrar', 'location-service.js'));
  const { configSchema } = await import(join(dist, 'config', 'schema.js'));
  const log = pino({ level: 'silent' });
  const cfg = configSchema.parse({ store: { type: 'redis', redis: { url: URL_, key_prefix: PREFIX } }, node: { uri: 'sip:127.0.0.1' } }).store.redis;
  return { store: await new RedisStore(cfg, log).connect(), RedisBindingChannel, LocationService, log };
}

/** Child process: a follower of kind `kind`, or the committer (`commit`). */
async function child(kind, dist) {
  const { store, RedisBindingChannel, LocationService, log } = await openStore(dist);
  if (kind === 'commit') {
    const channel = new RedisBindingChannel(store, log);
    await channel.start();
    process.on('message', async ({ rate, seconds }) => {
      const total = rate * seconds;
      const t0 = performance.now();
      const ns0 = cpuNs(process.pid);
      const done = [];
      for (let i = 0; i < total; i++) {
        const d = t0 + (i * 1000) / rate - performance.now();
        if (d > 1) await sleep(d);
        const user = `user${i % 500}`;
        const contactUri = `sip:${user}@127.0.0.1:${5000 + (i % 500)}`;
        const b = { aor: `sip:${user}@example.test`, contact: `<${contactUri}>`, contactUri, expires: Math.floor(Date.now() / 1000) + 3600, callId: `c${i}@127.0.0.1`, cseq: i, path: [], source: { transport: 'udp', address: '127.0.0.1', port: 5000 + (i % 500), localPort: 5060 }, userAgent: 'bench', updatedAt: Date.now() };
        done.push(store.commitBindings([{ op: 'put', binding: b }]));
      }
      await Promise.all(done);
      process.send({ committerUsPerCommit: (cpuNs(process.pid) - ns0) / 1000 / total });
    });
  } else if (kind === 'node') {
    const channel = new RedisBindingChannel(store, log);
    const location = new LocationService(store, log, undefined, channel);
    channel.onResync(() => location.resync());
    channel.onRemoteBindings((aor, bindings) => location.replaceFromRemote(aor, bindings));
    await channel.start();
    await location.start();
  } else {
    const { Command } = await import('ioredis');
    const channel = `${PREFIX}bindings:probe`;
    await store.redis.hset(`${PREFIX}nodes`, 'probe', String(Date.now() + 3_600_000));
    if (kind === 'raw') {
      const net = await import('node:net');
      const sock = net.connect(PORT, '127.0.0.1');
      sock.on('data', () => {});
      sock.write(new Command('subscribe', [channel]).toWritable(sock));
    } else {
      const sub = store.redis.duplicate({ enableOfflineQueue: true });
      sub.on('message', (_channel, text) => {
        if (kind === 'noop') return;
        const sp = text.indexOf(' ');
        const nl = text.indexOf('\n', sp);
        JSON.parse(text.slice(nl + 1));
        const ack = [`${PREFIX}bindings:${text.slice(0, sp)}`, `probe ${text.slice(sp + 1, nl)}`];
        if (kind === 'parse-ack') store.redis.publish(...ack).catch(() => {});
        if (kind === 'parse-skip') store.redis.stream.write(new Command('client', ['reply', 'skip']).toWritable(store.redis.stream) + new Command('publish', ack).toWritable(store.redis.stream));
      });
      await sub.subscribe(channel);
    }
  }
  process.send('ready');
}

function start(kind, dist) {
  const p = fork(process.argv[1], ['--child', kind, '--dist', dist], { stdio: 'inherit' });
  return new Promise((resolve, reject) => {
    p.once('message', () => resolve(p));
    p.once('exit', (code) => reject(new Error(`${kind} exited (${code})`)));
  });
}

async function main() {
  const rate = Number(arg('rate', 300));
  const seconds = Number(arg('seconds', 10));
  const repeat = Number(arg('repeat', 1));
  const baseline = arg('baseline', undefined);
  const kinds = arg('followers', 'raw,noop,parse,parse-ack,parse-skip,node').split(',');
  const thisDist = join(ROOT, 'dist');
  const runs = [];
  for (const kind of kinds) {
    if (kind === 'node' && baseline) runs.push({ kind, dist: baseline, name: 'node (baseline)' });
    runs.push({ kind, dist: thisDist, name: kind });
  }
  const redis = startProcess('redis-server', ['--bind', '127.0.0.1', '--port', String(PORT), '--dir', tempDir('follow-redis'), '--save', '', '--protected-mode', 'no']);
  try {
    await waitFor(async () => redis.stdout.includes('Ready to accept connections'), 10_000, 'redis-server');
    console.log(`${rate} commits/s for ${seconds} s per row; CPU per commit followed, µs (every thread)`);
    for (let r = 0; r < repeat; r++) {
      for (const run of runs) {
        const follower = await start(run.kind, run.dist);
        const committer = await start('commit', run.dist);
        await sleep(1000);
        const ns0 = cpuNs(follower.pid);
        committer.send({ rate, seconds });
        const { committerUsPerCommit } = await new Promise((resolve) => committer.once('message', resolve));
        await sleep(200);
        const us = (cpuNs(follower.pid) - ns0) / 1000 / (rate * seconds);
        console.log(`${run.name.padEnd(16)} follower ${us.toFixed(1).padStart(6)}   committer ${committerUsPerCommit.toFixed(1).padStart(6)}`);
        committer.kill();
        follower.kill();
        await sleep(300);
      }
    }
  } finally {
    await stopProcess(redis);
  }
}

if (process.argv.includes('--child')) await child(arg('child'), arg('dist'));
else await main();
