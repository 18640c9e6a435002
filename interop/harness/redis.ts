/**
 * redis-server for tests: one on a loopback address and port, data in a
 * directory of the test (append-only file, so a restart keeps what it held),
 * stopped and started again by PID to test outages.
 */
import { spawnProcess, type ManagedProcess } from './process.js';

/** A redis-server a test started; `stop()`/`start()` take it down and up on the same address and data. */
export interface TestRedis {
  readonly host: string;
  readonly port: number;
  /** `redis://host:port`. */
  readonly url: string;
  /** The running process (undefined while stopped). */
  readonly process: ManagedProcess | undefined;
  /** Start it (again) and wait until it accepts connections. */
  start(): Promise<void>;
  /** Stop it by PID (SIGTERM: it writes its data first). */
  stop(): Promise<void>;
}

/**
 * Start redis-server on `host:port` with its files in `dir` (appendonly, fsync
 * every write, no RDB snapshots, no protected mode: loopback only).
 * @throws Error when it does not say "Ready to accept connections" within 10 s.
 */
export async function startRedis(host: string, port: number, dir: string): Promise<TestRedis> {
  let proc: ManagedProcess | undefined;
  const redis: TestRedis = {
    host,
    port,
    url: `redis://${host}:${port}`,
    get process() {
      return proc;
    },
    async start() {
      proc = spawnProcess('redis-server', [
        '--bind', host, '--port', String(port), '--dir', dir, '--appendonly', 'yes', '--appendfsync', 'always',
        '--save', '', '--protected-mode', 'no', '--daemonize', 'no', '--logfile', '',
      ]);
      await proc.waitForLine((t) => t.includes('Ready to accept connections'), 10_000);
    },
    async stop() {
      const p = proc;
      proc = undefined;
      await p?.stop();
    },
  };
  await redis.start();
  return redis;
}
