/**
 * Failed authentications, counted per source address and per user, to stop
 * password guessing (svcrack and the like).
 *
 * - A source address with `perSource` failures within `windowSeconds` is
 *   banned for `banSeconds` (logged at warn, `source banned`, reason
 *   `auth-failures`); the source gate then drops all of its traffic.
 * - A user with `perUser` failures within the window (a guess spread over
 *   many addresses) is locked until the window ends: digest attempts for it
 *   from addresses that have not authenticated as that user before are
 *   refused with 403 without looking at the password (logged once per window
 *   at warn, `user locked`). Addresses that did authenticate as the user keep
 *   working, so the real user's phones keep registering.
 * Exempt addresses are never banned nor locked out.
 *
 * With several SIP workers (`peers`), each count is kept by one worker so the
 * thresholds hold whichever workers the attempts reach: the failures of a
 * source address by the worker `ownerOf(address)`, those of a user name by
 * `ownerOf(user)`; the other workers send them their failures (and the
 * addresses a user authenticated from, once each). The ban is then
 * broadcast by the ban list; a user lock is broadcast by the user's owner,
 * and a worker asks the owner whether an address is known to the user only
 * while the user is locked (no answer within `askTimeoutMs`: refused).
 *
 * With `sharedSourceCount` (a shared store counts every worker's and node's
 * failures per address: Redis, store/redis-abuse.ts), a source's failures go
 * there only, not to the address's owner worker as well; the store's count
 * bans. When the store cannot be asked, the hook hands the failure back
 * ({@link AuthFailureGuard.countSource}), counted as without it.
 */
import type { Logger } from '../log.js';
import type { AddressSet } from './address-set.js';
import type { BanList } from './ban-list.js';
import { WindowCounter } from './rate-limiter.js';
import { ownerOf, SECURITY_CHANNELS, type WorkerPeers } from './worker-peers.js';

/** How long a worker waits for the user's owner to say whether an address is known, ms. */
export const USER_KNOWS_TIMEOUT_MS = 250;

/** Most users whose known addresses are remembered; past it the user remembered longest ago is forgotten. */
export const MAX_KNOWN_USERS = 100_000;
/** Most user locks heard from other workers; past it the oldest lock is forgotten. */
export const MAX_USER_LOCKS = 100_000;
/** Addresses remembered per user when `knownAddressesPerUser` is not given. */
export const DEFAULT_KNOWN_ADDRESSES_PER_USER = 8;

/** Options of {@link AuthFailureGuard}. Counts of 0 turn that check off. */
export interface AuthFailureOptions {
  bans: BanList;
  exempt: AddressSet;
  /** Failures from one address within the window that ban it. */
  perSource: number;
  /** Failures for one user name within the window that lock it for unknown addresses. */
  perUser: number;
  /** Counting window, s. */
  windowSeconds: number;
  /** Ban length, s. */
  banSeconds: number;
  logger: Logger;
  /** Addresses remembered per user as known good (most recent kept); default {@link DEFAULT_KNOWN_ADDRESSES_PER_USER}. */
  knownAddressesPerUser?: number;
  /** Clock, ms since the epoch; Date.now by default. */
  nowMs?: () => number;
  /** The other SIP workers: counts are kept by each key's owner (see the module comment). */
  peers?: WorkerPeers;
  /** Wait for the user's owner, ms; default {@link USER_KNOWS_TIMEOUT_MS}. */
  askTimeoutMs?: number;
  /** Where a source's failure is counted instead of here or at its owner worker (see the module comment). */
  sharedSourceCount?: (address: string, username: string | undefined) => void;
}

/** A user name and an address, as sent between workers. */
interface UserAddress {
  user: string;
  address: string;
}

function userAddress(p: unknown): UserAddress | undefined {
  const v = p as Partial<UserAddress> | null;
  return v && typeof v.user === 'string' && typeof v.address === 'string' ? { user: v.user, address: v.address } : undefined;
}

/** Counts failed authentications and decides bans and user locks. */
export class AuthFailureGuard {
  private readonly bySource: WindowCounter;
  private readonly byUser: WindowCounter;
  /** user → addresses that authenticated as it (insertion order = age). */
  private readonly known = new Map<string, string[]>();
  /** user → end of its lock (ms), as broadcast by the user's owner (other workers only). */
  private readonly locks = new Map<string, number>();
  private readonly log: Logger;
  private readonly nowMs: () => number;
  private readonly peers: WorkerPeers | undefined;

  constructor(private readonly opts: AuthFailureOptions) {
    const windowMs = Math.max(1, opts.windowSeconds) * 1000;
    this.bySource = new WindowCounter({ windowMs });
    this.byUser = new WindowCounter({ windowMs });
    this.log = opts.logger.child({ component: 'abuse' });
    this.nowMs = opts.nowMs ?? Date.now;
    this.peers = opts.peers && opts.peers.count > 1 ? opts.peers : undefined;
    if (this.peers) this.listen(this.peers);
  }

  /**
   * True when digest attempts for `username` from `address` are to be refused
   * (403) without checking them: the user is locked and the address is not one
   * it authenticated from. A promise only with peers, while the user is locked
   * and the address is not known here (the user's owner is asked).
   */
  isLocked(username: string, address: string): boolean | Promise<boolean> {
    if (this.opts.perUser <= 0 || this.opts.exempt.has(address)) return false;
    const nowMs = this.nowMs();
    const owner = this.ownerOfUser(username);
    if (owner === undefined) {
      if (this.byUser.count(username, nowMs) < this.opts.perUser) return false;
    } else {
      const until = this.locks.get(username);
      if (until === undefined) return false;
      if (until <= nowMs) {
        this.locks.delete(username);
        return false;
      }
    }
    if (this.known.get(username)?.includes(address)) return false;
    if (owner === undefined) return true;
    return this.peers!.request(owner, SECURITY_CHANNELS.userKnows, { user: username, address }, this.opts.askTimeoutMs ?? USER_KNOWS_TIMEOUT_MS).then(
      (knows) => knows !== true,
      (err: unknown) => {
        this.log.warn({ user: username, address, worker: owner, err: (err as Error).message }, 'user lock: the user\'s worker did not answer; refused');
        return true;
      },
    );
  }

