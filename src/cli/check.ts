/**
 * `rtcedge check HOST`: a monitoring plugin (Nagios, Icinga, Monitoring
 * Plugins guidelines): one line `STATE - text | perfdata`, exit 0 OK,
 * 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
 *
 * Probes, each bounded by the timeout: SIP OPTIONS over UDP (RFC 3261 §11)
 * and over TLS, whose handshake also gives the certificate's expiry; a STUN
 * Binding request over UDP (RFC 8489 §6). Any SIP response counts as an
 * answer. A probe without answer is CRITICAL; a certificate expiring in fewer
 * than -c days is CRITICAL, in fewer than -w days WARNING.
 */
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { isIP } from 'node:net';
import tls from 'node:tls';

/** Plugin states and their exit codes. */
export const CHECK_STATES = { OK: 0, WARNING: 1, CRITICAL: 2, UNKNOWN: 3 } as const;
export type CheckState = keyof typeof CHECK_STATES;

/** Settings of one check run; ports 0 skip that probe. Days and seconds as numbers. */
export interface CheckOptions {
  host: string;
  udpPort: number;
  tlsPort: number;
  stunPort: number;
  warnDays: number;
  critDays: number;
  timeoutS: number;
}

/** Outcome: the line to print and the exit code. */
export interface CheckResult {
  state: CheckState;
  line: string;
}

const STUN_MAGIC_COOKIE = 0x2112a442;

function optionsRequest(host: string, transport: 'UDP' | 'TLS', local: string): Buffer {
  const branch = `z9hG4bK${randomBytes(8).toString('hex')}`;
  const h = isIP(host) === 6 ? `[${host}]` : host;
  return Buffer.from(
    [
      `OPTIONS sip:${h} SIP/2.0`,
      `Via: SIP/2.0/${transport} ${local};branch=${branch};rport`,
      'Max-Forwards: 70',
      `From: <sip:monitor@${h}>;tag=${randomBytes(4).toString('hex')}`,
      `To: <sip:${h}>`,
      `Call-ID: ${randomBytes(8).toString('hex')}@rtcedge-check`,
      'CSeq: 1 OPTIONS',
      'Accept: application/sdp',
      'User-Agent: rtcedge-check',
      'Content-Length: 0',
      '',
      '',
    ].join('\r\n'),
  );
}

/** The status code of a SIP response's first line, or undefined. */
function sipStatus(data: Buffer): number | undefined {
  const m = /^SIP\/2\.0 (\d{3}) /.exec(data.subarray(0, 64).toString('latin1'));
  return m ? Number(m[1]) : undefined;
}

function withTimeout<T>(ms: number, what: string, run: (done: (v: T) => void, fail: (e: Error) => void) => () => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let cleanup: () => void = () => {};
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`${what}: no answer within ${ms / 1000} s`));
    }, ms);
    cleanup = run(
      (v) => {
        clearTimeout(timer);
        cleanup();
        resolve(v);
      },
      (e) => {
        clearTimeout(timer);
        cleanup();
        reject(new Error(`${what}: ${e.message}`));
      },
    );
  });
}

/** One UDP request/response; `accept` picks the answer. Resolves with the round trip, s. */
function udpProbe(o: CheckOptions, port: number, what: string, request: (local: string) => Buffer, accept: (b: Buffer) => boolean): Promise<number> {
  const started = performance.now();
  return withTimeout(o.timeoutS * 1000, what, (done, fail) => {
    const sock = dgram.createSocket(isIP(o.host) === 6 ? 'udp6' : 'udp4');
    sock.on('error', fail);
    sock.on('message', (b) => {
      if (accept(b)) done((performance.now() - started) / 1000);
    });
    sock.bind(0, () => {
      const a = sock.address();
      sock.send(request(`${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`), port, o.host);
    });
    return () => sock.close();
  });
}

/** OPTIONS over TLS; resolves with the round trip (s) and the certificate's days left. */
function tlsProbe(o: CheckOptions): Promise<{ rttS: number; daysLeft: number; subject: string }> {
  const started = performance.now();
  return withTimeout(o.timeoutS * 1000, 'SIP OPTIONS over TLS', (done, fail) => {
    // The certificate is inspected for expiry, not verified: self-signed servers are monitored too.
    const socket = tls.connect({ host: o.host, port: o.tlsPort, rejectUnauthorized: false, servername: isIP(o.host) ? undefined : o.host });
    let daysLeft = 0;
    let subject = '';
    let buf = Buffer.alloc(0);
    socket.on('secureConnect', () => {
      const cert = socket.getPeerCertificate();
      daysLeft = (Date.parse(cert.valid_to) - Date.now()) / 86_400_000;
      subject = cert.subject?.CN ? String(cert.subject.CN) : '';
      socket.write(optionsRequest(o.host, 'TLS', `${socket.localAddress}:${socket.localPort}`));
    });
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]).subarray(0, 8192);
      if (sipStatus(buf) !== undefined) done({ rttS: (performance.now() - started) / 1000, daysLeft, subject });
    });
    socket.on('error', fail);
    socket.on('close', () => fail(new Error('connection closed without a response')));
    return () => socket.destroy();
  });
}

