/**
 * An LDAP directory as the user source (digest and TURN credentials).
 *
 * Each user is one entry found under `baseDn` with `filter` (`{user}` and `{domain}` filled in,
 * RFC 4515 escaped). Its digest credentials come from, in this order:
 * - attributes holding an HA1 per algorithm (`ha1Attributes`, lowercase or uppercase hex of
 *   H(username:realm:password), RFC 7616 §3.4.2), valid for the realm they were computed with;
 * - the first value of the first `passwordAttributes` attribute present that is a password in clear
 *   (the H.350.4 `SIPIdentityPassword`, or `userPassword` when it is stored as `{CLEARTEXT}` or
 *   plain and readable by the service account). Hashed values (`{SSHA}...`) cannot give a digest
 *   HA1 and are skipped. The password is turned into HA1s at once and not kept.
 *
 * Results (found or not) are cached for `cacheTtl` s per (user, realm). A failure to reach or
 * bind to the directory, or a timeout, throws {@link UserSourceUnavailableError} (SIP 503), and is
 * not cached. One connection is kept and re-bound after a reconnect.
 */
import type { Entry } from 'ldapts';
import { computeHA1, DIGEST_ALGORITHMS, type DigestAlgorithm } from '../auth/digest.js';
import { type Logger } from '../log.js';
import { userhash } from '../stun/stun-integrity.js';
import { type UserSource, UserSourceUnavailableError } from '../auth/user-source.js';
import { fillFilter } from './ldap-filter.js';

/** The minimal LDAP client this module uses; ldapts' Client satisfies it (tests pass fakes). */
export interface LdapClientLike {
  bind(dn: string, password: string): Promise<void>;
  search(
    base: string,
    options: { scope: 'sub'; filter: string; attributes: string[]; sizeLimit: number; timeLimit?: number },
  ): Promise<{ searchEntries: Entry[] }>;
  unbind(): Promise<void>;
}

/** Options of {@link LdapDirectory}. */
export interface LdapDirectoryOptions {
  /** `ldap://host:port` or `ldaps://host:port`. */
  url: string;
  /** Service account; anonymous search when absent. */
  bindDn?: string;
  bindPassword?: string;
  /** Search base, e.g. `ou=people,dc=example,dc=test` (subtree scope). */
  baseDn: string;
  /** Filter template with `{user}` (and optionally `{domain}`), e.g. `(uid={user})`. */
  filter: string;
  /** Attributes holding a clear password, tried in order. Default `['SIPIdentityPassword']` (ITU-T H.350.4). */
  passwordAttributes?: string[];
  /** Attributes holding an HA1 per algorithm. */
  ha1Attributes?: Partial<Record<DigestAlgorithm, string>>;
  /** Cache lifetime of a lookup result, s; 0 disables the cache. */
  cacheTtl: number;
  /** Bound on connect and on each operation, ms. */
  timeoutMs: number;
  /** Retry-After (s) carried by {@link UserSourceUnavailableError}. */
  retryAfter: number;
  /** Realms (served domains, lowercase) users may be looked up in; others are unknown without asking. */
  realms: string[];
  logger: Logger;
  /** Client factory, for tests; default an ldapts Client with autoRebind. */
  createClient?: () => LdapClientLike;
  /** Clock in ms; Date.now by default. */
  now?: () => number;
}

/** What a lookup found: absent user, or the user with the HA1s derivable for the realm. */
interface CachedUser {
  exists: boolean;
  ha1: Partial<Record<DigestAlgorithm, string>>;
  expires: number;
}

/** Most cached results kept, and most USERHASH values known; the oldest are dropped beyond it. */
export const MAX_CACHED_USERS = 10_000;
/**
 * Most searches in flight (distinct users); one more is refused as
 * unavailable (503 with Retry-After) instead of queueing. TURN requests with
 * a USERNAME reach the directory before their integrity is checked, so
 * without it a flood of made-up names would grow this table without bound.
 */
export const MAX_LOOKUPS_IN_FLIGHT = 1000;
/** Longest user name sent to the directory (characters); longer ones are unknown. */
const MAX_USER_LENGTH = 256;
const HEX = /^[0-9a-fA-F]+$/;
const PASSWORD_SCHEME = /^\{([A-Za-z0-9.+-]+)\}/;

