/**
 * The store: users (digest credentials) and bindings (location service).
 */
import type { Config } from '../config/schema.js';
import { DATA_DIR_FILES, dataDirLayout, prepareDataDir, restrictToOwner } from '../config/data-dir.js';
import { StoreError } from './errors.js';
import { SqliteStore } from './sqlite-store.js';
import { setStoreAside } from './store-file.js';

export { SqliteStore, SCHEMA_VERSION } from './sqlite-store.js';
export { StoreError, type StoreErrorCode } from './errors.js';
export { RedisStore, redisName, type RedisSnapshot } from './redis-store.js';
export { RedisBindingTracking, type Invalidation } from './redis-tracking.js';
export { RedisAbuseChannel, type SharedBan } from './redis-abuse.js';
export { RedisCallCounter, SharedCallOwners, type SharedAdmission } from './redis-calls.js';
export { redisUserSource } from './redis-user-source.js';
export { startWalCheckpointer, WAL_FALLBACK_PAGES, type WalCheckpointer, type WalCheckpointerOptions, type WalCheckpointStats } from './wal-checkpointer.js';
export type { BindingChange, BindingRecord, BindingSource, BindingStore, CommittedAor, Ha1Algorithm, HeldAor, ReadBackCause, UserRecord } from './types.js';
export { ALL_HA1_ALGORITHMS, credentialsFor } from './users.js';

/** File name of the SQLite database under data_dir. */
export const STORE_FILE = DATA_DIR_FILES.store;

/** Path of the database of a configuration: `<data_dir>/rtcedge.db`. */
export function storePath(config: Pick<Config, 'data_dir'>): string {
  return dataDirLayout(config.data_dir).store;
}

/**
 * Open the store of a configuration (`<data_dir>/rtcedge.db`), creating data_dir
 * (0700, see config/data-dir.ts) and the database file if needed; the database
 * and its WAL files get mode 0600.
 *
 * @throws StoreError code 'damaged' or 'open' (see SqliteStore); ConfigError when data_dir cannot be created.
 */
export function openStore(config: Pick<Config, 'data_dir'>): SqliteStore {
  const path = prepareDataDir(config.data_dir).store;
  const store = new SqliteStore(path);
  try {
    restrictToOwner([path, `${path}-wal`, `${path}-shm`]);
  } catch (err) {
    store.close();
    throw new StoreError('open', `cannot open store ${path}: ${(err as Error).message}`, { cause: err });
  }
  return store;
}

/**
 * For `rtcedge serve --create-store`: when the store file is refused as
 * damaged (empty, not a database, failing `PRAGMA quick_check`), rename it
 * and its WAL to `rtcedge.db.damaged-<UTC time>` so that start-up creates a
 * new, empty store. A healthy or absent store is left as it is.
 *
 * @param nowMs time for the aside name, ms since the epoch.
 * @returns the path the damaged file now has, or undefined when nothing was moved.
 * @throws StoreError 'open' when the store cannot be opened for another reason.
 */
export function setAsideDamagedStore(config: Pick<Config, 'data_dir'>, nowMs: number = Date.now()): string | undefined {
  const path = storePath(config);
  try {
    new SqliteStore(path).close();
    return undefined;
  } catch (err) {
    if (err instanceof StoreError && err.code === 'damaged') return setStoreAside(path, nowMs);
    throw err;
  }
}
