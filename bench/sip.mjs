// SIP registrar benchmark: SIPp sends REGISTER, answers the 401 digest
// challenge and expects 200, at fixed call rates, against rtcedge and against
// Kamailio. Reports successful registrations per second, failures, mean
// REGISTER-to-200 time and server CPU seconds.
import { writeFileSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  startProcess, runProcess, stopProcess, stopPid, tempDir, cpuSeconds, sleep, waitFor, udpProbe, sipOptions, readPidFile, udpRcvbufErrors,
} from './lib.mjs';
import { startRtcedge } from './rtcedge.mjs';
import { debVersion } from './turn.mjs';

const RTCEDGE_SIP = 28160;
const KAMAILIO_SIP = 28170;
const SIPP_PORT = 28180;

export const SIP_RATES = [200, 500, 1000];
/** Registrations per rate: about this many seconds of load. */
const SECONDS_PER_RATE = 5;
export const USERS = 20;

/** Users user0..userN-1 with password pw-userK; Kamailio derives the same password from the username. */
export const users = Array.from({ length: USERS }, (_, i) => [`user${i}`, `pw-user${i}`]);

/**
 * REGISTER, 401 with digest challenge, REGISTER with credentials, 200.
 * The Request-URI is sip:<server address>, so the digest uri SIPp fills in
 * ("sip:" + remote host) names the same URI.
 */
export const SCENARIO = `<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="register with digest">
  <send retrans="500" start_rtd="1">
    <![CDATA[
REGISTER sip:[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];rport;branch=[branch]
Max-Forwards: 70
From: <sip:[field0]@[remote_ip]>;tag=[pid]SIPpTag[call_number]
To: <sip:[field0]@[remote_ip]>
Call-ID: [call_id]
CSeq: 1 REGISTER
Contact: <sip:[field0]@[local_ip]:[local_port]>
Expires: 3600
User-Agent: rtcedge-bench
Content-Length: 0

    ]]>
  </send>
  <recv response="401" auth="true"/>
  <send retrans="500">
    <![CDATA[
REGISTER sip:[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];rport;branch=[branch]
Max-Forwards: 70
From: <sip:[field0]@[remote_ip]>;tag=[pid]SIPpTag[call_number]
To: <sip:[field0]@[remote_ip]>
Call-ID: [call_id]
CSeq: 2 REGISTER
Contact: <sip:[field0]@[local_ip]:[local_port]>
Expires: 3600
[authentication username="[field0]" password="[field1]"]
User-Agent: rtcedge-bench
Content-Length: 0

    ]]>
  </send>
  <recv response="200" rtd="1"/>
</scenario>
`;

/**
 * Kamailio registrar: usrloc in memory (db_mode 0), digest with qop=auth
 * checked by pv_www_authenticate against a password derived from the
 * username ("pw-" + user), so no database is needed.
 */
function kamailioCfg(port) {
  return `#!KAMAILIO
debug=1
log_stderror=yes
fork=yes
children=4
listen=udp:127.0.0.1:${port}
disable_tcp=yes
auto_aliases=no
alias="example.test"
dns=no
rev_dns=no
mpath="/usr/lib/x86_64-linux-gnu/kamailio/modules/"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "textops.so"
loadmodule "maxfwd.so"
loadmodule "siputils.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "auth.so"
modparam("usrloc", "db_mode", 0)
modparam("registrar", "max_contacts", 10)

request_route {
  if (!mf_process_maxfwd_header("10")) { sl_send_reply("483", "Too Many Hops"); exit; }
  if (is_method("REGISTER")) {
    $var(pw) = "pw-" + $au;
    if (!pv_www_authenticate("example.test", "$var(pw)", "0")) {
      www_challenge("example.test", "1");
      exit;
    }
    consume_credentials();
    if (!save("location")) { sl_reply_error(); }
    exit;
  }
  sl_send_reply("404", "Not Found");
  exit;
}
`;
}

