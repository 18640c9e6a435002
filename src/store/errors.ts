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
  | 'damaged'
  /** A networked store (Redis) cannot be reached or did not answer in time; try again after `retryAfterS`. */
  | 'unavailable';

/** A store operation that failed; `code` says why, the message names the record or file. */
export class StoreError extends Error {
  readonly code: StoreErrorCode;
  /** For 'unavailable': seconds a SIP client is told to wait (Retry-After, RFC 3261 §20.33). */
  readonly retryAfterS: number | undefined;

  constructor(code: StoreErrorCode, message: string, options?: { cause?: unknown; retryAfterS?: number }) {
    super(message, options);
    this.name = 'StoreError';
    this.code = code;
    this.retryAfterS = options?.retryAfterS;
  }
}
