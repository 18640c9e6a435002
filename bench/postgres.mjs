// A throw-away PostgreSQL cluster for the benchmarks (Kamailio's usrloc written through to a database):
// initdb in a temp dir owned by the `postgres` user, the server run as that user on 127.0.0.1 with
// fsync=off and synchronous_commit=on (a commit write()s its WAL to the OS before it returns and does not
// fsync it: durable across a crash of the process, not a power loss, as rtcedge's SQLite WAL with
// synchronous=NORMAL), trust authentication, every other setting PostgreSQL's default.
import { chownSync, readdirSync, readFileSync, existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { execFileSync } from 'node:child_process';
import { startProcess, runProcess, stopPid, tempDir, sleep, waitFor } from './lib.mjs';

/**
 * Directory of PostgreSQL's server binaries (initdb, postgres, psql): env PG_BIN, else the highest
 * version under /usr/lib/postgresql (Debian's layout); undefined if there is none.
 */
export function pgBin() {
  if (process.env.PG_BIN) return process.env.PG_BIN;
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const v = readdirSync(root).filter((d) => existsSync(join(root, d, 'bin', 'postgres'))).sort((a, b) => Number(b) - Number(a))[0];
  return v ? join(root, v, 'bin') : undefined;
}

/** PostgreSQL's version from `postgres --version` (e.g. "15.18"), '?' when there is no server binary. */
export function pgVersion() {
  try {
    return /\(PostgreSQL\) (\S+)/.exec(execFileSync(join(pgBin(), 'postgres'), ['--version']).toString())?.[1] ?? '?';
  } catch {
    return '?';
  }
}

/** A TCP port on 127.0.0.1 free at the time of the call (the kernel's pick). */
function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Runs `cmd args` to completion (60 s at most); throws an error naming `what` and the command's last output unless it exits 0. */
async function mustRun(what, cmd, args) {
  const r = await runProcess(cmd, args, { timeoutMs: 60_000 });
  if (r.code !== 0) {
    const out = (r.stderr + r.stdout).trim().split('\n').slice(-5).join(' / ').slice(0, 800);
    throw new Error(`PostgreSQL: ${what} failed (exit ${r.code}): ${out}`);
  }
  return r;
}

/**
 * Starts a fresh cluster and creates database `db` in it, then runs the SQL files `schema` (paths) in it
 * with psql (ON_ERROR_STOP). `settings`: extra `-c name=value` pairs for the server (e.g. log_statement).
 * Returns { proc (runuser, parent of the postmaster), pid (the postmaster), port, dir, url(user, db),
 * psql(sql) → stdout, settings, cmdline }. Throws an error naming the step that failed (initdb, start,
 * createdb, a schema file); the cluster is stopped then.
 */
export async function startPostgres({ db = 'bench', schema = [], settings = {} } = {}) {
  const bin = pgBin();
  if (!bin) throw new Error('PostgreSQL: no server binaries (apt-get install postgresql, or set PG_BIN)');
  const dir = tempDir('postgres');
  const data = join(dir, 'data');
  const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
  chownSync(dir, uid, gid);
  const as = (cmd, args) => ['runuser', ['-u', 'postgres', '--', join(bin, cmd), ...args]];
  await mustRun('initdb', ...as('initdb', ['-D', data, '--auth=trust', '--username=postgres', '--encoding=UTF8', '--no-sync']));
  const port = await freePort();
  const all = {
    listen_addresses: '127.0.0.1',
    port: String(port),
    unix_socket_directories: dir,
    fsync: 'off',
    synchronous_commit: 'on',
    ...settings,
  };
  const args = ['-D', data, ...Object.entries(all).flatMap(([k, v]) => ['-c', `${k}=${v}`])];
  const [cmd, full] = as('postgres', args);
  const proc = startProcess(cmd, full);
  const pg = {
    proc, pid: undefined, port, dir, settings: all,
    cmdline: `runuser -u postgres -- ${join(bin, 'postgres')} ${args.join(' ').replaceAll(dir, '$PGDIR').replace(`port=${port}`, 'port=$PGPORT')}`,
    url: (user = 'postgres') => `postgres://${user}:bench@127.0.0.1:${port}/${db}`,
    psql: async (sql, database = db) =>
      (await mustRun(`psql ${sql.slice(0, 60)}`, join(bin, 'psql'), ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-d', database, '-v', 'ON_ERROR_STOP=1', '-Atc', sql])).stdout,
  };
  try {
    await waitFor(async () => {
      if (proc.child.exitCode !== null) throw new Error(`PostgreSQL: the server exited (${proc.child.exitCode}): ${proc.stderr.trim().split('\n').slice(-3).join(' / ')}`);
      const r = await runProcess(join(bin, 'pg_isready'), ['-h', '127.0.0.1', '-p', String(port), '-t', '1'], { timeoutMs: 5000 });
      return r.code === 0;
    }, 30_000, 'PostgreSQL start');
    pg.pid = Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
    await mustRun(`createdb ${db}`, join(bin, 'createdb'), ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', db]);
    for (const file of schema) {
      await mustRun(`schema ${file}`, join(bin, 'psql'), ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-d', db, '-v', 'ON_ERROR_STOP=1', '-q', '-f', file]);
    }
  } catch (e) {
    await stopPostgres(pg);
    throw e;
  }
  return pg;
}

/**
 * Stops the cluster we started: SIGINT to the postmaster (PostgreSQL's fast shutdown), SIGKILL after
 * 10 s; then waits (5 s at most) for runuser, its parent, to exit, and removes the temp dir (a cluster is
 * about 45 MB; its log went to stderr, kept in `pg.proc.stderr`).
 */
export async function stopPostgres(pg) {
  if (!pg) return;
  const pid = pg.pid ?? (existsSync(join(pg.dir, 'data', 'postmaster.pid')) ? Number(readFileSync(join(pg.dir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]) : undefined);
  if (pid) {
    try {
      process.kill(pid, 'SIGINT');
    } catch {}
    await stopPid(pid, 10_000);
  }
  if (pg.proc.child.exitCode === null && pg.proc.child.signalCode === null) {
    await Promise.race([pg.proc.exited, sleep(5000)]);
  }
  if (pg.proc.child.exitCode !== null || pg.proc.child.signalCode !== null) rmSync(pg.dir, { recursive: true, force: true });
}
