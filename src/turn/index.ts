/** STUN/TURN server (RFC 8489, RFC 8656): public surface. */
export { TurnServer, type TurnListen, type TurnServerOptions } from './turn-server.js';
export { TurnControl, type TurnControlOptions, type ClientDelivery } from './turn-control.js';
export { type RelayHandle } from './allocation.js';
export { TurnError } from './turn-error.js';
export { longTermKey } from '../stun/stun-integrity.js';
