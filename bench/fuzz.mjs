// Long fuzzing run of the SIP parser, the STUN/TURN codec and the digest
// header parser (test/fuzz/): the same properties as the CI run, with more
// inputs per target. A minimized failing input is written into
// test/fuzz/corpus/<target>/ (FUZZ_SAVE=1), where the CI run keeps replaying it.
//
//   node bench/fuzz.mjs [runs per target, default 1000000] [seed]
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { ROOT } from './rtcedge.mjs';

const runs = Number(process.argv[2] ?? 1_000_000);
const seed = process.argv[3] ?? String(Date.now() & 0x7fffffff);
if (!Number.isInteger(runs) || runs < 1) {
  console.error('usage: node bench/fuzz.mjs [runs per target] [seed]');
  process.exit(2);
}
console.log(`fuzz: ${runs} inputs per target, seed ${seed}`);
const t0 = Date.now();
const r = spawnSync(join(ROOT, 'node_modules', '.bin', 'vitest'), ['run', 'test/fuzz'], {
  cwd: ROOT,
  stdio: 'inherit',
  env: { ...process.env, FUZZ_RUNS: String(runs), FUZZ_SEED: seed, FUZZ_SAVE: '1' },
});
console.log(`fuzz: ${((Date.now() - t0) / 1000).toFixed(0)} s, exit ${r.status}`);
process.exit(r.status ?? 1);
