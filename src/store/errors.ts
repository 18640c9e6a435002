/**
 * Errors of the store.
 */

/** What went wrong, for callers that react differently (the CLI maps them to messages). */
export type StoreErrorCode =
  /** A user that must not exist already does (addUser). */
  | 'exists'
  /** A user that must exist does not (setUserHa1). */
  | 'not_found'
  /** A value the store refuses (e.g. an HA1 that is not hex of the right length). */
  | 'invalid'
  /** The database cannot be opened, or its schema is newer than this program. */
  | 'open'
  /** The file is there but empty, not a database, or fails `PRAGMA quick_check` (store-file.ts). */
  | 'damaged';

/** A store operation that failed; `code` says why, the message names the record or file. */
export class StoreError extends Error {
  readonly code: StoreErrorCode;

  constructor(code: StoreErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreError';
    this.code = code;
  }
}
