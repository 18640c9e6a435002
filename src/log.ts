import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * Root logger of the process. Every module takes a child with a `component`
 * field (`log.child({ component: 'registrar' })`). SIP messages are logged at
 * debug level only.
 *
 * Level comes from the config (`log.level`) or `RTCEDGE_LOG_LEVEL`; default `info`.
 */
export function createLogger(level: string = process.env.RTCEDGE_LOG_LEVEL ?? 'info'): Logger {
  return pino({ level, base: { pid: process.pid } });
}

/** A logger that writes nothing, for unit tests and library use. */
export const silentLogger: Logger = pino({ level: 'silent' });
