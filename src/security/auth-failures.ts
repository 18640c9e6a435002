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
 */
import type { Logger } from '../log.js';
import type { AddressSet } from './address-set.js';
import type { BanList } from './ban-list.js';
import { WindowCounter } from './rate-limiter.js';

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
  /** Addresses remembered per user as known good (most recent kept); default 8. */
  knownAddressesPerUser?: number;
  /** Clock, ms since the epoch; Date.now by default. */
  nowMs?: () => number;
}

/** Counts failed authentications and decides bans and user locks. */
export class AuthFailureGuard {
  private readonly bySource: WindowCounter;
  private readonly byUser: WindowCounter;
  /** user → addresses that authenticated as it (insertion order = age). */
  private readonly known = new Map<string, string[]>();
  private readonly log: Logger;
  private readonly nowMs: () => number;

  constructor(private readonly opts: AuthFailureOptions) {
    const windowMs = Math.max(1, opts.windowSeconds) * 1000;
    this.bySource = new WindowCounter({ windowMs });
    this.byUser = new WindowCounter({ windowMs });
    this.log = opts.logger.child({ component: 'abuse' });
    this.nowMs = opts.nowMs ?? Date.now;
  }

  /**
   * True when digest attempts for `username` from `address` are to be refused
   * (403) without checking them: the user is locked and the address is not one
   * it authenticated from.
   */
  isLocked(username: string, address: string): boolean {
    if (this.opts.perUser <= 0) return false;
    if (this.byUser.count(username, this.nowMs()) < this.opts.perUser) return false;
    if (this.opts.exempt.has(address)) return false;
    return !(this.known.get(username)?.includes(address) ?? false);
  }

  /** Count a failed authentication (403) of `username` (may be undefined when unreadable) from `address`. */
  failed(username: string | undefined, address: string): void {
    const nowMs = this.nowMs();
    if (this.opts.perSource > 0 && !this.opts.exempt.has(address)) {
      const n = this.bySource.add(address, nowMs);
      if (n >= this.opts.perSource) {
        this.bySource.reset(address);
        this.opts.bans.ban(address, this.opts.banSeconds, 'auth-failures', { failures: n, windowSeconds: this.opts.windowSeconds, user: username }, nowMs);
      }
    }
    if (this.opts.perUser > 0 && username !== undefined) {
      const n = this.byUser.add(username, nowMs);
      if (n === this.opts.perUser) {
        this.log.warn({ user: username, failures: n, windowSeconds: this.opts.windowSeconds, lastAddress: address }, 'user locked');
      }
    }
  }

  /** Remember that `address` authenticated as `username` (it stays allowed while the user is locked). */
  succeeded(username: string, address: string): void {
    const max = this.opts.knownAddressesPerUser ?? 8;
    let list = this.known.get(username);
    if (!list) {
      if (this.known.size >= 100_000) {
        const first = this.known.keys().next();
        if (!first.done) this.known.delete(first.value);
      }
      list = [];
      this.known.set(username, list);
    }
    const i = list.indexOf(address);
    if (i >= 0) list.splice(i, 1);
    list.push(address);
    if (list.length > max) list.shift();
  }
}
