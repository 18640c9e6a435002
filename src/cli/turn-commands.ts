/**
 * `rtcedge turn credentials USER [--ttl s] [--secret S]`: issues a TURN REST API pair
 * (username `EXPIRY:USER`, password base64(HMAC-SHA1(secret, username))) with
 * `--secret`, the first secret of `turn.auth_secrets` or the one secret shared
 * in a Redis store, as a web service would hand it to a WebRTC client. The running server accepts it until EXPIRY.
 */
import type { Config } from '../config/load.js';
import { createRestCredentials, type RestCredentials } from '../turn/rest-credentials.js';
import { CliError } from './errors.js';
import { RedisStore, StoreError } from '../store/index.js';

/** Default lifetime of issued credentials, s (one day). */
export const DEFAULT_CREDENTIALS_TTL = 86_400;

/**
 * Issues credentials for `user` valid `ttl` seconds (text from the command line),
 * signed with `secret` (`--secret`, which must be one the server accepts), or else
 * with the first of `turn.auth_secrets`, or else, on a Redis store, with its one
 * shared secret (`rtcedge turn secret add`).
 * @throws CliError when no secret can be chosen (none configured, or several shared
 *   ones and no `--secret`), `--secret` is not accepted by the server, `ttl` is not a
 *   whole number >= 1, or `user` is empty or holds ":"; StoreError 'unavailable' when
 *   the Redis store cannot be reached.
 */
export async function turnCredentials(config: Config, user: string, ttl: string | undefined, nowMs = Date.now(), secret?: string): Promise<RestCredentials> {
  const ttlS = ttl === undefined ? DEFAULT_CREDENTIALS_TTL : Number(ttl);
  if (!Number.isInteger(ttlS) || ttlS < 1) throw new CliError(`--ttl: expected a whole number of seconds >= 1, got "${ttl}"`);
  if (user.length === 0 || user.includes(':')) throw new CliError('USER must be non-empty and contain no ":"');
  return createRestCredentials(await signingSecret(config, secret), user, ttlS, nowMs);
}

/** The secret `turn credentials` signs with (see {@link turnCredentials}). */
async function signingSecret(config: Config, wanted: string | undefined): Promise<string> {
  const configured = config.turn.auth_secrets;
  if (wanted === undefined && configured[0] !== undefined) return configured[0];
  const shared = config.store.type === 'redis' ? await sharedSecrets(config) : [];
  if (wanted !== undefined) {
    if (configured.includes(wanted) || shared.includes(wanted)) return wanted;
    throw new CliError('--secret: the server does not accept this secret (it is neither in turn.auth_secrets nor added with `rtcedge turn secret add`)');
  }
  if (shared.length === 1) return shared[0]!;
  if (shared.length > 1) throw new CliError(`the Redis store holds ${shared.length} TURN secrets: choose one with --secret`);
  throw new CliError(
    config.store.type === 'redis'
      ? 'no TURN secret: add one to turn.auth_secrets or with `rtcedge turn secret add`'
      : 'turn.auth_secrets is empty: add a shared secret to the configuration first',
  );
}

async function sharedSecrets(config: Config): Promise<string[]> {
  const store = await new RedisStore(config.store.redis).connect();
  try {
    return await store.turnSecrets();
  } finally {
    await store.close();
  }
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
