// A small SIP client for the benchmarks, for what SIPp 3.6.1 cannot do here (Debian's build has no TLS):
// the digest REGISTER and call scenarios of bench/sip.mjs over one TLS (or TCP/UDP) connection at a fixed rate,
// many idle registered connections for the memory figures, and one-off registrations (the SIPp UAS's
// Contact before a call run). Its response times are measured here, on the client, with a µs clock.
//
//   node bench/sip-client.mjs load --port P [--transport tls|tcp|udp] [--rate 500] [--seconds 5] [--users 1000]
//        [--scenario register|call] [--callee calleetls]   (call: a second connection is the registered callee)
//   node bench/sip-client.mjs idle --port P [--transport tls] [--connections 1000] [--parallel 50]
//        (prints one JSON line {"ready":…} once every connection is registered; idle until SIGTERM)
//
// Prints one JSON line with the results. Users are user0…userN-1 with password pw-userK, realm as challenged.
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import dgram from 'node:dgram';
import { pathToFileURL } from 'node:url';
import { arg, runProcess } from './lib.mjs';

/** MD5 digest response of RFC 2617 §3.2.2 (qop=auth when the challenge offers it). */
export function digestAuthorization({ user, password, method, uri, challenge, cnonce, nc = '00000001' }) {
  const md5 = (s) => createHash('md5').update(s).digest('hex');
  const ha1 = md5(`${user}:${challenge.realm}:${password}`);
  const ha2 = md5(`${method}:${uri}`);
  const qop = challenge.qop?.split(',').map((q) => q.trim()).includes('auth') ? 'auth' : undefined;
  const response = qop ? md5(`${ha1}:${challenge.nonce}:${nc}:${cnonce}:${qop}:${ha2}`) : md5(`${ha1}:${challenge.nonce}:${ha2}`);
  return (
    `Digest username="${user}", realm="${challenge.realm}", nonce="${challenge.nonce}", uri="${uri}", response="${response}", algorithm=MD5` +
    (challenge.opaque !== undefined ? `, opaque="${challenge.opaque}"` : '') +
    (qop ? `, qop=${qop}, nc=${nc}, cnonce="${cnonce}"` : '')
  );
}

/** The parameters of a Digest challenge header value (WWW-/Proxy-Authenticate). */
export function parseChallenge(value) {
  const out = {};
  for (const m of value.replace(/^\s*Digest\s+/i, '').matchAll(/([A-Za-z-]+)\s*=\s*("([^"]*)"|[^,\s]+)/g)) {
    out[m[1].toLowerCase()] = m[3] ?? m[2];
  }
  return out;
}

/**
 * A parsed SIP message: start line, status (responses), method (requests), headers (lower-case full name →
 * first value) and lines ([name, value] in order, for headers that repeat: Via, Record-Route).
 */
function parseMessage(text) {
  const end = text.indexOf('\r\n\r\n');
  const all = text.slice(0, end < 0 ? text.length : end).split('\r\n');
  const startLine = all[0];
  const isResponse = startLine.startsWith('SIP/2.0 ');
  const headers = {};
  const lines = [];
  for (const l of all.slice(1)) {
    const i = l.indexOf(':');
    if (i < 0) continue;
    const name = l.slice(0, i).trim().toLowerCase();
    const full = { v: 'via', i: 'call-id', f: 'from', t: 'to', m: 'contact', l: 'content-length' }[name] ?? name;
    const value = l.slice(i + 1).trim();
    lines.push([full, value]);
    if (headers[full] === undefined) headers[full] = value;
  }
  return {
    startLine,
    status: isResponse ? Number(startLine.split(' ')[1]) : undefined,
    method: isResponse ? undefined : startLine.split(' ')[0],
    headers,
    lines,
  };
}

/** Every value of a header that may repeat or list several values (Record-Route), in order. */
function headerValues(msg, name) {
  return msg.lines.filter(([n]) => n === name).flatMap(([, v]) => v.split(/,(?=\s*<)/).map((x) => x.trim()));
}

