/**
 * linphone-daemon (Debian linphone-cli 5.1, liblinphone/belle-sip 5.1) as a
 * headless SIP user agent: a liblinphonerc per run, the daemon's control
 * socket, and its log for failure messages.
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
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { spawnProcess, type ManagedProcess } from './process.js';

/** One account of a linphone UA registering through a server on 127.0.0.1 over UDP. */
export interface LinphoneAccount {
  /** linphone's own UDP port on 127.0.0.1. */
  sipPort: number;
  /** The registrar/proxy's UDP port on 127.0.0.1. */
  serverPort: number;
  /** `sip:user@realm`. */
  aor: string;
  username: string;
  password: string;
  realm: string;
  /** Registration expiry, s (default 120). */
  expiresS?: number;
}

/** liblinphone configuration: one account registering through the server, UDP only, loopback only, no video. */
export function linphonerc(a: LinphoneAccount): string {
  return [
    '[sip]',
    `sip_port=${a.sipPort}`,
    'sip_tcp_port=-1',
    'sip_tls_port=-1',
    'bind_address=127.0.0.1',
    'use_ipv6=0',
    'guess_hostname=0',
    'register_only_when_network_is_up=0',
    'default_proxy=0',
    '',
    '[proxy_0]',
    `reg_proxy=<sip:127.0.0.1:${a.serverPort}>`,
    `reg_identity=${a.aor}`,
    `reg_expires=${a.expiresS ?? 120}`,
    'reg_sendregister=1',
    'publish=0',
    '',
    '[auth_info_0]',
    `username=${a.username}`,
    `passwd=${a.password}`,
    `realm=${a.realm}`,
    `domain=${a.realm}`,
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
export class DaemonClient {
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

/** A running linphone-daemon. */
export interface LinphoneUa {
  readonly process: ManagedProcess;
  /** Path of the control socket (/tmp/NAME). */
  readonly socketPath: string;
  /** Its output and the tail of its log file, for failure messages. */
  diagnostics(): string;
  /** Connect to the control socket (once: the daemon serves one client). */
  control(): Promise<DaemonClient>;
  /** Polls `register-status ALL` every 100 ms until it shows LinphoneRegistrationOk; returns the last answer. */
  waitForRegistered(client: DaemonClient, timeoutMs: number): Promise<string>;
  /** Stop it by PID and remove its socket. */
  stop(graceMs?: number): Promise<void>;
}

/**
 * Write a linphonerc under `dir` and start `linphone-daemon --pipe` with a HOME
 * of its own there; extra daemon arguments (e.g. `--auto-answer`) in `args`.
 */
export function startLinphone(dir: string, label: string, account: LinphoneAccount, args: string[] = []): LinphoneUa {
  const pipeName = `rtcedge-${label}-${process.pid}-${randomBytes(4).toString('hex')}`;
  const socketPath = join('/tmp', pipeName);
  const home = join(dir, 'linphone-home');
  mkdirSync(join(home, '.local', 'share', 'linphone'), { recursive: true });
  const configPath = join(dir, 'linphonerc');
  writeFileSync(configPath, linphonerc(account));
  const logPath = join(dir, 'linphone.log');
  const proc = spawnProcess('linphone-daemon', ['--pipe', pipeName, '--config', configPath, '--log', logPath, ...args], {
    cwd: dir,
    env: { HOME: home, XDG_CONFIG_HOME: join(home, '.config'), XDG_DATA_HOME: join(home, '.local', 'share') },
  });
  return {
    process: proc,
    socketPath,
    diagnostics() {
      const log = existsSync(logPath) ? readFileSync(logPath, 'utf8').split('\n').slice(-40).join('\n') : '(no log file yet)';
      return `linphone-daemon output:\n${proc.tail()}\nlinphone log (tail):\n${log}`;
    },
    control: () => DaemonClient.open(socketPath),
    async waitForRegistered(client, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      let status = '';
      while (!/State: LinphoneRegistrationOk/.test(status) && Date.now() < deadline) {
        if (status) await new Promise((r) => setTimeout(r, 100));
        status = await client.command('register-status ALL');
      }
      return status;
    },
    async stop(graceMs = 3000) {
      await proc.stop(graceMs);
      if (existsSync(socketPath)) rmSync(socketPath, { force: true });
    },
  };
}
