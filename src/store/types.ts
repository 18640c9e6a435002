/**
 * Records of the store: users (digest credentials) and bindings (the location
 * service of RFC 3261 §10).
 */

import type { DigestAlgorithm } from '../auth/digest.js';

/** Digest hash algorithms a user's HA1 can be kept for (RFC 7616 §3.2, RFC 8760): all of auth/digest.ts's list. */
export type Ha1Algorithm = DigestAlgorithm;

/** A user of one domain, with HA1 = H(username:realm:password) per algorithm, realm = domain. */
export interface UserRecord {
  /** As given, compared exactly (case-sensitive, RFC 3261 §19.1.4 user part). */
  username: string;
  /** Lowercase. */
  domain: string;
  /** Lowercase hex: 32 chars for MD5, 64 for SHA-256 and SHA-512-256. */
  ha1: Partial<Record<Ha1Algorithm, string>>;
  /** When the user was added, unix time, s. */
  createdAt: number;
  /** Telephone numbers (digits, optional leading +), for ENUM and local number lookup; sorted. */
  phones: string[];
}

/** The transport flow a REGISTER came over (RFC 5626 flow), as seen by this server. */
export interface BindingSource {
  /** 'udp' | 'tcp' | 'tls' | 'ws' | 'wss'. */
  transport: string;
  /** Remote address of the registering UA (or the last proxy). */
  address: string;
  /** Remote port. */
  port: number;
  /** Local port the request arrived on. */
  localPort: number;
}

/** One Contact bound to an AOR (RFC 3261 §10.3), keyed by (aor, contactUri). */
export interface BindingRecord {
  /** "sip:user@domain", lowercase domain. */
  aor: string;
  /** The Contact header value as registered (name-addr form, verbatim). */
  contact: string;
  /** The URI inside it. */
  contactUri: string;
  /** Absolute expiry, unix time, s. */
  expires: number;
  /** Contact q parameter 0..1, or null when absent. */
  q: number | null;
  /** Call-ID of the REGISTER that last refreshed this binding. */
  callId: string;
  /** CSeq number of that REGISTER. */
  cseq: number;
  /** +sip.instance (RFC 5626 §4.1), or null. */
  instance: string | null;
  /** reg-id (RFC 5626 §4.2), or null. */
  regId: number | null;
  /** Path header values (RFC 3327), in order; may be empty. */
  path: readonly string[];
  /** Where the REGISTER came from, or null when unknown. */
  source: BindingSource | null;
  /** User-Agent header, or null. */
  userAgent: string | null;
  /** Last write, unix time, s. */
  updatedAt: number;
}

/** One change to the location service's bindings, as data (so it can be batched, stored and replicated). */
export type BindingChange =
  | { op: 'put'; binding: BindingRecord }
  | { op: 'delete'; aor: string; contactUri: string }
  | { op: 'deleteAll'; aor: string };

/** What a cache held of an AOR when a commit's changes were made to it (ReadThroughSource.commitAndRead, RedisStore.commitAndRead). */
export interface HeldAor {
  /** The AOR's version the cache held (as a commit answered it: {@link CommittedAor.version}). */
  version: number;
  /**
   * True when every change of the commit to this AOR refreshes a binding the
   * cache held, unexpired (the store's index of the AOR lists them already,
   * unless another node changed the AOR since: then the version tells).
   */
  indexed: boolean;
}

/**
 * Why a commit read an AOR back (RedisStore.commitAndRead): the cache did not
 * hold it (`uncached`), held it without a known version (`unversioned`: read
 * on a miss, or its last commit's answer was not kept), an earlier commit of
 * it was under way (`committing`), its version had moved (`moved`: another
 * commit came in between; read in a second transaction), or the commit ran
 * as a script (`scripted`: removals, expired puts, long batches).
 */
export type ReadBackCause = 'uncached' | 'unversioned' | 'committing' | 'moved' | 'scripted';

/**
 * One AOR after a commit: its version, and its bindings read back, or none
 * read when the version is the held one plus one (this commit was the only
 * change since the cache's last commit of the AOR: the cache with the
 * commit's changes is what the store holds).
 */
export interface CommittedAor {
  /** The AOR's version after the commit (a counter every commit that changes the AOR bumps; 0 when the AOR has no binding left). */
  version: number;
  /** The bindings in first-added order; undefined when not read back (see above). */
  bindings?: BindingRecord[];
}

/**
 * Where the location service keeps its bindings durably (RFC 3261 §10.2): the
 * SQLite store, or a shared store that several workers or nodes use. Every
 * method may answer synchronously (SQLite) or with a promise (a networked store).
 */
export interface BindingStore {
  /**
   * Apply changes in order, all or none (one transaction).
   * @throws StoreError when the store cannot be written (nothing applied).
   */
  commitBindings(changes: readonly BindingChange[]): void | Promise<void>;
  /** Bindings of one AOR (exact match), including expired ones not yet purged. */
  listBindings(aor: string): BindingRecord[] | Promise<BindingRecord[]>;
  /** Every binding, for loading the location service at start-up. */
  allBindings(): BindingRecord[] | Promise<BindingRecord[]>;
  /** Remove bindings with expires <= nowS (unix s); returns how many. */
  deleteExpiredBindings(nowS: number): number | Promise<number>;
}