/**
 * One connection to a SIP server (TLS, TCP or UDP socket on 127.0.0.1) that sends requests and hands each
 * response to the transaction waiting for it (matched by the Via branch). TLS certificates are not verified
 * (the servers use generated self-signed ones). At most `maxPending` transactions wait at once.
 */
export class SipConnection {
  constructor({ host = '127.0.0.1', port, transport = 'tls', timeoutMs = 4000, maxPending = 100_000 }) {
    Object.assign(this, { host, port, transport, timeoutMs, maxPending });
    this.pending = new Map();
    this.buf = '';
    this.closed = false;
  }

  /** Connects (and for TLS, completes the handshake); resolves with this. */
  async open() {
    if (this.transport === 'udp') {
      this.sock = dgram.createSocket('udp4');
      await new Promise((r) => this.sock.bind(0, '127.0.0.1', r));
      this.sock.on('message', (m) => this.onMessage(m.toString('latin1')));
      this.localPort = this.sock.address().port;
      return this;
    }
    await new Promise((resolve, reject) => {
      const opts = { host: this.host, port: this.port, rejectUnauthorized: false };
      const s = this.transport === 'tls' ? tls.connect(opts, resolve) : net.connect(opts, resolve);
      s.once('error', reject);
      this.sock = s;
    });
    this.sock.setNoDelay(true);
    this.sock.on('error', () => this.fail('connection error'));
    this.sock.on('close', () => this.fail('connection closed'));
    this.sock.on('data', (d) => this.onData(d.toString('latin1')));
    this.localPort = this.sock.localPort;
    return this;
  }

  get viaTransport() {
    return this.transport.toUpperCase();
  }

  fail(reason) {
    this.closed = true;
    for (const [, p] of this.pending) p.reject(new Error(reason));
    this.pending.clear();
  }

  onData(chunk) {
    this.buf += chunk;
    for (;;) {
      while (this.buf.startsWith('\r\n')) this.buf = this.buf.slice(2);
      const end = this.buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const m = /\r\n(?:content-length|l)\s*:\s*(\d+)/i.exec(this.buf.slice(0, end + 2));
      const total = end + 4 + (m ? Number(m[1]) : 0);
      if (this.buf.length < total) return;
      const msg = this.buf.slice(0, total);
      this.buf = this.buf.slice(total);
      this.onMessage(msg);
    }
  }

  onMessage(text) {
    if (!text.startsWith('SIP/2.0 ')) {
      if (this.onRequest && /^[A-Z]+ /.test(text)) this.onRequest(parseMessage(text));
      return;
    }
    const res = parseMessage(text);
    const branch = /branch=([^;,\s]+)/.exec(res.headers.via ?? '')?.[1];
    const p = branch && this.pending.get(branch);
    if (!p || res.status < 200) return;
    this.pending.delete(branch);
    clearTimeout(p.timer);
    p.resolve(res);
  }

  /** Sends a message that waits for nothing (ACK, a response). */
  send(text) {
    if (this.closed) return;
    const data = Buffer.from(text, 'latin1');
    if (this.transport === 'udp') this.sock.send(data, this.port, this.host);
    else this.sock.write(data);
  }

  /**
   * Sends a request built by `build(branch)` and resolves with its final response, or rejects after
   * `timeoutMs` (no retransmission: on UDP a lost message is a timeout) or when the connection fails.
   */
  request(build) {
    if (this.closed) return Promise.reject(new Error('connection closed'));
    if (this.pending.size >= this.maxPending) return Promise.reject(new Error('too many pending transactions'));
    const branch = 'z9hG4bK' + randomBytes(8).toString('hex');
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(branch);
        reject(new Error('timeout'));
      }, this.timeoutMs);
      this.pending.set(branch, { resolve, reject, timer });
      this.send(build(branch));
    });
  }

  close() {
    this.closed = true;
    if (this.transport === 'udp') this.sock.close();
    else this.sock.destroy();
  }
}

/**
 * REGISTER → 401 → REGISTER with credentials → final response, as the SIPp scenario of bench/sip.mjs does.
 * Resolves with { status, responseMs: [first, second] } (ms from each send to its final response).
 */
