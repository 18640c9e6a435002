/**
 * sipsak (Debian package sipsak 0.9.8) runs: OPTIONS, digest REGISTER.
 */
import { runCommand, type CommandResult } from './process.js';

/** Result of runSipsak: exit status, output, and the status codes of SIP response lines seen. */
export interface SipsakResult extends CommandResult {
  /** Codes of every `SIP/2.0 NNN` line in the output, in order. */
  statusCodes: number[];
}

/**
 * Runs `sipsak ...args` (under `timeout`, bounded by timeoutMs ms, default
 * 15000) and collects its output. Never rejects for a non-zero exit.
 */
export async function runSipsak(args: string[], opts: { timeoutMs?: number } = {}): Promise<SipsakResult> {
  const timeoutMs = opts.timeoutMs ?? 15_000;
  const seconds = Math.max(1, Math.ceil(timeoutMs / 1000));
  const r = await runCommand('timeout', ['-k', '2', String(seconds), 'sipsak', ...args], { timeoutMs: timeoutMs + 4000 });
  const statusCodes = [...r.output.matchAll(/SIP\/2\.0 (\d{3})/g)].map((m) => Number(m[1]));
  return { ...r, statusCodes };
}

/** Arguments of a digest REGISTER: `-U -C contact -s aorUri -u user -a password -x expires`. */
export function sipsakRegisterArgs(o: {
  /** Request URI / AOR, e.g. `sip:carol@127.0.0.1:25060`. */
  target: string;
  /** Contact to bind, e.g. `sip:carol@127.0.0.1:7777`. */
  contact: string;
  user: string;
  password: string;
  /** Expires (s); 0 removes the binding. */
  expires: number;
}): string[] {
  return ['-U', '-C', o.contact, '-s', o.target, '-u', o.user, '-a', o.password, '-x', String(o.expires)];
}
