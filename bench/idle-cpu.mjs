// CPU and wake-ups of an idle rtcedge (UDP SIP on 127.0.0.1, TURN off, no load) per process: what each
// process costs per second before any message (timers, polling loops, helper threads).
//
//   node bench/idle-cpu.mjs [--workers 2] [--seconds 10] [--cli /path/to/dist/cli/main.js]
import { processStats, stopProcess, sleep, arg } from './lib.mjs';
import { startRtcedge } from './rtcedge.mjs';

const SECONDS = Number(arg('seconds', 10));
const server = await startRtcedge({ sipPort: 28370, users: [], workers: arg('workers', '2'), cli: arg('cli', undefined) });
try {
  await sleep(3000);
  const before = processStats(server.pid);
  await sleep(SECONDS * 1000);
  const after = processStats(server.pid);
  for (const [pid, a] of after) {
    const b = before.get(pid);
    if (!b) continue;
    const role = pid === server.pid ? 'primary' : a.cmd.includes('worker-main') ? 'worker' : a.cmd.split(' ')[0];
    console.log(`${role} ${pid}: cpu ${(((a.cpuS - b.cpuS) / SECONDS) * 1000).toFixed(1)} ms/s, context switches ${((a.vol - b.vol) / SECONDS).toFixed(0)} voluntary + ${((a.invol - b.invol) / SECONDS).toFixed(0)} involuntary /s`);
  }
} finally {
  await stopProcess(server);
}