export async function registerOnce(conn, { user, password, contact, expires = 3600, domain = '127.0.0.1' }) {
  const ruri = `sip:${conn.host}:${conn.port}` + (conn.transport === 'udp' ? '' : `;transport=${conn.transport}`);
  const callId = randomBytes(10).toString('hex') + '@127.0.0.1';
  const tag = randomBytes(6).toString('hex');
  contact ??= `<sip:${user}@127.0.0.1:${conn.localPort};transport=${conn.transport}>`;
  const msg = (branch, cseq, auth) =>
    `REGISTER ${ruri} SIP/2.0\r\n` +
    `Via: SIP/2.0/${conn.viaTransport} 127.0.0.1:${conn.localPort};rport;branch=${branch}\r\n` +
    `Max-Forwards: 70\r\nFrom: <sip:${user}@${domain}>;tag=${tag}\r\nTo: <sip:${user}@${domain}>\r\n` +
    `Call-ID: ${callId}\r\nCSeq: ${cseq} REGISTER\r\nContact: ${contact}\r\nExpires: ${expires}\r\n` +
    (auth ? `Authorization: ${auth}\r\n` : '') +
    'User-Agent: rtcedge-bench\r\nContent-Length: 0\r\n\r\n';
  const t0 = performance.now();
  const first = await conn.request((b) => msg(b, 1));
  const t1 = performance.now();
  if (first.status !== 401 || !first.headers['www-authenticate']) return { status: first.status, responseMs: [t1 - t0] };
  const challenge = parseChallenge(first.headers['www-authenticate']);
  const auth = digestAuthorization({ user, password, method: 'REGISTER', uri: ruri, challenge, cnonce: randomBytes(6).toString('hex') });
  const second = await conn.request((b) => msg(b, 2, auth));
  return { status: second.status, responseMs: [t1 - t0, performance.now() - t1] };
}

/**
 * Makes `conn` the called party `user` behind the proxy (as the SIPp UAS does): registers its own Contact
 * (the connection's local port, so the proxy reaches it over this connection), answers each INVITE with
 * 200 mirroring the Record-Route, takes the ACK and answers the BYE with 200.
 */
export async function answerCalls(conn, user) {
  const contact = `<sip:${user}@127.0.0.1:${conn.localPort};transport=${conn.transport}>`;
  conn.onRequest = (req) => {
    if (req.method === 'ACK') return;
    const to = req.headers.to + (/;tag=/.test(req.headers.to) ? '' : `;tag=${randomBytes(4).toString('hex')}`);
    conn.send(
      'SIP/2.0 200 OK\r\n' +
        req.lines.filter(([n]) => n === 'via').map(([, v]) => `Via: ${v}\r\n`).join('') +
        (req.method === 'INVITE' ? req.lines.filter(([n]) => n === 'record-route').map(([, v]) => `Record-Route: ${v}\r\n`).join('') : '') +
        `From: ${req.headers.from}\r\nTo: ${to}\r\nCall-ID: ${req.headers['call-id']}\r\nCSeq: ${req.headers.cseq}\r\n` +
        `Contact: ${contact}\r\nContent-Length: 0\r\n\r\n`,
    );
  };
  const r = await registerOnce(conn, { user, password: `pw-${user}`, contact });
  if (r.status !== 200) throw new Error(`REGISTER of the callee ${user} got ${r.status}`);
}

/**
 * A call from `user` to `callee` through the proxy, like the SIPp call scenario of bench/sip.mjs:
 * INVITE → 407 → ACK → INVITE with Proxy-Authorization → 200 → ACK → BYE → 200, the ACK and BYE to the
 * 200's Contact along its Record-Route (reversed). Resolves with { status, responseMs: [INVITE→407,
 * INVITE→200, BYE→200] }; status is the first final response that is not the expected one, or 200.
 */
