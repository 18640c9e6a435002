// One calls/UDP step of bench/sip.mjs with SIPp's per-message counters on both sides, the datagrams each
// UDP socket of the host dropped for a full receive buffer, and the server's summary lines: which requests
// were retransmitted, and whether their answers were lost or late.
//
//   node bench/call-trace.mjs [--workers 2] [--rate 600] [--seconds 8] [--cli /path/to/dist/cli/main.js]
//        [--summary 1] [--node-args '--trace-gc'] [--messages yes] [--log-level debug] [--out DIR]
//
// rtcedge (UDP on 127.0.0.1:28370, sip.workers --workers, per-user call limits off as in bench/sip.mjs), the
// callee a SIPp UAS on 28372 registered behind it, the caller SIPp on 28180 running CALL_UAC_SCENARIO of
// bench/sip-scenarios.mjs at --rate for --seconds with bench/sip.mjs's arguments, both SIPps with a 4 MiB
// receive buffer (-buff_size) and -trace_screen/-trace_err (--messages yes adds -trace_msg, which slows SIPp
// down enough to fail steps it would pass). Prints, per socket, the kernel's drop count (/proc/net/udp, read
// before the sockets close: run it in its own network namespace so that only this run's sockets are there),
// and the caller's screen (messages, retransmissions, timeouts, unexpected messages per scenario line).
// --summary N logs the server's summary line every N s at info (event-loop lag and delay, GC pauses,
// hand-offs per worker) into DIR/server-stdout.txt; --log-level debug logs every message sent and received
// with the worker that handled it (slows the server). Also prints how many BYEs reached the UAS before the
// ACK of their 200 (SIPp's UAS ignores those, and the caller retransmits the BYE 500 ms later).
import { readFileSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { startRtcedge } from './rtcedge.mjs';
import { registerContact } from './sip.mjs';
import { CALL_UAC_SCENARIO, CALL_UAS_SCENARIO } from './sip-scenarios.mjs';
import { startProcess, stopProcess, runProcess, sleep, tempDir, arg, udpRcvbufErrors } from './lib.mjs';

const SIP_PORT = 28370;
const UAS_PORT = 28372;
const UAC_PORT = 28180;
const WORKERS = arg('workers', '2');
const RATE = Number(arg('rate', 600));
const SECONDS = Number(arg('seconds', 8));
const CLI = arg('cli', undefined);
const SUMMARY = arg('summary', undefined);
const MESSAGES = arg('messages', 'no') === 'yes';
const NODE_ARGS = (arg('node-args', '') ?? '').split(' ').filter(Boolean);
const dir = arg('out', undefined) ?? tempDir('call-trace');
mkdirSync(dir, { recursive: true });

const users = Array.from({ length: 1000 }, (_, i) => [`user${i}`, `pw-user${i}`]);
writeFileSync(join(dir, 'call.xml'), CALL_UAC_SCENARIO);
writeFileSync(join(dir, 'uas.xml'), CALL_UAS_SCENARIO);
writeFileSync(join(dir, 'users.csv'), 'SEQUENTIAL\n' + users.map(([u, p]) => `${u};${p};`).join('\n') + '\n');

/** Drops per bound UDP socket of this network namespace, keyed by port (/proc/net/udp: local address, last column drops). */
function socketDrops() {
  const out = {};
  for (const line of readFileSync('/proc/net/udp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 13) continue;
    out[parseInt(f[1].split(':')[1], 16)] = Number(f.at(-1));
  }
  return out;
}

/** SIPp's trace arguments for one side, files under `dir` named by `side`. */
const traces = (side) => [
  '-buff_size', '4194304',
  '-trace_screen', '-screen_file', join(dir, `${side}-screen.txt`),
  '-trace_err', '-error_file', join(dir, `${side}-errors.txt`),
  ...(MESSAGES ? ['-trace_msg', '-message_file', join(dir, `${side}-messages.txt`)] : []),
];

const server = await startRtcedge({
  sipPort: SIP_PORT,
  users: [...users, ['callee', 'pw-callee']],
  importUsers: true,
  cli: CLI,
  nodeArgs: NODE_ARGS,
  logLevel: arg('log-level', undefined) ?? (SUMMARY ? 'info' : undefined),
  summaryInterval: SUMMARY ? Number(SUMMARY) : undefined,
  sipLines: [`  workers: ${WORKERS}`, '  security: { calls: { max_concurrent_per_user: 0, max_attempts_per_minute: 0 } }'],
});
try {
  await registerContact(SIP_PORT, 'callee', `<sip:callee@127.0.0.1:${UAS_PORT};transport=udp>`);
  const uas = startProcess('sipp', ['-sf', join(dir, 'uas.xml'), '-i', '127.0.0.1', '-p', String(UAS_PORT), '-t', 'u1', '-s', 'callee', '-nostdin', '-nd', ...traces('uas')]);
  await sleep(500);
  const drops0 = socketDrops();
  const rcvbuf0 = udpRcvbufErrors();
  const r = await runProcess('sipp', [
    `127.0.0.1:${SIP_PORT}`, '-sf', join(dir, 'call.xml'), '-inf', join(dir, 'users.csv'), '-s', 'callee',
    '-i', '127.0.0.1', '-p', String(UAC_PORT), '-t', 'u1',
    '-r', String(RATE), '-rp', '1000', '-l', String(Math.min(Math.max(RATE * 2, 200), 9000)), '-m', String(RATE * SECONDS),
    '-timeout', String(SECONDS * 3 + 10), '-timeout_error', '-recv_timeout', '4000', '-default_behaviors', 'all,-bye',
    '-nostdin', '-nd', '-trace_stat', '-stf', join(dir, 'stat.csv'), '-fd', '1', ...traces('uac'),
  ], { timeoutMs: (SECONDS * 3 + 40) * 1000 });
  // The caller's socket is closed by now: its drops are the host's total less the others'.
  const drops = socketDrops();
  const total = udpRcvbufErrors() - rcvbuf0;
  const named = { [SIP_PORT]: 'server', [UAS_PORT]: 'UAS' };
  const seen = Object.entries(named).map(([port, name]) => [name, (drops[port] ?? 0) - (drops0[port] ?? 0)]);
  console.log(`${RATE * SECONDS} calls at ${RATE}/s, sip.workers ${WORKERS}, SIPp exit ${r.code}`);
  console.log(`datagrams dropped for a full receive buffer: ${seen.map(([n, d]) => `${n} ${d}`).join(', ')}, caller ${total - seen.reduce((a, [, d]) => a + d, 0)} (host total ${total})`);
  await sleep(1500);
  await stopProcess(uas);
  // SIPp's UAS ignores a BYE that comes before the ACK of its 200 ("Continuing call on an unexpected BYE"):
  // the caller retransmits that BYE after 500 ms.
  const uasErrors = existsSync(join(dir, 'uas-errors.txt')) ? readFileSync(join(dir, 'uas-errors.txt'), 'utf8') : '';
  console.log(`BYEs that reached the UAS before their ACK: ${uasErrors.split('unexpected BYE').length - 1}`);
  const screen = readFileSync(join(dir, 'uac-screen.txt'), 'utf8').split('\n');
  const at = screen.findIndex((l) => /Messages\s+Retrans/.test(l));
  console.log(screen.slice(at, at + 13).join('\n'));
} finally {
  await stopProcess(server);
  writeFileSync(join(dir, 'server-stdout.txt'), server.stdout ?? '');
  writeFileSync(join(dir, 'server-stderr.txt'), server.stderr ?? '');
}
console.log(`files in ${dir}`);
