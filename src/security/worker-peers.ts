/**
 * What the security pieces need of the other SIP workers of one instance:
 * the worker mesh (transport/worker-mesh.ts `WorkerMesh` has this shape;
 * security/ sits below the transport layer and does not import it), and the
 * rule that says which worker keeps the count of a key.
 *
 * A count that must hold across workers (failed authentications of a source
 * address, calls of a user) is kept by one worker, the key's owner,
 * `ownerOf(key, count)`; the others send it their events or ask it. A
 * decision every worker must apply (a ban) is broadcast.
 */
import { fnv1a } from '../sip/fnv.js';

/** The other workers, as the security pieces use them (a subset of `WorkerMesh`). */
export interface WorkerPeers {
  /** This worker's index, 0 ≤ self < count. */
  readonly self: number;
  /** How many workers the instance runs. */
  readonly count: number;
  /** One-way message to worker `to` (never self); dropped when it is not connected. */
  send(to: number, channel: string, payload: unknown): void;
  /** One-way message to every other worker. */
  broadcast(channel: string, payload: unknown): void;
  /** Ask worker `to`; rejects after `timeoutMs` ms without an answer, or when its handler threw. */
  request(to: number, channel: string, payload: unknown, timeoutMs: number): Promise<unknown>;
  /** The one handler of a channel; its return value (or promise) answers a request. */
  on(channel: string, handler: (from: number, payload: unknown) => unknown): void;
  /** Told when the connection to a worker opens (`up`: it started or restarted) or is lost; optional. */
  onPeerChange?(listener: (worker: number, up: boolean) => void): void;
}

/**
 * The worker that keeps the count of `key` among `count` workers: FNV-1a
 * (32 bits) of the key's UTF-16 code units, modulo `count`. The same in every
 * process (no per-process seed), so all workers agree on the owner.
 * @returns 0 ≤ owner < count (0 when count ≤ 1).
 */
export function ownerOf(key: string, count: number): number {
  if (count <= 1) return 0;
  return fnv1a(key) % count;
}

/** Channel names on the mesh (one place, so two pieces never pick the same). */
export const SECURITY_CHANNELS = {
  /** Broadcast: a ban to apply (`{ address, reason, since, until }`). */
  ban: 'security.ban',
  /** Broadcast: a ban lifted (`{ address }`). */
  unban: 'security.unban',
  /** Request to one worker: its active bans (a worker that started late catches up). */
  bans: 'security.bans',
  /** To the address's owner: one failed authentication (`{ address, user? }`). */
  sourceFailure: 'security.auth-failure.source',
  /** To the user's owner: one failed authentication (`{ user, address }`). */
  userFailure: 'security.auth-failure.user',
  /** To the user's owner: an address authenticated as the user (`{ user, address }`). */
  userSuccess: 'security.auth-success.user',
  /** Broadcast by the user's owner: the user is locked until `untilMs` (`{ user, untilMs }`). */
  userLocked: 'security.user-locked',
  /** Request to the user's owner: did `address` authenticate as `user`? (`{ user, address }` → boolean). */
  userKnows: 'security.user-knows',
  /** Request to the user's owner: admit a call (`{ user, callId }` → CallRefusal | null). */
  callAdmit: 'security.call-admit',
  /** To the user's owner: a call ended (`{ user, callId }`). */
  callEnd: 'security.call-end',
} as const;
