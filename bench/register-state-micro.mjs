// In-process micro-benchmark of three pieces of per-REGISTER state work, for two builds' dist/ in one process,
// interleaved rounds, medians (CPU µs of this process per call):
// - `add`: CompletedResponses.add of a 560-byte 200 in steady state (20,000 entries live, the oldest expired every
//   64 adds as Timer J would), so 256 KiB response chunks are emptied and new ones needed all along;
// - `check`: checkNonce of a SIP challenge's nonce createNonce made just before (what the REGISTER with
//   credentials costs after its 401), the timing of the check alone;
// - `commit`: SqliteStore.commitBindings of k = 1, 2, 3, 4 binding refreshes per transaction (this build only),
//   per refresh.
// Reads dist/: run `npx tsc` first.
//
//   node bench/register-state-micro.mjs [--baseline /path/to/other/dist] [--rounds 10]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { arg } from './lib.mjs';

const THIS = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist');
const BASELINE = arg('baseline', undefined);
const ROUNDS = Number(arg('rounds', 10));

const builds = [];
for (const [name, d] of [...(BASELINE ? [['baseline', BASELINE]] : []), ['this build', THIS]]) {
  builds.push({
    name,
    cr: await import(`${d}/transaction/completed-responses.js`),
    nonce: await import(`${d}/auth/nonce.js`),
    add: [],
    check: [],
    state: { k: 0, c: undefined },
  });
}

const wire = Buffer.alloc(560, 0x41);
const dest = { transport: 'udp', address: '127.0.0.1', port: 5060 };
function addRound(b, n) {
  const s = b.state;
  s.c ??= new b.cr.CompletedResponses(20, Infinity);
  const t = process.cpuUsage();
  for (let i = 0; i < n; i++) {
    const k = s.k++;
    s.c.add(`z9hG4bK-${k}\u0000REGISTER`, wire, dest, k);
    if ((k & 63) === 0) s.c.expire(k - 20000);
  }
  const u = process.cpuUsage(t);
  return (u.user + u.system) / n;
}

const secret = Buffer.alloc(32, 7);
function checkRound(b, n) {
  const t0 = Date.now();
  let ns = 0;
  for (let i = 0; i < n; i++) {
    const nonce = b.nonce.createNonce(secret, Math.floor(t0 / 1000) * 1000, { counter: (i * 7919 + 13) % 2 ** 40 });
    const t = process.hrtime.bigint();
    if (b.nonce.checkNonce(secret, nonce, 300, t0) !== 'valid') throw new Error('nonce refused');
    ns += Number(process.hrtime.bigint() - t);
  }
  return ns / n / 1000;
}

const dir = mkdtempSync(join(tmpdir(), 'rtcedge-state-micro-'));
const { SqliteStore } = await import(`${THIS}/store/sqlite-store.js`);
const store = new SqliteStore(join(dir, 'rtcedge.db'));
const NOW = Math.floor(Date.now() / 1000);
let cseq = 1;
const binding = (u) => {
  const contactUri = `sip:user${u}@127.0.0.1:${5000 + u}`;
  return { aor: `sip:user${u}@127.0.0.1`, contact: `<${contactUri}>`, contactUri, expires: NOW + 3600, q: null, callId: `call-${u}`, cseq: cseq++, instance: null, regId: null, path: [], source: null, userAgent: 'SIPp', updatedAt: NOW };
};
for (let u = 0; u < 1000; u++) store.commitBindings([{ op: 'put', binding: binding(u) }]);
function commitRound(k, n) {
  const t = process.cpuUsage();
  for (let i = 0; i < n; i += k) {
    const changes = [];
    for (let j = 0; j < k; j++) changes.push({ op: 'put', binding: binding((i + j) % 1000) });
    store.commitBindings(changes);
  }
  const u = process.cpuUsage(t);
  return (u.user + u.system) / n;
}
const perCommit = [1, 2, 3, 4];
const commits = Object.fromEntries(perCommit.map((k) => [k, []]));

for (const b of builds) {
  addRound(b, 50000);
  checkRound(b, 5000);
}
for (const k of perCommit) commitRound(k, 2000);
for (let r = 0; r < ROUNDS; r++) {
  for (const b of builds) {
    b.add.push(addRound(b, 50000));
    b.check.push(checkRound(b, 20000));
  }
  for (const k of perCommit) commits[k].push(commitRound(k, 6000));
}
store.close();
rmSync(dir, { recursive: true, force: true });

const fmt = (a) => {
  const s = a.slice().sort((x, y) => x - y);
  return `${s[s.length >> 1].toFixed(2)} (${s[0].toFixed(2)}–${s[s.length - 1].toFixed(2)})`;
};
console.log(`| build | CompletedResponses.add, µs per entry | checkNonce of a nonce just made, µs |`);
console.log(`| --- | ---: | ---: |`);
for (const b of builds) console.log(`| ${b.name} | ${fmt(b.add)} | ${fmt(b.check)} |`);
console.log(`\n| refreshes per commit (this build) | µs per refresh |`);
console.log(`| --- | ---: |`);
for (const k of perCommit) console.log(`| ${k} | ${fmt(commits[k])} |`);
console.log(`\nmedians (min–max) over ${ROUNDS} interleaved rounds`);
