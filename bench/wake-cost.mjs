// What a wake-up costs on this host: CPU per unit of work when every unit runs in its own event-loop
// turn after the process slept `gap` ms, against the same units back to back (setImmediate, no sleep).
// A lightly loaded server is the first case (every datagram wakes it), a loaded one the second.
//
//   node bench/wake-cost.mjs [--gaps 0,1,3,10] [--units 40] [--rounds 2]
//
// --units: size of one unit of work, in steps of splitting a 340-byte SIP-like text, filling a Map
// and one MD5 digest (40 steps: ~100-150 µs back to back here); 0 measures the bare wake-up
// (a timer that fires and does nothing). For each gap it prints, per unit: CPU µs of the whole
// process (user + system, process.cpuUsage: the wake-up, the timer, the work and V8's threads)
// and wall µs inside the work itself (process.hrtime around it: the same instructions, slower
// when the caches are cold). Each gap runs for about 4.5 s (at most 3,000 units).
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { arg } from './lib.mjs';

const GAPS = arg('gaps', '0,1,3,10').split(',').map(Number);
const UNITS = Number(arg('units', 40));
const ROUNDS = Number(arg('rounds', 2));
const TEXT = 'REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-1\r\n'.repeat(4);
let sink = 0;

/** One unit of work of `steps` steps (string splitting, Map inserts, an MD5 digest each). */
function work(steps) {
  const m = new Map();
  for (let i = 0; i < steps; i++) {
    for (const l of TEXT.split('\r\n')) m.set(l.slice(0, 8) + i, l.length);
    sink += createHash('md5').update(TEXT + i).digest('hex').length;
  }
  sink += m.size;
}

/** `n` units with `gapMs` of sleep before each (0: setImmediate); CPU µs and in-work µs per unit. */
async function run(gapMs, n) {
  let inWorkNs = 0n;
  const c0 = process.cpuUsage();
  for (let i = 0; i < n; i++) {
    const t = process.hrtime.bigint();
    work(UNITS);
    inWorkNs += process.hrtime.bigint() - t;
    if (gapMs > 0) await sleep(gapMs);
    else await new Promise((r) => setImmediate(r));
  }
  const c = process.cpuUsage(c0);
  return { userUs: c.user / n, systemUs: c.system / n, inWorkUs: Number(inWorkNs) / 1000 / n };
}

for (let i = 0; i < 3000; i++) work(UNITS); // JIT warm-up
console.log(`units of ${UNITS} steps; per unit: CPU µs (user + system) / µs inside the work`);
for (let r = 0; r < ROUNDS; r++) {
  const cells = [];
  for (const g of GAPS) {
    const x = await run(g, g > 0 ? Math.min(3000, Math.floor(4500 / g)) : 3000);
    cells.push(`gap ${g} ms: ${(x.userUs + x.systemUs).toFixed(1)} (${x.userUs.toFixed(1)} + ${x.systemUs.toFixed(1)}) / ${x.inWorkUs.toFixed(1)}`);
  }
  console.log(`round ${r + 1}: ${cells.join(' | ')}`);
}
if (sink < 0) console.log(sink);
