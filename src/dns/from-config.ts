/**
 * The DNS machinery one server process shares, built from the `dns` section
 * of the configuration: the caching resolver, the failed-target table of
 * RFC 3263 §4.3 and the ENUM suffixes (RFC 6116 §2.4).
 */
import type { DnsConfig } from '../config/schema.js';
import type { Logger } from '../log.js';
import { FailedTargets } from './failed-targets.js';
import { DnsResolver } from './resolver.js';

/** What {@link dnsFromConfig} builds. */
export interface DnsServices {
  resolver: DnsResolver;
  failedTargets: FailedTargets;
  enumSuffixes: readonly string[];
}

/** Builds the resolver (servers from `dns.servers`, [] = the system's), the failed-target table and the ENUM suffixes. `nowMs` (ms) is for tests. */
export function dnsFromConfig(cfg: DnsConfig, log?: Logger, nowMs: () => number = Date.now): DnsServices {
  return {
    resolver: new DnsResolver({ ...cfg, nowMs, log }),
    failedTargets: new FailedTargets(cfg.failed_target_seconds, cfg.failed_targets_max, nowMs),
    enumSuffixes: cfg.enum_suffixes,
  };
}