async function startKamailio() {
  const dir = tempDir('kamailio');
  const cfg = join(dir, 'kamailio.cfg');
  const pidfile = join(dir, 'kamailio.pid');
  writeFileSync(cfg, kamailioCfg(KAMAILIO_SIP));
  const args = ['-f', cfg, '-DD', '-E', '-Y', dir, '-P', pidfile, '-m', '64', '-M', '8'];
  const proc = startProcess('kamailio', args);
  proc.cmdline = `kamailio ${args.join(' ')}`;
  proc.pidfile = pidfile;
  proc.cfgText = kamailioCfg(KAMAILIO_SIP);
  try {
    await waitFor(async () => {
      if (proc.child.exitCode !== null) throw new Error(`kamailio exited: ${proc.stderr.slice(-2000)}`);
      return udpProbe('127.0.0.1', KAMAILIO_SIP, sipOptions('127.0.0.1', KAMAILIO_SIP));
    }, 15_000, 'kamailio');
  } catch (e) {
    await stopProcess(proc);
    throw e;
  }
  return proc;
}

/** Parse SIPp's -trace_stat CSV (semicolon separated); returns the last row keyed by column. */
export function lastStat(file) {
  if (!existsSync(file)) return null;
  const lines = readFileSync(file, 'utf8').trim().split('\n');
  if (lines.length < 2) return null;
  const head = lines[0].split(';');
  const row = lines[lines.length - 1].split(';');
  return Object.fromEntries(head.map((h, i) => [h, row[i]]));
}

/** SIPp durations "HH:MM:SS:uuuuuu" -> seconds */
export function hms(v) {
  if (!v) return NaN;
  const p = v.split(':').map(Number);
  return p[0] * 3600 + p[1] * 60 + p[2] + (p[3] ?? 0) / 1e6;
}

/** SIPp time stamps "date\ttime\tepoch" -> epoch seconds */
export function epoch(v) {
  return v ? Number(v.split('\t')[2]) : NaN;
}

