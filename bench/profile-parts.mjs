// Where a server's CPU went, from a V8 CPU profile (`--cpu-prof`) or a sampling heap profile (bench/heap-sampling.mjs),
// per operation: each sample is counted for the nearest function of ours on its stack (dist/...), grouped by part
// (auth, parser, transport, transaction, registrar, proxy, store, metrics, logging...), so what node:crypto or the
// SQLite binding do for auth/ or store/ counts there; "start-up and other" is what has no frame of ours above it.
//
//   node bench/profile-parts.mjs FILE.cpuprofile --ops 32000 [--functions 40] [--match REGEX]
//   node bench/profile-parts.mjs FILE.heapprofile --ops 7000 [--functions 40]
//
// --ops: the operations (registrations, calls) the profile covers, warm-up included; figures are per operation
// (µs of CPU, or bytes allocated). --functions N: also the N functions with the most inclusive time (or the
// allocation sites with the most bytes), optionally only those whose "name file:line" matches --match.
import { readFileSync } from 'node:fs';
import { arg } from './lib.mjs';

const file = process.argv[2];
if (!file || file.startsWith('--')) throw new Error('usage: node bench/profile-parts.mjs FILE --ops N [--functions N] [--match REGEX]');
const OPS = Number(arg('ops', 1));
const FUNCTIONS = Number(arg('functions', 0));
const MATCH = arg('match', undefined);

/** The part a frame of ours belongs to, by its path under dist/; undefined for node's and npm's frames. */
function partOf(frame) {
  const f = frame.functionName;
  if (f === '(garbage collector)') return 'garbage collector';
  if (f === '(program)' || f === '(idle)') return f;
  if (/node_modules\/better-sqlite3/.test(frame.url)) return 'store (SQLite)';
  const m = /\/dist\/(.*)\.js$/.exec(frame.url);
  if (!m) return undefined;
  const path = m[1];
  if (path === 'transport/udp-send-batch') return 'UDP send (sendmmsg flush)';
  if (/^sip\/(parser|headers|uri|parsed-headers|message|detach|fnv|stream-framer)$/.test(path)) return 'parser and header access (sip/)';
  if (/^sip\/(serializer|response|branch)$/.test(path)) return 'responses and serializer (sip/)';
  const top = path.split('/')[0];
  const named = { transport: 'transport', transaction: 'transaction', registrar: 'registrar', proxy: 'proxy', auth: 'auth', store: 'store (SQLite)', admin: 'metrics (admin/)', log: 'logging', security: 'security', server: 'server wiring' };
  return named[top] ?? `other of ours (${top})`;
}

const label = (frame) => `${frame.functionName || '(anonymous)'} ${frame.url.replace(/.*\/dist\//, '').replace(/.*node_modules\//, 'npm:')}:${frame.lineNumber}`;

const profile = JSON.parse(readFileSync(file, 'utf8'));
const heap = profile.head !== undefined;
/** Nodes with their parent, for both formats (a CPU profile lists nodes flat; a heap profile nests them). */
const nodes = new Map();
const parent = new Map();
if (heap) {
  const walk = (n, up) => {
    nodes.set(n.id, n);
    if (up !== undefined) parent.set(n.id, up);
    for (const c of n.children) walk(c, n.id);
  };
  walk(profile.head);
} else {
  for (const n of profile.nodes) nodes.set(n.id, n);
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
}
/** Weight per leaf node: µs of CPU, or bytes allocated. */
const weight = new Map();
if (heap) for (const s of profile.samples) weight.set(s.nodeId, (weight.get(s.nodeId) ?? 0) + s.size);
else profile.samples.forEach((id, i) => weight.set(id, (weight.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));

const parts = new Map();
const inclusive = new Map();
let total = 0;
for (const [id, w] of weight) {
  let part;
  for (let x = id; x !== undefined && part === undefined; x = parent.get(x)) part = partOf(nodes.get(x).callFrame);
  if (part === '(idle)') continue;
  part ??= 'start-up and other';
  total += w;
  parts.set(part, (parts.get(part) ?? 0) + w);
  // Inclusive per function for CPU; for allocations, the site (the leaf) and the nearest function of ours above it.
  const seen = new Set();
  for (let x = id; x !== undefined; x = parent.get(x)) {
    const k = label(nodes.get(x).callFrame);
    if (!seen.has(k)) inclusive.set(k, (inclusive.get(k) ?? 0) + w);
    seen.add(k);
    if (heap) break;
  }
}

const unit = heap ? 'B' : 'µs';
const per = (w) => (heap ? (w / OPS).toFixed(0) : (w / OPS).toFixed(1));
console.log(`${file}: ${heap ? `${(total / 1e6).toFixed(1)} MB sampled` : `${(total / 1e6).toFixed(2)} s busy`}, ${per(total)} ${unit} per operation over ${OPS}`);
console.log(`\n| part | ${unit} per operation | share |\n| --- | ---: | ---: |`);
for (const [p, w] of [...parts].sort((a, b) => b[1] - a[1])) console.log(`| ${p} | ${per(w)} | ${((100 * w) / total).toFixed(1)} % |`);
if (FUNCTIONS > 0) {
  const re = MATCH ? new RegExp(MATCH) : undefined;
  console.log(`\n${heap ? 'allocation sites' : 'inclusive time'}, ${unit} per operation:`);
  for (const [k, w] of [...inclusive].filter(([k]) => !re || re.test(k)).sort((a, b) => b[1] - a[1]).slice(0, FUNCTIONS)) console.log(`${per(w).padStart(9)}  ${k}`);
}
