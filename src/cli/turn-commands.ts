/**
 * `rtcedge turn credentials USER [--ttl s]`: issues a TURN REST API pair
 * (username `EXPIRY:USER`, password base64(HMAC-SHA1(secret, username))) with
 * the first secret of `turn.auth_secrets`, as a web service would hand it to
 * a WebRTC client. The running server accepts it until EXPIRY.
 */
import type { Config } from '../config/load.js';
import { createRestCredentials, type RestCredentials } from '../turn/rest-credentials.js';
import { CliError } from './errors.js';
import { RedisStore, StoreError } from '../store/index.js';

/** Default lifetime of issued credentials, s (one day). */
export const DEFAULT_CREDENTIALS_TTL = 86_400;

/**
 * Issues credentials for `user` valid `ttl` seconds (text from the command line).
 * @throws CliError when `turn.auth_secrets` is empty, `ttl` is not a whole number >= 1, or `user` is empty.
 */
export function turnCredentials(config: Config, user: string, ttl: string | undefined, nowMs = Date.now()): RestCredentials {
  const secret = config.turn.auth_secrets[0];
  if (secret === undefined) throw new CliError('turn.auth_secrets is empty: add a shared secret to the configuration first');
  const ttlS = ttl === undefined ? DEFAULT_CREDENTIALS_TTL : Number(ttl);
  if (!Number.isInteger(ttlS) || ttlS < 1) throw new CliError(`--ttl: expected a whole number of seconds >= 1, got "${ttl}"`);
  if (user.length === 0 || user.includes(':')) throw new CliError('USER must be non-empty and contain no ":"');
  return createRestCredentials(secret, user, ttlS, nowMs);
}

/** The lines `rtcedge turn credentials` prints: `username=...`, `password=...`, `expires=<ISO time>`. */
export function formatCredentials(c: RestCredentials): string[] {
  return [`username=${c.username}`, `password=${c.password}`, `expires=${new Date(c.expires * 1000).toISOString()}`];
}

/**
 * `rtcedge turn secret add|del|list`: the TURN REST API secrets every node of a
 * Redis store accepts besides `turn.auth_secrets` (each node reads them every 10 s).
 * @returns the lines to print.
 * @throws CliError when `store.type` is not redis, or the secret is refused; StoreError 'unavailable'.
 */
export async function turnSecretCommand(config: Config, op: 'add' | 'del' | 'list', secret?: string): Promise<string[]> {
  if (config.store.type !== 'redis') throw new CliError('shared TURN secrets need store.type: redis; with SQLite list them in turn.auth_secrets');
  const store = await new RedisStore(config.store.redis).connect();
  try {
    if (op === 'list') return await store.turnSecrets();
    if (!secret) throw new CliError('give the secret');
    if (op === 'add') {
      await store.addTurnSecret(secret).catch((err: unknown) => {
        throw err instanceof StoreError && err.code === 'invalid' ? new CliError(err.message) : err;
      });
      return ['added'];
    }
    if (!(await store.deleteTurnSecret(secret))) throw new CliError('no such TURN secret');
    return ['deleted'];
  } finally {
    await store.close();
  }
}
