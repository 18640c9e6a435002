/**
 * Client certificates against real peers (openssl-made CAs, baresip, Node's TLS client):
 * (a) two baresip UAs with only a device certificate (no auth_pass), issued by
 *     a test CA named in sip.tls.ca with `URI:sip:<user>@example.test` in
 *     subjectAltName, register over TLS and call each other: no 401/407 at all;
 * (b) a baresip UA whose certificate comes from another CA gets the digest
 *     challenge (401) on the optional listener and, having no password, no binding;
 * (c) on a `client_cert: required` listener the TLS handshake fails without a
 *     certificate of the configured CA (another CA's, or none), and succeeds with one.
 *
 * Ports: rtcedge 29560 (UDP+TCP), 29561 (TLS, optional), 29562 (TLS, required);
 * baresip alice 29600/29601, bob 29610/29611, mallory 29620/29621; ctrl 29644-29646;
 * RTP 29700-29849.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWithPeers } from './harness/peers.js';
import { startBaresip, type BaresipUa } from './harness/baresip.js';
import { assertPortsFree } from './harness/ports.js';
import { runCommand, stopAllStarted } from './harness/process.js';
import { startRtcedge, type Rtcedge } from './harness/rtcedge.js';
import { makeTempDir, removeTempDir } from './harness/temp-dir.js';

const SIP_PORT = 29560;
const TLS_OPTIONAL = 29561;
const TLS_REQUIRED = 29562;

/** Runs openssl with args in dir; throws with its output on failure. */
async function openssl(dir: string, args: string[]): Promise<void> {
  const r = await runCommand('openssl', args, { cwd: dir, timeoutMs: 20_000 });
  if (r.code !== 0) throw new Error(`openssl ${args.join(' ')} failed (${r.code}):\n${r.output}`);
}

/** A CA (EC P-256 key, self-signed, 2 days) as `<name>-ca.pem` / `<name>-ca.key`. */
async function makeCa(dir: string, name: string): Promise<{ cert: string; key: string }> {
  const cert = join(dir, `${name}-ca.pem`);
  const key = join(dir, `${name}-ca.key`);
  await openssl(dir, [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
    '-subj', `/CN=${name} test CA`, '-keyout', key, '-out', cert,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  return { cert, key };
}

/**
 * A device certificate signed by `ca` with subjectAltName `san` (e.g. `URI:sip:alice@example.test`);
 * returns the paths of the certificate, the key and certificate+key in one PEM (baresip's sip_certificate).
 */
async function makeDevice(dir: string, ca: { cert: string; key: string }, name: string, san: string): Promise<{ cert: string; key: string; combined: string }> {
  const key = join(dir, `${name}.key`);
  const csr = join(dir, `${name}.csr`);
  const cert = join(dir, `${name}.pem`);
  const ext = join(dir, `${name}.ext`);
  const combined = join(dir, `${name}-combined.pem`);
  await openssl(dir, ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', `/CN=${name}`, '-keyout', key, '-out', csr]);
  writeFileSync(ext, `subjectAltName=${san}\nextendedKeyUsage=clientAuth,serverAuth\nbasicConstraints=CA:FALSE\n`);
  await openssl(dir, ['x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial', '-days', '2', '-extfile', ext, '-out', cert]);
  writeFileSync(combined, readFileSync(cert, 'utf8') + readFileSync(key, 'utf8'));
  return { cert, key, combined };
}

/** Outcome of a TLS handshake plus one OPTIONS round trip with Node's client. */
async function tlsProbe(port: number, cert?: { cert: string; key: string }): Promise<{ connected: boolean; reply: string; error?: string }> {
  return new Promise((resolve) => {
    let reply = '';
    let connected = false;
    const socket = tls.connect({
      host: '127.0.0.1',
      port,
      rejectUnauthorized: false,
      maxVersion: 'TLSv1.2', // the server's verdict on the client certificate is part of the handshake
      ...(cert ? { cert: readFileSync(cert.cert), key: readFileSync(cert.key) } : {}),
    });
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ connected, reply });
    }, 3000);
    socket.once('secureConnect', () => {
      connected = true;
      const { localPort } = socket;
      socket.write(
        `OPTIONS sip:127.0.0.1:${port} SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:${localPort};branch=z9hG4bK-probe${localPort}\r\n` +
          `Max-Forwards: 70\r\nFrom: <sip:probe@elsewhere.test>;tag=p1\r\nTo: <sip:127.0.0.1:${port}>\r\nCall-ID: probe-${localPort}\r\n` +
          `CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n`,
      );
    });
    socket.on('data', (d: Buffer) => {
      reply += d.toString();
      if (reply.includes('\r\n\r\n')) {
        clearTimeout(timer);
        socket.destroy();
        resolve({ connected, reply });
      }
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      resolve({ connected, reply, error: err.message });
    });
  });
}

