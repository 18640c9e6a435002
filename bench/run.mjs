// Entry point of `npm run bench`: runs the TURN and SIP benchmarks and writes
// bench/RESULTS.md (also printed to stdout).
import { writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { cpus } from 'node:os';
import { runTurnBench, turnTable, debVersion } from './turn.mjs';
import { runDtlsBench, dtlsSection } from './turn-dtls.mjs';
import { runSipBench, sipTable } from './sip.mjs';
import { ROOT } from './rtcedge.mjs';
import { CLK_TCK } from './lib.mjs';

function cpuModel() {
  const m = readFileSync('/proc/cpuinfo', 'utf8').match(/^model name\s*:\s*(.*)$/m);
  return m ? m[1] : cpus()[0]?.model ?? '?';
}

const nproc = execFileSync('nproc').toString().trim();
let commit = '?';
try {
  commit = execFileSync('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD']).toString().trim();
} catch {}

const started = new Date();
console.log(`rtcedge bench ${started.toISOString()} on ${nproc} × ${cpuModel()}, node ${process.version}`);
console.log('\n== TURN ==');
const turn = await runTurnBench();
console.log('\n== TURN over DTLS ==');
const dtls = await runDtlsBench();
console.log('\n== SIP ==');
const sip = await runSipBench();

const md = `# rtcedge benchmark results

Produced by \`npm run bench\` (bench/run.mjs). Everything runs on 127.0.0.1 on one machine:
load generators, servers and peers share the CPUs, so the figures compare servers under
the same load rather than measure absolute capacity.

- date: ${started.toISOString()}
- commit: ${commit} (working tree of others may differ)
- machine: ${nproc} CPUs (nproc), ${cpuModel()}
- node: ${process.version}; coturn ${debVersion('coturn')}; kamailio ${debVersion('kamailio')}; SIPp (sip-tester) ${debVersion('sip-tester')}
- CPU seconds: utime+stime of the server process and its descendants from /proc/<pid>/stat, divided by CLK_TCK (${CLK_TCK}); sampled before and after each run

## TURN relay (turnutils_uclient, UDP, ChannelData, no RTCP)

Each message goes client → server → turnutils_peer (echo) → server → client, so
"relayed packets" = 2 × messages received back. "transmit s" runs from uclient's
"Total connect time" line to its "Total transmit time" line (timestamps taken as the lines
arrive), so allocation set-up is not counted. When packets are lost, uclient waits about
10 s for the missing echoes before it reports, which inflates "transmit s" and lowers
"relayed pkt/s": with loss, read the loss and the packets per CPU-second, not the rate.
turnutils_uclient itself paces the load (about 2 700 messages/s in total at \`-z 1\` here),
so the rate is mostly the generator's; server CPU per packet is the comparable figure.

${turnTable(turn.rows)}

Commands:

\`\`\`
${turn.commands.join('\n')}
\`\`\`
${turn.notes.length ? '\nNotes:\n\n' + turn.notes.map((n) => '- ' + n.replaceAll('\n', ' ')).join('\n') + '\n' : ''}
${dtlsSection(dtls)}
## SIP registrar (SIPp REGISTER with digest)

Scenario (written by bench/sip.mjs): REGISTER → 401 (digest challenge) → REGISTER with
\`[authentication username="[field0]" password="[field1]"]\` → 200. ${sip.users} users
(user0…user${sip.users - 1}, password pw-userN) injected SEQUENTIAL from a CSV; each user keeps one
Contact, so every registration refreshes a binding. One SIPp UDP socket. Each rate runs
for ${'~5'} s (\`-m\` = 5 × rate). "elapsed" is SIPp's StartTime→CurrentTime and includes the
4 s receive timeout of calls that never got their 200. "mean REGISTER→200" is SIPp's
mean call length (1 ms clock). "credentials answered by 401" counts REGISTERs with
credentials that got a new challenge instead of 200 (from SIPp's error trace).

Kamailio runs with usrloc in memory (db_mode=0) and **digest with qop=auth checked by
\`pv_www_authenticate\`** against a password derived in the script from the username
(\`"pw-" + $au\`), so it needs no database; rtcedge looks the users' HA1 up in its store
(SQLite, users added with \`rtcedge user add\`) and persists bindings to SQLite. Both
challenge every first REGISTER and verify MD5 digests, so the work per registration is
comparable; Kamailio runs 4 UDP worker processes (children=4), rtcedge one Node.js process.

${sipTable(sip.rows)}

${sip.rows.some((r) => r.server === 'rtcedge' && r.second401 > 0) ? `In this run rtcedge answered some REGISTERs that carried valid credentials with a
new 401. SIPp's error trace shows identical nonces handed to different REGISTERs
(even different users) challenged within the same instant; each client then answers
with nc=00000001, and the second use of the nonce is refused as a replay. SIPp does not
answer a second challenge in this scenario, so those registrations time out; the count
also includes retransmissions of such REGISTERs. This, not CPU (about 0.2–0.4 of one
core was used), limits rtcedge's successful rate here.

` : ''}Commands:

\`\`\`
${sip.commands.join('\n')}
\`\`\`
${sip.notes.length ? '\nNotes:\n\n' + sip.notes.map((n) => '- ' + n.replaceAll('\n', ' ')).join('\n') + '\n' : ''}
Kamailio configuration:

\`\`\`
${sip.kamailioCfg.trim()}
\`\`\`
`;

// Sections written by other bench scripts (bench/auth-timing.mjs; bench/memory.mjs: memory, pauses,
// overload; bench/fuzz.mjs) are kept as they are: from the first of these headings to the end of the file.
const KEPT = ['\n<!-- auth-timing:begin -->', '\n## 403 timing', '\n## Memory, pauses and overload'];
const previous = readFileSync(join(ROOT, 'bench', 'RESULTS.md'), 'utf8');
const keptAt = Math.min(...KEPT.map((h) => previous.indexOf(h)).filter((i) => i >= 0));
const kept = Number.isFinite(keptAt) ? previous.slice(keptAt) : '';
writeFileSync(join(ROOT, 'bench', 'RESULTS.md'), md + kept);
console.log('\n' + turnTable(turn.rows) + '\n\n' + sipTable(sip.rows));
console.log('\nwrote bench/RESULTS.md');
