/**
 * rtcedge itself as a child process: a YAML config in a temp dir, users added
 * with the CLI, `serve` spawned and awaited until it logs "rtcedge ready".
 * Requires a build (`npm run build`; dist/cli/main.js).
 */
import { appendFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { runCommand, spawnProcess, type CommandResult, type ExitStatus, type ManagedProcess } from './process.js';
import { matchesSipLog, toSipLogEntry, type SipLogEntry, type SipLogFilter } from './sip-log.js';
import { readBindings, type BindingRow } from './store-reader.js';
import { makeTempDir } from './temp-dir.js';

/** Root of the repository (two levels above this file). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** The built CLI. */
export const CLI_PATH = join(REPO_ROOT, 'dist', 'cli', 'main.js');

/** A user to create before start: `alice@example.test` (a leading `sip:` is dropped). */
export interface RtcedgeUser {
  aor: string;
  password: string;
}

/** SIP listener ports on 127.0.0.1; a port left out means no listener of that transport. */
export interface RtcedgePorts {
  udp?: number;
  tcp?: number;
  tls?: number;
}

/** Options of startRtcedge. */
export interface RtcedgeOptions {
  /** Working directory (config file, data_dir `data/`). Default: a new temp dir. */
  dir?: string;
  /** Default { udp: 25060, tcp: 25060, tls: 25061 }. */
  ports?: RtcedgePorts;
  /** Deep-merged over the harness defaults (objects merge, arrays and scalars replace). snake_case keys as in YAML. */
  config?: Record<string, unknown>;
  users?: RtcedgeUser[];
  /** Bound on each start until "rtcedge ready" (ms, default 15000). */
  readyTimeoutMs?: number;
}

/** A running (or stopped, restartable) rtcedge. */
export interface Rtcedge {
  /** PID of the current server process. */
  readonly pid: number;
  readonly dir: string;
  readonly dataDir: string;
  readonly configPath: string;
  /** `<data_dir>/rtcedge.db` */
  readonly dbPath: string;
  /** Generated TLS certificate `<data_dir>/tls/cert.pem` (give it to peers as CA file). */
  readonly certPath: string;
  /** Current server process. */
  readonly process: ManagedProcess;
  /** The config object written as YAML. */
  readonly config: Record<string, unknown>;
  /** Server output is also written to `<dir>/rtcedge-<run>.stdout.log` / `.stderr.log`. */
  /** Parsed JSON stdout lines of every run so far, each with `_run` (0 = first start). */
  readonly logs: Record<string, unknown>[];
  /** Logged SIP messages (see sip-log.ts) matching the filter or predicate, in log order. */
  sipLog(filter?: SipLogFilter | ((e: SipLogEntry) => boolean)): SipLogEntry[];
  /** First log line (of any run, from index `from` of logs) satisfying pred; rejects after timeoutMs (ms). */
  waitForLog(pred: (line: Record<string, unknown>) => boolean, timeoutMs: number, from?: number): Promise<Record<string, unknown>>;
  /**
   * The logged SIP messages matching the filter once at least `atLeast` (default 1) are there: the server's log
   * lines reach the harness a moment after the peer saw the message, more so on a busy machine. Rejects after
   * timeoutMs (ms, default 5000).
   */
  waitForSipLog(filter: SipLogFilter | ((e: SipLogEntry) => boolean), timeoutMs?: number, atLeast?: number): Promise<SipLogEntry[]>;
  /** Rows of table bindings, optionally of one AOR (`sip:bob@example.test`). */
  bindings(aor?: string): BindingRow[];
  /** Runs `node dist/cli/main.js ...args -c <config>` (bounded, 20 s). */
  cli(args: string[], stdin?: string): Promise<CommandResult>;
  /** Adds a user with `user add <aor> --password-stdin`; throws on a non-zero exit. */
  addUser(user: RtcedgeUser): Promise<void>;
  /** SIGTERM by PID, SIGKILL after graceMs (default 5000). */
  stop(graceMs?: number): Promise<ExitStatus>;
  /** Stops if running, starts again with the same config and data dir, waits until ready. */
  restart(): Promise<void>;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Deep merge: objects merge key by key, anything else in `over` replaces. Returns a new object. */
export function deepMerge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] = isPlainObject(b) && isPlainObject(v) ? deepMerge(b, v) : v;
  }
  return out;
}

/**
 * Harness defaults: loopback listeners, one SIP worker, debug log, TURN off, data_dir under dir,
 * `federation.require_tls: false`: most interop peers (sipsak, SIPp,
 * sipvicious) play UAs of other domains over UDP; federation tests turn it on;
 * and the admin listener on an ephemeral port (several servers may run at once).
 */
export function defaultConfig(dataDir: string, ports: RtcedgePorts): Record<string, unknown> {
  const listen: { transport: string; host: string; port: number }[] = [];
  if (ports.udp !== undefined) listen.push({ transport: 'udp', host: '127.0.0.1', port: ports.udp });
  if (ports.tcp !== undefined) listen.push({ transport: 'tcp', host: '127.0.0.1', port: ports.tcp });
  if (ports.tls !== undefined) listen.push({ transport: 'tls', host: '127.0.0.1', port: ports.tls });
  return {
    data_dir: dataDir,
    domains: ['example.test'],
    log: { level: 'debug' },
    // One SIP worker unless a test asks for more: tests read the per-message debug lines of one process.
    sip: { listen, workers: 1 },
    turn: { enabled: false },
    federation: { require_tls: false },
    admin: { listen: '127.0.0.1:0' },
  };
}

