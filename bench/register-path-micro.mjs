// In-process micro-benchmark of per-message work on the REGISTER path (no sockets): CPU time per call
// of this process for the digest check of a REGISTER with a known user's correct credentials
// (authenticateRequest), the 401's challenge header for a REGISTER without credentials
// (challengeHeaders: its counter and its nonce, two HMACs), one binding refresh committed to a
// SQLite store in a temporary directory (SqliteStore.commitBindings, one put, its own transaction:
// what the registrar does per turn), the stream framer on one REGISTER per chunk (StreamFramer.push),
// the 200's Date header (dateHeader), and a 403 for a wrong password of a known against an unknown
// user (alternating rounds, medians: they must cost the same). Reads dist/: run `npx tsc` first.
//
//   node bench/register-path-micro.mjs [--calls 200000] [--baseline /path/to/other/dist]
//
// With --baseline, each figure is measured for that build first and this one after, in separate
// processes (a module is loaded once per process). Figures are per call, µs of user + system CPU.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { arg } from './lib.mjs';

const CALLS = Number(arg('calls', 200000));
const WARMUP = 20000;

/** Measure in this process the build whose dist/ is `dist`; prints one JSON line. */
async function measure(dist) {
  const { parseMessage } = await import(`${dist}/sip/parser.js`);
  const { authenticateRequest, challengeHeaders } = await import(`${dist}/auth/sip-digest.js`);
  const { SqliteStore } = await import(`${dist}/store/sqlite-store.js`);
  const { createNonce } = await import(`${dist}/auth/nonce.js`);
  const { computeResponse, computeHA1 } = await import(`${dist}/auth/digest.js`);
  const { StreamFramer } = await import(`${dist}/sip/stream-framer.js`);
  const { dateHeader } = await import(`${dist}/registrar/steps/bindings-response.js`);
  const secret = Buffer.alloc(32, 9);
  const realm = '127.0.0.1';
  const uri = 'sip:127.0.0.1:28360';
  const nonce = createNonce(secret, Date.now());
  const ha1s = { user1: computeHA1('MD5', 'user1', realm, 'pw-user1') };
  const policy = { realm, secret, nonceTtlS: 300, algorithms: ['MD5'], lookupHa1: (u) => ha1s[u] };
  const register = (user, password) => {
    const response = computeResponse({ alg: 'MD5', ha1: computeHA1('MD5', user, realm, password), method: 'REGISTER', uri, nonce, qop: 'auth', nc: '00000001', cnonce: 'abc' });
    return Buffer.from(
      [
        `REGISTER ${uri} SIP/2.0`,
        'Via: SIP/2.0/TLS 127.0.0.1:28361;branch=z9hG4bK-1-1-3',
        `From: <sip:${user}@${realm}>;tag=1`,
        `To: <sip:${user}@${realm}>`,
        'Call-ID: 1-1@127.0.0.1',
        'CSeq: 2 REGISTER',
        `Contact: <sip:${user}@127.0.0.1:5999;transport=tls>`,
        'Max-Forwards: 70',
        'Expires: 3600',
        `Authorization: Digest username="${user}", realm="${realm}", nonce="${nonce}", uri="${uri}", response="${response}", algorithm=MD5, qop=auth, nc=00000001, cnonce="abc"`,
        'Content-Length: 0',
        '',
        '',
      ].join('\r\n'),
    );
  };
  const perCall = (f, calls = CALLS) => {
    for (let i = 0; i < WARMUP; i++) f();
    const t = process.cpuUsage();
    for (let i = 0; i < calls; i++) f();
    const u = process.cpuUsage(t);
    return (u.user + u.system) / calls;
  };
  const ok = parseMessage(register('user1', 'pw-user1'));
  if (authenticateRequest(ok, 'www', policy).ok !== true) throw new Error('the credentials do not pass');
  const framer = new StreamFramer();
  const wire = register('user1', 'pw-user1');
  const second = 1_764_300_000;
  const known = parseMessage(register('user1', 'wrong'));
  const unknown = parseMessage(register('user2', 'wrong'));
  const forbidden = { known: [], unknown: [] };
  for (let round = 0; round < 10; round++) {
    const pairs = [['known', known], ['unknown', unknown]];
    if (Math.random() < 0.5) pairs.reverse();
    for (const [k, req] of pairs) {
      forbidden[k].push(perCall(() => {
        if (authenticateRequest(req, 'www', policy).status !== 403) throw new Error('expected 403');
      }, CALLS / 10));
    }
  }
  const median = (v) => v.sort((a, b) => a - b)[v.length >> 1];
  const unauthenticated = parseMessage(Buffer.from(register('user1', 'pw-user1').toString('latin1').replace(/Authorization: [^\r]*\r\n/, ''), 'latin1'));
  const storeDir = mkdtempSync(join(tmpdir(), 'register-path-micro-'));
  const store = new SqliteStore(join(storeDir, 'rtcedge.db'));
  const binding = (i) => ({
    aor: `sip:user${i % 1000}@${realm}`, contact: `<sip:user${i % 1000}@127.0.0.1:28361>`, contactUri: `sip:user${i % 1000}@127.0.0.1:28361`,
    expires: second + 3600 + i, q: null, callId: `${i}-1@127.0.0.1`, cseq: 2, instance: null, regId: null, path: [],
    source: { transport: 'udp', address: '127.0.0.1', port: 28361, localPort: 28360 }, userAgent: null, updatedAt: second + i,
  });
  for (let i = 0; i < 1000; i++) store.putBinding(binding(i));
  let n = 0;
  const commit = perCall(() => store.commitBindings([{ op: 'put', binding: binding(n++) }]), CALLS / 10);
  store.close();
  rmSync(storeDir, { recursive: true, force: true });
  console.log(JSON.stringify({
    authenticate: perCall(() => authenticateRequest(ok, 'www', policy)),
    challenge: perCall(() => challengeHeaders('www', realm, ['MD5'], secret, Date.now(), false, 0, unauthenticated)),
    commit,
    framer: perCall(() => framer.push(wire)),
    date: perCall(() => dateHeader(second + (Math.random() < 0.001 ? 1 : 0))),
    forbiddenKnown: median(forbidden.known),
    forbiddenUnknown: median(forbidden.unknown),
  }));
}

if (process.env.REGISTER_PATH_MICRO_DIST) {
  await measure(process.env.REGISTER_PATH_MICRO_DIST);
} else {
  const own = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist');
  const builds = [...(arg('baseline') ? [['baseline', arg('baseline')]] : []), ['this build', own]];
  const rows = [];
  for (const [name, dist] of builds) {
    const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--calls', String(CALLS)], {
      env: { ...process.env, REGISTER_PATH_MICRO_DIST: dist },
      encoding: 'utf8',
    });
    if (r.status !== 0) throw new Error(`${name}: ${r.stderr}`);
    rows.push([name, JSON.parse(r.stdout.trim().split('\n').pop())]);
  }
  const f = (x) => x.toFixed(2);
  console.log('| build | authenticateRequest, correct credentials | challengeHeaders, a 401 | commitBindings, one refresh | StreamFramer.push, one REGISTER | dateHeader | 403 known / unknown user |');
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const [name, m] of rows) console.log(`| ${name} | ${f(m.authenticate)} µs | ${f(m.challenge)} µs | ${f(m.commit)} µs | ${f(m.framer)} µs | ${f(m.date)} µs | ${f(m.forbiddenKnown)} / ${f(m.forbiddenUnknown)} µs |`);
}