export async function callOnce(conn, { user, password, callee }) {
  const ruri = `sip:${callee}@${conn.host}:${conn.port};transport=${conn.transport}`;
  const callId = randomBytes(10).toString('hex') + '@127.0.0.1';
  const from = `<sip:${user}@127.0.0.1>;tag=${randomBytes(6).toString('hex')}`;
  const via = (branch) => `Via: SIP/2.0/${conn.viaTransport} 127.0.0.1:${conn.localPort};rport;branch=${branch}\r\n`;
  const contact = `Contact: <sip:${user}@127.0.0.1:${conn.localPort};transport=${conn.transport}>\r\n`;
  const invite = (branch, cseq, auth) =>
    `INVITE ${ruri} SIP/2.0\r\n${via(branch)}Max-Forwards: 70\r\nFrom: ${from}\r\nTo: <sip:${callee}@127.0.0.1>\r\n` +
    `Call-ID: ${callId}\r\nCSeq: ${cseq} INVITE\r\n${contact}` + (auth ? `Proxy-Authorization: ${auth}\r\n` : '') + 'Content-Length: 0\r\n\r\n';
  const times = [];
  let t = performance.now();
  let branch1;
  const first = await conn.request((b) => invite((branch1 = b), 1));
  times.push(performance.now() - t);
  if (first.status !== 407 || !first.headers['proxy-authenticate']) return { status: first.status, responseMs: times };
  conn.send(`ACK ${ruri} SIP/2.0\r\n${via(branch1)}Max-Forwards: 70\r\nFrom: ${from}\r\nTo: ${first.headers.to}\r\nCall-ID: ${callId}\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n`);
  const challenge = parseChallenge(first.headers['proxy-authenticate']);
  const auth = digestAuthorization({ user, password, method: 'INVITE', uri: ruri, challenge, cnonce: randomBytes(6).toString('hex') });
  t = performance.now();
  const ok = await conn.request((b) => invite(b, 2, auth));
  times.push(performance.now() - t);
  if (ok.status !== 200) return { status: ok.status, responseMs: times };
  const target = /<([^>]+)>/.exec(ok.headers.contact ?? '')?.[1] ?? ruri;
  const routes = headerValues(ok, 'record-route').reverse().map((r) => `Route: ${r}\r\n`).join('');
  const inDialog = (method, branch, cseq) =>
    `${method} ${target} SIP/2.0\r\n${via(branch)}${routes}Max-Forwards: 70\r\nFrom: ${from}\r\nTo: ${ok.headers.to}\r\n` +
    `Call-ID: ${callId}\r\nCSeq: ${cseq} ${method}\r\n${method === 'ACK' ? contact : ''}Content-Length: 0\r\n\r\n`;
  conn.send(inDialog('ACK', 'z9hG4bK' + randomBytes(8).toString('hex'), 2));
  t = performance.now();
  const bye = await conn.request((b) => inDialog('BYE', b, 3));
  times.push(performance.now() - t);
  return { status: bye.status, responseMs: times };
}

const percentile = (sorted, q) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] : NaN);

/**
 * Registrations at `rate` per second for `seconds` over one connection, users taken in turn; waits for the
 * last ones (up to the transaction timeout). Returns counts, response times (each request to its final
 * response, ms) and the client's own CPU seconds.
 */
export async function loadRun({ port, transport = 'tls', rate, seconds, users, scenario = 'register', callee = 'calleetls' }) {
  const conn = await new SipConnection({ port, transport }).open();
  let uas;
  if (scenario === 'call') {
    uas = await new SipConnection({ port, transport }).open();
    await answerCalls(uas, callee);
  }
  // As in the SIPp scenario: one Contact per user (port 5999), refreshed by every registration.
  const once =
    scenario === 'call'
      ? (o) => callOnce(conn, { ...o, callee })
      : (o) => registerOnce(conn, { ...o, contact: `<sip:${o.user}@127.0.0.1:5999;transport=${transport}>` });
  const cpu0 = process.cpuUsage();
  const total = Math.round(rate * seconds);
  const times = [];
  const failures = {};
  let ok = 0;
  let started = 0;
  const running = new Set();
  const t0 = performance.now();
  await new Promise((resolve) => {
    const tick = () => {
      const due = Math.min(total, Math.floor(((performance.now() - t0) / 1000) * rate));
      for (; started < due; started++) {
        const i = started % users;
        const p = once({ user: `user${i}`, password: `pw-user${i}` })
          .then((r) => {
            times.push(...r.responseMs);
            if (r.status === 200) ok++;
            else failures[r.status] = (failures[r.status] ?? 0) + 1;
          })
          .catch((e) => {
            failures[e.message] = (failures[e.message] ?? 0) + 1;
          })
          .finally(() => running.delete(p));
        running.add(p);
      }
      if (started < total) setTimeout(tick, 2);
      else resolve();
    };
    tick();
  });
  await Promise.all(running);
  const elapsedS = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  conn.close();
  uas?.close();
  times.sort((a, b) => a - b);
  const failed = Object.values(failures).reduce((a, b) => a + b, 0);
  return {
    transport,
    scenario,
    rate,
    calls: total,
    ok,
    failed,
    failures,
    elapsedS,
    meanMs: times.reduce((a, b) => a + b, 0) / (times.length || 1),
    p50Ms: percentile(times, 0.5),
    p90Ms: percentile(times, 0.9),
    p99Ms: percentile(times, 0.99),
    maxMs: times.at(-1) ?? NaN,
    responses: times.length,
    clientCpuS: (cpu.user + cpu.system) / 1e6,
  };
}

