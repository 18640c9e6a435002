/**
 * `rtcedge turn credentials USER [--ttl s]`: issues a TURN REST API pair
 * (username `EXPIRY:USER`, password base64(HMAC-SHA1(secret, username))) with
 * the first secret of `turn.auth_secrets`, as a web service would hand it to
 * a WebRTC client. The running server accepts it until EXPIRY.
 */
import type { Config } from '../config/load.js';
import { createRestCredentials, type RestCredentials } from '../turn/rest-credentials.js';
import { CliError } from './errors.js';

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
