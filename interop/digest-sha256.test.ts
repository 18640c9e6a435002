/**
 * SHA-256 digest (RFC 8760) answered by an independent SIP user agent:
 * linphone-daemon (Debian linphone-cli 5.1, liblinphone/belle-sip 5.1) registers
 * alice while rtcedge offers SHA-256 and MD5 challenges in one 401, SHA-256 first.
 * belle-sip picks SHA-256, answers with a single Authorization, gets 200 and the
 * binding is stored; `quit` on the daemon's control socket unregisters (again
 * with SHA-256) and removes the binding.
 *
 * Running linphone headless:
 * - HOME is a temp dir and `$HOME/.local/share/linphone` must exist: without it
 *   liblinphone cannot open its database, stops starting the core and never
 *   opens its SIP socket (registering then fails with "No listening point");
 * - no sound card: the ALSA/PulseAudio errors in its log are harmless;
 * - its SIP socket is only opened once liblinphone sees the network as reachable,
 *   i.e. once the host has a default route (it finds its local address by
 *   connecting a UDP socket to a public address; nothing is sent there);
 * - `--pipe NAME` makes it read commands from the UNIX socket /tmp/NAME instead
 *   of stdin; `quit` unregisters, exits and removes the socket.
 *
 * Ports: rtcedge 29860 (UDP), linphone-daemon 29861 (UDP), both on 127.0.0.1.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWithPeers } from './harness/peers.js';
import { parseAuthParams } from '../src/auth/digest.js';
import { assertPortsFree } from './harness/ports.js';
import { spawnProcess, stopAllStarted, type ManagedProcess } from './harness/process.js';
import { startRtcedge, type Rtcedge } from './harness/rtcedge.js';
import { headerValues } from './harness/sip-log.js';
import { makeTempDir, removeTempDir } from './harness/temp-dir.js';

const SERVER = 29860;
const LINPHONE = 29861;
const REALM = 'example.test';
const AOR = `sip:alice@${REALM}`;
const PASSWORD = 'alice-sha-pw-4';

/** liblinphone configuration: one account registering through rtcedge, UDP only, loopback only, no video. */
function linphonerc(): string {
  return [
    '[sip]',
    `sip_port=${LINPHONE}`,
    'sip_tcp_port=-1',
    'sip_tls_port=-1',
    'bind_address=127.0.0.1',
    'use_ipv6=0',
    'guess_hostname=0',
    'register_only_when_network_is_up=0',
    'default_proxy=0',
    '',
    '[proxy_0]',
    `reg_proxy=<sip:127.0.0.1:${SERVER}>`,
    `reg_identity=${AOR}`,
    'reg_expires=120',
    'reg_sendregister=1',
    'publish=0',
    '',
    '[auth_info_0]',
    'username=alice',
    `passwd=${PASSWORD}`,
    `realm=${REALM}`,
    `domain=${REALM}`,
    '',
    '[video]',
    'enabled=0',
    'capture=0',
    'display=0',
    '',
  ].join('\n');
}

/**
 * A client of linphone-daemon's control socket. The daemon serves one client
 * at a time and drops further connections, so one connection carries every command.
 */
class DaemonClient {
  private buffer = '';
  private closed = false;
  private readonly waiters = new Set<() => void>();
  private constructor(private readonly socket: Socket) {
    socket.on('data', (d: Buffer) => {
      this.buffer += d.toString('utf8');
      this.notify();
    });
    socket.on('close', () => {
      this.closed = true;
      this.notify();
    });
    socket.on('error', () => undefined);
  }