/**
 * Writes `<dir>/rtcedge.yaml`, adds the users with the CLI, spawns
 * `node dist/cli/main.js serve -c <file>` and waits for "rtcedge ready".
 * The caller stops it (stop()) in afterAll.
 */
export async function startRtcedge(opts: RtcedgeOptions = {}): Promise<Rtcedge> {
  if (!existsSync(CLI_PATH)) throw new Error(`${CLI_PATH} is missing: run \`npm run build\` first`);
  const dir = opts.dir ?? makeTempDir('server');
  mkdirSync(dir, { recursive: true });
  const dataDir = join(dir, 'data');
  const ports = opts.ports ?? { udp: 25060, tcp: 25060, tls: 25061 };
  const config = deepMerge(defaultConfig(dataDir, ports), opts.config ?? {});
  const effectiveDataDir = resolve(dir, String(config.data_dir));
  const configPath = join(dir, 'rtcedge.yaml');
  writeFileSync(configPath, stringify(config));
  const readyTimeoutMs = opts.readyTimeoutMs ?? 15_000;

  const logs: Record<string, unknown>[] = [];
  const waiters = new Set<() => void>();
  let run = -1;
  let proc: ManagedProcess | undefined;

  const cli = (args: string[], stdin?: string): Promise<CommandResult> =>
    runCommand(process.execPath, [CLI_PATH, ...args, '-c', configPath], { cwd: dir, stdin, timeoutMs: 20_000 });

  const addUser = async (u: RtcedgeUser): Promise<void> => {
    const aor = u.aor.replace(/^sips?:/, '');
    const r = await cli(['user', 'add', aor, '--password-stdin'], `${u.password}\n`);
    if (r.code !== 0) throw new Error(`rtcedge user add ${aor} failed (exit ${r.code}):\n${r.output}`);
  };

  const start = async (): Promise<void> => {
    run += 1;
    const thisRun = run;
    const p = spawnProcess(process.execPath, [CLI_PATH, 'serve', '-c', configPath], {
      cwd: dir,
      onLine: (l) => {
        if (process.env.RTCEDGE_ECHO_SERVER) console.log(`[rtcedge#${thisRun}] ${l.text}`);
        appendFileSync(join(dir, `rtcedge-${thisRun}.${l.stream}.log`), l.text + '\n');
        if (l.stream !== 'stdout' || !l.text.startsWith('{')) return;
        try {
          const obj = JSON.parse(l.text) as Record<string, unknown>;
          obj._run = thisRun;
          logs.push(obj);
          for (const w of [...waiters]) w();
        } catch {
          /* not JSON */
        }
      },
    });
    proc = p;
    try {
      await p.waitForLine((text) => text.includes('"msg":"rtcedge ready"'), readyTimeoutMs);
    } catch (err) {
      await p.stop(2000);
      throw err;
    }
  };

  for (const u of opts.users ?? []) await addUser(u);
  await start();

  const handle: Rtcedge = {
    get pid() {
      return proc!.pid;
    },
    dir,
    dataDir: effectiveDataDir,
    configPath,
    dbPath: join(effectiveDataDir, 'rtcedge.db'),
    certPath: join(effectiveDataDir, 'tls', 'cert.pem'),
    get process() {
      return proc!;
    },
    config,
    logs,
    sipLog(filter) {
      const entries: SipLogEntry[] = [];
      for (const l of logs) {
        const e = toSipLogEntry(l, l._run as number);
        if (e) entries.push(e);
      }
      if (filter === undefined) return entries;
      return entries.filter(typeof filter === 'function' ? filter : (e) => matchesSipLog(e, filter));
    },
    waitForLog(pred, timeoutMs, from = 0) {
      return new Promise((resolvePromise, reject) => {
        let next = from;
        const check = (): void => {
          for (; next < logs.length; next++) {
            if (pred(logs[next]!)) {
              done();
              resolvePromise(logs[next]!);
              return;
            }
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`no matching rtcedge log line in ${timeoutMs} ms`));
        }, timeoutMs);
        const done = (): void => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
    async waitForSipLog(filter, timeoutMs = 5000, atLeast = 1) {
      const match = typeof filter === 'function' ? filter : (e: SipLogEntry) => matchesSipLog(e, filter);
      let seen = 0;
      await this.waitForLog((l) => {
        const e = toSipLogEntry(l, l._run as number);
        if (e !== undefined && match(e)) seen++;
        return seen >= atLeast;
      }, timeoutMs);
      return this.sipLog(match);
    },
    bindings: (aor) => readBindings(join(effectiveDataDir, 'rtcedge.db'), aor),
    cli,
    addUser,
    stop: (graceMs = 5000) => proc!.stop(graceMs),
    async restart() {
      await proc!.stop(5000);
      await start();
    },
  };
  return handle;
}