/** Users and their digest credentials read from LDAP (see the module comment). */
export class LdapDirectory implements UserSource {
  private readonly opts: LdapDirectoryOptions;
  private readonly log: Logger;
  private readonly cache = new Map<string, CachedUser>();
  /** USERHASH hex + "\0" + realm -> username of users found in the directory (bounded like the cache). */
  private readonly userhashes = new Map<string, string>();
  private readonly inflight = new Map<string, Promise<CachedUser>>();
  private client: LdapClientLike | undefined;
  private bound: Promise<void> | undefined;
  private readonly attributes: string[];
  private closed = false;

  /** @param opts see {@link LdapDirectoryOptions}; nothing is connected until the first lookup. */
  constructor(opts: LdapDirectoryOptions) {
    this.opts = opts;
    this.log = opts.logger.child({ component: 'ldap-directory' });
    this.attributes = [...(opts.passwordAttributes ?? ['SIPIdentityPassword']), ...Object.values(opts.ha1Attributes ?? {})];
  }

  /**
   * HA1 for `alg` of `username` in `realm`, or undefined for an unknown user or one without a credential for it.
   * @throws UserSourceUnavailableError (503) when the directory cannot be asked.
   */
  async lookupHa1(username: string, realm: string, alg: DigestAlgorithm): Promise<string | undefined> {
    return (await this.lookup(username, realm)).ha1[alg];
  }

  /**
   * True when the directory has an entry for `username` in `domain` (with or without credentials).
   * @throws UserSourceUnavailableError (503) when the directory cannot be asked.
   */
  async userExists(username: string, domain: string): Promise<boolean> {
    return (await this.lookup(username, domain)).exists;
  }

  /**
   * The user whose USERHASH (RFC 8489 §14.4) in `realm` is `hash`, among users fetched from the
   * directory since start (a directory cannot be searched by a hash), or undefined.
   */
  async lookupUserhash(hash: Buffer, realm: string): Promise<string | undefined> {
    return this.userhashes.get(`${hash.toString('hex')}\0${realm.toLowerCase()}`);
  }

  /** Entries held now: cached lookup results and known USERHASH values, each ≤ {@link MAX_CACHED_USERS}. */
  get sizes(): { cache: number; userhashes: number } {
    return { cache: this.cache.size, userhashes: this.userhashes.size };
  }

  /** Unbind and forget the cache. Later lookups throw UserSourceUnavailableError. */
  async close(): Promise<void> {
    this.closed = true;
    this.cache.clear();
    this.userhashes.clear();
    await this.dropClient();
  }

  private now(): number {
    return (this.opts.now ?? Date.now)();
  }

  private async lookup(username: string, realm: string): Promise<CachedUser> {
    const r = realm.toLowerCase();
    if (username.length === 0 || username.length > MAX_USER_LENGTH || !this.opts.realms.includes(r)) {
      return { exists: false, ha1: {}, expires: 0 };
    }
    const key = `${username}\0${r}`;
    const hit = this.cache.get(key);
    if (hit && hit.expires > this.now()) return hit;
    if (hit) this.cache.delete(key);
    let p = this.inflight.get(key);
    if (!p) {
      if (this.inflight.size >= MAX_LOOKUPS_IN_FLIGHT) {
        throw new UserSourceUnavailableError(`LDAP directory busy: ${MAX_LOOKUPS_IN_FLIGHT} lookups in flight`, this.opts.retryAfter);
      }
      p = this.fetch(username, r).finally(() => this.inflight.delete(key));
      this.inflight.set(key, p);
    }
    return p;
  }

