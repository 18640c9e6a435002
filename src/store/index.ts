/**
 * The store: users (digest credentials) and bindings (location service).
 */
import { join } from 'node:path';
import type { Config } from '../config/schema.js';
import { StoreError } from './errors.js';
import { SqliteStore } from './sqlite-store.js';
import { setStoreAside } from './store-file.js';

export { SqliteStore, SCHEMA_VERSION } from './sqlite-store.js';
export { StoreError, type StoreErrorCode } from './errors.js';
export type { BindingRecord, BindingSource, Ha1Algorithm, UserRecord } from './types.js';
export { ALL_HA1_ALGORITHMS, credentialsFor } from './users.js';

/** File name of the SQLite database under data_dir. */
export const STORE_FILE = 'rtcedge.db';

/** Path of the database of a configuration: `<data_dir>/rtcedge.db`. */
export function storePath(config: Pick<Config, 'data_dir'>): string {
  return join(config.data_dir, STORE_FILE);
}

/**
 * Open the store of a configuration (`<data_dir>/rtcedge.db`), creating it if needed.
 *
 * @throws StoreError code 'open' when it cannot be opened.
 */
export function openStore(config: Pick<Config, 'data_dir'>): SqliteStore {
  return new SqliteStore(storePath(config));
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
