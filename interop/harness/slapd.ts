/**
 * A throwaway OpenLDAP slapd for tests: slapd.conf style config (`-f`), back_mdb,
 * schemas core, cosine, inetorgperson, nis plus extra schema text, data loaded
 * offline with slapadd, then `slapd -h ldap://127.0.0.1:PORT/` (it daemonizes;
 * stopped by the PID in its pidfile). Nothing under /etc is written.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCommand } from './process.js';
import { waitForTcpPort } from './ports.js';

/** Options of startSlapd. */
export interface SlapdOptions {
  /** Working directory (config, database, pidfile); created. */
  dir: string;
  /** Port on 127.0.0.1. */
  port: number;
  /** Suffix, e.g. `dc=example,dc=test`. */
  suffix: string;
  /** Root DN password (rootdn is `cn=admin,<suffix>`). */
  rootPassword: string;
  /** Extra schema text (attributetype / objectclass definitions), included after the standard ones. */
  schema?: string;
  /** Access control lines (`access to ...`), in order; default: everything readable by everyone. */
  acl?: string[];
  /** LDIF loaded with slapadd before start. */
  ldif: string;
}

/** A started slapd; restartable after stop. */
export interface Slapd {
  readonly url: string;
  readonly dir: string;
  /** PID of the running daemon, or undefined when stopped. */
  pid(): number | undefined;
  /** SIGTERM by PID, waits (bounded, 10 s) until the process is gone. */
  stop(): Promise<void>;
  /** Starts again on the same database. */
  start(): Promise<void>;
}

const SCHEMA_DIR = '/etc/ldap/schema';

/** Writes the config, loads the LDIF, starts slapd and waits for its port. */
export async function startSlapd(opts: SlapdOptions): Promise<Slapd> {
  const dir = opts.dir;
  mkdirSync(join(dir, 'db'), { recursive: true });
  const conf = join(dir, 'slapd.conf');
  const pidfile = join(dir, 'slapd.pid');
  const includes = ['core', 'cosine', 'inetorgperson', 'nis'].map((s) => `include ${SCHEMA_DIR}/${s}.schema`);
  if (opts.schema) {
    writeFileSync(join(dir, 'extra.schema'), opts.schema);
    includes.push(`include ${join(dir, 'extra.schema')}`);
  }
  writeFileSync(
    conf,
    [
      ...includes,
      `pidfile ${pidfile}`,
      `argsfile ${join(dir, 'slapd.args')}`,
      'modulepath /usr/lib/ldap',
      'moduleload back_mdb',
      'database mdb',
      'maxsize 10485760',
      `suffix "${opts.suffix}"`,
      `rootdn "cn=admin,${opts.suffix}"`,
      `rootpw ${opts.rootPassword}`,
      `directory ${join(dir, 'db')}`,
      ...(opts.acl ?? ['access to * by * read']),
      '',
    ].join('\n'),
  );
  writeFileSync(join(dir, 'data.ldif'), opts.ldif);
  const add = await runCommand('slapadd', ['-q', '-f', conf, '-l', join(dir, 'data.ldif')], { timeoutMs: 20_000 });
  if (add.code !== 0) throw new Error(`slapadd failed: ${add.output}`);

  const url = `ldap://127.0.0.1:${opts.port}/`;
  const readPid = (): number | undefined => {
    if (!existsSync(pidfile)) return undefined;
    const pid = Number(readFileSync(pidfile, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  };
  const alive = (pid: number): boolean => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  let current: number | undefined;

  const start = async (): Promise<void> => {
    const r = await runCommand('slapd', ['-f', conf, '-h', url, '-s', '0'], { timeoutMs: 15_000 });
    if (r.code !== 0) throw new Error(`slapd failed to start: ${r.output}`);
    await waitForTcpPort('127.0.0.1', opts.port, 10_000);
    current = readPid();
    if (current === undefined) throw new Error('slapd started without a pidfile');
  };
  const stop = async (): Promise<void> => {
    const pid = current;
    current = undefined;
    if (pid === undefined || !alive(pid)) return;
    process.kill(pid, 'SIGTERM');
    for (let i = 0; i < 100 && alive(pid); i++) await new Promise((r) => setTimeout(r, 100));
    if (alive(pid)) process.kill(pid, 'SIGKILL');
  };
  await start();
  return { url, dir, pid: () => current, stop, start };
}
