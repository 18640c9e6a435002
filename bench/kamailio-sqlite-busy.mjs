// Why the Kamailio of the SIP benchmark writes its bindings through to PostgreSQL and not to SQLite:
// Debian 12's db_sqlite (Kamailio 5.6.3) sets no busy timeout (db_set_busy_timeout came in 2024), so with
// usrloc db_mode 1 and several worker processes writing one SQLite file (WAL), a write that meets another
// one's lock fails at once ("database is locked") and save() answers 500. This runs SIPp's REGISTER scenario
// of bench/sip.mjs for 5 s at RATE/s (UDP, children=4, TLS off) against that configuration and counts the
// failures, Kamailio's ERROR lines by kind, and the rows in location.
//
//   node bench/kamailio-sqlite-busy.mjs [RATE=1000]      (inside a network namespace, like every bench)
import { writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { kamailioCfg } from './kamailio.mjs';
import { startProcess, stopProcess, tempDir, waitFor, udpProbe, sipOptions, runProcess } from './lib.mjs';
import { REGISTER_SCENARIO } from './sip-scenarios.mjs';
const require = createRequire(import.meta.url);
const Database = require('better-sqlite3');
const rate = Number(process.argv[2] ?? 1000);
const dir = tempDir('kam-sqlite');
const dbFile = join(dir, 'kamailio.db');
const db = new Database(dbFile);
db.pragma('journal_mode = WAL');
for (const f of ['standard-create.sql', 'usrloc-create.sql']) db.exec(readFileSync(join('/usr/share/kamailio/db_sqlite', f), 'utf8'));
db.close();
const ports = { udp: 28176, tcp: 28176, tls: 28177 };
writeFileSync(join(dir, 'tls.cfg'), '');
let cfg = kamailioCfg(ports, dir, 4, `sqlite://${dbFile}`).replace('db_postgres.so', 'db_sqlite.so').replace(/^listen=tls.*$/m, '').replace(/^enable_tls=yes$/m, 'enable_tls=no').replace(/^loadmodule "tls.so"$/m, '').replace(/^modparam\("tls".*$/gm, '');
writeFileSync(join(dir, 'k.cfg'), cfg);
const k = startProcess('kamailio', ['-f', join(dir, 'k.cfg'), '-DD', '-E', '-Y', dir, '-m', '256', '-M', '16']);
try {
  await waitFor(async () => { if (k.child.exitCode !== null) throw new Error(k.stderr.slice(-1500)); return udpProbe('127.0.0.1', ports.udp, sipOptions('127.0.0.1', ports.udp)); }, 15000, 'kamailio');
  writeFileSync(join(dir, 'register.xml'), REGISTER_SCENARIO);
  writeFileSync(join(dir, 'users.csv'), 'SEQUENTIAL\n' + Array.from({ length: 1000 }, (_, i) => `user${i};pw-user${i};`).join('\n') + '\n');
  const r = await runProcess('sipp', [`127.0.0.1:${ports.udp}`, '-sf', join(dir, 'register.xml'), '-inf', join(dir, 'users.csv'), '-i', '127.0.0.1', '-p', '28186', '-t', 'u1', '-r', String(rate), '-rp', '1000', '-m', String(rate * 5), '-l', '4000', '-timeout', '30', '-timeout_error', '-recv_timeout', '4000', '-default_behaviors', 'all,-bye', '-nostdin', '-nd', '-trace_stat', '-stf', join(dir, 'stat.csv'), '-fd', '1'], { timeoutMs: 60000 });
  const lines = readFileSync(join(dir, 'stat.csv'), 'utf8').trim().split('\n');
  const head = lines[0].split(';'); const row = lines.at(-1).split(';');
  const st = Object.fromEntries(head.map((h, i) => [h, row[i]]));
  console.log(`rate ${rate}/s × 5 s: ok ${st['SuccessfulCall(C)']} failed ${st['FailedCall(C)']} unexpected ${st['FailedUnexpectedMessage(C)']} retrans ${st['Retransmissions(C)']}`);
  const errs = k.stderr.split('\n').filter((l) => /ERROR/.test(l));
  const kinds = {};
  for (const l of errs) { const m = l.replace(/^.*?ERROR: /, '').replace(/\(uloc-[^)]*\)/g, '(ruid)').replace(/\d+/g, 'N').slice(0, 160); kinds[m] = (kinds[m] ?? 0) + 1; }
  console.log(`kamailio ERROR lines: ${errs.length}`, kinds);
  const d2 = new Database(dbFile, { readonly: true });
  console.log('rows in location', d2.prepare('select count(*) c from location').get().c);
  d2.close();
} finally {
  await stopProcess(k);
}
