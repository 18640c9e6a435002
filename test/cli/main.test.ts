/**
 * The built CLI (dist/cli/main.js, from `npm run build`) run as a real process
 * against a temporary data_dir.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';
import { afterEach, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { type CliRun, MAIN, requireBuild, runCli, type ServeProcess, startServe } from './harness.js';

const h = (alg: string, s: string) => createHash(alg).update(s, 'utf8').digest('hex');

let dir: string;
let configFile: string;
let dataDir: string;

beforeAll(requireBuild);
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'rtcedge-cli-'));
  dataDir = join(dir, 'data');
  configFile = join(dir, 'rtcedge.yaml');
  writeFileSync(configFile, `data_dir: ${dataDir}\ndomains: [example.test, Other.TEST]\nlog: { level: silent }\n`);
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

function cli(args: string[], input = ''): CliRun {
  return runCli(args, dir, input);
}

function userRow(username: string, domain: string): Record<string, unknown> | undefined {
  const db = new Database(join(dataDir, 'rtcedge.db'), { readonly: true });
  try {
    return db
      .prepare('SELECT username, domain, ha1_md5, ha1_sha256, ha1_sha512_256 FROM users WHERE username = ? AND domain = ?')
      .get(username, domain) as Record<string, unknown> | undefined;
  } finally {
    db.close();
  }
}

describe('user commands', () => {
  test('add with --password-stdin stores all three HA1s, list shows the user', () => {
    const add = cli(['user', 'add', 'bob@example.test', '--password-stdin', '-c', configFile], 'Pa55 word\nignored second line\n');
    expect(add).toEqual({ status: 0, stdout: 'added bob@example.test\n', stderr: '' });

    expect(userRow('bob', 'example.test')).toEqual({
      username: 'bob',
      domain: 'example.test',
      ha1_md5: h('md5', 'bob:example.test:Pa55 word'),
      ha1_sha256: h('sha256', 'bob:example.test:Pa55 word'),
      ha1_sha512_256: h('sha512-256', 'bob:example.test:Pa55 word'),
    });

    expect(cli(['user', 'list', '-c', configFile])).toEqual({ status: 0, stdout: 'bob@example.test\n', stderr: '' });
  });

  test('CRLF line end from stdin is not part of the password', () => {
    expect(cli(['user', 'add', 'bob', '--password-stdin', '-c', configFile], 'pw\r\n').status).toBe(0);
    expect(userRow('bob', 'example.test')!.ha1_md5).toBe(h('md5', 'bob:example.test:pw'));
  });

  test('domain defaults to the first configured one; list by domain', () => {
    expect(cli(['user', 'add', 'carol', '--password', 'x1', '-c', configFile]).stdout).toBe('added carol@example.test\n');
    expect(cli(['user', 'add', 'dave@OTHER.test', '--password', 'x2', '-c', configFile]).stdout).toBe('added dave@other.test\n');
    expect(userRow('dave', 'other.test')!.ha1_md5).toBe(h('md5', 'dave:other.test:x2'));
    expect(cli(['user', 'list', '-c', configFile]).stdout).toBe('carol@example.test\ndave@other.test\n');
    expect(cli(['user', 'list', 'other.test', '-c', configFile]).stdout).toBe('dave@other.test\n');
  });

  test('existing user: message and exit 1, HA1 unchanged', () => {
    cli(['user', 'add', 'bob', '--password', 'first', '-c', configFile]);
    const again = cli(['user', 'add', 'bob@example.test', '--password', 'second', '-c', configFile]);
    expect(again).toEqual({ status: 1, stdout: '', stderr: 'rtcedge: user bob@example.test already exists\n' });
    expect(userRow('bob', 'example.test')!.ha1_md5).toBe(h('md5', 'bob:example.test:first'));
  });

  test('domain not served: message naming it and exit 1, nothing stored', () => {
    const r = cli(['user', 'add', 'eve@elsewhere.test', '--password', 'x', '-c', configFile]);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe('rtcedge: domain elsewhere.test is not served by this server (domains: example.test, other.test)\n');
    expect(cli(['user', 'list', '-c', configFile]).stdout).toBe('');
  });

  test('no password source and no terminal: exit 1', () => {
    const r = cli(['user', 'add', 'bob', '-c', configFile]);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe('rtcedge: no password: give --password-stdin or --password, or run on a terminal\n');
    const empty = cli(['user', 'add', 'bob', '--password-stdin', '-c', configFile], '\n');
    expect(empty).toEqual({ status: 1, stdout: '', stderr: 'rtcedge: the password is empty\n' });
  });

  test('passwd replaces the HA1s; del removes the user', () => {
    cli(['user', 'add', 'bob', '--password', 'old', '-c', configFile]);
    expect(cli(['user', 'passwd', 'bob', '--password-stdin', '-c', configFile], 'new\n')).toEqual({
      status: 0,
      stdout: 'password changed for bob@example.test\n',
      stderr: '',
    });
    expect(userRow('bob', 'example.test')!.ha1_sha256).toBe(h('sha256', 'bob:example.test:new'));
    expect(cli(['user', 'passwd', 'nobody', '--password', 'x', '-c', configFile])).toEqual({
      status: 1,
      stdout: '',
      stderr: 'rtcedge: no user nobody@example.test\n',
    });

    expect(cli(['user', 'del', 'bob@example.test', '-c', configFile])).toEqual({ status: 0, stdout: 'deleted bob@example.test\n', stderr: '' });
    expect(userRow('bob', 'example.test')).toBeUndefined();
    expect(cli(['user', 'del', 'bob', '-c', configFile])).toEqual({ status: 1, stdout: '', stderr: 'rtcedge: no user bob@example.test\n' });
  });
});

describe('configuration errors', () => {
  test('unknown key: message naming file and key, no stack, exit 2', () => {
    writeFileSync(configFile, `data_dir: ${dataDir}\nsip:\n  listne: []\n`);
    expect(cli(['user', 'list', '-c', configFile])).toEqual({
      status: 2,
      stdout: '',
      stderr: `config ${configFile}: unknown key "sip.listne"\n`,
    });
  });

  test('serve with a bad value exits 2 before starting anything', () => {
    writeFileSync(configFile, `data_dir: ${dataDir}\nsip:\n  listen:\n    - { transport: udp, port: abc }\n`);
    expect(cli(['serve', '-c', configFile])).toEqual({
      status: 2,
      stdout: '',
      stderr: `config ${configFile}: sip.listen[0].port: expected a number 0-65535, got "abc"\n`,
    });
    expect(existsSync(dataDir)).toBe(false);
  });

  test('missing config file: exit 2', () => {
    const missing = join(dir, 'nope.yaml');
    expect(cli(['user', 'list', '-c', missing])).toEqual({ status: 2, stdout: '', stderr: `config ${missing}: file not found\n` });
  });
});

describe('serve', () => {
  let stop: ServeProcess | undefined;
  afterEach(() => {
    stop?.kill();
    stop = undefined;
  });

  test('starts, and SIGTERM stops it with exit status 0', async () => {
    writeFileSync(
      configFile,
      [
        `data_dir: ${dataDir}`,
        'log: { level: info }',
        'sip:',
        '  listen:',
        '    - { transport: udp, host: 127.0.0.1, port: 0 }',
        '    - { transport: tcp, host: 127.0.0.1, port: 0 }',
        'turn:',
        '  listen:',
        '    - { transport: udp, host: 127.0.0.1, port: 0 }',
        '',
      ].join('\n'),
    );
    const serve = await startServe(configFile, dir);
    stop = serve;
    expect(serve.ready.data_dir).toBe(dataDir);
    expect(existsSync(join(dataDir, 'rtcedge.db'))).toBe(true);
    expect(existsSync(join(dataDir, 'secret'))).toBe(true);
    expect(await serve.stop()).toBe(0);
    expect(serve.stderr()).toBe('');
    // Every log line names its component; the signal and the end are the serve command's own lines.
    const lines = serve.stdout().split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.filter((l) => typeof l.component !== 'string').map((l) => l.msg)).toEqual([]);
    expect(lines.filter((l) => l.component === 'serve').map((l) => [l.msg, l.signal])).toEqual([['stopping', 'SIGTERM'], ['stopped', undefined]]);
  });
});

describe('serve started by npm', () => {
  test.each(['exec', 'start'])('npm_command=%s: once npm has ended (killed alone), the server stops as on SIGTERM', async (npmCommand) => {
    writeFileSync(configFile, `data_dir: ${dataDir}\nlog: { level: info }\nsip:\n  workers: 1\n  listen:\n    - { transport: udp, host: 127.0.0.1, port: 0 }\nturn: { enabled: false }\nadmin: { enabled: false }\n`);
    const out = join(dir, 'serve.log');
    // sh stands in for npm: it starts the server as its child, then is killed alone (npm ends on SIGTERM without passing it on).
    const npx = spawn('sh', ['-c', `"${process.execPath}" "${MAIN}" serve -c "${configFile}" >"${out}" 2>&1 & wait`], { cwd: dir, env: { ...process.env, npm_command: npmCommand }, stdio: 'ignore' });
    const lines = (): Record<string, unknown>[] =>
      existsSync(out) ? readFileSync(out, 'utf8').split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>) : [];
    /** Running: /proc has it and it is not a zombie waiting for its new parent to reap it. */
    const running = (pid: number) => existsSync(`/proc/${pid}/stat`) && !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
    let pid: number | undefined;
    try {
      await expect.poll(() => lines().find((l) => l.msg === 'rtcedge ready'), { timeout: 20_000, interval: 100 }).toBeTruthy();
      pid = lines().find((l) => l.msg === 'rtcedge ready')!.pid as number;
      expect(running(pid)).toBe(true);
      npx.kill('SIGKILL');
      await expect.poll(() => running(pid!), { timeout: 15_000, interval: 100 }).toBe(false);
      expect(lines().filter((l) => l.component === 'serve').map((l) => [l.msg, l.signal])).toEqual([['stopping', 'npm ended'], ['stopped', undefined]]);
    } finally {
      npx.kill('SIGKILL');
      if (pid !== undefined && running(pid)) process.kill(pid, 'SIGKILL');
    }
  });
});

