/**
 * Each CLI command against a running `rtcedge serve` (the real binary,
 * dist/cli/main.js): users, CSV import, registrations, reload of the TLS
 * certificate under an open connection, backup and restore, config check,
 * and the monitoring plugin's four states.
 */
import { randomBytes, X509Certificate } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import Database from 'better-sqlite3';
import * as tar from 'tar';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ensureTlsCertificate } from '../../src/config/tls-cert.js';
import { silentLogger } from '../../src/log.js';
import { getHeader, getHeaderValues, type SipMessage, type SipRequest, type SipResponse } from '../../src/sip/message.js';
import { createResponse } from '../../src/sip/response.js';
import { TcpConnection } from '../helpers/tcp-ua.js';
import { UdpUa } from '../helpers/udp-ua.js';
import { type CliRun, requireBuild, runCli, runCliAsync, type ServeProcess, startServe } from './harness.js';

const SIP_PORT = 27060;
const TLS_PORT = 27061;
const TURN_PORT = 27078;
const TURN_TLS_PORT = 27077;
const ADMIN_PORT = 27090;
const DOMAIN = 'example.test';

let dir: string;
let configFile: string;
let dataDir: string;
let certA: { cert: string; key: string };
let certB: { cert: string; key: string };
let server: ServeProcess;

const cli = (args: string[], input = ''): Promise<CliRun> => runCliAsync([...args, '-c', configFile], dir, input);

/** Generate a self-signed pair for `name` in its own directory. */
async function makeCert(name: string): Promise<{ cert: string; key: string }> {
  const d = join(dir, `gen-${name}`);
  mkdirSync(d);
  const p = await ensureTlsCertificate(d, [name], silentLogger);
  return { cert: p.certPath, key: p.keyPath };
}

function configYaml(dataDirPath: string): string {
  return [
    `data_dir: ${dataDirPath}`,
    `domains: [${DOMAIN}]`,
    'log: { level: info }',
    'sip:',
    '  listen:',
    `    - { transport: udp, host: 127.0.0.1, port: ${SIP_PORT} }`,
    `    - { transport: tls, host: 127.0.0.1, port: ${TLS_PORT} }`,
    `  tls: { cert: ${join(dir, 'certs', 'cert.pem')}, key: ${join(dir, 'certs', 'key.pem')} }`,
    'turn:',
    '  listen:',
    `    - { transport: udp, host: 127.0.0.1, port: ${TURN_PORT} }`,
    `    - { transport: tls, host: 127.0.0.1, port: ${TURN_TLS_PORT} }`,
    `admin: { listen: "127.0.0.1:${ADMIN_PORT}" }`,
    '',
  ].join('\n');
}

beforeAll(async () => {
  requireBuild();
  dir = mkdtempSync(join(tmpdir(), 'rtcedge-cmds-'));
  dataDir = join(dir, 'data');
  configFile = join(dir, 'rtcedge.yaml');
  certA = await makeCert('a.example.test');
  certB = await makeCert('b.example.test');
  mkdirSync(join(dir, 'certs'));
  copyFileSync(certA.cert, join(dir, 'certs', 'cert.pem'));
  copyFileSync(certA.key, join(dir, 'certs', 'key.pem'));
  writeFileSync(configFile, configYaml(dataDir));
  // The CLI side of a reload only needs data_dir and admin.listen: a file that stays valid while the server's changes.
  writeFileSync(join(dir, 'reload-client.yaml'), `data_dir: ${dataDir}\nadmin: { listen: "127.0.0.1:${ADMIN_PORT}" }\n`);
  expect(runCli(['user', 'add', 'alice', '--password', 'alicepw', '--phone', '+4930111', '--phone', '111', '-c', configFile], dir).status).toBe(0);
  server = await startServe(configFile, dir);
});

