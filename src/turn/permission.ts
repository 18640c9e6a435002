/**
 * Permissions of one allocation (RFC 8656 §9): keyed by peer IP address only
 * (the port is ignored), each living 300 s unless refreshed.
 */

/** Permission lifetime, ms (RFC 8656 §9: 300 s). */
export const PERMISSION_LIFETIME_MS = 300_000;

/** The permission table of one allocation. Times are ms on the caller's clock. */
export class PermissionTable {
  private readonly expiry = new Map<string, number>();

  /** @param onChange told of every install/refresh (new expiry, ms) and removal (0), e.g. to mirror a data plane. */
  constructor(private readonly onChange?: (peerIp: string, expiresAtMs: number) => void) {}

  /** Installs or refreshes a permission for `peerIp` until now + 300 s. */
  install(peerIp: string, nowMs: number): void {
    this.expiry.set(peerIp, nowMs + PERMISSION_LIFETIME_MS);
    this.onChange?.(peerIp, nowMs + PERMISSION_LIFETIME_MS);
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
