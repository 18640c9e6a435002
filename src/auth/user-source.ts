/**
 * Where digest credentials come from: the SQLite store by default, or a
 * directory (LDAP, `src/directory/`). The registrar, the proxy and TURN ask the
 * same source, so every user it knows is a SIP and a TURN user.
 */
import type { DigestAlgorithm } from './digest.js';

/**
 * The user source could not be asked (directory down, timeout, bad service
 * credentials). SIP answers it with 503 Service Unavailable and Retry-After
 * (RFC 3261 §21.5.4), never with 403: the client's credentials were not judged.
 */
export class UserSourceUnavailableError extends Error {
  /** SIP status this error maps to. */
  readonly status = 503;
  /** Seconds for the Retry-After header field (RFC 3261 §20.33). */
  readonly retryAfterS: number;

  /**
   * @param message reason for logs (no credentials in it).
   * @param retryAfterS seconds the client should wait before retrying; default 30.
   * @param options.cause the underlying error.
   */
  constructor(message: string, retryAfterS = 30, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'UserSourceUnavailableError';
    this.retryAfterS = retryAfterS;
  }
}

/** A value, or a promise of it when it has to be waited for (a directory, another process). */
export type Awaitable<T> = T | Promise<T>;

/** Read-only access to users and their digest credentials. */
export interface UserSource {
  /**
   * HA1 = H(username:realm:password) for `alg` as lowercase hex (RFC 7616 §3.4.2),
   * or undefined when the user is unknown in `realm` or has no credential for `alg`;
   * the answer itself when it is at hand (the store, the credential cache), else a promise.
   * @throws UserSourceUnavailableError (thrown or rejected) when the source cannot be reached.
   */
  lookupHa1(username: string, realm: string, alg: DigestAlgorithm): Awaitable<string | undefined>;
  /**
   * True when `username` is a user of `domain`; the answer itself when at hand, else a promise.
   * @throws UserSourceUnavailableError (thrown or rejected) when the source cannot be reached.
   */
  userExists(username: string, domain: string): Awaitable<boolean>;
  /**
   * The username whose USERHASH (RFC 8489 §14.4: SHA-256(username ":" realm), 32 bytes) is `hash`
   * in `realm`, or undefined when no user known to the source has it.
   * @throws UserSourceUnavailableError when the source cannot be reached.
   */
  lookupUserhash(hash: Buffer, realm: string): Promise<string | undefined>;
  /** Release connections and timers. */
  close(): Promise<void>;
}

/** The subset of the SQLite store a {@link storeUserSource} needs. */
export interface UserLookup {
  getUser(username: string, domain: string): { ha1: Partial<Record<DigestAlgorithm, string>> } | undefined;
  /** HA1 for `alg` or undefined, with the same work for known and unknown users (preferred over getUser when present). */
  lookupHa1?(username: string, domain: string, alg: DigestAlgorithm): string | undefined;
  /** The username whose USERHASH in `domain` is `hash` (RFC 8489 §14.4); without it USERHASH resolves to nobody. */
  userByUserhash?(hash: Buffer, domain: string): string | undefined;
}

/**
 * A {@link UserSource} over the local store (users added with `rtcedge user add`).
 * Realm = domain. Never throws UserSourceUnavailableError; closing it leaves the store open.
 */
export function storeUserSource(store: UserLookup): UserSource {
  return {
    lookupHa1: store.lookupHa1
      ? (username, realm, alg) => store.lookupHa1!(username, realm, alg)
      : (username, realm, alg) => store.getUser(username, realm)?.ha1[alg],
    userExists: (username, domain) => store.getUser(username, domain) !== undefined,
    lookupUserhash: async (hash, realm) => store.userByUserhash?.(hash, realm),
    close: async () => {},
  };
}
