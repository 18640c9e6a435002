/**
 * The layout of `data_dir`: the one place that names its files and creates it.
 *
 * ```
 * <data_dir>/            0700  created once by prepareDataDir()
 *   rtcedge.db (+ -wal, -shm)  0600  users, credentials, bindings (SQLite)
 *   secret                0600  32-byte server secret (nonces, flow tokens)
 *   admin-token           0600  bearer token of the admin HTTP API
 *   bans.json             0600  active bans, written by the server
 *   tls/                  0700  generated self-signed certificate
 *     cert.pem            0644
 *     key.pem             0600
 * ```
 *
 * Modules get paths from `dataDirLayout()`; none of them creates the directory.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from './errors.js';

/** Mode of data_dir and of tls/ under it. */
export const DATA_DIR_MODE = 0o700;
/** Mode of every secret file under data_dir (database, secret, keys, token, bans). */
export const SECRET_FILE_MODE = 0o600;

/** File and directory names under data_dir, relative to it. */
export const DATA_DIR_FILES = {
  store: 'rtcedge.db',
  secret: 'secret',
  adminToken: 'admin-token',
  bans: 'bans.json',
  tlsDir: 'tls',
  tlsCert: join('tls', 'cert.pem'),
  tlsKey: join('tls', 'key.pem'),
} as const;

/** Absolute paths of everything under one data_dir; `root` is data_dir itself. */
export type DataDirLayout = { root: string } & { -readonly [K in keyof typeof DATA_DIR_FILES]: string };

/** The paths of data_dir `root` (nothing is created). */
export function dataDirLayout(root: string): DataDirLayout {
  const entries = Object.entries(DATA_DIR_FILES).map(([k, rel]) => [k, join(root, rel)]);
  return { root, ...Object.fromEntries(entries) } as DataDirLayout;
}

/**
 * Create data_dir (mode 0700) and its `tls/` (0700) if missing, and tighten
 * them to 0700 if they exist with wider modes (older versions created 0755).
 * Idempotent.
 *
 * @returns the layout of `root`.
 * @throws ConfigError naming the directory when it cannot be created or is not a directory.
 */
export function prepareDataDir(root: string): DataDirLayout {
  const layout = dataDirLayout(root);
  for (const dir of [layout.root, layout.tlsDir]) {
    try {
      mkdirSync(dir, { recursive: true, mode: DATA_DIR_MODE });
      const st = statSync(dir);
      if (!st.isDirectory()) throw new Error('not a directory');
      if ((st.mode & 0o777) !== DATA_DIR_MODE && st.uid === process.getuid?.()) chmodSync(dir, DATA_DIR_MODE);
    } catch (err) {
      throw new ConfigError(dir, [`data_dir: cannot create or use this directory: ${(err as Error).message}`]);
    }
  }
  return layout;
}

/**
 * Set mode 0600 on each of `paths` that exists: SQLite creates the database
 * and its -wal and -shm files with the umask's mode (later -wal and -shm files
 * copy the database file's mode).
 * @throws Error from the file system other than ENOENT.
 */
export function restrictToOwner(paths: readonly string[]): void {
  for (const p of paths) {
    try {
      chmodSync(p, SECRET_FILE_MODE);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
}

/**
 * Read the secret file `path`, creating it first (mode 0600, exclusive create so
 * two processes starting together agree) with `make()` when it does not exist.
 *
 * @throws Error from the file system (the caller names the file in its error).
 */
export function readOrCreateSecretFile(path: string, make: () => Buffer): Buffer {
  const fresh = make();
  try {
    writeFileSync(path, fresh, { flag: 'wx', mode: SECRET_FILE_MODE });
    chmodSync(path, SECRET_FILE_MODE);
    return fresh;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  return readFileSync(path);
}

/**
 * The admin API's bearer token from `<dataDir>/admin-token` (64 hex digits),
 * generated on first use. The CLI reads the same file.
 *
 * @throws ConfigError naming the file when it cannot be read or created, or holds no token.
 */
export function loadOrCreateAdminToken(dataDir: string): string {
  const path = dataDirLayout(dataDir).adminToken;
  let token: string;
  try {
    token = readOrCreateSecretFile(path, () => Buffer.from(randomBytes(32).toString('hex') + '\n')).toString('utf8').trim();
  } catch (err) {
    throw new ConfigError(path, [`cannot read or create the admin token: ${(err as Error).message}`]);
  }
  if (!/^[\x21-\x7e]{16,}$/.test(token)) throw new ConfigError(path, ['expected an admin token of at least 16 visible characters']);
  return token;
}
