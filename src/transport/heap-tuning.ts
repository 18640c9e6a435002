/**
 * How large V8 lets its heap grow past what is live, set by the server on
 * itself (`memory.*` in the configuration) so that the operator need not pass
 * node options, in the single process and in every SIP worker alike.
 *
 * Under a REGISTER load most of what a request allocates dies young, but what
 * lives a few seconds (the transaction, the completed-transaction keys held
 * for Timer J, the nonce-count entries) is promoted to the old space and dies
 * there. V8 collects the old space when it reaches its limit, which it sets
 * after each full collection at up to 4 × the live size on a host with this
 * much memory: at 1,500 REGISTER/s that was ~110 MB used for ~40 MB live
 * (bench/RESULTS.md, "Memory, pauses and overload"). Two knobs:
 *
 * - `--heap-growing-percent` (V8 flag, read at every full collection, so it
 *   can be set at run time): the next limit is live × (1 + percent/100).
 * - the young generation (semi-spaces): V8 doubles it from 1 MB up to 16 MB
 *   while much survives scavenges. `--max-semi-space-size` can only be given
 *   on node's command line, so the cap is kept here instead with
 *   `--semi-space-growth-factor` (read at every growth): 2 (V8's default)
 *   while the semi-space is under the cap, 1 (no growth) once it reached it.
 *   The young generation doubles, so the cap is reached at the first power of
 *   two at or above it. `rtcedge serve` holds it at 1 MB from its first line
 *   (cli/hold-young-generation.ts), so that start-up does not grow it past
 *   the cap before this runs.
 *
 * Both trade CPU (more full collections, more scavenges) for memory; the
 * figures are in bench/RESULTS.md.
 */
import v8 from 'node:v8';
import { PerformanceObserver } from 'node:perf_hooks';

/** Options of {@link tuneHeap}. */
export interface HeapTuning {
  /** Old-space growth past the live size before the next full collection, percent; 0 leaves V8's own factor (up to 300 %). */
  heapGrowingPercent: number;
  /** Most young-generation semi-space size, MB (1 MB steps doubling: 1, 2, 4, 8, 16); 0 leaves V8's own (16 MB). */
  youngGenerationMB: number;
}

const MB = 1024 * 1024;

/** Current size of one young-generation semi-space, bytes (V8 reports both semi-spaces together). */
function semiSpaceBytes(): number {
  const s = v8.getHeapSpaceStatistics().find((x) => x.space_name === 'new_space');
  return s ? s.space_size / 2 : 0;
}

/**
 * Apply `t` to this process's V8 heap. Returns a function that stops watching
 * the young generation (V8's flags stay as set).
 * @throws RangeError when a value is negative or not a whole number.
 */
export function tuneHeap(t: HeapTuning): () => void {
  for (const [k, v] of Object.entries(t)) {
    if (!Number.isInteger(v) || v < 0) throw new RangeError(`${k} must be a whole number >= 0`);
  }
  if (t.heapGrowingPercent > 0) v8.setFlagsFromString(`--heap-growing-percent=${t.heapGrowingPercent}`);
  if (t.youngGenerationMB <= 0) {
    // V8's own growth (cli/hold-young-generation.ts may have held it during start-up).
    v8.setFlagsFromString('--semi-space-growth-factor=2');
    return () => {};
  }
  const capBytes = t.youngGenerationMB * MB;
  let factor = 0;
  const steer = (): void => {
    const want = semiSpaceBytes() >= capBytes ? 1 : 2;
    if (want === factor) return;
    factor = want;
    v8.setFlagsFromString(`--semi-space-growth-factor=${want}`);
  };
  steer();
  // After each collection (delivered asynchronously, a few per second under load): the semi-space only
  // grows at a scavenge, and only after survivors the size of the whole young generation since the last growth.
  const observer = new PerformanceObserver(steer);
  observer.observe({ entryTypes: ['gc'] });
  return () => observer.disconnect();
}
