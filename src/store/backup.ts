/**
 * Backup and restore of the whole state in one file: a gzipped tar (the `tar`
 * package) holding
 *
 * - `manifest.json`: `{ format: "rtcedge-backup", version: 1, created, schemaVersion, files: { path: { size, sha256 } } }`
 * - `data/rtcedge.db`: users, credentials, phone numbers, bindings, a consistent
 *   snapshot taken with SQLite's online backup API while the server runs; or,
 *   with `store.type: redis`, `data/redis-store.json` instead: the users,
 *   numbers, bindings and shared secret read from Redis (RedisSnapshot)
 * - `data/secret` (nonce and flow-token secret), `data/admin-token`, `data/bans.json`,
 *   `data/tls/cert.pem`, `data/tls/key.pem`: whichever exist
 * - `config/<name>`: the configuration file, and the files it names in
 *   `sip.tls.cert`, `sip.tls.key`, `sip.tls.ca`
 *
 * Restore checks everything (manifest, every size and SHA-256, SQLite
 * integrity, schema version) in a scratch directory before it writes into
 * data_dir, which must be empty or missing; a Redis snapshot goes back into
 * the Redis of `store.redis`, which must hold no user and no binding.
 */
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import Database from 'better-sqlite3';
import * as tar from 'tar';
import { DATA_DIR_FILES, DATA_DIR_MODE, dataDirLayout, prepareDataDir, SECRET_FILE_MODE } from '../config/data-dir.js';
import type { Config } from '../config/schema.js';
import { openStore, SCHEMA_VERSION } from './index.js';
import { RedisStore, type RedisSnapshot } from './redis-store.js';

/** The Redis store's snapshot in the archive. */
const REDIS_SNAPSHOT = 'redis-store.json';

/** `format` of the manifest. */
export const BACKUP_FORMAT = 'rtcedge-backup';
/** Version of the archive layout. */
export const BACKUP_VERSION = 1;

/** A backup or restore that cannot be done; the message says why. Nothing was overwritten. */
export class BackupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BackupError';
  }
}

interface Manifest {
  format: string;
  version: number;
  created: string;
  schemaVersion: number;
  files: Record<string, { size: number; sha256: string }>;
}

const sha256 = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

/** Every regular file under `dir`, as paths relative to it with `/` separators. */
function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) out.push(relative(dir, join(e.parentPath, e.name)).split(sep).join('/'));
  }
  return out.sort();
}

/**
 * Write the whole state of `config` (and `configFile`, when given) to `file`.
 * Safe while the server runs. `file` is written under a temporary name and renamed.
 *
 * @returns the archive's paths (manifest excluded).
 * @throws BackupError when a named file cannot be read or `file` cannot be written.
 */
