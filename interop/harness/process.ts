/**
 * Child processes for interop tests: spawned with a PID, stdout/stderr kept as
 * lines, waits bounded by timeouts, stopped by PID (SIGTERM, then SIGKILL).
 */
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';

/** How a child ended: exit code, or the signal that killed it. */
export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** One line of output, with the stream it came from and its arrival time (ms since epoch). */
export interface OutputLine {
  stream: 'stdout' | 'stderr';
  text: string;
  time: number;
}

/** Options of spawnProcess. */
export interface SpawnOptions {
  cwd?: string;
  /** Added to (not replacing) process.env. */
  env?: Record<string, string>;
  /** Written to stdin, which is then closed. Without it stdin is /dev/null. */
  stdin?: string;
  /** Called for every complete output line (e.g. to echo while debugging). */
  onLine?: (line: OutputLine) => void;
}

/** Processes spawned by this module and not yet exited (see stopAllStarted). */
const live = new Set<ManagedProcess>();

/**
 * Stops every process this module started that is still running (each by its
 * PID, SIGTERM then SIGKILL after graceMs). A safety net for afterAll hooks.
 */
export async function stopAllStarted(graceMs = 3000): Promise<void> {
  await Promise.all([...live].map((p) => p.stop(graceMs)));
}

/** A running child process owned by a test. */
export class ManagedProcess {
  /** Every output line so far, both streams, in arrival order. */
  readonly lines: OutputLine[] = [];
  /** Resolves when the child has exited and its streams are closed. */
  readonly exited: Promise<ExitStatus>;
  private status: ExitStatus | undefined;
  private readonly waiters = new Set<() => void>();
  private readonly child: ChildProcess;

  constructor(readonly command: string, readonly args: string[], opts: SpawnOptions = {}) {
    const stdio: StdioOptions = [opts.stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'];
    this.child = spawn(command, args, { cwd: opts.cwd, env: { ...process.env, ...opts.env }, stdio });
    if (opts.stdin !== undefined) this.child.stdin?.end(opts.stdin);
    const collect = (stream: 'stdout' | 'stderr', src: NodeJS.ReadableStream | null): Promise<void> => {
      if (!src) return Promise.resolve();
      let rest = '';
      const push = (text: string): void => {
        const line: OutputLine = { stream, text, time: Date.now() };
        this.lines.push(line);
        opts.onLine?.(line);
        this.notify();
      };
      src.on('data', (d: Buffer) => {
        rest += d.toString('utf8');
        let i: number;
        while ((i = rest.indexOf('\n')) >= 0) {
          push(rest.slice(0, i).replace(/\r$/, ''));
          rest = rest.slice(i + 1);
        }
      });
      return new Promise((resolve) =>
        src.on('close', () => {
          if (rest.length > 0) push(rest);
          rest = '';
          resolve();
        }),
      );
    };
    const streams = Promise.all([collect('stdout', this.child.stdout), collect('stderr', this.child.stderr)]);
    const exit = new Promise<ExitStatus>((resolve) => {
      this.child.once('error', (err) => {
        this.lines.push({ stream: 'stderr', text: `spawn error: ${err.message}`, time: Date.now() });
        resolve({ code: null, signal: null });
      });
      this.child.once('exit', (code, signal) => resolve({ code, signal }));
    });
    live.add(this);
    this.exited = Promise.all([exit, streams]).then(([st]) => {
      live.delete(this);
      this.status = st;
      this.notify();
      return st;
    });
  }

  /** Process id; throws if the spawn failed. */
  get pid(): number {
    if (this.child.pid === undefined) throw new Error(`${this.command} did not start`);
    return this.child.pid;
  }

  /** Exit status once exited, else undefined. */
  get exitStatus(): ExitStatus | undefined {
    return this.status;
  }

  /** All output as one string (stdout and stderr interleaved). */
  output(): string {
    return this.lines.map((l) => l.text).join('\n');
  }

  private notify(): void {
    for (const w of [...this.waiters]) w();
  }

  /**
   * Resolves with the first line (from index `from` of `lines`, default 0)
   * that satisfies the predicate. Rejects after timeoutMs, or when the process
   * exits without such a line; the error ends with the last output lines.
   */
  waitForLine(pred: (text: string, line: OutputLine) => boolean, timeoutMs: number, from = 0): Promise<OutputLine> {
    return new Promise((resolve, reject) => {
      let next = from;
      const check = (): boolean => {
        for (; next < this.lines.length; next++) {
          const l = this.lines[next]!;
          if (pred(l.text, l)) {
            done();
            resolve(l);
            return true;
          }
        }
        if (this.status) {
          done();
          reject(new Error(`${this.command} exited (${JSON.stringify(this.status)}) before the awaited line\n${this.tail()}`));
          return true;
        }
        return false;
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for a line of ${this.command}\n${this.tail()}`));
      }, timeoutMs);
      const waiter = (): void => void check();
      const done = (): void => {
        clearTimeout(timer);
        this.waiters.delete(waiter);
      };
      this.waiters.add(waiter);
      check();
    });
  }

  /** The last n output lines, for error messages. */
  tail(n = 30): string {
    return this.lines
      .slice(-n)
      .map((l) => `  [${l.stream}] ${l.text}`)
      .join('\n');
  }

  /**
   * Stops the process by its PID: SIGTERM, then SIGKILL if it is still alive
   * after graceMs (ms). Resolves with its exit status. Safe to call twice.
   */
  async stop(graceMs = 3000): Promise<ExitStatus> {
    if (this.status) return this.status;
    if (this.child.pid === undefined) return this.exited;
    try {
      process.kill(this.child.pid, 'SIGTERM');
    } catch {
      /* already gone */
    }
    const timer = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), graceMs));
    if ((await Promise.race([this.exited, timer])) === 'timeout') {
      try {
        process.kill(this.child.pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
    return this.exited;
  }
}

/** Starts a child process (see ManagedProcess). */
export function spawnProcess(command: string, args: string[], opts: SpawnOptions = {}): ManagedProcess {
  return new ManagedProcess(command, args, opts);
}

/** Result of runCommand. */
export interface CommandResult extends ExitStatus {
  stdout: string;
  stderr: string;
  /** stdout and stderr interleaved in arrival order. */
  output: string;
  /** True when the command was killed for running past timeoutMs. */
  timedOut: boolean;
}

/**
 * Runs a command to completion, bounded by timeoutMs (ms; SIGTERM at the
 * limit, SIGKILL 2 s later). Never rejects for a non-zero exit.
 */
export async function runCommand(
  command: string,
  args: string[],
  opts: SpawnOptions & { timeoutMs: number },
): Promise<CommandResult> {
  const p = new ManagedProcess(command, args, opts);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    void p.stop(2000);
  }, opts.timeoutMs);
  const st = await p.exited;
  clearTimeout(timer);
  const pick = (s: 'stdout' | 'stderr'): string =>
    p.lines
      .filter((l) => l.stream === s)
      .map((l) => l.text)
      .join('\n');
  return { ...st, stdout: pick('stdout'), stderr: pick('stderr'), output: p.output(), timedOut };
}
