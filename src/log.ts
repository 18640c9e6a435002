import { pino, type Logger } from 'pino';

export type { Logger };

/** Options of {@link createLogger}. */
export interface LogOptions {
  /**
   * Most bytes of log lines waiting to be written; lines beyond it are dropped
   * (counted in {@link droppedLogLines}) rather than blocking the event loop or
   * growing memory. Default 4 MiB (`log.max_buffer_bytes`).
   */
  maxBufferBytes?: number;
}

let destination: ReturnType<typeof pino.destination> | undefined;
let dropped = 0;

/**
 * Root logger of the process. Every module takes a child with a `component`
 * field (`log.child({ component: 'registrar' })`). SIP messages and
 * per-transaction lines are logged at debug level only; info carries start-up,
 * bans, errors and the periodic summary ({@link startSummaryLog}).
 *
 * Lines go to stdout through an asynchronous sonic-boom destination: a write
 * never waits for the terminal, pipe or file; a bounded buffer takes them
 * meanwhile. Call {@link flushLogSync} before `process.exit`.
 *
 * Level comes from the config (`log.level`) or `RTCEDGE_LOG_LEVEL`; default `info`.
 */
export function createLogger(level: string = process.env.RTCEDGE_LOG_LEVEL ?? 'info', opts: LogOptions = {}): Logger {
  destination = pino.destination({ dest: 1, sync: false, maxLength: opts.maxBufferBytes ?? 4 * 1024 * 1024 });
  destination.on('drop', () => {
    dropped++;
  });
  return pino({ level, base: { pid: process.pid } }, destination);
}

/** Log lines dropped because the output could not keep up (since start). */
export function droppedLogLines(): number {
  return dropped;
}

/** Write out every buffered line now (blocking); call before `process.exit`. Never throws. */
export function flushLogSync(): void {
  try {
    destination?.flushSync();
  } catch {
    // Output gone (closed pipe): nothing more can be written.
  }
}

/** A logger that writes nothing, for unit tests and library use. */
export const silentLogger: Logger = pino({ level: 'silent' });

/*
 * The periodic summary line: at info level, every `intervalS` seconds, what
 * happened during the interval (counts, not one line per transaction), so the
 * default log level stays usable on a busy server.
 *
 * `{"component":"summary","intervalS":60,"serverTransactions":90000,"finals":{"2xx":45000,"4xx":45000},
 *   "refused503":0,"retransmissions":12,"statelessChallenges":45000,"challengeAcks":0,"completedReleasedEarly":0,"droppedBeforeParse":0,"malformed":0,"streamsPaused":0,
 *   "streamsClosed":0,"maxLagMs":4,"rssMB":96,"heapMB":41,"msg":"summary"}`
 */

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
