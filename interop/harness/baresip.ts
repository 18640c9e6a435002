/**
 * baresip (Debian baresip-core 1.0.0) as a headless SIP user agent: its own
 * config directory, ctrl_tcp control, no sound card (sine source, null player).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CtrlTcpClient, type CtrlEvent, type CtrlResponse } from './ctrl-tcp.js';
import { waitForTcpPort } from './ports.js';
import { spawnProcess, type ManagedProcess } from './process.js';
import { makeSelfSignedPem } from './tls-files.js';

/** Fields of one line of baresip's `accounts` file. */
export interface BaresipAccount {
  /** Address of record with optional URI params, e.g. `sip:bob@127.0.0.1:25061;transport=tls`. */
  aor: string;
  password?: string;
  /** `auto` answers incoming calls at once; baresip's default is manual. */
  answermode?: 'auto' | 'manual' | 'early';
  /** Registration interval (s); 0 means never register. */
  regint?: number;
  /** Outbound proxy URI, e.g. `sip:127.0.0.1:25061;transport=tls`. */
  outbound?: string;
  /** Further `;key=value` account parameters, written as given. */
  extra?: string[];
}

/** Formats an accounts-file line: `<aor>;auth_pass=...;answermode=...;regint=...`. */
export function formatAccount(a: BaresipAccount): string {
  const parts = [`<${a.aor}>`];
  if (a.password !== undefined) parts.push(`auth_pass=${a.password}`);
  if (a.answermode !== undefined) parts.push(`answermode=${a.answermode}`);
  if (a.regint !== undefined) parts.push(`regint=${a.regint}`);
  if (a.outbound !== undefined) parts.push(`outbound="${a.outbound}"`);
  parts.push(...(a.extra ?? []));
  return parts.join(';');
}

/** Options of startBaresip. */
export interface BaresipOptions {
  /** Label; the config directory is `<parentDir>/<name>`. */
  name: string;
  parentDir: string;
  /** UDP+TCP listen port on `host`; with tlsListener, TLS listens on sipPort+1. */
  sipPort: number;
  /** Address SIP and RTP use (sip_listen, net_interface): default 127.0.0.1; `::1` for IPv6. */
  host?: string;
  /** ctrl_tcp port on 127.0.0.1. */
  ctrlPort: number;
  /** RTP port range [min, max]. */
  rtpPorts: [number, number];
  accounts: BaresipAccount[];
  /** CA file (sip_cafile, required by baresip; 1.0.0 does not verify with it). Default: the UA's own certificate. */
  cafile?: string;
  /** Give the UA a certificate so it listens for TLS on sipPort+1 (default true). */
  tlsListener?: boolean;
  /** Extra lines appended to the config file. */
  extraConfig?: string[];
  /** Passed as `-t`: baresip quits on its own after this many s (safety net; default 150). */
  lifetimeS?: number;
  /** Passed as `-s`: SIP trace on stdout. */
  sipTrace?: boolean;
  /** Bound on start-up until ctrl_tcp answers (ms, default 10000). */
  startTimeoutMs?: number;
}

/** A running baresip UA. */
export interface BaresipUa {
  readonly name: string;
  readonly pid: number;
  readonly dir: string;
  readonly process: ManagedProcess;
  readonly ctrl: CtrlTcpClient;
  /** Events received on ctrl_tcp so far (same array as ctrl.events). */
  readonly events: CtrlEvent[];
  /** Sends a ctrl_tcp command (`dial`, `hangup`, `reginfo`, `callstat`, `accept`, ...). */
  command(cmd: string, params?: string, timeoutMs?: number): Promise<CtrlResponse>;
  /** First event at index >= from satisfying pred; rejects after timeoutMs (ms). */
  waitForEvent(pred: (e: CtrlEvent) => boolean, timeoutMs: number, from?: number): Promise<CtrlEvent>;
  /** First event of this type (CALL_ESTABLISHED, CALL_CLOSED, ...) at index >= from. */
  waitForEventType(type: string, timeoutMs: number, from?: number): Promise<CtrlEvent>;
  /** Polls `reginfo` every 200 ms until every account shows OK; returns its text. Rejects after timeoutMs. */
  waitForRegistered(timeoutMs: number): Promise<string>;
  /** `dial uri` (give the URI without `;transport=`, baresip appends the account's). */
  dial(uri: string): Promise<CtrlResponse>;
  hangup(): Promise<CtrlResponse>;
  /** Stops the UA by PID (SIGTERM, SIGKILL after graceMs). */
  stop(graceMs?: number): Promise<void>;
}

