// Entry point of `npm run bench`: runs the TURN and SIP benchmarks and writes
// bench/RESULTS.md (also printed to stdout).
//
//   node bench/run.mjs            every section (TURN, TURN over DTLS, SIP)
//   node bench/run.mjs sip        only the SIP section (bench/sip.mjs; env knobs at its head)
//   node bench/run.mjs turn       only the TURN sections
//
// Each generated section sits between <!-- NAME:begin --> and <!-- NAME:end --> in RESULTS.md and is
// replaced in place; everything outside the markers (hand-written sections, the ones other bench scripts
// write) is kept as it is.
import { writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { cpus } from 'node:os';
import { runTurnBench, turnTable, debVersion } from './turn.mjs';
import { runDtlsBench, dtlsSection } from './turn-dtls.mjs';
import { runSipBench, sipSection, summaryTable } from './sip.mjs';
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

const SECTIONS = ['turn', 'sip'];
const wanted = process.argv.slice(2);
for (const w of wanted) {
  if (!SECTIONS.includes(w)) {
    console.error(`unknown section "${w}": expected ${SECTIONS.join(', ')} (none: all)`);
    process.exit(2);
  }
}
const run = (name) => wanted.length === 0 || wanted.includes(name);

const started = new Date();
console.log(`rtcedge bench ${started.toISOString()} on ${nproc} × ${cpuModel()}, node ${process.version}`);
let turn;
let dtls;
let sip;
if (run('turn')) {
  console.log('\n== TURN ==');
  turn = await runTurnBench();
  console.log('\n== TURN over DTLS ==');
  dtls = await runDtlsBench();
}
if (run('sip')) {
  console.log('\n== SIP ==');
  sip = await runSipBench();
}

const header = `# rtcedge benchmark results

Produced by \`npm run bench\` (bench/run.mjs). Everything runs on 127.0.0.1 on one machine:
load generators, servers and peers share the CPUs, so the figures compare servers under
the same load rather than measure absolute capacity.

- last run: ${started.toISOString()} (${wanted.length ? 'sections: ' + wanted.join(', ') : 'all sections'}); each section gives its own date and commit
- commit: ${commit} (working tree of others may differ)
- machine: ${nproc} CPUs (nproc), ${cpuModel()}
- node: ${process.version}; coturn ${debVersion('coturn')}; kamailio ${debVersion('kamailio')}; SIPp (sip-tester) ${debVersion('sip-tester')}
- CPU seconds: utime+stime of the server process and its descendants from /proc/<pid>/stat, divided by CLK_TCK (${CLK_TCK}); sampled before and after each run
`;

const turnMd = () => `## TURN relay (turnutils_uclient, UDP, ChannelData, no RTCP)

Each message goes client → server → turnutils_peer (echo) → server → client, so
"relayed packets" = 2 × messages received back. "transmit s" runs from uclient's
"Total connect time" line to its "Total transmit time" line (timestamps taken as the lines
arrive), so allocation set-up is not counted. When packets are lost, uclient waits about
10 s for the missing echoes before it reports, which inflates "transmit s" and lowers
"relayed pkt/s": with loss, read the loss and the packets per CPU-second, not the rate.
turnutils_uclient itself paces the load (about 2 700 messages/s in total at \`-z 1\` here),
so the rate is mostly the generator's; server CPU per packet is the comparable figure.
Run ${started.toISOString()} at commit ${commit}.

${turnTable(turn.rows)}

Commands:

\`\`\`
${turn.commands.join('\n')}
\`\`\`
${turn.notes.length ? '\nNotes:\n\n' + turn.notes.map((n) => '- ' + n.replaceAll('\n', ' ')).join('\n') + '\n' : ''}
${dtlsSection(dtls)}`;

// Sections written by other bench scripts (bench/auth-timing.mjs; bench/memory.mjs: memory, pauses,
// overload; bench/fuzz.mjs) and hand-written ones are kept as they are. A generated section missing its
// markers goes before the first of these headings (or at the end).
const KEPT = ['\n<!-- auth-timing:begin -->', '\n## 403 timing', '\n## Memory, pauses and overload'];
const file = join(ROOT, 'bench', 'RESULTS.md');
let text = readFileSync(file, 'utf8');

/** `text` with the section NAME (between its markers) replaced by `body`, or inserted if it has none. */
function putSection(text, name, body) {
  const begin = `<!-- ${name}:begin -->`;
  const end = `<!-- ${name}:end -->`;
  const block = `${begin}\n${body.trim()}\n${end}`;
  const i = text.indexOf(begin);
  const j = text.indexOf(end);
  if (i >= 0 && j > i) return text.slice(0, i) + block + text.slice(j + end.length);
  if (name === 'header') return block + '\n\n' + text;
  const at = Math.min(...KEPT.map((h) => text.indexOf(h)).filter((k) => k >= 0));
  return Number.isFinite(at) ? text.slice(0, at) + '\n' + block + '\n' + text.slice(at) : text + '\n' + block + '\n';
}

text = putSection(text, 'header', header);
if (turn) text = putSection(text, 'turn', turnMd());
if (sip) text = putSection(text, 'sip', sipSection(sip, `${started.toISOString()} at commit ${commit}`));
writeFileSync(file, text);
if (turn) console.log('\n' + turnTable(turn.rows));
if (sip) console.log('\n' + summaryTable(sip));
console.log('\nwrote bench/RESULTS.md');
