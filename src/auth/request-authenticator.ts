import type { SipRequest } from '../sip/message.js';
import type { Source } from '../transport/types.js';
import { authenticateRequest, type DigestOutcome, type DigestPolicy } from './sip-digest.js';

/**
 * How the registrar (`kind` 'www', 401) and the proxy (`kind` 'proxy', 407)
 * establish who sent a request. The outcome is either the authenticated
 * identity or the response to send (challenge, 403, 400, 503...).
 * `source` is where the request came from (for client certificates and
 * per-source policy).
 */
export type Authenticate = (req: SipRequest, kind: 'www' | 'proxy', source: Source) => Promise<DigestOutcome>;

/** The default authenticator: digest only (RFC 3261 §22, RFC 7616). */
export function createAuthenticator(policy: DigestPolicy): Authenticate {
  return (req, kind) => authenticateRequest(req, kind, policy);
}