  private async fetch(username: string, realm: string): Promise<CachedUser> {
    if (this.closed) throw new UserSourceUnavailableError('directory closed', this.opts.retryAfter);
    const filter = fillFilter(this.opts.filter, { user: username, domain: realm });
    let entries: Entry[];
    try {
      const client = await this.connected();
      const res = await withTimeout(
        client.search(this.opts.baseDn, {
          scope: 'sub',
          filter,
          attributes: this.attributes,
          sizeLimit: 2,
          timeLimit: Math.max(1, Math.ceil(this.opts.timeoutMs / 1000)),
        }),
        this.opts.timeoutMs,
      );
      entries = res.searchEntries;
    } catch (e) {
      if (isSizeLimit(e)) {
        this.log.warn({ filter }, 'several directory entries match one user; treated as unknown');
        entries = [];
      } else {
        await this.dropClient();
        this.log.warn({ err: errText(e) }, 'LDAP directory unavailable');
        throw new UserSourceUnavailableError(`LDAP directory unavailable: ${errText(e)}`, this.opts.retryAfter, { cause: e });
      }
    }
    if (entries.length > 1) this.log.warn({ filter }, 'several directory entries match one user; treated as unknown');
    const user: CachedUser = {
      exists: entries.length === 1,
      ha1: entries.length === 1 ? this.credentialsOf(entries[0], username, realm) : {},
      expires: this.now() + this.opts.cacheTtl * 1000,
    };
    if (user.exists) {
      const k = `${userhash(username, realm).toString('hex')}\0${realm}`;
      this.userhashes.delete(k);
      this.userhashes.set(k, username);
      if (this.userhashes.size > MAX_CACHED_USERS) this.userhashes.delete(this.userhashes.keys().next().value!);
    }
    if (this.opts.cacheTtl > 0) {
      this.cache.set(`${username}\0${realm}`, user);
      if (this.cache.size > MAX_CACHED_USERS) {
        const oldest = this.cache.keys().next().value;
        if (oldest !== undefined) this.cache.delete(oldest);
      }
    }
    return user;
  }

  /** HA1s of an entry: HA1 attributes first, then any algorithm still missing from a clear password. */
  private credentialsOf(entry: Entry, username: string, realm: string): Partial<Record<DigestAlgorithm, string>> {
    const ha1: Partial<Record<DigestAlgorithm, string>> = {};
    for (const [alg, attr] of Object.entries(this.opts.ha1Attributes ?? {}) as [DigestAlgorithm, string][]) {
      const v = firstValue(entry, attr);
      if (v !== undefined && HEX.test(v) && v.length === (alg === 'MD5' ? 32 : 64)) ha1[alg] = v.toLowerCase();
    }
    let password: string | undefined;
    for (const attr of this.opts.passwordAttributes ?? ['SIPIdentityPassword']) {
      const v = firstValue(entry, attr);
      if (v === undefined) continue;
      const scheme = PASSWORD_SCHEME.exec(v);
      if (!scheme) password = v;
      else if (scheme[1].toUpperCase() === 'CLEARTEXT') password = v.slice(scheme[0].length);
      else continue;
      break;
    }
    if (password !== undefined) {
      for (const alg of DIGEST_ALGORITHMS) ha1[alg] ??= computeHA1(alg, username, realm, password);
    }
    return ha1;
  }

  private async connected(): Promise<LdapClientLike> {
    // ldapts is loaded by the first lookup of a directory: a server without one never holds its code.
    const ldapts = this.opts.createClient ? undefined : await (ldaptsModule ??= import('ldapts'));
    if (!this.client) {
      this.client = this.opts.createClient
        ? this.opts.createClient()
        : new ldapts!.Client({
            url: this.opts.url,
            timeout: this.opts.timeoutMs,
            connectTimeout: this.opts.timeoutMs,
            autoRebind: true,
          });
      const client = this.client;
      const { bindDn, bindPassword } = this.opts;
      this.bound =
        bindDn !== undefined && bindPassword !== undefined
          ? withTimeout(client.bind(bindDn, bindPassword), this.opts.timeoutMs)
          : Promise.resolve();
    }
    const client = this.client;
    await this.bound;
    return client;
  }

  private async dropClient(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    this.bound = undefined;
    if (client) {
      try {
        await withTimeout(client.unbind(), 1000);
      } catch {
        // the connection is already gone
      }
    }
  }
}

/** First value of an attribute, matched case-insensitively (RFC 4512 §2.5), as UTF-8 text. */
function firstValue(entry: Entry, attr: string): string | undefined {
  const want = attr.toLowerCase();
  for (const [name, value] of Object.entries(entry)) {
    if (name === 'dn' || name.toLowerCase() !== want) continue;
    const v = Array.isArray(value) ? value[0] : value;
    if (v === undefined) return undefined;
    return typeof v === 'string' ? v : v.toString('utf8');
  }
  return undefined;
}

function isSizeLimit(e: unknown): boolean {
  return e instanceof Error && (e.name === 'SizeLimitExceededError' || (e as { code?: unknown }).code === 4);
}

function errText(e: unknown): string {
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}

/** Reject with an Error named TimeoutError after `ms` unless `p` settles first. */
/** ldapts, imported by the first directory that connects. */
let ldaptsModule: Promise<typeof import('ldapts')> | undefined;

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const e = new Error(`no answer within ${ms} ms`);
      e.name = 'TimeoutError';
      reject(e);
    }, ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}
