/**
 * SHA-256 digest (RFC 8760) answered by an independent SIP user agent:
 * linphone-daemon (Debian linphone-cli 5.1, liblinphone/belle-sip 5.1) registers
 * alice while rtcedge offers SHA-256 and MD5 challenges in one 401, SHA-256 first.
 * belle-sip picks SHA-256, answers with a single Authorization, gets 200 and the
 * binding is stored; `quit` on the daemon's control socket unregisters (again
 * with SHA-256) and removes the binding.
 *
 * How linphone runs headless: harness/linphone.ts.
 *
 * Ports: rtcedge 29860 (UDP), linphone-daemon 29861 (UDP), both on 127.0.0.1.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWithPeers } from './harness/peers.js';
import { parseAuthParams } from '../src/auth/digest.js';
import { assertPortsFree } from './harness/ports.js';
import { stopAllStarted } from './harness/process.js';
import { startLinphone, type DaemonClient, type LinphoneUa } from './harness/linphone.js';
import { startRtcedge, type Rtcedge } from './harness/rtcedge.js';
import { headerValues } from './harness/sip-log.js';
import { makeTempDir, removeTempDir } from './harness/temp-dir.js';

const SERVER = 29860;
const LINPHONE = 29861;
const REALM = 'example.test';
const AOR = `sip:alice@${REALM}`;
const PASSWORD = 'alice-sha-pw-4';

const algorithmOf = (authHeader: string): string | undefined => parseAuthParams(authHeader).params.get('algorithm');

describeWithPeers(['linphone-daemon'])('SHA-256 digest answered by linphone (liblinphone 5.1)', () => {
  let dir: string;
  let server: Rtcedge | undefined;
  let linphone: LinphoneUa | undefined;
  let control: DaemonClient | undefined;

  /** linphone's output and log file, for failure messages. */
  const linphoneDiagnostics = (): string => linphone?.diagnostics() ?? '(linphone not started)';

  beforeAll(async () => {
    await assertPortsFree('127.0.0.1', [SERVER, LINPHONE]);
    dir = makeTempDir('digest-sha256');
    server = await startRtcedge({
      dir: join(dir, 'server'),
      ports: { udp: SERVER },
      users: [{ aor: `alice@${REALM}`, password: PASSWORD }],
      config: { sip: { auth: { algorithms: ['SHA-256', 'MD5'] } } },
    });

    linphone = startLinphone(dir, 'sha256', { sipPort: LINPHONE, serverPort: SERVER, aor: AOR, username: 'alice', password: PASSWORD, realm: REALM });
  }, 60_000);

  afterAll(async () => {
    control?.close();
    await linphone?.stop(3000);
    await server?.stop();
    await stopAllStarted();
    removeTempDir(dir);
  });

  it('registers through the SHA-256 challenge, offered before MD5', async () => {
    const ok = await server!
      .waitForLog((l) => l.msg === 'transaction' && l.method === 'REGISTER' && l.status === 200, 20_000)
      .catch((err: Error) => {
        throw new Error(`${err.message}\n${linphoneDiagnostics()}`);
      });
    const callId = String(ok.callId);

    const challenge = server!.sipLog({ direction: 'send', status: 401, cseqMethod: 'REGISTER', callId })[0];
    expect(challenge, 'a 401 to linphone').toBeDefined();
    const offered = headerValues(challenge!.message, 'WWW-Authenticate').map((v) => parseAuthParams(v).params);
    expect(offered.map((p) => p.get('algorithm'))).toEqual(['SHA-256', 'MD5']);

    const requests = server!.sipLog({ direction: 'recv', method: 'REGISTER', callId });
    const authorized = requests.filter((e) => headerValues(e.message, 'Authorization').length > 0);
    expect(authorized.length).toBeGreaterThanOrEqual(1);
    const first = authorized[0]!;
    const auth = headerValues(first.message, 'Authorization');
    expect(auth, 'one Authorization, for the chosen challenge').toHaveLength(1);
    const p = parseAuthParams(auth[0]!).params;
    expect(algorithmOf(auth[0]!)).toBe('SHA-256');
    expect(p.get('username')).toBe('alice');
    expect(p.get('realm')).toBe(REALM);
    expect(p.get('qop')).toBe('auth');
    expect(p.get('nonce')).toBe(offered[0]!.get('nonce'));
    expect(p.get('response')).toMatch(/^[0-9a-f]{64}$/);

    const answers = server!.sipLog({ direction: 'send', cseqMethod: 'REGISTER', callId }).filter((e) => e.cseq === first.cseq);
    expect(answers.map((e) => e.status)).toEqual([200]);

    const bindings = server!.bindings(AOR).map((b) => b.contact_uri);
    expect(bindings).toHaveLength(1);
    expect(bindings[0]).toMatch(new RegExp(`^sip:alice@127\\.0\\.0\\.1:${LINPHONE}(;|$)`));

    // linphone itself considers the account registered (once it has processed the 200).
    control = await linphone!.control();
    const status = await linphone!.waitForRegistered(control, 5000);
    expect(status).toMatch(/State: LinphoneRegistrationOk/);
  });

  it('quit unregisters with SHA-256 credentials and the binding is removed', async () => {
    const from = server!.logs.length;
    expect(await control!.command('quit')).toMatch(/^Status: Ok/m);
    await server!
      .waitForLog((l) => l.msg === 'transaction' && l.method === 'REGISTER' && l.status === 200, 10_000, from)
      .catch((err: Error) => {
        throw new Error(`${err.message}\n${linphoneDiagnostics()}`);
      });
    const status = await Promise.race([linphone!.process.exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 10_000))]);
    expect(status, linphoneDiagnostics()).toEqual({ code: 0, signal: null });

    const unregister = server!
      .sipLog({ direction: 'recv', method: 'REGISTER' })
      .filter((e) => /^Expires: 0\s*$/im.test(e.message) && headerValues(e.message, 'Authorization').length > 0);
    expect(unregister.length).toBeGreaterThanOrEqual(1);
    expect(unregister.every((e) => headerValues(e.message, 'Authorization').map(algorithmOf).join() === 'SHA-256')).toBe(true);
    expect(server!.bindings(AOR)).toEqual([]);
    expect(existsSync(linphone!.socketPath)).toBe(false);
  });
});
