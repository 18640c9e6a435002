// Kamailio for the SIP benchmark, doing the work rtcedge does: a registrar with digest auth (usrloc in
// memory), and a stateful record-routing proxy that challenges INVITEs with 407 and routes to the
// registered Contact; UDP, TCP and TLS listeners (TLS with a certificate generated here by openssl).
// Passwords are derived in the script from the username ("pw-" + user), so no user database is needed.
// Bindings (usrloc) either in shared memory only (`memory`, db_mode 0) or written through to a PostgreSQL
// cluster started for the run (`postgres`, db_mode 1: save() writes the change to the database before the
// 200 is sent, as rtcedge commits a binding to SQLite before its 200).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { startProcess, runProcess, stopProcess, stopPid, tempDir, waitFor, udpProbe, sipOptions, readPidFile } from './lib.mjs';
import { startPostgres, stopPostgres } from './postgres.mjs';

/** Worker processes per listener kind (UDP receivers, TCP/TLS workers); env KAMAILIO_CHILDREN, default 4. */
export const KAMAILIO_CHILDREN = Number(process.env.KAMAILIO_CHILDREN ?? 4);
/** Shared memory pool, MB (-m): 5,000 TLS connections take a few hundred MB of it. */
const SHM_MB = Number(process.env.KAMAILIO_SHM_MB ?? 1024);
/** Where usrloc keeps bindings: `memory` (db_mode 0) or `postgres` (db_mode 1, write-through). */
export const USRLOC_MODES = ['memory', 'postgres'];
/** Debian's SQL schema files for db_postgres (kamailio-postgres-modules): the version table and usrloc's tables. */
const PG_SCHEMA = ['standard-create.sql', 'usrloc-create.sql'].map((f) => join('/usr/share/kamailio/postgres', f));

/**
 * The configuration: ports { udp, tcp, tls } on 127.0.0.1; `dir` holds tls.cfg and the control socket.
 * Digest (RFC 2617, qop=auth, nonce counts checked like rtcedge does) on REGISTER (401) and on
 * INVITE (407); in-dialog requests follow the Record-Route (loose_route); ACKs of the 407 are absorbed
 * by sl; retransmissions by tm. `dbUrl` (postgres://user:password@host:port/db): usrloc in db_mode 1 through
 * db_postgres (every binding change written to the `location` table before save() returns, so before the
 * 200); without it db_mode 0 (shared memory only).
 */
export function kamailioCfg(ports, dir, tcpChildren = KAMAILIO_CHILDREN, dbUrl = undefined) {
  return `#!KAMAILIO
debug=1
log_stderror=yes
fork=yes
children=${KAMAILIO_CHILDREN}
tcp_children=${tcpChildren}
listen=udp:127.0.0.1:${ports.udp}
listen=tcp:127.0.0.1:${ports.tcp}
listen=tls:127.0.0.1:${ports.tls}
enable_tls=yes
tcp_max_connections=20000
tls_max_connections=20000
tcp_connection_lifetime=3605
# Write queue per connection as rtcedge's sip.limits.stream_close_bytes (4 MiB): the callee of the TLS call
# scenario gets every INVITE over one connection.
tcp_conn_wq_max=4194304
tcp_wq_max=104857600
open_files_limit=20000
auto_aliases=no
alias="example.test"
dns=no
rev_dns=no
mpath="/usr/lib/x86_64-linux-gnu/kamailio/modules/"
loadmodule "tls.so"
loadmodule "ctl.so"
loadmodule "kex.so"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "textops.so"
loadmodule "maxfwd.so"
loadmodule "siputils.so"
${dbUrl ? 'loadmodule "db_postgres.so"\n' : ''}loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "auth.so"
modparam("tls", "config", "${join(dir, 'tls.cfg')}")
modparam("tls", "con_ct_wq_max", 4194304)
modparam("tls", "ct_wq_max", 104857600)
modparam("ctl", "binrpc", "unix:${join(dir, 'kamailio_ctl')}")
${dbUrl ? `modparam("usrloc", "db_url", "${dbUrl}")\nmodparam("usrloc", "db_mode", 1)` : 'modparam("usrloc", "db_mode", 0)'}
modparam("registrar", "max_contacts", 10)
modparam("auth", "nonce_count", 1)
modparam("auth", "qop", "auth")

request_route {
  if (!mf_process_maxfwd_header("10")) { sl_send_reply("483", "Too Many Hops"); exit; }
  if (has_totag()) {
    if (loose_route()) { t_relay(); exit; }
    if (is_method("ACK")) { if (t_check_trans()) { t_relay(); } exit; }
    sl_send_reply("404", "Not Here");
    exit;
  }
  if (is_method("CANCEL")) { if (t_check_trans()) { t_relay(); } exit; }
  if (!is_method("ACK")) { t_check_trans(); }
  $var(pw) = "pw-" + $au;
  if (is_method("REGISTER")) {
    if (!pv_www_authenticate("example.test", "$var(pw)", "0")) {
      www_challenge("example.test", "1");
      exit;
    }
    consume_credentials();
    if (!save("location")) { sl_reply_error(); }
    exit;
  }
  if (is_method("INVITE")) {
    if (!pv_proxy_authenticate("example.test", "$var(pw)", "0")) {
      proxy_challenge("example.test", "1");
      exit;
    }
    consume_credentials();
    record_route();
  }
  if (!lookup("location")) { sl_send_reply("404", "Not Found"); exit; }
  if (!t_relay()) { sl_reply_error(); }
  exit;
}
`;
}