/** Reads `reginfo` text: true when it lists at least one account and all are OK. */
export function reginfoAllOk(text: string): boolean {
  // eslint-disable-next-line no-control-regex
  const plain = text.replace(/\x1b\[[0-9;]*m/g, '');
  const lines = plain.split('\n').filter((l) => /\bsip:/.test(l));
  return lines.length > 0 && lines.every((l) => /\bOK\b/.test(l));
}

/** Writes the UA's config dir, spawns `baresip -f DIR`, connects ctrl_tcp. */
export async function startBaresip(opts: BaresipOptions): Promise<BaresipUa> {
  const dir = join(opts.parentDir, opts.name);
  mkdirSync(dir, { recursive: true });
  const tls = opts.tlsListener ?? true;
  let cafile = opts.cafile;
  let certificate: string | undefined;
  if (tls || cafile === undefined) {
    const pem = await makeSelfSignedPem(dir, 'ua');
    certificate = tls ? pem.combinedPath : undefined;
    cafile ??= pem.certPath;
  }
  const host = opts.host ?? '127.0.0.1';
  const config = [
    'module_path /usr/lib/baresip/modules',
    `sip_listen ${host.includes(':') ? `[${host}]` : host}:${opts.sipPort}`,
    `sip_cafile ${cafile}`,
    ...(certificate ? [`sip_certificate ${certificate}`] : []),
    `net_interface ${host}`,
    'audio_source ausine,440',
    'ausrc_srate 48000',
    'ausrc_channels 2',
    'audio_player aubridge,nil',
    'audio_alert aubridge,nil',
    `rtp_ports ${opts.rtpPorts[0]}-${opts.rtpPorts[1]}`,
    'rtp_stats yes',
    'statmode_default off',
    'module g711.so',
    'module ausine.so',
    'module aubridge.so',
    'module stun.so',
    'module turn.so',
    'module ice.so',
    'module_tmp uuid.so',
    'module_tmp account.so',
    'module_app menu.so',
    'module_app ctrl_tcp.so',
    `ctrl_tcp_listen 127.0.0.1:${opts.ctrlPort}`,
    ...(opts.extraConfig ?? []),
  ];
  writeFileSync(join(dir, 'config'), config.join('\n') + '\n');
  writeFileSync(join(dir, 'accounts'), opts.accounts.map(formatAccount).join('\n') + '\n');
  const args = ['-f', dir, '-t', String(opts.lifetimeS ?? 150)];
  if (opts.sipTrace) args.push('-s');
  const proc = spawnProcess('baresip', args, {
    cwd: dir,
    onLine: process.env.RTCEDGE_ECHO_PEERS ? (l) => console.log(`[${opts.name}] ${l.text}`) : undefined,
  });
  const startTimeout = opts.startTimeoutMs ?? 10_000;
  let ctrl: CtrlTcpClient;
  try {
    await Promise.race([
      waitForTcpPort('127.0.0.1', opts.ctrlPort, startTimeout),
      proc.exited.then((st) => {
        throw new Error(`baresip ${opts.name} exited at start (${JSON.stringify(st)})\n${proc.tail()}`);
      }),
    ]);
    ctrl = await CtrlTcpClient.connect('127.0.0.1', opts.ctrlPort);
  } catch (err) {
    await proc.stop(1000);
    throw err;
  }
  const ua: BaresipUa = {
    name: opts.name,
    pid: proc.pid,
    dir,
    process: proc,
    ctrl,
    events: ctrl.events,
    command: (cmd, params, timeoutMs) => ctrl.command(cmd, params, timeoutMs),
    waitForEvent: (pred, timeoutMs, from) => ctrl.waitForEvent(pred, timeoutMs, from),
    waitForEventType: (type, timeoutMs, from) => ctrl.waitForEvent((e) => e.type === type, timeoutMs, from),
    async waitForRegistered(timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      let last = '';
      for (;;) {
        const r = await ctrl.command('reginfo', '', Math.max(500, deadline - Date.now()));
        last = r.data ?? '';
        if (reginfoAllOk(last)) return last;
        if (Date.now() + 200 > deadline) {
          throw new Error(`baresip ${opts.name} not registered after ${timeoutMs} ms; reginfo: ${last}\n${proc.tail()}`);
        }
        await new Promise((res) => setTimeout(res, 200));
      }
    },
    dial: (uri) => ctrl.command('dial', uri),
    hangup: () => ctrl.command('hangup'),
    async stop(graceMs = 3000) {
      ctrl.close();
      await proc.stop(graceMs);
    },
  };
  return ua;
}
