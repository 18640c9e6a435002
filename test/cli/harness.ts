/**
 * The built CLI (dist/cli/main.js) as a real process: one-shot commands and a
 * `serve` child awaited until it logs "rtcedge ready". Shared by the CLI and
 * admin tests.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';

/** The built CLI. */
export const MAIN = resolve(__dirname, '../../dist/cli/main.js');

/** Throws when the CLI has not been built. */
export function requireBuild(): void {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run \`npm run build\` first`);
}

/** Outcome of one CLI run. */
export interface CliRun {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Run `rtcedge ...args` to completion (30 s bound) in `cwd`, with `input` on stdin. */
export function runCli(args: string[], cwd: string, input = ''): CliRun {
  const r = spawnSync(process.execPath, [MAIN, ...args], { input, encoding: 'utf8', timeout: 30_000, cwd });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Run `rtcedge ...args` without blocking the test's event loop (for commands that talk to a server in this process). */
export function runCliAsync(args: string[], cwd: string, input = ''): Promise<CliRun> {
  return new Promise((res) => {
    const child = spawn(process.execPath, [MAIN, ...args], { cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (status) => {
      clearTimeout(timer);
      res({ status, stdout, stderr });
    });
    child.stdin.end(input);
  });
}

/** A `rtcedge serve` child process. */
export interface ServeProcess {
  proc: ChildProcess;
  /** The parsed "rtcedge ready" log line. */
  ready: Record<string, unknown>;
  stdout(): string;
  stderr(): string;
  /** SIGTERM by PID; resolves with the exit code. */
  stop(): Promise<number | null>;
  /** SIGKILL by PID if still running (for afterEach). */
  kill(): void;
}

/** Spawn `rtcedge serve -c configFile` in `cwd` and wait (20 s) for "rtcedge ready". */
export async function startServe(configFile: string, cwd: string): Promise<ServeProcess> {
  const proc = spawn(process.execPath, [MAIN, 'serve', '-c', configFile], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((res) => proc.once('exit', (code) => res(code)));
  const running = () => proc.exitCode === null && proc.signalCode === null;
  const ready = await new Promise<Record<string, unknown>>((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`no "rtcedge ready" within 20 s; stdout: ${stdout} stderr: ${stderr}`)), 20_000);
    proc.stdout!.on('data', (d: Buffer) => {
      stdout += d.toString();
      const line = stdout.split('\n').find((l) => l.includes('"rtcedge ready"'));
      if (line) {
        clearTimeout(timer);
        res(JSON.parse(line) as Record<string, unknown>);
      }
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      rej(new Error(`exited with ${code} before ready; stderr: ${stderr}`));
    });
  });
  return {
    proc,
    ready,
    stdout: () => stdout,
    stderr: () => stderr,
    stop: async () => {
      if (running()) process.kill(proc.pid!, 'SIGTERM');
      return exited;
    },
    kill: () => {
      if (running() && proc.pid !== undefined) process.kill(proc.pid, 'SIGKILL');
    },
  };
}