describeWithPeers(['baresip', 'openssl'])('client certificates: device certificates register and call without passwords', () => {
  let dir: string;
  let server: Rtcedge | undefined;
  const uas: BaresipUa[] = [];
  let goodCa: { cert: string; key: string };
  let alice: { cert: string; key: string; combined: string };
  let mallory: { cert: string; key: string; combined: string };

  beforeAll(async () => {
    await assertPortsFree('127.0.0.1', [SIP_PORT, TLS_OPTIONAL, TLS_REQUIRED, 29600, 29601, 29610, 29611, 29620, 29621, 29644, 29645, 29646]);
    dir = makeTempDir('client-cert');
    goodCa = await makeCa(dir, 'devices');
    const otherCa = await makeCa(dir, 'other');
    alice = await makeDevice(dir, goodCa, 'alice', 'URI:sip:alice@example.test');
    const bob = await makeDevice(dir, goodCa, 'bob', 'URI:sip:bob@example.test');
    // Same identity as alice's, from a CA the server does not trust.
    mallory = await makeDevice(dir, otherCa, 'mallory', 'URI:sip:carol@example.test');

    server = await startRtcedge({
      dir: join(dir, 'server'),
      ports: { udp: SIP_PORT, tcp: SIP_PORT },
      config: {
        sip: {
          listen: [
            { transport: 'udp', host: '127.0.0.1', port: SIP_PORT },
            { transport: 'tcp', host: '127.0.0.1', port: SIP_PORT },
            { transport: 'tls', host: '127.0.0.1', port: TLS_OPTIONAL, client_cert: 'optional' },
            { transport: 'tls', host: '127.0.0.1', port: TLS_REQUIRED, client_cert: 'required' },
          ],
          tls: { ca: [goodCa.cert] },
        },
      },
      users: [
        { aor: 'alice@example.test', password: 'alice-unused-pw' },
        { aor: 'bob@example.test', password: 'bob-unused-pw' },
        { aor: 'carol@example.test', password: 'carol-unused-pw' },
      ],
    });

    const ua = (name: string, sipPort: number, ctrlPort: number, rtp: [number, number], cert: string, answermode?: 'auto') =>
      startBaresip({
        name,
        parentDir: dir,
        sipPort,
        ctrlPort,
        rtpPorts: rtp,
        cafile: server!.certPath,
        tlsListener: false,
        extraConfig: [`sip_certificate ${cert}`],
        accounts: [
          {
            aor: `sip:${name === 'mallory' ? 'carol' : name}@example.test`,
            regint: 600,
            answermode,
            outbound: `sip:127.0.0.1:${TLS_OPTIONAL};transport=tls`,
          },
        ],
        lifetimeS: 55,
      });
    uas.push(await ua('alice', 29600, 29644, [29700, 29749], alice.combined));
    uas.push(await ua('bob', 29610, 29645, [29750, 29799], bob.combined, 'auto'));
    uas.push(await ua('mallory', 29620, 29646, [29800, 29849], mallory.combined));
  });

  afterAll(async () => {
    await Promise.all(uas.map((u) => u.stop()));
    await server?.stop();
    await stopAllStarted();
    if (dir) removeTempDir(dir);
  });

  it('(a) alice and bob register over TLS with only a certificate, and alice calls bob; nobody is challenged', async () => {
    const [a, b] = uas;
    await Promise.all([a!.waitForRegistered(10_000), b!.waitForRegistered(10_000)]);
    expect(server!.bindings('sip:alice@example.test')).toHaveLength(1);
    expect(server!.bindings('sip:bob@example.test')).toHaveLength(1);

    const a0 = a!.events.length;
    const b0 = b!.events.length;
    expect((await a!.dial(`sip:bob@example.test`)).ok).toBe(true);
    await a!.waitForEventType('CALL_ESTABLISHED', 10_000, a0);
    await b!.waitForEventType('CALL_ESTABLISHED', 10_000, b0);
    await new Promise((r) => setTimeout(r, 500));
    expect((await a!.hangup()).ok).toBe(true);
    await b!.waitForEventType('CALL_CLOSED', 8000, b0);

    const tlsRemotes = (user: string) =>
      server!
        .sipLog({ direction: 'recv', transport: 'tls' })
        .filter((e) => e.method !== undefined && /^From:.*sip:(\w+)@/m.exec(e.message)?.[1] === user)
        .map((e) => e.remote);
    const fromCertUas = new Set([...tlsRemotes('alice'), ...tlsRemotes('bob')]);
    expect(fromCertUas.size).toBeGreaterThan(0);
    const challenged = server!.sipLog({ direction: 'send' }).filter((e) => (e.status === 401 || e.status === 407) && fromCertUas.has(e.remote));
    expect(challenged.map((e) => e.startLine)).toEqual([]);
    const verified = server!.logs.filter((l) => l.msg === 'client certificate verified').map((l) => l.identities);
    expect(verified).toContainEqual(['sip:alice@example.test']);
  });

  it('(b) a certificate from another CA authenticates nobody: 401 challenge, no binding (no password to answer it)', async () => {
    const m = uas[2]!;
    await server!.waitForLog((l) => l.msg === 'sip send' && String(l.startLine).startsWith('SIP/2.0 401') && String(l.cseq).endsWith('REGISTER') && String(l.message).includes('sip:carol@example.test'), 10_000);
    expect(server!.bindings('sip:carol@example.test')).toHaveLength(0);
    expect(server!.logs.some((l) => l.msg === 'client certificate not verified')).toBe(true);
    const reg = await m.command('reginfo');
    expect(reg.data ?? '').not.toMatch(/\bOK\b/);
  });

  it('(c) client_cert required: the handshake fails with another CA or no certificate, succeeds with a device certificate', async () => {
    const good = await tlsProbe(TLS_REQUIRED, alice);
    expect(good.connected).toBe(true);
    expect(good.reply).toMatch(/^SIP\/2\.0 200 /);

    const other = await tlsProbe(TLS_REQUIRED, mallory);
    expect(other.reply).toBe('');
    expect(other.error ?? 'closed without a reply').toBeTruthy();
    expect(other.connected && other.reply !== '').toBe(false);

    const none = await tlsProbe(TLS_REQUIRED);
    expect(none.reply).toBe('');
    expect(none.error).toBeDefined();

    // The optional listener lets the other CA's certificate in (it then meets digest).
    const optional = await tlsProbe(TLS_OPTIONAL, mallory);
    expect(optional.reply).toMatch(/^SIP\/2\.0 200 /);
  });
});