afterAll(async () => {
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('user', () => {
  test('show and list --json give phones and algorithms, never HA1s', async () => {
    const show = await cli(['user', 'show', 'alice', '--json']);
    expect(show.status).toBe(0);
    expect(JSON.parse(show.stdout)).toMatchObject({ username: 'alice', domain: DOMAIN, phones: ['+4930111', '111'], algorithms: ['MD5', 'SHA-256', 'SHA-512-256'] });
    expect(show.stdout).not.toMatch(/[0-9a-f]{32}/);
    const text = await cli(['user', 'show', 'alice']);
    expect(text.stdout.split('\n').slice(0, 3)).toEqual([`alice@${DOMAIN}`, 'phones: +4930111 111', 'algorithms: MD5 SHA-256 SHA-512-256']);
    const list = await cli(['user', 'list', '--json']);
    expect((JSON.parse(list.stdout) as { username: string }[]).map((u) => u.username)).toContain('alice');
    expect(await cli(['user', 'show', 'nobody'])).toEqual({ status: 1, stdout: '', stderr: `rtcedge: no user nobody@${DOMAIN}\n` });
  });

  test('a phone number owned by another user is refused and nothing is stored', async () => {
    const r = await cli(['user', 'add', 'mallory', '--password', 'x', '--phone', '111']);
    expect(r).toEqual({ status: 1, stdout: '', stderr: `rtcedge: phone number 111 belongs to alice@${DOMAIN}\n` });
    expect((await cli(['user', 'show', 'mallory'])).status).toBe(1);
  });

  test('import: bad lines are reported with their line number and skipped, every good line is stored', async () => {
    const csv = join(dir, 'users.csv');
    writeFileSync(
      csv,
      [
        'user,password,phones',
        'imp1,pw1,+4930201',
        'bad user,pw2,',
        'imp3,,',
        'imp4,pw4,+4930204 204',
        'imp5,pw5,+4930111',
        'imp6,pw6,"unterminated',
        'imp7@elsewhere.test,pw7,',
        'imp8,pw8,',
        'imp1,again,',
        '',
      ].join('\n'),
    );
    const r = await cli(['user', 'import', csv, '--json']);
    expect(r.status).toBe(1);
    const out = JSON.parse(r.stdout) as { added: number; skipped: number; errors: { line: number; message: string }[] };
    expect(out.added).toBe(3);
    expect(out.errors.map((e) => e.line)).toEqual([3, 4, 6, 7, 8, 10]);
    expect(out.skipped).toBe(6);
    expect(out.errors[0]!.message).toMatch(/^invalid user name "bad user"/);
    expect(out.errors[4]!.message).toBe('domain elsewhere.test is not served by this server (domains: example.test)');
    const users = (JSON.parse((await cli(['user', 'list', '--json'])).stdout) as { username: string; phones: string[] }[]).filter((u) => u.username.startsWith('imp'));
    expect(users.map((u) => [u.username, u.phones])).toEqual([
      ['imp1', ['+4930201']],
      ['imp4', ['+4930204', '204']],
      ['imp8', []],
    ]);
    const text = await cli(['user', 'import', csv]);
    expect(text.stdout).toBe('added 0 users, skipped 9 lines\n');
    expect(text.stderr).toContain(`${csv}:2: user imp1@${DOMAIN} already exists\n`);
  });
});

describe('reg', () => {
  let ua: UdpUa;
  beforeAll(async () => {
    ua = await UdpUa.open();
  });
  afterAll(() => ua.close());

  test('list shows a binding from the running server, del removes it', async () => {
    expect((await ua.register(SIP_PORT, 'alice', 'alicepw', DOMAIN)).status).toBe(200);
    const json = await cli(['reg', 'list', `alice@${DOMAIN}`, '--json']);
    expect(json.status).toBe(0);
    const regs = JSON.parse(json.stdout) as { aor: string; bindings: { contactUri: string; source: { transport: string } }[] }[];
    expect(regs).toHaveLength(1);
    expect(regs[0]!.aor).toBe(`sip:alice@${DOMAIN}`);
    expect(regs[0]!.bindings.map((b) => [b.contactUri, b.source.transport])).toEqual([[`sip:alice@127.0.0.1:${ua.port}`, 'udp']]);
    const text = await cli(['reg', 'list']);
    const fields = text.stdout.split('\n').map((l) => l.split('\t'));
    expect(fields.map((f) => f.length)).toEqual([5, 1]);
    expect(fields[0]![2]).toMatch(/^\d+s$/);
    expect(fields.map((f) => f.filter((_, i) => i !== 2))).toEqual([[`sip:alice@${DOMAIN}`, `sip:alice@127.0.0.1:${ua.port}`, `udp 127.0.0.1:${ua.port}`, '-'], ['']]);

    expect(await cli(['reg', 'del', `sip:alice@${DOMAIN}`])).toEqual({ status: 0, stdout: `removed 1 binding of sip:alice@${DOMAIN}\n`, stderr: '' });
    expect(JSON.parse((await cli(['reg', 'list', '--json'])).stdout)).toEqual([]);
    expect(await cli(['reg', 'del', `alice@${DOMAIN}`])).toEqual({ status: 1, stdout: '', stderr: `rtcedge: no binding of sip:alice@${DOMAIN}\n` });
  });

  test('without a running server: one line naming the admin address', async () => {
    const other = join(dir, 'other.yaml');
    writeFileSync(other, `data_dir: ${dataDir}\nadmin: { listen: "127.0.0.1:27091" }\n`);
    const r = await runCliAsync(['reg', 'list', '-c', other], dir);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^rtcedge: no rtcedge server answers on http:\/\/127\.0\.0\.1:27091 \(ECONNREFUSED\): is `rtcedge serve` running with this configuration\?\n$/);
  });
});

describe('reload', () => {
  function connect(port = TLS_PORT): Promise<tls.TLSSocket> {
    return new Promise((res, rej) => {
      const s = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => res(s));
      s.once('error', rej);
    });
  }
  function options(s: tls.TLSSocket, n: number): Promise<string> {
    const req = [`OPTIONS sip:127.0.0.1:${TLS_PORT} SIP/2.0`, `Via: SIP/2.0/TLS 127.0.0.1:${s.localPort};branch=z9hG4bKreload${n}`, 'Max-Forwards: 70', 'From: <sip:probe@elsewhere.test>;tag=1', `To: <sip:127.0.0.1:${TLS_PORT}>`, `Call-ID: reload-${n}`, `CSeq: ${n} OPTIONS`, 'Content-Length: 0', '', ''].join('\r\n');
    return new Promise((res) => {
      let buf = '';
      const onData = (d: Buffer) => {
        buf += d.toString();
        if (buf.includes('\r\n\r\n')) {
          s.off('data', onData);
          res(buf.split('\r\n')[0]!);
        }
      };
      s.on('data', onData);
      s.write(req);
    });
  }
  const fingerprint = (s: tls.TLSSocket) => s.getPeerX509Certificate()!.fingerprint256;

  test('a new certificate goes to new handshakes while a call over an open TLS connection stays up', async () => {
    expect((await cli(['user', 'add', 'bob', '--password', 'bobpw'])).status).toBe(0);
    const bob = await UdpUa.open();
    const alice = await TcpConnection.connectTls(TLS_PORT);
    try {
      // bob registers over UDP; alice calls him over TLS.
      expect((await bob.register(SIP_PORT, 'bob', 'bobpw', DOMAIN)).status).toBe(200);

      const overTls = (r: SipRequest): SipRequest => ({
        ...r,
        headers: r.headers.map((h) => (/^via$/i.test(h.name) ? { name: 'Via', value: `SIP/2.0/TLS 127.0.0.1:${alice.localPort};branch=z9hG4bK${randomBytes(8).toString('hex')};rport` } : h)),
      });
      const answerTo = (r: SipRequest, status: number) => (m: SipMessage) => m.kind === 'response' && m.status === status && getHeader(m, 'cseq') === getHeader(r, 'cseq') && getHeader(m, 'call-id') === getHeader(r, 'call-id');
      const invite = overTls(bob.request('INVITE', `sip:bob@${DOMAIN}`, { from: `sip:alice@${DOMAIN}`, to: `sip:bob@${DOMAIN}`, contact: `<sip:alice@127.0.0.1:${alice.localPort};transport=tls>`, body: 'v=0\r\n' }));
      alice.send(invite);
      const c407 = (await alice.waitFor(answerTo(invite, 407))) as SipResponse;
      const authed = overTls(bob.authorize(invite, c407, 'alice', 'alicepw'));
      alice.send(authed);
      const atBob = (await bob.waitFor((m) => m.kind === 'request' && m.method === 'INVITE' && getHeader(m, 'call-id') === getHeader(invite, 'call-id'))) as SipRequest;
      const recordRoute = getHeaderValues(atBob, 'record-route');
      bob.send(createResponse(atBob, 200, { toTag: 'bobtag', headers: [{ name: 'Contact', value: `<sip:bob@127.0.0.1:${bob.port}>` }, ...recordRoute.map((v) => ({ name: 'Record-Route', value: v }))] }), SIP_PORT);
      await alice.waitFor(answerTo(authed, 200));
      expect(fingerprint(alice.socket as tls.TLSSocket)).toBe(new X509Certificate(readFileSync(certA.cert)).fingerprint256);

      const turnBefore = await connect(TURN_TLS_PORT);
      expect(fingerprint(turnBefore)).toBe(new X509Certificate(readFileSync(certA.cert)).fingerprint256);
      turnBefore.destroy();

      copyFileSync(certB.cert, join(dir, 'certs', 'cert.pem'));
      copyFileSync(certB.key, join(dir, 'certs', 'key.pem'));
      expect(await cli(['reload'])).toEqual({ status: 0, stdout: 'reloaded: sip.tls\n', stderr: '' });

      const after = await connect();
      expect(fingerprint(after)).toBe(new X509Certificate(readFileSync(certB.cert)).fingerprint256);
      expect(await options(after, 2)).toBe('SIP/2.0 200 OK');
      after.destroy();
      // TURN over TLS takes it too (test/turn/tls-reload.test.ts: allocations on open connections go on).
      const turnAfter = await connect(TURN_TLS_PORT);
      expect(fingerprint(turnAfter)).toBe(new X509Certificate(readFileSync(certB.cert)).fingerprint256);
      turnAfter.destroy();

      // The call goes on over the connection made before the reload: bob's BYE reaches alice through the proxy.
      const fromTag = /tag=([^;>]+)/.exec(getHeader(invite, 'from')!)![1];
      const bye = bob.request('BYE', `sip:alice@127.0.0.1:${alice.localPort};transport=tls`, {
        from: `sip:bob@${DOMAIN}`,
        to: `sip:alice@${DOMAIN}`,
        fromTag: 'bobtag',
        toTag: fromTag,
        callId: getHeader(invite, 'call-id'),
        cseq: 1,
        headers: recordRoute.map((v) => ({ name: 'Route', value: v })),
      });
      bob.send(bye, SIP_PORT);
      const byeAtAlice = (await alice.waitFor((m) => m.kind === 'request' && m.method === 'BYE')) as SipRequest;
      alice.send(createResponse(byeAtAlice, 200));
      expect((await bob.response(bye, 200)).status).toBe(200);
      expect(alice.socket.destroyed).toBe(false);
    } finally {
      alice.destroy();
      bob.close();
    }
  });

  test('SIGHUP re-reads the file: log.level and the certificate paths apply, other changes wait for a restart; a bad file changes nothing', async () => {
    const fingerprintA = new X509Certificate(readFileSync(certA.cert)).fingerprint256;
    const fingerprintB = new X509Certificate(readFileSync(certB.cert)).fingerprint256;
    const original = readFileSync(configFile, 'utf8');
    const reloadedLines = () => server.stdout().split('\n').filter((l) => l.includes('"msg":"reloaded"')).length;
    const waitReloaded = async (n: number) => {
      for (let i = 0; i < 100 && reloadedLines() < n; i++) await new Promise((r) => setTimeout(r, 100));
      expect(reloadedLines()).toBe(n);
    };
    try {
      // The file now names certificate A by its own path, at log level debug, with another min_expires.
      writeFileSync(
        configFile,
        original
          .replace(join(dir, 'certs', 'cert.pem'), certA.cert)
          .replace(join(dir, 'certs', 'key.pem'), certA.key)
          .replace('log: { level: info }', 'log: { level: debug }')
          .replace('sip:\n', 'sip:\n  registrar: { min_expires: 30 }\n'),
      );
      const n = reloadedLines();
      process.kill(server.proc.pid!, 'SIGHUP');
      await waitReloaded(n + 1);
      const line = JSON.parse(server.stdout().split('\n').filter((l) => l.includes('"msg":"reloaded"')).at(-1)!) as { reloaded: string[] };
      expect(line.reloaded).toEqual(['log.level', 'sip.tls']);
      expect(server.stdout()).toContain('"keys":["sip.registrar"],"msg":"changed configuration keys take effect at the next start"');
      const s = await connect();
      expect(fingerprint(s)).toBe(fingerprintA);
      s.destroy();

      // A file that does not parse: the CLI says why, the certificate in use stays.
      writeFileSync(configFile, original.replace(`port: ${TLS_PORT} }`, 'port: abc }'));
      const bad = await runCliAsync(['reload', '-c', join(dir, 'reload-client.yaml')], dir);
      expect(bad.status).toBe(1);
      expect(bad.stderr).toBe(`rtcedge: config ${configFile}: sip.listen[1].port: expected a number 0-65535, got "abc"\n`);
      const still = await connect();
      expect(fingerprint(still)).toBe(fingerprintA);
      still.destroy();
    } finally {
      writeFileSync(configFile, original);
      expect((await cli(['reload'])).stdout).toBe('reloaded: log.level, sip.tls\n');
      const back = await connect();
      expect(fingerprint(back)).toBe(fingerprintB);
      back.destroy();
    }
  });
});

