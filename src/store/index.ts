/**
 * The store: users (digest credentials) and bindings (location service).
 */
import { join } from 'node:path';
import type { Config } from '../config/schema.js';
import { SqliteStore } from './sqlite-store.js';

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
