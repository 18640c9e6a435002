/**
 * The periodic summary line: at info level, every `intervalS` seconds, what
 * happened during the interval (counts, not one line per transaction), so the
 * default log level stays usable on a busy server.
 *
 * `{"component":"summary","intervalS":60,"serverTransactions":90000,"finals":{"2xx":45000,"4xx":45000},
 *   "refused503":0,"retransmissions":12,"droppedBeforeParse":0,"malformed":0,"streamsPaused":0,
 *   "streamsClosed":0,"maxLagMs":4,"rssMB":96,"heapMB":41,"msg":"summary"}`
 */
import type { Logger } from './log.js';

/** A snapshot of monotonic counters; nested records count per key. */
export type Counters = Record<string, number | Record<string, number>>;

/**
 * Start logging `collect()`'s increase since the previous line every
 * `intervalS` seconds (0: never). `gauges()` adds values reported as they are
 * (lag, memory). Returns a function that stops it.
 */
export function startSummaryLog(
  logger: Logger,
  intervalS: number,
  collect: () => Counters,
  gauges: () => Record<string, number> = () => ({}),
): () => void {
  if (intervalS <= 0) return () => {};
  const log = logger.child({ component: 'summary' });
  let previous = structuredClone(collect());
  const timer = setInterval(() => {
    const now = structuredClone(collect());
    log.info({ intervalS, ...difference(now, previous), ...gauges() }, 'summary');
    previous = now;
  }, intervalS * 1000);
  timer.unref();
  return () => clearInterval(timer);
}

/** `now - before`, key by key (missing keys count as 0). */
export function difference(now: Counters, before: Counters): Counters {
  const out: Counters = {};
  for (const [k, v] of Object.entries(now)) {
    const b = before[k];
    if (typeof v === 'number') out[k] = v - (typeof b === 'number' ? b : 0);
    else {
      const inner: Record<string, number> = {};
      const bi = typeof b === 'object' ? b : {};
      for (const [ik, iv] of Object.entries(v)) inner[ik] = iv - (bi[ik] ?? 0);
      out[k] = inner;
    }
  }
  return out;
}
