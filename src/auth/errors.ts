/**
 * Errors of the authentication layer.
 *
 * Every error carries the SIP status it maps to, so the caller can turn it into
 * a response without inspecting the message: 400 for malformed credentials
 * (RFC 3261 §21.4.1), 401/407 for a challenge, 403 for a refused identity.
 */
export class AuthError extends Error {
  /** SIP status code this error maps to (400, 401, 403, 407). */
  readonly status: number;

  /**
   * @param status SIP status code the error maps to.
   * @param message human-readable reason, safe to log (never contains a password or HA1).
   */
  constructor(status: number, message: string) {
    super(message);
    this.name = 'AuthError';
    this.status = status;
  }
}