describe('backup and restore', () => {
  function storeContents(path: string): Record<string, unknown[]> {
    const db = new Database(path, { readonly: true });
    try {
      return {
        users: db.prepare('SELECT * FROM users ORDER BY domain, username').all(),
        phones: db.prepare('SELECT * FROM phones ORDER BY number').all(),
        bindings: db.prepare('SELECT * FROM bindings ORDER BY aor, contact_uri').all(),
      };
    } finally {
      db.close();
    }
  }

  test('round trip while the server runs loses nothing: store, secret, token, key, configuration', async () => {
    const ua = await UdpUa.open();
    expect((await ua.register(SIP_PORT, 'alice', 'alicepw', DOMAIN)).status).toBe(200);
    ua.close();

    const file = join(dir, 'state.tar.gz');
    const b = await cli(['backup', file]);
    expect(b.status).toBe(0);
    expect(b.stdout).toMatch(/^wrote .*state\.tar\.gz \(\d+ files\)\n$/);
    expect(statSync(file).mode & 0o777).toBe(0o600);

    const restoredDir = join(dir, 'restored');
    const restoredConfig = join(dir, 'restored.yaml');
    writeFileSync(restoredConfig, `data_dir: ${restoredDir}\n`);
    const r = await runCliAsync(['restore', file, '-c', restoredConfig], dir);
    expect(r).toMatchObject({ status: 0, stderr: '' });

    const original = storeContents(join(dataDir, 'rtcedge.db'));
    expect(original.bindings.length).toBeGreaterThanOrEqual(1);
    expect(original.users.length).toBeGreaterThan(3);
    expect(storeContents(join(restoredDir, 'rtcedge.db'))).toEqual(original);
    for (const f of ['secret', 'admin-token']) expect(readFileSync(join(restoredDir, f)).equals(readFileSync(join(dataDir, f)))).toBe(true);
    expect(statSync(restoredDir).mode & 0o777).toBe(0o700);
    expect(statSync(join(restoredDir, 'secret')).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(restoredDir, 'restored-config', 'rtcedge.yaml'), 'utf8')).toBe(readFileSync(configFile, 'utf8'));
    expect(readFileSync(join(restoredDir, 'restored-config', 'key.pem'), 'utf8')).toBe(readFileSync(join(dir, 'certs', 'key.pem'), 'utf8'));

    // Into a data_dir that is not empty: refused, nothing touched.
    const again = await runCliAsync(['restore', file, '-c', restoredConfig], dir);
    expect(again).toEqual({ status: 1, stdout: '', stderr: `rtcedge: data_dir ${restoredDir} is not empty: restore only into an empty or missing data directory\n` });
  });

  test('a truncated or corrupted file is refused before anything is written', async () => {
    const file = join(dir, 'good.tar.gz');
    expect((await cli(['backup', file])).status).toBe(0);
    const bytes = readFileSync(file);
    const truncated = join(dir, 'truncated.tar.gz');
    writeFileSync(truncated, bytes.subarray(0, Math.floor(bytes.length / 2)));
    const corrupt = join(dir, 'corrupt.tar.gz');
    const flipped = Buffer.from(bytes);
    flipped[Math.floor(flipped.length / 2)]! ^= 0xff;
    writeFileSync(corrupt, flipped);
    const notTar = join(dir, 'not.tar.gz');
    writeFileSync(notTar, 'hello\n');
    // An archive whose data/secret is a link to a file outside it.
    const evilStage = join(dir, 'evil-stage');
    mkdirSync(join(evilStage, 'data'), { recursive: true });
    symlinkSync(configFile, join(evilStage, 'data', 'secret'));
    writeFileSync(join(evilStage, 'manifest.json'), '{}');
    const withLink = join(dir, 'link.tar.gz');
    await tar.create({ gzip: true, file: withLink, cwd: evilStage }, ['manifest.json', 'data']);

    for (const f of [truncated, corrupt, notTar, withLink]) {
      const target = join(dir, `target-${f.length}-${Math.random().toString(36).slice(2)}`);
      const cfg = join(dir, 'target.yaml');
      writeFileSync(cfg, `data_dir: ${target}\n`);
      const r = await runCliAsync(['restore', f, '-c', cfg], dir);
      expect([f, r.status]).toEqual([f, 1]);
      expect(r.stderr).toMatch(new RegExp(`^rtcedge: ${f.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} (is not a readable rtcedge backup|is damaged|is incomplete|is not an rtcedge backup)`));
      if (f === withLink) expect(r.stderr).toBe(`rtcedge: ${withLink} is not an rtcedge backup: it holds links or special files (data/secret)\n`);
      expect(r.stderr.split('\n')).toHaveLength(2);
      expect(existsSync(target)).toBe(false);
    }
  });
});

