// Authenticated REGISTERs/s of rtcedge with sip.workers 1 and 2 (the digest REGISTER scenario at fixed rates, bench/sip-fixed-rate.mjs,
// over UDP with one SIPp socket), back to back. Server CPU is summed over the primary and its workers.
// Needs `npx tsc` first. Usage: node bench/sip-workers.mjs [rate ...]   (default 1000 2000 3000)
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stopProcess, tempDir, sleep } from './lib.mjs';
import { startRtcedge } from './rtcedge.mjs';
import { REGISTER_SCENARIO as SCENARIO } from './sip-scenarios.mjs';
import { USERS, fmtSipRow, runRate, sipTable, users } from './sip-fixed-rate.mjs';

const PORT = 28190;
const rates = process.argv.slice(2).map(Number).filter((n) => n > 0);
const dir = tempDir('sipp-workers');
writeFileSync(join(dir, 'register.xml'), SCENARIO);
writeFileSync(join(dir, 'users.csv'), 'SEQUENTIAL\n' + users.map(([u, p]) => `${u};${p};`).join('\n') + '\n');
const rows = [];
for (const workers of [1, 2]) {
  const p = await startRtcedge({ sipPort: PORT, users, workers });
  try {
    for (const rate of rates.length ? rates : [1000, 2000, 3000]) {
      const r = { server: `rtcedge, ${workers} worker${workers > 1 ? 's' : ''}`, ...(await runRate(p.pid, PORT, rate, dir)) };
      rows.push(r);
      console.log(fmtSipRow(r));
      await sleep(500);
    }
  } finally {
    await stopProcess(p);
  }
}
console.log(sipTable(rows));
console.log(`${USERS} users; SIPp -m = rate × 5 s.`);