describe('serve: a fault of its own', () => {
  test('an uncaught exception is one fatal line of the serve command with its stack, and exit 70', async () => {
    writeFileSync(configFile, `data_dir: ${dataDir}\nlog: { level: info }\nsip:\n  workers: 1\n  listen:\n    - { transport: udp, host: 127.0.0.1, port: 0 }\nturn: { enabled: false }\nadmin: { enabled: false }\n`);
    // A module loaded before the CLI throws from a timer once the server runs: an exception no code of the server catches.
    const fault = join(dir, 'fault.mjs');
    writeFileSync(fault, `setTimeout(() => { throw new Error('injected fault'); }, 1500);\n`);
    const r = spawnSync(process.execPath, ['--import', pathToFileURL(fault).href, MAIN, 'serve', '-c', configFile], { cwd: dir, encoding: 'utf8', timeout: 20_000 });
    expect(r.status).toBe(70);
    const lines = r.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { msg: string; component?: string; level: number; err?: { message: string; stack: string } });
    expect(lines.some((l) => l.msg === 'rtcedge ready')).toBe(true);
    const fatal = lines.filter((l) => l.level === 60);
    expect(fatal.map((l) => [l.component, l.msg, l.err?.message])).toEqual([['serve', 'uncaught exception', 'injected fault']]);
    expect(fatal[0].err?.stack).toContain('fault.mjs');
  });
});