  static open(path: string, timeoutMs = 5000): Promise<DaemonClient> {
    return new Promise((resolve, reject) => {
      const s = connect(path);
      const timer = setTimeout(() => {
        s.destroy();
        reject(new Error(`cannot connect to ${path} in ${timeoutMs} ms`));
      }, timeoutMs);
      s.once('connect', () => {
        clearTimeout(timer);
        resolve(new DaemonClient(s));
      });
      s.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  }

  private notify(): void {
    for (const w of [...this.waiters]) w();
  }

  /**
   * Sends a command and returns its answer ("Status: Ok|Error" and optional
   * fields): what arrived once 300 ms pass without more data, or when the daemon
   * closes the connection. Rejects after timeoutMs without any answer.
   */
  command(command: string, timeoutMs = 5000): Promise<string> {
    this.buffer = '';
    this.socket.write(`${command}\n`);
    return new Promise((resolve, reject) => {
      let idle: NodeJS.Timeout | undefined;
      const finish = (): void => {
        clearTimeout(timer);
        clearTimeout(idle);
        this.waiters.delete(onChange);
        if (/^Status: /m.test(this.buffer)) resolve(this.buffer);
        else reject(new Error(`no answer to "${command}"; got: ${JSON.stringify(this.buffer)}`));
      };
      const onChange = (): void => {
        clearTimeout(idle);
        if (this.closed) finish();
        else if (this.buffer) idle = setTimeout(finish, 300);
      };
      const timer = setTimeout(finish, timeoutMs);
      this.waiters.add(onChange);
      onChange();
    });
  }

  close(): void {
    this.socket.destroy();
  }
}

const algorithmOf = (authHeader: string): string | undefined => parseAuthParams(authHeader).params.get('algorithm');

describeWithPeers(['linphone-daemon'])('SHA-256 digest answered by linphone (liblinphone 5.1)', () => {
  let dir: string;
  let server: Rtcedge | undefined;
  let linphone: ManagedProcess | undefined;
  let logPath: string;
  let control: DaemonClient | undefined;
  const pipeName = `rtcedge-sha256-${process.pid}-${randomBytes(4).toString('hex')}`;
  const socketPath = join('/tmp', pipeName);

  /** linphone's output and log file, for failure messages. */
  const linphoneDiagnostics = (): string => {
    const log = existsSync(logPath) ? readFileSync(logPath, 'utf8').split('\n').slice(-40).join('\n') : '(no log file yet)';
    return `linphone-daemon output:\n${linphone?.tail() ?? ''}\nlinphone log (tail):\n${log}`;
  };

  beforeAll(async () => {
    await assertPortsFree('127.0.0.1', [SERVER, LINPHONE]);
    dir = makeTempDir('digest-sha256');
    server = await startRtcedge({
      dir: join(dir, 'server'),
      ports: { udp: SERVER },
      users: [{ aor: `alice@${REALM}`, password: PASSWORD }],
      config: { sip: { auth: { algorithms: ['SHA-256', 'MD5'] } } },
    });

    const home = join(dir, 'linphone-home');
    mkdirSync(join(home, '.local', 'share', 'linphone'), { recursive: true });
    const configPath = join(dir, 'linphonerc');
    writeFileSync(configPath, linphonerc());
    logPath = join(dir, 'linphone.log');
    linphone = spawnProcess('linphone-daemon', ['--pipe', pipeName, '--config', configPath, '--log', logPath], {
      cwd: dir,
      env: { HOME: home, XDG_CONFIG_HOME: join(home, '.config'), XDG_DATA_HOME: join(home, '.local', 'share') },
    });
  }, 60_000);

  afterAll(async () => {
    control?.close();
    await linphone?.stop(3000);
    await server?.stop();
    await stopAllStarted();
    if (existsSync(socketPath)) rmSync(socketPath, { force: true });
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
    control = await DaemonClient.open(socketPath);
    const deadline = Date.now() + 5000;
    let status = '';
    while (!/State: LinphoneRegistrationOk/.test(status) && Date.now() < deadline) {
      if (status) await new Promise((r) => setTimeout(r, 100));
      status = await control.command('register-status ALL');
    }
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
    const status = await Promise.race([linphone!.exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 10_000))]);
    expect(status, linphoneDiagnostics()).toEqual({ code: 0, signal: null });

    const unregister = server!
      .sipLog({ direction: 'recv', method: 'REGISTER' })
      .filter((e) => /^Expires: 0\s*$/im.test(e.message) && headerValues(e.message, 'Authorization').length > 0);
    expect(unregister.length).toBeGreaterThanOrEqual(1);
    expect(unregister.every((e) => headerValues(e.message, 'Authorization').map(algorithmOf).join() === 'SHA-256')).toBe(true);
    expect(server!.bindings(AOR)).toEqual([]);
    expect(existsSync(socketPath)).toBe(false);
  });
});
