/**
 * Allocation quotas (RFC 8656 §7.2: a server over quota answers 486
 * Allocation Quota Reached). The policy is a function pair passed to the
 * control plane; `allocationQuota` is the default one.
 */
import { parseRestUsername } from './rest-credentials.js';

/**
 * Counts allocations against quotas. `claim` is called before an allocation
 * is created and `release` once for every successful claim when it is deleted
 * (or its creation failed).
 */
export interface QuotaHandler {
  /** True if `user` may have one more allocation (and counts it); false -> 486. */
  claim(user: string): boolean;
  /** `user` has one allocation less. */
  release(user: string): void;
}

/** Default quotas: most allocations per user and in all; 0 = no limit. */
export interface AllocationQuotaOptions {
  /** Default 10. */
  maxAllocationsPerUser?: number;
  /** Default 1000. */
  maxAllocations?: number;
}

/** Quotas per user and in all; memory is one map entry per user holding allocations. */
export function allocationQuota(opts: AllocationQuotaOptions = {}): QuotaHandler {
  const perUserMax = opts.maxAllocationsPerUser ?? 10;
  const totalMax = opts.maxAllocations ?? 1000;
  const perUser = new Map<string, number>();
  let total = 0;
  return {
    claim(user) {
      const n = perUser.get(user) ?? 0;
      if ((perUserMax > 0 && n >= perUserMax) || (totalMax > 0 && total >= totalMax)) return false;
      perUser.set(user, n + 1);
      total++;
      return true;
    },
    release(user) {
      const n = (perUser.get(user) ?? 1) - 1;
      if (n <= 0) perUser.delete(user);
      else perUser.set(user, n);
      total = Math.max(0, total - 1);
    },
  };
}

/** The name quotas count a user under: the user part of a REST API name ("EXPIRY:user") when secrets are set, else the username. */
export function quotaName(username: string, secrets: readonly (string | Buffer)[] | undefined): string {
  if (!secrets?.length) return username;
  const rest = parseRestUsername(username);
  return rest ? rest.user : username;
}