describe('serve start-up failures', () => {
  test('a port in use: one line naming the listener, exit 1, no stack trace', async () => {
    const { createSocket } = await import('node:dgram');
    const taken = createSocket('udp4');
    await new Promise<void>((r) => taken.bind(0, '127.0.0.1', () => r()));
    const port = taken.address().port;
    writeFileSync(configFile, `data_dir: ${dataDir}\nlog: { level: silent }\nsip:\n  listen:\n    - { transport: udp, host: 127.0.0.1, port: ${port} }\nturn: { enabled: false }\nadmin: { enabled: false }\n`);
    const r = cli(['serve', '-c', configFile]);
    taken.close();
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(`rtcedge: cannot start: cannot listen on udp 127.0.0.1:${port}: bind EADDRINUSE 127.0.0.1:${port}\n`);
  });
});

describe('the default data_dir', () => {
  test('is ./rtcedge-data of the working directory, and a store command says which directory that is', () => {
    const r = cli(['user', 'list']);
    expect(r).toEqual({
      status: 0,
      stdout: '',
      stderr: `rtcedge: data_dir is ${join(dir, 'rtcedge-data')} (the default ./rtcedge-data, relative to the working directory; set data_dir in the configuration)\n`,
    });
    expect(existsSync(join(dir, 'rtcedge-data', 'rtcedge.db'))).toBe(true);
  });
});
