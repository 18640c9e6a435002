// How long a binding commit holds the event loop, with SQLite's own WAL checkpoints (every 1000 pages,
// inside the commit that passes them) and with checkpoints in a worker thread (store/wal-checkpointer.ts,
// what `rtcedge serve` does), and what one checkpoint costs in wall and CPU time.
// The commits are those of a REGISTER load: batches of 4 bindings over 100 AORs, one batch per
// event-loop turn, `--commits` of them.
//
//   npm run build && node bench/wal-checkpoint.mjs [--commits 6000] [--repeat 3]
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { SqliteStore, startWalCheckpointer } from '../dist/store/index.js';
import { silentLogger } from '../dist/log.js';
import { tempDir } from './lib.mjs';

function arg(name, def) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
}
const COMMITS = arg('commits', 6000);
const REPEAT = arg('repeat', 3);
const NOW_S = Math.floor(Date.now() / 1000);

function batch(i) {
  return Array.from({ length: 4 }, (_, j) => {
    const u = (i * 4 + j) % 100;
    const contactUri = `sip:user${u}@127.0.0.1:${5000 + u}`;
    return {
      op: 'put',
      binding: {
        aor: `sip:user${u}@example.test`, contact: `<${contactUri}>`, contactUri, expires: NOW_S + 3600, q: null,
        callId: `c${i}-${j}@127.0.0.1`, cseq: i, instance: null, regId: null, path: [], source: null, userAgent: 'bench', updatedAt: NOW_S,
      },
    };
  });
}

const pct = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];

/** Commit COMMITS batches, yielding to the event loop between them (as the location service does); commit times in ms. */
async function commitTimes(withWorker) {
  const dir = tempDir('wal');
  const store = new SqliteStore(join(dir, 'rtcedge.db'));
  const worker = withWorker ? startWalCheckpointer(store, silentLogger) : undefined;
  const times = [];
  for (let i = 0; i < COMMITS; i++) {
    const t = performance.now();
    store.commitBindings(batch(i));
    times.push(performance.now() - t);
    await new Promise((r) => setImmediate(r));
  }
  await worker?.stop();
  store.close();
  rmSync(dir, { recursive: true, force: true });
  times.sort((a, b) => a - b);
  return { p50: pct(times, 0.5), p99: pct(times, 0.99), p999: pct(times, 0.999), max: times.at(-1), over5: times.filter((x) => x > 5).length };
}

/** One PASSIVE checkpoint of the WAL left by COMMITS commits: wall and CPU ms, pages. */
function checkpointCost() {
  const dir = tempDir('wal');
  const store = new SqliteStore(join(dir, 'rtcedge.db'));
  store.setAutoCheckpointPages(0);
  for (let i = 0; i < COMMITS; i++) store.commitBindings(batch(i));
  const db = store['db'];
  const t = performance.now();
  const cpu0 = process.cpuUsage();
  const [r] = db.pragma('wal_checkpoint(PASSIVE)');
  const cpu = process.cpuUsage(cpu0);
  const out = { ms: performance.now() - t, cpuMs: (cpu.user + cpu.system) / 1000, pages: r.checkpointed };
  store.close();
  rmSync(dir, { recursive: true, force: true });
  return out;
}

const f = (x, d = 2) => x.toFixed(d);
console.log(`${COMMITS} commits of 4 bindings each, ${REPEAT} runs per row\n`);
console.log('| checkpoints | commit p50 ms | p99 ms | p99.9 ms | max ms | commits over 5 ms |');
console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
for (const [name, worker] of [['in the commit (SQLite default, 1000 pages)', false], ['worker thread (rtcedge serve)', true]]) {
  for (let i = 0; i < REPEAT; i++) {
    const r = await commitTimes(worker);
    console.log(`| ${name} | ${f(r.p50, 3)} | ${f(r.p99)} | ${f(r.p999)} | ${f(r.max)} | ${r.over5} |`);
  }
}
console.log('\n| one checkpoint: pages | wall ms | CPU ms |');
console.log('| ---: | ---: | ---: |');
for (let i = 0; i < REPEAT; i++) {
  const c = checkpointCost();
  console.log(`| ${c.pages} | ${f(c.ms)} | ${f(c.cpuMs)} |`);
}
