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
 * bans, errors and the periodic summary (log-summary.ts).
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
