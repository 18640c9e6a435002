/**
 * Damaged stores and bad start-up input, through the built CLI
 * (`node dist/cli/main.js serve -c ...`): each refusal is one line on stderr
 * naming the file or key and the fix, with no stack trace, and a damaged or
 * empty store is left as it was.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { SqliteStore } from '../../src/store/sqlite-store.js';
import { credentialsFor } from '../../src/store/users.js';

const MAIN = resolve(__dirname, '../../dist/cli/main.js');
/** SQLite's default page size, bytes. */
const PAGE = 4096;

let dir: string;
let dataDir: string;
let configFile: string;
let storeFile: string;
let child: ChildProcess | undefined;

beforeAll(() => {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run \`npm run build\` first`);
});
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'rtcedge-startup-'));
  dataDir = join(dir, 'data');
  configFile = join(dir, 'rtcedge.yaml');
  storeFile = join(dataDir, 'rtcedge.db');
  writeConfig();
});
afterEach(() => {
  if (child?.pid !== undefined && child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGKILL');
  child = undefined;
  rmSync(dir, { recursive: true, force: true });
});

/** A configuration on loopback with OS-chosen ports, plus `extra` YAML lines. */
function writeConfig(extra: string[] = [], dataDirValue = dataDir): void {
  const lines = [
    `data_dir: ${dataDirValue}`,
    'domains: [example.test]',
    'log: { level: info }',
    'sip:',
    '  listen:',
    '    - { transport: udp, host: 127.0.0.1, port: 0 }',
    ...extra,
    'turn: { enabled: false }',
    '',
  ];
  writeFileSync(configFile, lines.join('\n'));
}

function serve(args: string[] = []): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [MAIN, 'serve', '-c', configFile, ...args], { encoding: 'utf8', timeout: 15_000, killSignal: 'SIGKILL', cwd: dir });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** One line on stderr, no stack frame, exit status as given. */
function expectOneLineRefusal(r: { status: number | null; stdout: string; stderr: string }, status: number): string {
  expect(r.status, r.stderr).toBe(status);
  expect(r.stderr).not.toMatch(/\n\s+at /);
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  expect(lines, r.stderr).toHaveLength(1);
  expect(r.stdout).not.toContain('rtcedge ready');
  return lines[0]!;
}

/** A store with `users` users, closed cleanly (everything checkpointed into the main file). */
function populatedStore(users: number): void {
  const store = new SqliteStore(storeFile);
  for (let i = 0; i < users; i++) store.addUser(`user${i}`, 'example.test', credentialsFor(`user${i}`, 'example.test', `pw${i}`, ['MD5', 'SHA-256']));
  store.close();
}

/** Start `serve` and resolve once it logged `rtcedge ready`; rejects when it exits first or after 20 s. */
async function serveUntilReady(args: string[]): Promise<ChildProcess> {
  const proc = spawn(process.execPath, [MAIN, 'serve', '-c', configFile, ...args], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  child = proc;
  const out = { stdout: '', stderr: '' };
  proc.stdout!.on('data', (d: Buffer) => (out.stdout += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out.stderr += d.toString()));
  const deadline = Date.now() + 20_000;
  while (!out.stdout.includes('rtcedge ready')) {
    if (proc.exitCode !== null || Date.now() > deadline) throw new Error(`not ready (exit ${proc.exitCode}); stderr: ${out.stderr}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return proc;
}

async function stop(proc: ChildProcess): Promise<number | null> {
  const exited = new Promise<number | null>((res) => proc.once('exit', (code) => res(code)));
  process.kill(proc.pid!, 'SIGTERM');
  return exited;
}

describe('damaged store', () => {
  test('a zero-byte rtcedge.db is refused, not taken for a new store, and left as it is', () => {
    mkdirSync(dataDir, { recursive: true });
    writeFileSync(storeFile, '');
    const line = expectOneLineRefusal(serve(), 1);
    expect(line).toContain(storeFile);
    expect(line).toContain('empty');
    expect(line).toContain('--create-store');
    expect(statSync(storeFile).size).toBe(0);
  });

  test('random bytes over a few pages of a populated store are found by the start-up check', () => {
    mkdirSync(dataDir, { recursive: true });
    populatedStore(1000);
    const before = readFileSync(storeFile);
    expect(before.length).toBeGreaterThan(10 * PAGE);
    const fd = openSync(storeFile, 'r+');
    writeSync(fd, randomBytes(3 * PAGE), 0, 3 * PAGE, 2 * PAGE);
    closeSync(fd);
    const damaged = readFileSync(storeFile);

    const line = expectOneLineRefusal(serve(), 1);
    expect(line).toContain(storeFile);
    expect(line).toContain('damaged');
    expect(line).toContain('backup');
    expect(readFileSync(storeFile).equals(damaged)).toBe(true);
  });

  test('a file that is not a database at all is refused with the file named', () => {
    mkdirSync(dataDir, { recursive: true });
    writeFileSync(storeFile, randomBytes(8 * PAGE));
    const line = expectOneLineRefusal(serve(), 1);
    expect(line).toContain(storeFile);
    expect(line).toContain('--create-store');
  });

  test('--create-store sets an empty store aside and starts with a new one', async () => {
    mkdirSync(dataDir, { recursive: true });
    writeFileSync(storeFile, '');
    const proc = await serveUntilReady(['--create-store']);
    expect(await stop(proc)).toBe(0);
    expect(statSync(storeFile).size).toBeGreaterThan(0);
    const asides = readdirSync(dataDir).filter((f) => f.startsWith('rtcedge.db.damaged-'));
    expect(asides).toHaveLength(1);
  });

  test('a healthy store starts without the flag and keeps its users', async () => {
    mkdirSync(dataDir, { recursive: true });
    populatedStore(20);
    const proc = await serveUntilReady([]);
    expect(await stop(proc)).toBe(0);
    const store = new SqliteStore(storeFile);
    try {
      expect(store.getUser('user19', 'example.test')).toBeDefined();
    } finally {
      store.close();
    }
  });
});

describe('bad start-up input', () => {
  test('a missing TLS certificate file names the key and the file', () => {
    const missing = join(dir, 'no-such-cert.pem');
    writeFileSync(join(dir, 'key.pem'), 'not used');
    writeConfig([`    - { transport: tls, host: 127.0.0.1, port: 0 }`, '  tls:', `    cert: ${missing}`, `    key: ${join(dir, 'key.pem')}`]);
    const line = expectOneLineRefusal(serve(), 1);
    expect(line).toContain('sip.tls.cert');
    expect(line).toContain(missing);
  });

  test('a data_dir that is a file names the key and the path', () => {
    const file = join(dir, 'a-file');
    writeFileSync(file, 'x');
    writeConfig([], file);
    const line = expectOneLineRefusal(serve(), 1);
    expect(line).toContain('data_dir');
    expect(line).toContain(file);
    expect(line).toContain('not a directory');
  });

  test('a YAML alias bomb is a configuration error naming the file, not a stack trace', () => {
    const bomb = ['a: &a ["x","x","x","x","x","x","x","x","x"]'];
    for (let i = 1; i < 10; i++) {
      const prev = String.fromCharCode(96 + i);
      const cur = String.fromCharCode(97 + i);
      bomb.push(`${cur}: &${cur} [${Array(9).fill(`*${prev}`).join(',')}]`);
    }
    writeFileSync(configFile, `${bomb.join('\n')}\n`);
    const line = expectOneLineRefusal(serve(), 2);
    expect(line).toContain(configFile);
    expect(line).toContain('alias');
  });
});