export async function backup(config: Config, configFile: string | undefined, file: string): Promise<string[]> {
  const stage = mkdtempSync(join(tmpdir(), 'rtcedge-backup-'));
  try {
    const layout = dataDirLayout(config.data_dir);
    const data = join(stage, 'data');
    mkdirSync(join(data, DATA_DIR_FILES.tlsDir), { recursive: true, mode: DATA_DIR_MODE });
    if (config.store.type === 'redis') {
      const store = await new RedisStore(config.store.redis).connect();
      try {
        writeFileSync(join(data, REDIS_SNAPSHOT), JSON.stringify(await store.snapshot()) + '\n', { mode: SECRET_FILE_MODE });
      } finally {
        await store.close();
      }
    } else {
      const store = openStore(config);
      try {
        await store.backupTo(join(data, DATA_DIR_FILES.store));
        chmodSync(join(data, DATA_DIR_FILES.store), SECRET_FILE_MODE);
      } finally {
        store.close();
      }
    }
    for (const key of ['secret', 'adminToken', 'bans', 'tlsCert', 'tlsKey'] as const) {
      if (existsSync(layout[key])) copyFileSync(layout[key], join(data, DATA_DIR_FILES[key]));
    }
    const configDir = join(stage, 'config');
    mkdirSync(configDir);
    const external = [configFile, config.sip.tls.cert, config.sip.tls.key, ...(config.sip.tls.ca ?? [])].filter((f): f is string => f !== undefined);
    for (const f of external) {
      const target = join(configDir, basename(f));
      if (existsSync(target)) throw new BackupError(`two files named ${basename(f)} (configuration and certificates must have distinct names)`);
      try {
        copyFileSync(resolve(f), target);
      } catch (err) {
        throw new BackupError(`cannot read ${f}: ${(err as Error).message}`);
      }
    }
    const paths = filesUnder(stage);
    const manifest: Manifest = {
      format: BACKUP_FORMAT,
      version: BACKUP_VERSION,
      created: new Date().toISOString(),
      schemaVersion: SCHEMA_VERSION,
      files: Object.fromEntries(paths.map((p) => [p, { size: statSync(join(stage, p)).size, sha256: sha256(join(stage, p)) }])),
    };
    writeFileSync(join(stage, 'manifest.json'), JSON.stringify(manifest, null, 1) + '\n');
    const tmp = `${resolve(file)}.${process.pid}.tmp`;
    try {
      await tar.create({ gzip: true, file: tmp, cwd: stage, portable: true }, ['manifest.json', ...paths]);
      chmodSync(tmp, SECRET_FILE_MODE);
      renameSync(tmp, file);
    } catch (err) {
      rmSync(tmp, { force: true });
      throw new BackupError(`cannot write ${file}: ${(err as Error).message}`);
    }
    return paths;
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}

/**
 * Restore `file` into the (empty or missing) data_dir of `config`. The
 * configuration file and certificates of the backup go to
 * `<data_dir>/restored-config/` for the operator to put in place.
 *
 * @returns the restored paths, relative to data_dir.
 * @throws BackupError, before anything is written to data_dir, when the file is
 *   not a readable archive (corrupt, truncated), lacks or fails its manifest
 *   (missing file, size or SHA-256 mismatch), holds a database that fails
 *   SQLite's integrity check or is of a newer schema, or data_dir is not empty;
 *   for a Redis snapshot, when `store.type` is not redis or that Redis holds users or bindings.
 * @throws StoreError 'unavailable' when the Redis of `store.redis` cannot be reached.
 */
export async function restore(config: Pick<Config, 'data_dir' | 'store'>, file: string): Promise<string[]> {
  const root = config.data_dir;
  if (existsSync(root) && readdirSync(root).length > 0) {
    throw new BackupError(`data_dir ${root} is not empty: restore only into an empty or missing data directory`);
  }
  const stage = mkdtempSync(join(tmpdir(), 'rtcedge-restore-'));
  try {
    try {
      // Regular files and directories only: a link in the archive could point the copy below outside it.
      const skipped: string[] = [];
      await tar.extract({
        file,
        cwd: stage,
        strict: true,
        preservePaths: false,
        filter: (path, entry) => {
          const type = (entry as { type?: string }).type;
          const ok = type === 'File' || type === 'Directory';
          if (!ok) skipped.push(path);
          return ok;
        },
      });
      if (skipped.length > 0) throw new BackupError(`${file} is not an rtcedge backup: it holds links or special files (${skipped.slice(0, 3).join(', ')})`);
    } catch (err) {
      if (err instanceof BackupError) throw err;
      throw new BackupError(`${file} is not a readable rtcedge backup (corrupt or truncated): ${(err as Error).message}`);
    }
    const manifest = readManifest(stage, file);
    for (const [p, want] of Object.entries(manifest.files)) {
      const path = join(stage, p);
      if (!existsSync(path)) throw new BackupError(`${file} is incomplete: ${p} is missing`);
      if (statSync(path).size !== want.size || sha256(path) !== want.sha256) throw new BackupError(`${file} is damaged: ${p} does not match its checksum`);
    }
    const dbRel = `data/${DATA_DIR_FILES.store}`;
    const redisRel = `data/${REDIS_SNAPSHOT}`;
    let redis: { store: RedisStore; snapshot: RedisSnapshot } | undefined;
    if (manifest.files[redisRel]) {
      if (config.store.type !== 'redis') throw new BackupError(`${file} holds a Redis store (${redisRel}): restore it with store.type: redis in the configuration`);
      redis = { store: await new RedisStore(config.store.redis).connect(), snapshot: readSnapshot(join(stage, redisRel), file) };
    } else {
      if (!manifest.files[dbRel]) throw new BackupError(`${file} holds no database (${dbRel})`);
      if (config.store.type === 'redis') throw new BackupError(`${file} holds an SQLite store (${dbRel}), but store.type is redis`);
      checkDatabase(join(stage, dbRel), file);
    }
    try {
      if (redis && !(await redis.store.isEmpty())) throw new BackupError(`the Redis store (store.redis) is not empty: restore only into a Redis without rtcedge users and bindings under key_prefix ${config.store.redis.key_prefix}`);
      // Everything checked: now write.
      const restored = copyIntoDataDir(stage, root, Object.keys(manifest.files).filter((p) => p !== redisRel));
      if (redis) {
        await redis.store.load(redis.snapshot);
        restored.push(`redis: ${redis.snapshot.users.length} users, ${redis.snapshot.bindings.length} bindings`);
      }
      return restored;
    } finally {
      await redis?.store.close();
    }
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}

/** Copy the checked archive paths of `stage` into data_dir `root`; returns them relative to it. */
function copyIntoDataDir(stage: string, root: string, paths: readonly string[]): string[] {
  const layout = prepareDataDir(root);
  const restored: string[] = [];
  for (const p of paths) {
    const inData = p.startsWith('data/');
    const rel = inData ? p.slice('data/'.length) : join('restored-config', basename(p));
    const target = join(layout.root, rel);
    mkdirSync(dirname(target), { recursive: true, mode: DATA_DIR_MODE });
    copyFileSync(join(stage, p), target);
    chmodSync(target, p === `data/${DATA_DIR_FILES.tlsCert}` ? 0o644 : SECRET_FILE_MODE);
    restored.push(rel);
  }
  return restored;
}

function readSnapshot(path: string, file: string): RedisSnapshot {
  let s: RedisSnapshot;
  try {
    s = JSON.parse(readFileSync(path, 'utf8')) as RedisSnapshot;
  } catch (err) {
    throw new BackupError(`${file}: ${REDIS_SNAPSHOT} is not JSON: ${(err as Error).message}`);
  }
  if (s.format !== 'rtcedge-redis-store' || s.version !== 1 || !Array.isArray(s.users) || !Array.isArray(s.bindings)) {
    throw new BackupError(`${file}: ${REDIS_SNAPSHOT} is not a Redis store snapshot of version 1`);
  }
  return s;
}

function readManifest(stage: string, file: string): Manifest {
  let m: Manifest;
  try {
    m = JSON.parse(readFileSync(join(stage, 'manifest.json'), 'utf8')) as Manifest;
  } catch {
    throw new BackupError(`${file} is not an rtcedge backup: no readable manifest.json`);
  }
  if (m.format !== BACKUP_FORMAT || m.version !== BACKUP_VERSION || typeof m.files !== 'object' || m.files === null) {
    throw new BackupError(`${file} is not an rtcedge backup of version ${BACKUP_VERSION}`);
  }
  for (const p of Object.keys(m.files)) {
    if (!/^(data|config)\/[A-Za-z0-9._/-]+$/.test(p) || p.split('/').includes('..')) throw new BackupError(`${file} names a file outside the backup layout: ${p}`);
  }
  return m;
}

function checkDatabase(path: string, file: string): void {
  let db: Database.Database | undefined;
  try {
    db = new Database(path, { readonly: true, fileMustExist: true });
    const ok = db.pragma('integrity_check', { simple: true });
    if (ok !== 'ok') throw new BackupError(`${file}: the database fails SQLite's integrity check: ${String(ok)}`);
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version > SCHEMA_VERSION) throw new BackupError(`${file}: the database has schema version ${version}, newer than this program's ${SCHEMA_VERSION}`);
  } catch (err) {
    if (err instanceof BackupError) throw err;
    throw new BackupError(`${file}: the database cannot be read: ${(err as Error).message}`);
  } finally {
    db?.close();
  }
}