/** Opens `connections` connections, `parallel` at a time, each registering user<i> with its own Contact. */
export async function openIdle({ port, transport = 'tls', connections, parallel = 50 }) {
  const conns = [];
  const failures = {};
  for (let i = 0; i < connections; i += parallel) {
    await Promise.all(
      Array.from({ length: Math.min(parallel, connections - i) }, async (_, k) => {
        const n = i + k;
        try {
          const c = await new SipConnection({ port, transport, timeoutMs: 20_000 }).open();
          conns.push(c);
          const r = await registerOnce(c, { user: `user${n}`, password: `pw-user${n}` });
          if (r.status !== 200) failures[r.status] = (failures[r.status] ?? 0) + 1;
        } catch (e) {
          failures[e.message] = (failures[e.message] ?? 0) + 1;
        }
      }),
    );
  }
  return { conns, registered: connections - Object.values(failures).reduce((a, b) => a + b, 0), failures };
}

/**
 * Runs `count` operations (registrations or calls) of `load` mode in a process of its own, at `rate` per second
 * over one connection, and returns its JSON result ({ ok, failed, failures, … } of {@link loadRun}) with the
 * exit code and the wall time (ms). Throws with the client's stderr when it prints no result.
 */
export async function loadInProcess({ port, transport, rate, count, users, scenario = 'register', callee = 'calleetls' }) {
  const args = [
    new URL(import.meta.url).pathname, 'load', '--port', String(port), '--transport', transport, '--rate', String(rate),
    '--seconds', String(count / rate), '--users', String(users), '--scenario', scenario, '--callee', callee,
  ];
  const r = await runProcess(process.execPath, args, { timeoutMs: (Math.ceil(count / rate) * 3 + 40) * 1000 });
  try {
    return { ...JSON.parse(r.stdout.trim().split('\n').at(-1)), exit: r.code, ms: r.ms };
  } catch {
    throw new Error(`bench/sip-client.mjs failed (${r.code}): ${r.stderr.trim().slice(-2000)}`);
  }
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const mode = process.argv[2];
  const port = Number(arg('port'));
  const transport = arg('transport', 'tls');
  if (mode === 'load') {
    const r = await loadRun({
      port, transport, rate: Number(arg('rate', '500')), seconds: Number(arg('seconds', '5')), users: Number(arg('users', '1000')),
      scenario: arg('scenario', 'register'), callee: arg('callee', 'calleetls'),
    });
    console.log(JSON.stringify(r));
  } else if (mode === 'idle') {
    const r = await openIdle({ port, transport, connections: Number(arg('connections', '1000')), parallel: Number(arg('parallel', '50')) });
    console.log(JSON.stringify({ ready: true, registered: r.registered, failures: r.failures, open: r.conns.filter((c) => !c.closed).length }));
    // Idle until stopped (SIGTERM).
    setInterval(() => {}, 3_600_000);
    process.on('SIGTERM', () => {
      for (const c of r.conns) c.close();
      process.exit(0);
    });
  } else {
    console.error('usage: node bench/sip-client.mjs load|idle --port P [--transport tls|tcp|udp] …');
    process.exit(2);
  }
}
