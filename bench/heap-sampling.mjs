// Loaded into a server with `--node-args "--import ./bench/heap-sampling.mjs"` (cpu-per-register.mjs, cpu-per-call.mjs):
// samples the V8 heap's allocations (inspector HeapProfiler.startSampling, one sample per HEAP_SAMPLING_INTERVAL bytes
// on average, default 4096) and writes
// the sampling heap profile to $HEAP_SAMPLING_DIR/heap-<pid>.heapprofile (default the system's temporary directory).
//
// HEAP_SAMPLING=allocated (default): objects collected by minor and major collections are kept in the profile, written
//   at SIGTERM (or when the process exits): what each site allocated over the server's life (bench/profile-parts.mjs:
//   bytes per operation).
// HEAP_SAMPLING=live: only objects still alive, written HEAP_SAMPLING_AT_MS (default 18000) ms after start: what the
//   server holds at that moment, by the site that allocated it.
import { Session } from 'node:inspector';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const live = process.env.HEAP_SAMPLING === 'live';
const out = join(process.env.HEAP_SAMPLING_DIR ?? tmpdir(), `heap-${process.pid}.heapprofile`);
const session = new Session();
session.connect();
session.post('HeapProfiler.startSampling', { samplingInterval: Number(process.env.HEAP_SAMPLING_INTERVAL ?? 4096), includeObjectsCollectedByMajorGC: !live, includeObjectsCollectedByMinorGC: !live });

/** Stop sampling and write the profile (the inspector answers a session of the main thread synchronously). */
function write() {
  session.post('HeapProfiler.stopSampling', (err, result) => {
    if (!err && result) writeFileSync(out, JSON.stringify(result.profile));
  });
}

if (live) setTimeout(write, Number(process.env.HEAP_SAMPLING_AT_MS ?? 18000)).unref();
else {
  // At SIGTERM, before the server's own shutdown: written only at 'exit', a profile of ~1 GB sampled took longer
  // than the 3 s the bench scripts wait before SIGKILL on a busy machine, and was lost. (`rtcedge serve` handles
  // SIGTERM itself, so this listener does not change how it stops.)
  let written = false;
  const once = () => {
    if (written) return;
    written = true;
    write();
  };
  process.prependListener('SIGTERM', once);
  process.on('exit', once);
}
