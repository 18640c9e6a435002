/**
 * The abuse-resistance pieces wired together from the `sip.security` settings:
 * one ban list shared by the source gate (request rate, scanners) and the
 * failed-authentication guard, plus the per-user call limits.
 */
import type { Logger } from '../log.js';
import { AddressSet } from './address-set.js';
import { AuthFailureGuard } from './auth-failures.js';
import { type Ban, BanList } from './ban-list.js';
import { CallLimits } from './call-limits.js';
import { ScannerFilter } from './scanner-filter.js';
import { type GateSource, SourceGate } from './source-gate.js';

/** `sip.security` as in the configuration file (snake_case). */
export interface SecuritySettings {
  exempt_sources: string[];
  source_rate: { requests_per_second: number; burst: number; ban_seconds: number };
  auth_failures: { per_source: number; per_user: number; window_seconds: number; ban_seconds: number };
  scanner_user_agents: string[];
  calls: { max_concurrent_per_user: number; max_attempts_per_minute: number; max_call_seconds: number };
}

/** The assembled pieces. */
export interface Security {
  bans: BanList;
  gate: SourceGate;
  failures: AuthFailureGuard;
  calls: CallLimits;
}

/**
 * Build the pieces.
 * @param onBansChanged receives the active bans after each ban or unban (for `data_dir/bans.json`).
 * @param onDroppedBanned called for messages dropped from a banned source (to close its stream flow).
 * @throws AddressSetError for a malformed `exempt_sources` entry (the schema checks them first).
 */
export function createSecurity(
  settings: SecuritySettings,
  logger: Logger,
  hooks: { onBansChanged?: (bans: Ban[]) => void; onDroppedBanned?: (source: GateSource) => void } = {},
): Security {
  const exempt = new AddressSet(settings.exempt_sources);
  const bans = new BanList({ logger, onChange: hooks.onBansChanged });
  const gate = new SourceGate({
    bans,
    exempt,
    requestsPerSecond: settings.source_rate.requests_per_second,
    burst: settings.source_rate.burst,
    banSeconds: settings.source_rate.ban_seconds,
    scanners: new ScannerFilter(settings.scanner_user_agents),
    logger,
    onDroppedBanned: hooks.onDroppedBanned,
  });
  const failures = new AuthFailureGuard({
    bans,
    exempt,
    perSource: settings.auth_failures.per_source,
    perUser: settings.auth_failures.per_user,
    windowSeconds: settings.auth_failures.window_seconds,
    banSeconds: settings.auth_failures.ban_seconds,
    logger,
  });
  const calls = new CallLimits({
    maxConcurrent: settings.calls.max_concurrent_per_user,
    maxPerMinute: settings.calls.max_attempts_per_minute,
    maxCallSeconds: settings.calls.max_call_seconds,
    logger,
  });
  return { bans, gate, failures, calls };
}
