// `rtcedge user import` of 10,000 users (three HA1s and a phone number each) from CSV into an
// empty data_dir: wall time of the whole CLI run, and its CPU time (cutime+cstime of the shell
// that waited for it, clock ticks of 100/s). Run: npm run build && node bench/import.mjs [users]
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './rtcedge.mjs';

const users = Number(process.argv[2] ?? 10_000);
const dir = mkdtempSync(join(tmpdir(), 'rtcedge-bench-import-'));
try {
  const csv = join(dir, 'users.csv');
  const lines = ['user,password,phones'];
  for (let i = 0; i < users; i++) lines.push(`user${i},pw-${i}-secret,+4930${String(i).padStart(7, '0')}`);
  writeFileSync(csv, lines.join('\n') + '\n');
  const config = join(dir, 'rtcedge.yaml');
  writeFileSync(config, `data_dir: ${join(dir, 'data')}\ndomains: [example.test]\n`);
  const started = process.hrtime.bigint();
  const r = spawnSync('/bin/sh', ['-c', `node ${join(ROOT, 'dist/cli/main.js')} user import ${csv} --json -c ${config}; echo; cut -d' ' -f16-17 /proc/$$/stat`], { encoding: 'utf8' });
  const wallS = Number(process.hrtime.bigint() - started) / 1e9;
  if (r.status !== 0) throw new Error(`import failed: ${r.stderr}`);
  const out = r.stdout.trim().split('\n');
  const result = JSON.parse(out[0]);
  // cutime + cstime of the shell: CPU of the finished node child, in clock ticks (100/s).
  const [cutime, cstime] = out[out.length - 1].split(' ').map(Number);
  const cpuS = (cutime + cstime) / 100;
  console.log('| users | added | skipped | wall s | CPU s (CLI process) | users/s (wall) |');
  console.log('| ---: | ---: | ---: | ---: | ---: | ---: |');
  console.log(`| ${users} | ${result.added} | ${result.skipped} | ${wallS.toFixed(2)} | ${cpuS.toFixed(2)} | ${Math.round(result.added / wallS)} |`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
