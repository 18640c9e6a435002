// Does a 403 for a wrong password tell a known user from an unknown one by its timing?
//
// Starts rtcedge (dist/, UDP on 127.0.0.1), fetches one nonce, then sends
// REGISTERs with a wrong digest response, one at a time, alternating in random
// order between a known user ("alice") and an unknown one of the same length
// ("alicf"), and times each from send to the 403 on the client. Welch's t-test
// on the two groups gives the p-value that their means are equal; a small p
// (say < 0.001) means the difference is detectable. Writes its section of
// bench/RESULTS.md.
//
//   node bench/auth-timing.mjs [--per-group 5000] [--method REGISTER|INVITE] [--port 25160] [--label text] [--results file] [--no-write]
//
// Known users once got 403s 2–3.5 µs slower than unknown ones (p < 1e-60).
// AUTH_TIMING_KNOWN=alicg runs a null control (two unknown users): its p shows what noise alone gives.
import { createHash, randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { startRtcedge, ROOT } from './rtcedge.mjs';
import { stopProcess } from './lib.mjs';

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : def;
};
const PER_GROUP = opt('--per-group', 5000);
const WARMUP = 1000;
const PORT = opt('--port', 25160);
const WRITE = !args.includes('--no-write');
const LABEL = args.includes('--label') ? args[args.indexOf('--label') + 1] : '';
/** Where to write the table (default bench/RESULTS.md of this checkout), e.g. to record a run of another build. */
const RESULTS = args.includes('--results') ? args[args.indexOf('--results') + 1] : undefined;
/** REGISTER (registrar, 401 challenge, Authorization) or INVITE (proxy, 407 challenge, Proxy-Authorization; ACKed). */
const METHOD = args.includes('--method') ? args[args.indexOf('--method') + 1].toUpperCase() : 'REGISTER';
if (METHOD !== 'REGISTER' && METHOD !== 'INVITE') throw new Error('--method REGISTER or INVITE');
const DOMAIN = 'example.test';
const KNOWN = process.env.AUTH_TIMING_KNOWN ?? 'alice';
const UNKNOWN = 'alicf';

const md5 = (s) => createHash('md5').update(s).digest('hex');

// ---- statistics -------------------------------------------------------------

