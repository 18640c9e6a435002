/**
 * Checks `rtcedge serve` runs before starting anything, so that a bad path in
 * the configuration is one line naming the key, the file and the fix instead
 * of a stack trace from deep in start-up.
 */
import { accessSync, constants, statSync } from 'node:fs';
import type { Config } from '../config/schema.js';
import { CliError } from './errors.js';

/** `config <file>: ` (or `config (defaults): `), the prefix of configuration messages. */
function where(configFile: string | undefined): string {
  return `config ${configFile ?? '(defaults)'}: `;
}

/** What is wrong with a path that must be a readable regular file, or undefined when nothing is. */
function fileProblem(path: string): string | undefined {
  try {
    if (!statSync(path).isFile()) return `${path} is not a regular file`;
    accessSync(path, constants.R_OK);
    return undefined;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? `${path}: file not found` : `cannot read ${path} (${code ?? (err as Error).message})`;
  }
}

/**
 * Check `data_dir` (absent or a directory) and every file the configuration
 * names (`sip.tls.cert`, `sip.tls.key`, `sip.tls.ca[i]`: readable regular files).
 *
 * @param configFile the configuration file, for the message; undefined for the defaults.
 * @throws CliError (exit status 1) naming the first bad key, its path and the fix.
 */
export function checkStartupPaths(config: Config, configFile: string | undefined): void {
  try {
    if (!statSync(config.data_dir).isDirectory()) {
      throw new CliError(`${where(configFile)}data_dir: ${config.data_dir} is not a directory (point data_dir to a directory, or remove that file)`);
    }
  } catch (err) {
    if (err instanceof CliError) throw err;
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new CliError(`${where(configFile)}data_dir: cannot use ${config.data_dir} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
  }
  const tls = config.sip.tls;
  const files: [string, string | undefined][] = [
    ['sip.tls.cert', tls.cert],
    ['sip.tls.key', tls.key],
    ...(tls.ca ?? []).map((f, i): [string, string] => [`sip.tls.ca[${i}]`, f]),
  ];
  for (const [key, path] of files) {
    if (path === undefined) continue;
    const problem = fileProblem(path);
    if (problem !== undefined) {
      const fix = key.startsWith('sip.tls.ca') ? 'fix the path or remove the entry' : 'fix the path, or remove sip.tls.cert and sip.tls.key to use a generated certificate';
      throw new CliError(`${where(configFile)}${key}: ${problem} (${fix})`);
    }
  }
}
