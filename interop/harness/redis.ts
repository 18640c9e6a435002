/**
 * redis-server for tests: one on a loopback address and port, data in a
 * directory of the test (append-only file, so a restart keeps what it held),
 * stopped and started again by PID to test outages.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
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
export function startRedis(host: string, port: number, dir: string): Promise<TestRedis> {
  return startRedisWith(host, port, dir, []);
}

/** startRedis with further redis-server arguments (e.g. `--replicaof host port`, `--unixsocket path`). */
export async function startRedisWith(host: string, port: number, dir: string, extra: string[]): Promise<TestRedis> {
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
        // A replica gets its first copy at once, not after the default 5 s wait for more replicas.
        '--repl-diskless-sync-delay', '0', ...extra,
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

/** A primary, one replica and one Sentinel watching them as `mymaster`, for failover tests. */
export interface TestSentinelSet {
  primary: TestRedis;
  replica: TestRedis;
  /** `host:port` of the Sentinel, the form `store.redis.sentinels` takes. */
  sentinel: string;
  /** Resolves with the line of the Sentinel's log that says the primary moved (`+switch-master`). */
  switched(timeoutMs: number): Promise<string>;
  stop(): Promise<void>;
}

/**
 * Start a primary on `ports[0]`, a replica of it on `ports[1]` and a Sentinel
 * on `ports[2]` (quorum 1, primary judged down after 1000 ms, failover
 * timeout 5000 ms), all on `host`, files under `dir`. Resolves once the
 * replica holds the primary's data and the Sentinel knows both.
 */
export async function startSentinelSet(host: string, ports: [number, number, number], dir: string): Promise<TestSentinelSet> {
  const sub = (name: string) => {
    const d = join(dir, name);
    mkdirSync(d, { recursive: true });
    return d;
  };
  const primary = await startRedis(host, ports[0], sub('primary'));
  const replica = await startRedisWith(host, ports[1], sub('replica'), ['--replicaof', host, String(ports[0])]);
  await replica.process!.waitForLine((t) => t.includes('MASTER <-> REPLICA sync: Finished with success'), 10_000);
  const conf = join(sub('sentinel'), 'sentinel.conf');
  writeFileSync(
    conf,
    [
      `port ${ports[2]}`,
      `bind ${host}`,
      'protected-mode no',
      `sentinel monitor mymaster ${host} ${ports[0]} 1`,
      'sentinel down-after-milliseconds mymaster 1000',
      'sentinel failover-timeout mymaster 5000',
      '',
    ].join('\n'),
  );
  const sentinel = spawnProcess('redis-server', [conf, '--sentinel']);
  await sentinel.waitForLine((t) => t.includes('+slave slave') || t.includes('+replica'), 20_000);
  return {
    primary,
    replica,
    sentinel: `${host}:${ports[2]}`,
    switched: async (timeoutMs) => (await sentinel.waitForLine((t) => t.includes('+switch-master'), timeoutMs)).text,
    async stop() {
      await sentinel.stop();
      await replica.stop();
      await primary.stop();
    },
  };
}