function meanVar(xs) {
  const n = xs.length;
  const m = xs.reduce((a, b) => a + b, 0) / n;
  const v = xs.reduce((a, b) => a + (b - m) * (b - m), 0) / (n - 1);
  return { n, m, v };
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** ln Γ(x), Lanczos approximation. */
function lnGamma(x) {
  const c = [76.18009172947146, -86.50532032941677, 24.01409824083091, -1.231739572450155, 0.1208650973866179e-2, -0.5395239384953e-5];
  let y = x;
  const t = x + 5.5 - (x + 0.5) * Math.log(x + 5.5);
  let ser = 1.000000000190015;
  for (const ci of c) ser += ci / ++y;
  return -t + Math.log((2.5066282746310005 * ser) / x);
}

/** Continued fraction of the regularized incomplete beta function (Numerical Recipes betacf). */
function betacf(a, b, x) {
  const FPMIN = 1e-300;
  let c = 1;
  let d = 1 - ((a + b) * x) / (a + 1);
  if (Math.abs(d) < FPMIN) d = FPMIN;
  d = 1 / d;
  let h = d;
  for (let m = 1; m <= 10000; m++) {
    const m2 = 2 * m;
    let aa = (m * (b - m) * x) / ((a + m2 - 1) * (a + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < FPMIN) d = FPMIN;
    c = 1 + aa / c;
    if (Math.abs(c) < FPMIN) c = FPMIN;
    d = 1 / d;
    h *= d * c;
    aa = (-(a + m) * (a + b + m) * x) / ((a + m2) * (a + m2 + 1));
    d = 1 + aa * d;
    if (Math.abs(d) < FPMIN) d = FPMIN;
    c = 1 + aa / c;
    if (Math.abs(c) < FPMIN) c = FPMIN;
    d = 1 / d;
    const del = d * c;
    h *= del;
    if (Math.abs(del - 1) < 1e-15) break;
  }
  return h;
}

/** Regularized incomplete beta I_x(a, b). */
function incBeta(x, a, b) {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const bt = Math.exp(lnGamma(a + b) - lnGamma(a) - lnGamma(b) + a * Math.log(x) + b * Math.log(1 - x));
  return x < (a + 1) / (a + b + 2) ? (bt * betacf(a, b, x)) / a : 1 - (bt * betacf(b, a, 1 - x)) / b;
}

/** Welch's unequal-variance t-test: t, degrees of freedom and the two-sided p-value. */
export function welch(xs, ys) {
  const a = meanVar(xs);
  const b = meanVar(ys);
  const sa = a.v / a.n;
  const sb = b.v / b.n;
  const t = (a.m - b.m) / Math.sqrt(sa + sb);
  const df = (sa + sb) ** 2 / (sa ** 2 / (a.n - 1) + sb ** 2 / (b.n - 1));
  const p = incBeta(df / (df + t * t), df / 2, 0.5);
  return { t, df, p, meanA: a.m, meanB: b.m };
}

// ---- the probe --------------------------------------------------------------

function request(user, { nonce, branch, cseq, callId, localPort }) {
  const uri = METHOD === 'REGISTER' ? `sip:${DOMAIN}` : `sip:${KNOWN}@${DOMAIN}`;
  const header = METHOD === 'REGISTER' ? 'Authorization' : 'Proxy-Authorization';
  const cnonce = 'c0ffee00';
  const nc = '00000001';
  const ha1 = md5(`${user}:${DOMAIN}:wrong-password`);
  const response = md5(`${ha1}:${nonce}:${nc}:${cnonce}:auth:${md5(`${METHOD}:${uri}`)}`);
  return Buffer.from(
    [
      `${METHOD} ${uri} SIP/2.0`,
      `Via: SIP/2.0/UDP 127.0.0.1:${localPort};branch=z9hG4bK${branch};rport`,
      'Max-Forwards: 70',
      `From: <sip:${user}@${DOMAIN}>;tag=t${callId}`,
      `To: <sip:${METHOD === 'REGISTER' ? user : KNOWN}@${DOMAIN}>`,
      `Call-ID: ${callId}@127.0.0.1`,
      `CSeq: ${cseq} ${METHOD}`,
      `Contact: <sip:${user}@127.0.0.1:${localPort}>`,
      `${header}: Digest username="${user}", realm="${DOMAIN}", nonce="${nonce}", uri="${uri}", response="${response}", algorithm=MD5, qop=auth, nc=${nc}, cnonce="${cnonce}"`,
      ...(METHOD === 'REGISTER' ? ['Expires: 60'] : []),
      'Content-Length: 0',
      '',
      '',
    ].join('\r\n'),
  );
}

/** The ACK for a non-2xx final response to an INVITE (RFC 3261 §17.1.1.3), so the server stops retransmitting it. */
function ack(response, branch, localPort) {
  const h = (name) => new RegExp(`^${name}: ([^\r]*)`, 'mi').exec(response)?.[1] ?? '';
  const seq = h('CSeq').split(' ')[0];
  return Buffer.from(
    [
      `ACK sip:${KNOWN}@${DOMAIN} SIP/2.0`,
      `Via: SIP/2.0/UDP 127.0.0.1:${localPort};branch=z9hG4bK${branch};rport`,
      'Max-Forwards: 70',
      `From: ${h('From')}`,
      `To: ${h('To')}`,
      `Call-ID: ${h('Call-ID')}`,
      `CSeq: ${seq} ACK`,
      'Content-Length: 0',
      '',
      '',
    ].join('\r\n'),
  );
}

async function measure() {
  // One SIP worker: the one nonce is reused by every request, and a nonce another worker issued is answered as
  // stale (a 401), whichever Call-ID the request carries.
  const server = await startRtcedge({ sipPort: PORT, users: [['alice', 'the-right-password']], workers: 1 });
  const sock = dgram.createSocket('udp4');
  await new Promise((r) => sock.bind(0, '127.0.0.1', r));
  const localPort = sock.address().port;
  let waiting;
  // Provisional responses (the proxy's 100 Trying to an INVITE) are not the answer being timed.
  sock.on('message', (m) => {
    const text = m.toString('latin1');
    if (!text.startsWith('SIP/2.0 1')) waiting?.(text);
  });
  const ask = (buf) =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no answer within 2 s')), 2000);
      waiting = (text) => {
        clearTimeout(timer);
        waiting = undefined;
        resolve(text);
      };
      sock.send(buf, PORT, '127.0.0.1');
    });
  try {
    // A nonce from a first challenge.
    const firstBranch = randomBytes(8).toString('hex');
    const first = await ask(request(KNOWN, { nonce: 'x', branch: firstBranch, cseq: 1, callId: 'n', localPort }).toString().replace(/Authorization:[^\r]*\r\n/, ''));
    if (METHOD === 'INVITE') sock.send(ack(first, firstBranch, localPort), PORT, '127.0.0.1');
    const nonce = /nonce="([^"]+)"/.exec(first)?.[1];
    if (!nonce) throw new Error(`no nonce in ${first.split('\r\n')[0]}`);
    const times = { [KNOWN]: [], [UNKNOWN]: [] };
    const total = WARMUP + 2 * PER_GROUP;
    const order = [];
    for (let i = 0; i < total / 2; i++) {
      // Pairs in random order, so drift affects both groups alike.
      if (Math.random() < 0.5) order.push(KNOWN, UNKNOWN);
      else order.push(UNKNOWN, KNOWN);
    }
    for (let i = 0; i < order.length; i++) {
      const user = order[i];
      const branch = randomBytes(8).toString('hex');
      const msg = request(user, { nonce, branch, cseq: i + 2, callId: `${user}-timing-${i}`, localPort });
      const t0 = process.hrtime.bigint();
      const answer = await ask(msg);
      const dt = Number(process.hrtime.bigint() - t0) / 1000;
      if (METHOD === 'INVITE') sock.send(ack(answer, branch, localPort), PORT, '127.0.0.1');
      if (!answer.startsWith('SIP/2.0 403')) throw new Error(`expected 403 for ${user}, got ${answer.split('\r\n')[0]}`);
      if (i >= WARMUP) times[user].push(dt);
    }
    return { server, times };
  } finally {
    sock.close();
    await stopProcess(server);
  }
}

