// SIPp's digest REGISTER scenario (bench/sip-scenarios.mjs) at one fixed rate for about 5 s over one UDP socket:
// successful registrations per second, failures, mean REGISTER-to-200 time, server CPU. For comparisons at
// chosen rates (bench/sip-workers.mjs); bench/sip.mjs searches for the highest passing rate instead.
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { runProcess, cpuSeconds, udpRcvbufErrors } from './lib.mjs';
import { lastStat, hms, epoch } from './sip.mjs';

const SIPP_PORT = 28180;
/** Registrations per rate: about this many seconds of load. */
const SECONDS_PER_RATE = 5;
export const USERS = 20;

/** Users user0..userN-1 with password pw-userK; Kamailio derives the same password from the username. */
export const users = Array.from({ length: USERS }, (_, i) => [`user${i}`, `pw-user${i}`]);

/**
 * One SIPp run at `rate` REGISTER/s against 127.0.0.1:`port` with `dir`/register.xml and `dir`/users.csv;
 * server CPU from the process tree of `serverPid`.
 */
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
