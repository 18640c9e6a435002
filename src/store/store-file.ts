/**
 * Start-up checks of the store file (`<data_dir>/rtcedge.db`): a file that is
 * there but empty or damaged is refused rather than taken for a new store or
 * served from until users get 500. Only an absent file starts a new store;
 * `rtcedge serve --create-store` sets a refused file aside first.
 */
import { renameSync, statSync } from 'node:fs';
import type Database from 'better-sqlite3';
import { StoreError } from './errors.js';

/** What the user can do about a refused store, appended to every refusal. */
export const STORE_FIX = 'restore it from a backup, or start with --create-store to set it aside and begin a new, empty store';

/** Size of a file in bytes, or undefined when it does not exist. @throws the fs error for anything but ENOENT. */
function sizeOf(path: string): { size: number; isFile: boolean } | undefined {
  try {
    const st = statSync(path);
    return { size: st.size, isFile: st.isFile() };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * Check the store file before SQLite opens it.
 *
 * An absent file is a new store. A zero-byte file is refused unless its WAL
 * (`<path>-wal`) holds data: SQLite writes into the WAL first, so a store
 * killed before its first checkpoint has an empty main file and a full WAL.
 *
 * @returns 'missing' when there is no file (a new store will be created), 'present' otherwise.
 * @throws StoreError 'damaged' for an empty file or something that is not a regular file.
 */
export function checkStoreFile(path: string): 'missing' | 'present' {
  const main = sizeOf(path);
  if (main === undefined) return 'missing';
  if (!main.isFile) throw new StoreError('damaged', `store ${path} is not a regular file: ${STORE_FIX}`);
  if (main.size === 0 && !((sizeOf(`${path}-wal`)?.size ?? 0) > 0)) {
    throw new StoreError('damaged', `store ${path} is empty (0 bytes), which would lose every user: ${STORE_FIX}`);
  }
  return 'present';
}

/**
 * `PRAGMA quick_check` (https://sqlite.org/pragma.html#pragma_quick_check):
 * page structure, record formats and NOT NULL constraints, in O(file size).
 * @throws StoreError 'damaged' naming the first problem SQLite reports.
 */
export function quickCheck(db: Database.Database, path: string): void {
  const rows = db.pragma('quick_check(1)', { simple: false }) as { quick_check: string }[];
  const result = rows[0]?.quick_check ?? 'no answer';
  if (result !== 'ok') throw new StoreError('damaged', `store ${path} is damaged (quick_check: ${result.split('\n')[0]}): ${STORE_FIX}`);
}

/** True for SQLite errors that mean the file is not a (healthy) database: SQLITE_NOTADB, SQLITE_CORRUPT. */
export function isDamageError(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && (code.startsWith('SQLITE_NOTADB') || code.startsWith('SQLITE_CORRUPT'));
}

/**
 * Rename a refused store and its WAL/shared-memory files to
 * `<path>.damaged-<UTC time>` (nothing is deleted).
 * @param nowMs the time for the name, ms since the epoch.
 * @returns the new path of the main file.
 */
export function setStoreAside(path: string, nowMs: number): string {
  const aside = `${path}.damaged-${new Date(nowMs).toISOString().replace(/[:.]/g, '-')}`;
  for (const suffix of ['-wal', '-shm']) {
    if (sizeOf(path + suffix) !== undefined) renameSync(path + suffix, aside + suffix);
  }
  renameSync(path, aside);
  return aside;
}