const { times: raw } = await measure();
// Scheduling noise on a shared machine gives a long tail that swamps microseconds: both groups are
// cut at the 90th percentile of the pooled times before the test (the raw p is printed as well).
const pooled = [...raw[KNOWN], ...raw[UNKNOWN]].sort((a, b) => a - b);
const cut = pooled[Math.floor(pooled.length * 0.9)];
const times = { [KNOWN]: raw[KNOWN].filter((x) => x <= cut), [UNKNOWN]: raw[UNKNOWN].filter((x) => x <= cut) };
const rawTest = welch(raw[KNOWN], raw[UNKNOWN]);
const r = welch(times[KNOWN], times[UNKNOWN]);
const fmt = (x) => x.toFixed(2);
let commit = '?';
try {
  commit = execFileSync('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD']).toString().trim();
} catch {}
const row = `| ${new Date().toISOString()} | ${commit}${LABEL ? ` (${LABEL})` : ''} | ${METHOD} | ${times[KNOWN].length} / ${times[UNKNOWN].length} | ${fmt(r.meanA)} / ${fmt(r.meanB)} | ${fmt(median(times[KNOWN]))} / ${fmt(median(times[UNKNOWN]))} | ${fmt(r.meanA - r.meanB)} | ${r.t.toFixed(2)} | ${r.p.toExponential(2)} | ${rawTest.p.toExponential(2)} |`;
console.log(`known ${KNOWN}: mean ${fmt(r.meanA)} µs, median ${fmt(median(times[KNOWN]))} µs (n=${times[KNOWN].length})`);
console.log(`unknown ${UNKNOWN}: mean ${fmt(r.meanB)} µs, median ${fmt(median(times[UNKNOWN]))} µs (n=${times[UNKNOWN].length})`);
console.log(`difference ${fmt(r.meanA - r.meanB)} µs; Welch t = ${r.t.toFixed(3)}, df = ${r.df.toFixed(0)}, p = ${r.p.toExponential(3)} (below the pooled p90 of ${fmt(cut)} µs; all samples: p = ${rawTest.p.toExponential(3)})`);

if (WRITE) {
  const file = RESULTS ?? join(ROOT, 'bench', 'RESULTS.md');
  const begin = '<!-- auth-timing:begin -->';
  const end = '<!-- auth-timing:end -->';
  let md = readFileSync(file, 'utf8');
  const header = [
    begin,
    '## 403 timing: known vs unknown user (bench/auth-timing.mjs)',
    '',
    `A REGISTER (registrar, Authorization) or an INVITE (proxy, Proxy-Authorization, then the ACK) with a wrong digest`,
    `response over UDP on 127.0.0.1, one at a time, from ${KNOWN} (known) and ${UNKNOWN} (unknown)`,
    `alternating in random order, ${WARMUP} warm-up requests dropped; time from send to the 403 on the client, µs.`,
    "Welch's t-test of the means; p is the two-sided probability of a difference this large if there were none.",
    'Both groups are cut at the 90th percentile of the pooled times first (scheduling noise on a shared machine);',
    'the last column is p over all samples.',
    'Rows are appended per run; the before/after rows of a change show its effect. A "control" row compares two',
    'unknown users (AUTH_TIMING_KNOWN=alicg): what the noise of a shared machine gives when there is no difference.',
    '',
    `Command: \`node bench/auth-timing.mjs --per-group N --method REGISTER|INVITE\` (server: \`node dist/cli/main.js serve -c <temp>/rtcedge.yaml\`, UDP 127.0.0.1, log.level warn)`,
    '',
    '| date | commit | method | n known / unknown (≤ p90) | mean µs known / unknown | median µs known / unknown | mean difference µs | t | p | p, all samples |',
    '| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  let rows = [];
  const i = md.indexOf(begin);
  const j = md.indexOf(end);
  if (i >= 0 && j > i) {
    rows = md
      .slice(i, j)
      .split('\n')
      .filter((l) => /^\| \d{4}-/.test(l));
  }
  rows.push(row);
  const section = [...header, ...rows, end].join('\n');
  // The section stays where it is; a file without one gets it at its end.
  md = i >= 0 && j > i ? md.slice(0, i) + section + md.slice(j + end.length) : `${md.trimEnd()}\n\n${section}\n`;
  writeFileSync(file, md);
  console.log(`wrote ${file}`);
}
