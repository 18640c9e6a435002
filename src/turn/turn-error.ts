/**
 * Typed errors of the TURN control plane. Each carries the STUN error code
 * (RFC 8489 §14.8, RFC 8656 §18.4 / §17) its response uses.
 */

/** Reason phrases of the error codes this server sends. */
export const ERROR_REASONS: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  420: 'Unknown Attribute',
  437: 'Allocation Mismatch',
  438: 'Stale Nonce',
  440: 'Address Family not Supported',
  441: 'Wrong Credentials',
  442: 'Unsupported Transport Protocol',
  443: 'Peer Address Family Mismatch',
  446: 'Connection Already Exists',
  447: 'Connection Timeout or Failure',
  486: 'Allocation Quota Reached',
  500: 'Server Error',
  508: 'Insufficient Capacity',
};

/** A request that must be answered with an error response carrying `status`. */
export class TurnError extends Error {
  override readonly name = 'TurnError';
  /**
   * @param status STUN error code, 300-699.
   * @param reason Reason phrase; defaults to the standard one for `status`.
   * @param unknownAttributes Types to list in UNKNOWN-ATTRIBUTES (420 only).
   */
  constructor(
    readonly status: number,
    reason?: string,
    readonly unknownAttributes: number[] = [],
  ) {
    super(reason ?? ERROR_REASONS[status] ?? 'Error');
  }
}
