/**
 * Permissions of one allocation (RFC 8656 §9): keyed by peer IP address only
 * (the port is ignored), each living 300 s unless refreshed.
 */

import { TurnError } from './turn-error.js';

/** Permission lifetime, ms (RFC 8656 §9: 300 s). */
export const PERMISSION_LIFETIME_MS = 300_000;

/** Default most permissions (peer IP addresses) per allocation (`turn.permissions_per_allocation`; coturn's limit too). */
export const DEFAULT_MAX_PERMISSIONS = 1024;

/** The permission table of one allocation. Times are ms on the caller's clock. */
export class PermissionTable {
  private readonly expiry = new Map<string, number>();

  /** @param onChange told of every install/refresh (new expiry, ms) and removal (0), e.g. to mirror a data plane. */
  constructor(private readonly onChange?: (peerIp: string, expiresAtMs: number) => void) {}

  /** Installs or refreshes a permission for `peerIp` until now + 300 s (no limit: see installAll). */
  install(peerIp: string, nowMs: number): void {
    this.expiry.set(peerIp, nowMs + PERMISSION_LIFETIME_MS);
    this.onChange?.(peerIp, nowMs + PERMISSION_LIFETIME_MS);
  }

  /**
   * Installs or refreshes permissions for every address of `peerIps`, or for
   * none when the table would then hold more than `maxPermissions`
   * (checkRoom); refreshing is always possible.
   * @throws TurnError(508) when over the limit; nothing is installed then.
   */
  installAll(peerIps: readonly string[], nowMs: number, maxPermissions: number): void {
    this.checkRoom(peerIps, nowMs, maxPermissions);
    for (const ip of peerIps) this.install(ip, nowMs);
  }

  /**
   * Checks that permissions for `peerIps` fit in `maxPermissions` (expired
   * ones are dropped first when needed).
   * @throws TurnError(508 Insufficient Capacity, RFC 8656 §18) when they do not.
   */
  checkRoom(peerIps: readonly string[], nowMs: number, maxPermissions: number): void {
    const added = new Set(peerIps.filter((ip) => !this.expiry.has(ip))).size;
    if (added === 0 || this.expiry.size + added <= maxPermissions) return;
    this.sweep(nowMs);
    if (this.expiry.size + added > maxPermissions) throw new TurnError(508, `Insufficient Capacity: at most ${maxPermissions} permissions per allocation`);
  }

  /** True if an unexpired permission exists for `peerIp`. */
  has(peerIp: string, nowMs: number): boolean {
    const e = this.expiry.get(peerIp);
    return e !== undefined && e > nowMs;
  }

  /** Expiry time (ms) of the permission for `peerIp`, or undefined. */
  expiresAtMs(peerIp: string): number | undefined {
    return this.expiry.get(peerIp);
  }

  /** Removes expired permissions; returns how many were removed. */
  sweep(nowMs: number): number {
    let n = 0;
    for (const [ip, e] of this.expiry) if (e <= nowMs) { this.expiry.delete(ip); this.onChange?.(ip, 0); n++; }
    return n;
  }

  /** Number of stored permissions (expired ones included until swept). */
  get size(): number {
    return this.expiry.size;
  }
}
