/** STUN/TURN server (RFC 8489, RFC 8656, RFC 6062): public surface. Policies are functions passed in the options. */
export { TurnServer, type TurnListen, type TurnServerOptions, type TurnServerStats } from './turn-server.js';
export { TurnControl, type TurnControlOptions, type TurnPolicyOptions, type ClientDelivery, type PermissionHandler } from './turn-control.js';
export type { AuthHandler } from './turn-auth.js';
export type { QuotaHandler } from './quota.js';
export type { UdpDataPlane } from './udp-data-plane.js';
export type { StreamCounters, StreamLimits } from './stream-limits.js';
export { type RelayHandle } from './allocation.js';
export { TurnError } from './turn-error.js';
export { longTermKey, userhash } from '../stun/stun-integrity.js';