  /** Count a failed authentication (403) of `username` (may be undefined when unreadable) from `address`. */
  failed(username: string | undefined, address: string): void {
    if (this.opts.perSource > 0 && !this.opts.exempt.has(address)) {
      if (this.opts.sharedSourceCount) this.opts.sharedSourceCount(address, username);
      else this.countSource(address, username);
    }
    if (this.opts.perUser > 0 && username !== undefined) {
      const owner = this.ownerOfUser(username);
      if (owner === undefined) this.countUser(username, address);
      else this.peers!.send(owner, SECURITY_CHANNELS.userFailure, { user: username, address });
    }
  }

  /** Remember that `address` authenticated as `username` (it stays allowed while the user is locked). */
  succeeded(username: string, address: string): void {
    if (!this.remember(username, address)) return;
    const owner = this.ownerOfUser(username);
    if (owner !== undefined) this.peers!.send(owner, SECURITY_CHANNELS.userSuccess, { user: username, address });
  }

  /** Entries held now: users with known addresses (≤ {@link MAX_KNOWN_USERS}) and locks heard from other workers (≤ {@link MAX_USER_LOCKS}). */
  get sizes(): { knownUsers: number; locks: number } {
    return { knownUsers: this.known.size, locks: this.locks.size };
  }

  /** The user's owner when it is another worker; undefined when the count is kept here. */
  private ownerOfUser(username: string): number | undefined {
    if (!this.peers) return undefined;
    const owner = ownerOf(username, this.peers.count);
    return owner === this.peers.self ? undefined : owner;
  }

  /**
   * Count one failure of source `address` here or at its owner worker (a
   * failure `sharedSourceCount` could not count in its store); bans at
   * `perSource` within the window.
   */
  countSource(address: string, username: string | undefined): void {
    const owner = this.peers ? ownerOf(address, this.peers.count) : undefined;
    if (owner === undefined || owner === this.peers!.self) this.countSourceHere(address, username);
    else this.peers!.send(owner, SECURITY_CHANNELS.sourceFailure, { address, ...(username !== undefined && { user: username }) });
  }

  private countSourceHere(address: string, username: string | undefined): void {
    const nowMs = this.nowMs();
    const n = this.bySource.add(address, nowMs);
    if (n >= this.opts.perSource) {
      this.bySource.reset(address);
      this.opts.bans.ban(address, this.opts.banSeconds, 'auth-failures', { failures: n, windowSeconds: this.opts.windowSeconds, user: username }, nowMs);
    }
  }

  private countUser(username: string, address: string): void {
    const nowMs = this.nowMs();
    const n = this.byUser.add(username, nowMs);
    if (n !== this.opts.perUser) return;
    this.log.warn({ user: username, failures: n, windowSeconds: this.opts.windowSeconds, lastAddress: address }, 'user locked');
    this.peers?.broadcast(SECURITY_CHANNELS.userLocked, { user: username, untilMs: nowMs + this.byUser.remainingMs(username, nowMs) });
  }

  /** Add `address` to the user's known addresses; true when it was not the most recent one already. */
  private remember(username: string, address: string): boolean {
    const max = this.opts.knownAddressesPerUser ?? DEFAULT_KNOWN_ADDRESSES_PER_USER;
    let list = this.known.get(username);
    if (!list) {
      if (this.known.size >= MAX_KNOWN_USERS) {
        const first = this.known.keys().next();
        if (!first.done) this.known.delete(first.value);
      }
      list = [];
      this.known.set(username, list);
    }
    if (list[list.length - 1] === address) return false;
    const i = list.indexOf(address);
    if (i >= 0) list.splice(i, 1);
    list.push(address);
    if (list.length > max) list.shift();
    return i < 0;
  }

  private listen(peers: WorkerPeers): void {
    peers.on(SECURITY_CHANNELS.sourceFailure, (_from, p) => {
      const v = p as { address?: unknown; user?: unknown } | null;
      if (v && typeof v.address === 'string' && this.opts.perSource > 0 && !this.opts.exempt.has(v.address)) {
        this.countSourceHere(v.address, typeof v.user === 'string' ? v.user : undefined);
      }
    });
    peers.on(SECURITY_CHANNELS.userFailure, (_from, p) => {
      const v = userAddress(p);
      if (v && this.opts.perUser > 0) this.countUser(v.user, v.address);
    });
    peers.on(SECURITY_CHANNELS.userSuccess, (_from, p) => {
      const v = userAddress(p);
      if (v) this.remember(v.user, v.address);
    });
    peers.on(SECURITY_CHANNELS.userKnows, (_from, p) => {
      const v = userAddress(p);
      return v !== undefined && (this.known.get(v.user)?.includes(v.address) ?? false);
    });
    peers.on(SECURITY_CHANNELS.userLocked, (_from, p) => {
      const v = p as { user?: unknown; untilMs?: unknown } | null;
      if (!v || typeof v.user !== 'string' || typeof v.untilMs !== 'number') return;
      if (!this.locks.has(v.user) && this.locks.size >= MAX_USER_LOCKS) {
        const first = this.locks.keys().next();
        if (!first.done) this.locks.delete(first.value);
      }
      this.locks.set(v.user, v.untilMs);
    });
  }
}
