/**
 * Give memory back after a load: V8 collects garbage only while JavaScript
 * allocates, so a server that goes idle after a burst keeps the burst's
 * garbage (tens of MB of old space, and the RSS under it) until the next
 * burst. When the event loop was busy (utilisation above 0.3) and has then
 * stayed quiet (below 0.05) for `quietMs`, this runs one full garbage
 * collection, after which V8 returns the free heap pages to the system. It
 * costs one pause of a few tens of ms, taken only when nothing is happening.
 *
 * The collector is reached through V8's `gc` function: `--expose-gc` set at
 * run time with `v8.setFlagsFromString` and fetched from a fresh context,
 * which leaves the main context's globals untouched. This is the one V8 flag
 * the server sets on itself.
 */
import v8 from 'node:v8';
import vm from 'node:vm';
import type { EventLoopLoad } from './event-loop-load.js';

let gcFn: (() => void) | undefined;

/** V8's full-collection function, or undefined when it cannot be had. */
function collector(): (() => void) | undefined {
  if (gcFn) return gcFn;
  try {
    v8.setFlagsFromString('--expose-gc');
    gcFn = vm.runInNewContext('gc') as () => void;
  } catch {
    gcFn = undefined;
  }
  return gcFn;
}

/** Options of {@link collectWhenIdle}. */
export interface IdleCollectOptions {
  /**
   * True once what the busy period left behind has been let go (e.g. no completed
   * transaction is held for Timer J any more): then `settledQuietMs` of quiet suffice.
   */
  settled?: () => boolean;
  /** Quiet needed once `settled()` is true, ms (default 2000). */
  settledQuietMs?: number;
}

/**
 * Watch `load` and collect once each time a busy period ends: after `quietMs`
 * of quiet, or sooner, after `opts.settledQuietMs` of quiet, once `opts.settled()` is true.
 * @param quietMs how long utilisation must stay under 0.05 after a busy period, ms (default 10 000).
 * @returns a function that stops watching.
 */
export function collectWhenIdle(load: EventLoopLoad, quietMs = 10_000, opts: IdleCollectOptions = {}): () => void {
  const settledQuietMs = opts.settledQuietMs ?? 2000;
  let busySinceCollect = false;
  let quietSinceMs: number | undefined;
  return load.onSample(() => {
    const u = load.utilization;
    const now = performance.now();
    if (u > 0.3) {
      busySinceCollect = true;
      quietSinceMs = undefined;
      return;
    }
    if (!busySinceCollect || u > 0.05) {
      quietSinceMs = undefined;
      return;
    }
    quietSinceMs ??= now;
    const quiet = now - quietSinceMs;
    if (quiet < quietMs && !(quiet >= settledQuietMs && opts.settled?.())) return;
    busySinceCollect = false;
    quietSinceMs = undefined;
    // A full, synchronous collection; V8's unmapper then hands the freed pages back to the system
    // in the background. (The `gc({ type, execution, flavor })` options form does not collect at once
    // on Node 20's V8: only the plain call does.)
    collector()?.();
  });
}