function stunBinding(): { request: Buffer; isAnswer: (b: Buffer) => boolean } {
  const tid = randomBytes(12);
  const request = Buffer.alloc(20);
  request.writeUInt16BE(0x0001, 0);
  request.writeUInt16BE(0, 2);
  request.writeUInt32BE(STUN_MAGIC_COOKIE, 4);
  tid.copy(request, 8);
  // Binding success (0x0101) or error (0x0111) response with our transaction id.
  const isAnswer = (b: Buffer) => b.length >= 20 && (b.readUInt16BE(0) === 0x0101 || b.readUInt16BE(0) === 0x0111) && b.subarray(8, 20).equals(tid);
  return { request, isAnswer };
}

/**
 * Validate the options.
 * @returns an UNKNOWN result naming the problem, or undefined when fine.
 */
export function checkOptionsProblem(o: CheckOptions): CheckResult | undefined {
  const bad = (text: string): CheckResult => ({ state: 'UNKNOWN', line: `UNKNOWN - ${text}` });
  if (!o.host) return bad('no HOST given');
  for (const [name, v] of [['--udp-port', o.udpPort], ['--tls-port', o.tlsPort], ['--stun-port', o.stunPort]] as const) {
    if (!Number.isInteger(v) || v < 0 || v > 65535) return bad(`${name}: expected a port 0-65535 (0 skips the probe)`);
  }
  if (!(o.warnDays >= 0) || !(o.critDays >= 0)) return bad('-w and -c: expected a number of days >= 0');
  if (o.critDays > o.warnDays) return bad(`-c (${o.critDays} days) must not exceed -w (${o.warnDays} days)`);
  if (!(o.timeoutS > 0)) return bad('-t: expected a number of seconds > 0');
  if (o.udpPort === 0 && o.tlsPort === 0 && o.stunPort === 0) return bad('every probe is turned off');
  return undefined;
}

/** Run the probes and judge them. Never throws: problems become UNKNOWN or CRITICAL results. */
export async function runCheck(o: CheckOptions): Promise<CheckResult> {
  const problem = checkOptionsProblem(o);
  if (problem) return problem;
  const texts: string[] = [];
  const perf: string[] = [];
  const failures: string[] = [];
  let state: CheckState = 'OK';
  const worsen = (s: CheckState) => {
    if (CHECK_STATES[s] > CHECK_STATES[state]) state = s;
  };
  const stun = stunBinding();
  const [udp, tlsr, stunr] = await Promise.allSettled([
    o.udpPort ? udpProbe(o, o.udpPort, 'SIP OPTIONS over UDP', (local) => optionsRequest(o.host, 'UDP', local), (b) => sipStatus(b) !== undefined) : Promise.resolve(undefined),
    o.tlsPort ? tlsProbe(o) : Promise.resolve(undefined),
    o.stunPort ? udpProbe(o, o.stunPort, 'STUN Binding', () => stun.request, stun.isAnswer) : Promise.resolve(undefined),
  ]);
  const rtt = (s: number) => `${s.toFixed(6)}s`;
  if (udp.status === 'rejected') failures.push((udp.reason as Error).message);
  else if (udp.value !== undefined) {
    texts.push(`SIP/UDP answered in ${(udp.value * 1000).toFixed(1)} ms`);
    perf.push(`sip_udp_time=${rtt(udp.value)};;;0`);
  }
  if (tlsr.status === 'rejected') failures.push((tlsr.reason as Error).message);
  else if (tlsr.value !== undefined) {
    const days = Math.floor(tlsr.value.daysLeft);
    texts.push(`SIP/TLS answered in ${(tlsr.value.rttS * 1000).toFixed(1)} ms, certificate ${tlsr.value.subject} expires in ${days} days`);
    perf.push(`sip_tls_time=${rtt(tlsr.value.rttS)};;;0`, `cert_days=${days};${o.warnDays};${o.critDays};;`);
    if (tlsr.value.daysLeft < o.critDays) worsen('CRITICAL');
    else if (tlsr.value.daysLeft < o.warnDays) worsen('WARNING');
  }
  if (stunr.status === 'rejected') failures.push((stunr.reason as Error).message);
  else if (stunr.value !== undefined) {
    texts.push(`STUN answered in ${(stunr.value * 1000).toFixed(1)} ms`);
    perf.push(`stun_time=${rtt(stunr.value)};;;0`);
  }
  if (failures.length > 0) worsen('CRITICAL');
  const text = [...failures, ...texts].join(', ');
  return { state, line: `${state} - ${o.host}: ${text}${perf.length ? ` | ${perf.join(' ')}` : ''}` };
}