/** Self-signed P-256 certificate for CN=example.test in `dir` (openssl); returns { cert, key } paths. */
function makeCertificate(dir) {
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
    '-subj', '/CN=example.test', '-keyout', key, '-out', cert,
  ], { stdio: 'ignore' });
  return { cert, key };
}

/**
 * Starts Kamailio on `ports` ({ udp, tcp, tls }) and waits for it to answer on UDP; returns the process.
 * `tcpChildren`: TCP/TLS worker processes (default KAMAILIO_CHILDREN). `usrloc`: 'memory' (default) or
 * 'postgres': a PostgreSQL cluster is started first (bench/postgres.mjs) with database `kamailio` and
 * Debian's version and usrloc tables, and usrloc writes through to it; the returned process then has
 * `pg` ({ pid of the postmaster, port, cmdline, psql(sql) }, see startPostgres) and `cpuRoots`, the PIDs
 * whose process trees are the server's CPU (Kamailio's and the postmaster's). Throws an error naming what
 * failed to start (PostgreSQL's step, or Kamailio with its last output); whatever was started is stopped.
 */
export async function startKamailio(ports, tcpChildren = KAMAILIO_CHILDREN, usrloc = 'memory') {
  if (!USRLOC_MODES.includes(usrloc)) throw new Error(`usrloc mode ${usrloc}: expected ${USRLOC_MODES.join(' or ')}`);
  const dir = tempDir('kamailio');
  const cfg = join(dir, 'kamailio.cfg');
  const pidfile = join(dir, 'kamailio.pid');
  const { cert, key } = makeCertificate(dir);
  writeFileSync(
    join(dir, 'tls.cfg'),
    `[server:default]\nmethod = TLSv1.2+\nverify_certificate = no\nrequire_certificate = no\ncertificate = ${cert}\nprivate_key = ${key}\n`,
  );
  const pg = usrloc === 'postgres' ? await startPostgres({ db: 'kamailio', schema: PG_SCHEMA }) : undefined;
  const text = kamailioCfg(ports, dir, tcpChildren, pg?.url());
  writeFileSync(cfg, text);
  const args = ['-f', cfg, '-DD', '-E', '-Y', dir, '-P', pidfile, '-m', String(SHM_MB), '-M', '16'];
  const proc = startProcess('kamailio', args);
  proc.cmdline = `kamailio ${args.join(' ').replaceAll(dir, '$KDIR')}`;
  proc.pidfile = pidfile;
  proc.dir = dir;
  proc.cfgText = text.replaceAll(dir, '$KDIR').replace(/postgres:\/\/([^@]*)@127\.0\.0\.1:\d+/, 'postgres://$1@127.0.0.1:$PGPORT');
  proc.ctl = `unix:${join(dir, 'kamailio_ctl')}`;
  proc.pg = pg;
  proc.cpuRoots = pg ? [proc.pid, pg.pid] : [proc.pid];
  try {
    await waitFor(async () => {
      if (proc.child.exitCode !== null) throw new Error(`kamailio exited: ${proc.stderr.slice(-2000)}`);
      return udpProbe('127.0.0.1', ports.udp, sipOptions('127.0.0.1', ports.udp));
    }, 15_000, 'kamailio');
  } catch (e) {
    await stopKamailio(proc);
    throw e;
  }
  return proc;
}

/** Stops the Kamailio we started (its main process, then the daemon PID it wrote if different), then its PostgreSQL cluster if any. */
export async function stopKamailio(proc) {
  const pid = readPidFile(proc.pidfile);
  await stopProcess(proc);
  if (pid && pid !== proc.pid) await stopPid(pid);
  await stopPostgres(proc.pg);
}

/** Kamailio's shared memory in use (core.shmmem real_used), bytes; NaN if kamcmd cannot tell. */
export async function kamailioShmUsed(proc) {
  const r = await runProcess('kamcmd', ['-s', proc.ctl, 'core.shmmem'], { timeoutMs: 10_000 });
  const m = /real_used:\s*(\d+)/.exec(r.stdout);
  return m ? Number(m[1]) : NaN;
}
