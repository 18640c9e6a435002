/**
 * The CLI's side of the admin API (src/admin/admin-server.ts): commands that
 * act on a running server send their request to `admin.listen` with the
 * bearer token from `<data_dir>/admin-token`.
 */
import { readFileSync } from 'node:fs';
import type { Config } from '../config/schema.js';
import { dataDirLayout } from '../config/data-dir.js';
import { CliError } from './errors.js';

/** Longest wait for an answer, ms. */
export const ADMIN_TIMEOUT_MS = 10_000;

/** Base URL of the admin listener of a configuration, e.g. `http://127.0.0.1:9060`. */
export function adminUrl(config: Pick<Config, 'admin'>): string {
  const { host, port } = config.admin.listen;
  const h = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host;
  return `http://${h.includes(':') ? `[${h}]` : h}:${port}`;
}

/**
 * Send `method path` to the running server and return its JSON answer.
 *
 * @throws CliError when admin is disabled, the token file is missing, no server
 *   answers (naming the address), or the server answers with an error status (its message).
 */
export async function adminRequest<T>(config: Pick<Config, 'admin' | 'data_dir'>, method: string, path: string): Promise<T> {
  if (!config.admin.enabled) throw new CliError('admin.enabled is false in the configuration: this command needs the admin API of the running server');
  const tokenFile = dataDirLayout(config.data_dir).adminToken;
  let token: string;
  try {
    token = readFileSync(tokenFile, 'utf8').trim();
  } catch (err) {
    throw new CliError(`cannot read the admin token ${tokenFile} (has the server run with this data_dir?): ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const url = adminUrl(config) + path;
  let res: Response;
  try {
    res = await fetch(url, { method, headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(ADMIN_TIMEOUT_MS) });
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
    throw new CliError(`no rtcedge server answers on ${adminUrl(config)} (${cause}): is \`rtcedge serve\` running with this configuration?`);
  }
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new CliError(`unexpected answer from ${url}: HTTP ${res.status}`);
  }
  if (!res.ok) throw new CliError(`${(body as { error?: string }).error ?? `HTTP ${res.status}`}`);
  return body as T;
}