export async function runRate(serverPid, port, rate, dir) {
  const calls = rate * SECONDS_PER_RATE;
  const stf = join(dir, `stat-${port}-${rate}.csv`);
  const errf = join(dir, `errors-${port}-${rate}.log`);
  const args = [
    '127.0.0.1:' + port,
    '-sf', join(dir, 'register.xml'),
    '-inf', join(dir, 'users.csv'),
    '-i', '127.0.0.1', '-p', String(SIPP_PORT), '-t', 'u1',
    '-r', String(rate), '-rp', '1000', '-l', String(Math.max(rate * 2, 100)),
    '-m', String(calls),
    '-timeout', String(SECONDS_PER_RATE * 4 + 10), '-timeout_error',
    '-recv_timeout', '4000',
    '-nostdin', '-nd',
    '-trace_stat', '-stf', stf, '-fd', '1',
    '-trace_err', '-error_file', errf,
  ];
  const drops0 = udpRcvbufErrors();
  const cpu0 = cpuSeconds(serverPid);
  const r = await runProcess('sipp', args, { timeoutMs: (SECONDS_PER_RATE * 4 + 20) * 1000 });
  const cpu1 = cpuSeconds(serverPid);
  const drops = udpRcvbufErrors() - drops0;
  const st = lastStat(stf);
  // A REGISTER with credentials answered by a fresh 401 (credentials refused).
  const errText = existsSync(errf) ? readFileSync(errf, 'utf8') : '';
  const second401 = (errText.match(/while expecting '200'[^\n]*received 'SIP\/2\.0 401/g) ?? []).length;
  const ok = st ? Number(st['SuccessfulCall(C)']) : NaN;
  const failed = st ? Number(st['FailedCall(C)']) : NaN;
  const elapsed = st ? epoch(st['CurrentTime']) - epoch(st['StartTime']) : r.ms / 1000;
  // Call length = first REGISTER sent to 200 received (SIPp's clock has 1 ms resolution).
  const rt = st ? hms(st['CallLength(C)']) * 1000 : NaN;
  const retrans = st ? Number(st['Retransmissions(C)']) : NaN;
  const recvTimeouts = st ? Number(st['FailedTimeoutOnRecv(C)']) : NaN;
  return {
    command: 'sipp ' + args.join(' ').replaceAll(dir, '$DIR'),
    exit: r.code,
    rate,
    calls,
    ok,
    failed,
    elapsedS: elapsed,
    okPerS: ok / elapsed,
    rtMs: rt,
    retrans,
    recvTimeouts,
    drops,
    second401,
    cpuS: cpu1 - cpu0,
    cpuPer1000: ((cpu1 - cpu0) / ok) * 1000,
    sippTail: (r.stderr || '').trim().split('\n').slice(-3).join(' | '),
  };
}

export async function runSipBench(log = console.log) {
  const dir = tempDir('sipp');
  writeFileSync(join(dir, 'register.xml'), SCENARIO);
  writeFileSync(join(dir, 'users.csv'), 'SEQUENTIAL\n' + users.map(([u, p]) => `${u};${p};`).join('\n') + '\n');
  const rows = [];
  const notes = [];
  const commands = [];
  const servers = [
    {
      name: 'rtcedge',
      start: async () => {
        const p = await startRtcedge({ sipPort: RTCEDGE_SIP, users });
        commands.push(`rtcedge: ${p.cmdline}  (sip.listen udp 127.0.0.1:${RTCEDGE_SIP}, turn disabled, log.level warn, ${USERS} users added with rtcedge user add)`);
        return p;
      },
      stop: (p) => stopProcess(p),
      port: RTCEDGE_SIP,
    },
    {
      name: `kamailio ${debVersion('kamailio')}`,
      start: async () => {
        const p = await startKamailio();
        commands.push(`kamailio: ${p.cmdline.replaceAll(/\/tmp\/[^/ ]+/g, '$KDIR')}`);
        return p;
      },
      stop: async (p) => {
        const pid = readPidFile(p.pidfile);
        await stopProcess(p);
        if (pid && pid !== p.pid) await stopPid(pid);
      },
      port: KAMAILIO_SIP,
    },
  ];
  let kamCfg = '';
  for (const s of servers) {
    let p;
    try {
      p = await s.start();
      if (p.cfgText) kamCfg = p.cfgText;
      for (const rate of SIP_RATES) {
        const r = await runRate(p.pid, s.port, rate, dir);
        commands.push(r.command);
        rows.push({ server: s.name, ...r });
        log(fmtSipRow(rows[rows.length - 1]));
        await sleep(500);
      }
    } catch (e) {
      notes.push(`${s.name} run failed: ${e.message}`);
      log(`${s.name} run failed: ${e.message}`);
    } finally {
      if (p) await s.stop(p);
    }
  }
  return { rows, notes, commands: [...new Set(commands)], scenario: SCENARIO, kamailioCfg: kamCfg, users: USERS };
}

const f = (x, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');

export function fmtSipRow(r) {
  return (
    `${r.server} rate ${r.rate}/s x ${r.calls}: ${r.ok} ok, ${r.failed} failed in ${f(r.elapsedS, 2)} s = ` +
    `${f(r.okPerS)} ok/s, mean REGISTER->200 ${f(r.rtMs, 2)} ms, ${r.retrans} retransmissions, ${r.recvTimeouts} receive timeouts, ${r.second401} credentials answered by a new 401, ${r.drops} UDP receive-buffer drops (host-wide), server CPU ${f(r.cpuS, 2)} s ` +
    `(${f(r.cpuPer1000, 3)} s per 1000 registrations)` + (r.exit !== 0 ? ` [sipp exit ${r.exit}]` : '')
  );
}

export function sipTable(rows) {
  const head =
    '| server | target rate /s | registrations (-m) | successful | failed | elapsed s | successful /s | mean REGISTER→200 ms | SIPp retransmissions | receive timeouts | credentials answered by 401 | server CPU s | CPU s per 1000 registrations | sipp exit |\n' +
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |';
  const lines = rows.map(
    (r) =>
      `| ${r.server} | ${r.rate} | ${r.calls} | ${r.ok} | ${r.failed} | ${f(r.elapsedS, 2)} | ${f(r.okPerS)} | ${f(r.rtMs, 2)} | ${r.retrans} | ${r.recvTimeouts} | ${r.second401} | ${f(r.cpuS, 2)} | ${f(r.cpuPer1000, 3)} | ${r.exit} |`,
  );
  return [head, ...lines].join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const res = await runSipBench();
  console.log(sipTable(res.rows));
  for (const n of res.notes) console.log('note:', n);
}
