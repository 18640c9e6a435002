/**
 * The abuse-resistance pieces wired together from the `sip.security` settings:
 * one ban list shared by the source gate (request rate, scanners) and the
 * failed-authentication guard, plus the per-user call limits.
 *
 * With several SIP workers, the pieces take the worker mesh: bans are
 * broadcast, failed-authentication and call counts are kept by each key's
 * owner (see worker-peers.ts), and only one worker writes `data_dir/bans.json`.
 * With a shared store (`shared`: Redis), bans and failures per source travel
 * through it only, to every worker of every node, not over the mesh as well.
 */
import type { Logger } from '../log.js';
import { AddressSet } from './address-set.js';
import { AuthFailureGuard } from './auth-failures.js';
import { type Ban, BanList } from './ban-list.js';
import { CallLimits } from './call-limits.js';
import { ScannerFilter } from './scanner-filter.js';
import { type GateSource, SourceGate } from './source-gate.js';
import type { WorkerPeers } from './worker-peers.js';

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

/** The SIP workers the pieces share their state with. */
export interface SecurityWorkers {
  /** The worker mesh (transport/worker-mesh.ts), as {@link WorkerPeers}. */
  peers: WorkerPeers;
  /** The one worker that writes the ban file (gets `onBansChanged`); default 0. */
  banFileWorker?: number;
  /** Wait for worker `banFileWorker`'s active bans at start, ms; default 2000. */
  banPullTimeoutMs?: number;
  /**
   * Calls are counted across every process by a shared store (Redis, store/redis-calls.ts): each worker's
   * {@link CallLimits} then counts its own calls only, asking no other worker (the store's count decides).
   */
  callsCountedInStore?: boolean;
}

/**
 * A store every worker and node shares bans and failure counts through (Redis, store/redis-abuse.ts). Each
 * worker subscribes to it on its own and applies every ban it hands back ({@link BanList.applyShared}); the
 * mesh then carries no ban and no failure of a source (one path), except as these hooks' fallback while the
 * store cannot be reached ({@link BanList.broadcast}, {@link AuthFailureGuard.countSource}).
 */
export interface SharedAbuse {
  /** A ban decided by this worker: store and announce it. */
  ban(ban: Ban): void;
  /** A failed authentication from `address` (not exempt; `per_source` > 0): count it in the store. */
  sourceFailure(address: string, username: string | undefined): void;
}

/**
 * Build the pieces.
 * @param onBansChanged receives the active bans after each ban or unban (for `data_dir/bans.json`);
 *   with `workers`, only on worker `banFileWorker`.
 * @param onDroppedBanned called for messages dropped from a banned source (to close its stream flow).
 * @param workers the other SIP workers; without it every count is this process's own. With it, the
 *   bans the ban-file worker already holds are fetched from it in the background (a late start),
 *   and that worker sends them to any worker whose connection opens (a restart).
 * @param shared the store bans and failures per source travel through instead of the mesh (Redis), if any.
 * @throws AddressSetError for a malformed `exempt_sources` entry (the schema checks them first).
 */
export function createSecurity(
  settings: SecuritySettings,
  logger: Logger,
  hooks: { onBansChanged?: (bans: Ban[]) => void; onDroppedBanned?: (source: GateSource) => void } = {},
  workers?: SecurityWorkers,
  shared?: SharedAbuse,
): Security {
  const exempt = new AddressSet(settings.exempt_sources);
  const peers = workers?.peers;
  const banFileWorker = workers?.banFileWorker ?? 0;
  const writesBanFile = !peers || peers.self === banFileWorker;
  // With a shared store, a worker that starts reads the active bans from it (RedisAbuseChannel.start): no pull, no push.
  const bans = new BanList({
    logger,
    onChange: writesBanFile ? hooks.onBansChanged : undefined,
    peers,
    pushToJoiningWorkers: peers !== undefined && writesBanFile && !shared,
    share: shared && ((ban) => shared.ban(ban)),
  });
  if (!writesBanFile && peers.count > 1 && !shared) {
    bans.pull(banFileWorker, workers.banPullTimeoutMs ?? 2000).catch((err: unknown) => {
      logger.child({ component: 'abuse' }).debug({ err: (err as Error).message, worker: banFileWorker }, 'active bans not fetched at start');
    });
  }
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
    peers,
    sharedSourceCount: shared && ((address, username) => shared.sourceFailure(address, username)),
  });
  const calls = new CallLimits({
    maxConcurrent: settings.calls.max_concurrent_per_user,
    maxPerMinute: settings.calls.max_attempts_per_minute,
    maxCallSeconds: settings.calls.max_call_seconds,
    logger,
    peers: workers?.callsCountedInStore ? undefined : peers,
  });
  return { bans, gate, failures, calls };
}
