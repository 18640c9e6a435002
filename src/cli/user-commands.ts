/**
 * `rtcedge user add|passwd|del|list|show`: managing the users of the store.
 * They write the store of `store.type` directly: the SQLite file (WAL: safe
 * while the server runs, and usable while it is stopped) or the shared Redis;
 * the server reads every user from the store.
 */
import type { Config } from '../config/schema.js';
import { ALL_HA1_ALGORITHMS, StoreError, credentialsFor } from '../store/index.js';
import { openUserStore, type UserStore } from '../store/user-store.js';
import { CliError } from './errors.js';
import { userView } from '../admin/admin-server.js';

/** A user named on the command line, resolved against the configuration. */
export interface UserSpec {
  username: string;
  /** Lowercase; one of config.domains unless parsed with requireServed = false. */
  domain: string;
}

/** RFC 3261 §25.1 user: unreserved / escaped / user-unreserved. */
const USER_RE = /^(?:[A-Za-z0-9\-_.!~*'()&=+$,;?/]|%[0-9A-Fa-f]{2})+$/;

/**
 * Parse `user[@domain]`; the domain defaults to the first configured one.
 *
 * @param requireServed refuse a domain that is not in config.domains (true for
 *   add and passwd; false for del, so users of a dropped domain can be removed).
 * @throws CliError when the user part is empty or has characters a SIP URI
 *   user part cannot hold, or (requireServed) the domain is not one of config.domains.
 */
export function parseUserSpec(spec: string, config: Pick<Config, 'domains'>, requireServed = true): UserSpec {
  const at = spec.lastIndexOf('@');
  const username = at < 0 ? spec : spec.slice(0, at);
  const domain = at < 0 ? config.domains[0]! : spec.slice(at + 1).toLowerCase();
  if (!USER_RE.test(username)) {
    throw new CliError(`invalid user name ${JSON.stringify(username)}: use letters, digits and - _ . ! ~ * ' ( ) & = + $ , ; ? /`);
  }
  if (domain === '') throw new CliError(`missing domain after "@" in ${JSON.stringify(spec)}`);
  if (requireServed && !config.domains.includes(domain)) {
    throw new CliError(`domain ${domain} is not served by this server (domains: ${config.domains.join(', ')})`);
  }
  return { username, domain };
}

/** The configuration keys the user commands read. */
type StoreKeys = Pick<Config, 'data_dir' | 'store'>;

async function withStore<T>(config: StoreKeys, fn: (store: UserStore) => Promise<T>): Promise<T> {
  const store = await openUserStore(config);
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

/** Turn the store's typed errors into messages for the user. */
function storeErrorToCli(err: unknown): never {
  if (err instanceof StoreError) throw new CliError(err.message);
  throw err;
}

/**
 * Add a user with HA1s for MD5, SHA-256 and SHA-512-256 (realm = domain), and
 * their telephone numbers (`--phone`, kept for ENUM and local number lookup).
 *
 * @returns the line to print, `added alice@example.test`.
 * @throws CliError when the user exists already, or a phone number is malformed or taken (nothing is stored then).
 */
export async function addUser(config: StoreKeys, user: UserSpec, password: string, phones: readonly string[] = []): Promise<string> {
  const ha1 = credentialsFor(user.username, user.domain, password, ALL_HA1_ALGORITHMS);
  try {
    await withStore(config, (s) => s.addUser({ username: user.username, domain: user.domain, ha1, phones }));
  } catch (err) {
    storeErrorToCli(err);
  }
  return `added ${user.username}@${user.domain}`;
}

/**
 * Replace a user's password (all three HA1s).
 *
 * @returns `password changed for alice@example.test`.
 * @throws CliError when there is no such user.
 */
export async function changePassword(config: StoreKeys, user: UserSpec, password: string): Promise<string> {
  const ha1 = credentialsFor(user.username, user.domain, password, ALL_HA1_ALGORITHMS);
  try {
    await withStore(config, (s) => s.setUserHa1(user.username, user.domain, ha1));
  } catch (err) {
    storeErrorToCli(err);
  }
  return `password changed for ${user.username}@${user.domain}`;
}

/**
 * Delete a user (their bindings expire on their own).
 *
 * @returns `deleted alice@example.test`.
 * @throws CliError when there is no such user.
 */
export async function deleteUser(config: StoreKeys, user: UserSpec): Promise<string> {
  const deleted = await withStore(config, (s) => s.deleteUser(user.username, user.domain));
  if (!deleted) throw new CliError(`no user ${user.username}@${user.domain}`);
  return `deleted ${user.username}@${user.domain}`;
}

/**
 * Users as `user@domain`, one per entry, ordered by domain then user.
 *
 * @param domain only this domain (compared lowercase); undefined: all.
 */
export async function listUsers(config: StoreKeys, domain?: string): Promise<string[]> {
  return withStore(config, async (s) => (await s.listUsers(domain)).map((u) => `${u.username}@${u.domain}`));
}

/**
 * Users of one domain or all, as records without HA1 values (for `--json`):
 * `{ username, domain, phones, algorithms, createdAt }`.
 */
export async function userRecords(config: StoreKeys, domain?: string): Promise<Record<string, unknown>[]> {
  return withStore(config, async (s) => (await s.listUsers(domain)).map(userView));
}

/**
 * One user as a record (see userRecords).
 * @throws CliError when there is no such user.
 */
export async function showUser(config: StoreKeys, user: UserSpec): Promise<Record<string, unknown>> {
  const u = await withStore(config, (s) => s.getUser(user.username, user.domain));
  if (!u) throw new CliError(`no user ${user.username}@${user.domain}`);
  return userView(u);
}

/** `user show` as text lines: `user@domain`, `phones: ...`, `algorithms: ...`, `created: ISO time`. */
export function formatUser(u: Record<string, unknown>): string[] {
  return [
    `${String(u.username)}@${String(u.domain)}`,
    `phones: ${(u.phones as string[]).join(' ') || '-'}`,
    `algorithms: ${(u.algorithms as string[]).join(' ')}`,
    `created: ${new Date((u.createdAt as number) * 1000).toISOString()}`,
  ];
}