describe('bans and turn credentials', () => {
  test('bans lists the running server\'s ban file (none here); turn credentials needs a secret', async () => {
    expect(await cli(['bans', '--json'])).toEqual({ status: 0, stdout: '[]\n', stderr: '' });
    expect(await cli(['turn', 'credentials', 'alice'])).toEqual({
      status: 1,
      stdout: '',
      stderr: 'rtcedge: turn.auth_secrets is empty: add a shared secret to the configuration first\n',
    });
  });
});

describe('config check', () => {
  test('ok for a valid file, each problem with its key for a bad one (exit 2)', async () => {
    expect(runCli(['config', 'check', configFile], dir)).toEqual({ status: 0, stdout: `${configFile}: ok\n`, stderr: '' });
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'admin: { listen: nowhere }\nsip: { listne: [] }\n');
    expect(runCli(['config', 'check', bad], dir)).toEqual({
      status: 2,
      stdout: '',
      stderr: `config ${bad}: unknown key "sip.listne"\nconfig ${bad}: admin.listen: expected host:port, e.g. 127.0.0.1:9060, got "nowhere"\n`,
    });
  });
});

describe('check (monitoring plugin)', () => {
  const check = (args: string[]) => runCliAsync(['check', '127.0.0.1', '--udp-port', String(SIP_PORT), '--tls-port', String(TLS_PORT), '--stun-port', String(TURN_PORT), '-t', '2', ...args], dir);
  const PERF = /\| sip_udp_time=[\d.]+s;;;0 sip_tls_time=[\d.]+s;;;0 cert_days=\d+;\d+;\d+;; stun_time=[\d.]+s;;;0\n$/;

  test('OK: SIP over UDP and TLS and STUN answer, the certificate has years left', async () => {
    const r = await check([]);
    expect(r.stdout).toMatch(/^OK - 127\.0\.0\.1: SIP\/UDP answered in [\d.]+ ms, SIP\/TLS answered in [\d.]+ ms, certificate b\.example\.test expires in 365\d days, STUN answered in [\d.]+ ms /);
    expect(r.stdout).toMatch(PERF);
    expect(r.status).toBe(0);
  });

  test('WARNING: the certificate expires within -w days', async () => {
    const r = await check(['-w', '4000', '-c', '10']);
    expect(r.stdout).toMatch(/^WARNING - .*cert_days=365\d;4000;10;;/);
    expect(r.status).toBe(1);
  });

  test('CRITICAL: no STUN answer on a port nobody serves; also within -c days', async () => {
    const r = await runCliAsync(['check', '127.0.0.1', '--udp-port', String(SIP_PORT), '--tls-port', '0', '--stun-port', '27079', '-t', '1'], dir);
    expect(r.stdout).toMatch(/^CRITICAL - 127\.0\.0\.1: STUN Binding: (no answer within 1 s|.*ECONNREFUSED.*), SIP\/UDP answered in [\d.]+ ms \| sip_udp_time=/);
    expect(r.status).toBe(2);
    const cert = await check(['-w', '5000', '-c', '4000']);
    expect(cert.stdout).toMatch(/^CRITICAL - /);
    expect(cert.status).toBe(2);
  });

  test('UNKNOWN: thresholds that make no sense', async () => {
    expect(await check(['-w', '5', '-c', '10'])).toEqual({ status: 3, stdout: 'UNKNOWN - -c (10 days) must not exceed -w (5 days)\n', stderr: '' });
    expect(await check(['-w', 'soon'])).toEqual({ status: 3, stdout: 'UNKNOWN - -w and -c: expected a number of days >= 0\n', stderr: '' });
  });
});
