/**
 * STUN responses of the TURN server (RFC 8489 §6.3.1 and §6.3.4): success and
 * error responses to a request, with SOFTWARE when configured, ERROR-CODE and
 * UNKNOWN-ATTRIBUTES for errors, MESSAGE-INTEGRITY(-SHA256) when the request
 * authenticated, and FINGERPRINT when asked.
 */
import { encodeErrorCode, encodeUnknownAttributes } from '../stun/stun-attributes.js';
import { AttributeType as A, encodeStunMessage, type StunAttribute, type StunMessage } from '../stun/stun-message.js';
import { TurnError } from './turn-error.js';

/** The key a request authenticated with and the integrity attribute it used: responses are protected the same way (RFC 8489 §9.2.4). */
export interface ResponseIntegrity {
  key: Buffer;
  integrity: 'sha1' | 'sha256';
}

/** Shorthand for one attribute. */
export function attr(type: number, value: Buffer): StunAttribute {
  return { type, value };
}

/** Builds responses; `software` (SOFTWARE attribute, RFC 8489 §14.14, at most 763 bytes) is added when given. */
export class TurnResponder {
  private readonly software: StunAttribute[];

  constructor(software: string | undefined) {
    this.software = software ? [attr(A.Software, Buffer.from(software, 'utf8').subarray(0, 763))] : [];
  }

  /** Success response to `req` carrying `attributes`. */
  success(req: StunMessage, attributes: StunAttribute[], auth: ResponseIntegrity | undefined, fingerprint: boolean): Buffer {
    return encodeStunMessage(
      { method: req.method, class: 'success', transactionId: req.transactionId, attributes: [...attributes, ...this.software] },
      { integrityKey: auth?.key, integrity: auth?.integrity, fingerprint },
    );
  }

  /** Error response to `req` with ERROR-CODE from `err` (and UNKNOWN-ATTRIBUTES for 420), then `extra`. */
  error(req: Pick<StunMessage, 'method' | 'transactionId'>, err: TurnError, auth: ResponseIntegrity | undefined, fingerprint: boolean, extra: StunAttribute[] = []): Buffer {
    const attributes = [attr(A.ErrorCode, encodeErrorCode(err.status, err.message)), ...extra];
    if (err.status === 420 && err.unknownAttributes.length) attributes.push(attr(A.UnknownAttributes, encodeUnknownAttributes(err.unknownAttributes)));
    return encodeStunMessage(
      { method: req.method, class: 'error', transactionId: req.transactionId, attributes: [...attributes, ...this.software] },
      { integrityKey: auth?.key, integrity: auth?.integrity, fingerprint },
    );
  }
}
