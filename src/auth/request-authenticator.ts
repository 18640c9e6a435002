import type { SipRequest } from '../sip/message.js';
import { getHeader } from '../sip/message.js';
import { parseNameAddr } from '../sip/headers.js';
import { parseUri } from '../sip/uri.js';
import type { AuthFailureGuard } from '../security/auth-failures.js';
import type { Awaitable } from './user-source.js';
import { checkNonce, nonceIssuer } from './nonce.js';
import { authenticateRequest, challengeHeaders, type CredentialsRead, type DigestOutcome, type DigestPolicy, readCredentials } from './sip-digest.js';

/**
 * The outcome of an {@link Authenticate} hook: a digest outcome, or success by
 * a verified client certificate (`method: 'certificate'`, no algorithm).
 */
export type AuthOutcome = DigestOutcome | { ok: true; username: string; realm: string; method: 'certificate' };

/**
 * How the registrar (`kind` 'www', 401) and the proxy (`kind` 'proxy', 407)
 * establish who sent a request. The outcome is either the authenticated
 * identity or the response to send (challenge, 403, 400, 503...).
 * `source` is where the request came from (for client certificates and
 * per-source policy).
 */
export type Authenticate = (req: SipRequest, kind: 'www' | 'proxy', source: RequestOrigin) => Awaitable<AuthOutcome>;

/**
 * Where a request came from, as far as authentication needs it
 * (transport/types.ts `Source` has this shape; auth/ does not import the transport layer).
 */
export interface RequestOrigin {
  remoteAddress: string;
  /** Identities (`sip:user@host`) of a verified TLS/WSS client certificate. */
  tlsIdentities?: string[];
}

/** Client-certificate authentication settings of {@link createAuthenticator}. */
export interface CertificateAuthPolicy {
  /**
   * The canonical AOR `sip:user@domain` of a URI in a served domain (own
   * addresses stand for the default domain), else undefined. Certificate
   * identities and the From/To URI are both mapped through it before comparing.
   */
  aorOf(uri: string): string | undefined;
}

/** Optional parts of the authenticator beyond digest. */
export interface AuthenticatorExtras {
  /** Accept `source.tlsIdentities` (a verified client certificate) for a matching AOR. */
  certificates?: CertificateAuthPolicy;
  /** Count digest failures per source and user; refuse locked users (see security/auth-failures.ts). */
  failures?: AuthFailureGuard;
}

/** The algorithms of a policy's challenges (MD5 when none is listed), as sip-digest.ts offers them. */
const offered = (policy: DigestPolicy): DigestPolicy['algorithms'] => (policy.algorithms.length > 0 ? policy.algorithms : ['MD5']);

/**
 * The authenticator: client certificate first, then digest (RFC 3261 §22, RFC 7616).
 *
 * - Certificate: when the request arrived on a TLS flow whose client
 *   certificate verified (`source.tlsIdentities`), and one identity equals the
 *   AOR of the To URI (REGISTER, kind `www`) or the From URI (kind `proxy`),
 *   the request is authenticated as that AOR's user with no challenge. A
 *   certificate for another AOR is ignored (digest applies as usual).
 * - Digest: {@link authenticateRequest}. With `failures`, a 403 (wrong password
 *   or unknown user, alike) is counted against the source address and the
 *   user name, and a locked user gets 403 from an address it never
 *   authenticated from, before the digest is checked.
 * - Several SIP workers (`policy.nonceIssuer` set: this worker's index): credentials whose genuine
 *   nonce another worker issued (auth/nonce.ts issuer byte) are answered as stale before the digest
 *   is checked: 401/407 with stale=true and a fresh nonce of this worker (RFC 7616 §3.3: the client
 *   retries without asking its user). Nonce-count replay (§3.3) is checked against counts one worker
 *   keeps, so a nonce is only ever accepted by its issuer. Such an answer counts as no failure.
 *
 * The outcome itself when nothing had to be waited for (no lock check with another worker, the
 * credentials at hand), else a promise of it.
 */
export function createAuthenticator(policy: DigestPolicy, extras: AuthenticatorExtras = {}): Authenticate {
  const { certificates, failures } = extras;
  return (req, kind, source) => {
    if (certificates && source.tlsIdentities?.length) {
      const claimed = claimedAor(req, kind, certificates);
      if (claimed && source.tlsIdentities.some((id) => certificates.aorOf(id) === claimed)) {
        const at = claimed.lastIndexOf('@');
        return { ok: true, username: claimed.slice(4, at), realm: claimed.slice(at + 1), method: 'certificate' };
      }
    }
    const read = readCredentials(req, kind, policy.realm);
    const stale = staleIfOtherIssuer(req, read, kind, policy);
    if (stale) return stale;
    if (!failures) return authenticateRequest(req, kind, policy, read);
    const username = read.creds?.username;
    const locked = username !== undefined && failures.isLocked(username, source.remoteAddress);
    const check = (isLocked: boolean): Awaitable<AuthOutcome> => {
      if (username !== undefined && isLocked) {
        failures.failed(username, source.remoteAddress);
        return { ok: false, status: 403, reason: 'Forbidden', headers: [], detail: 'user locked' };
      }
      const outcome = authenticateRequest(req, kind, policy, read);
      return outcome instanceof Promise ? outcome.then(count) : count(outcome);
    };
    const count = (outcome: DigestOutcome): DigestOutcome => {
      if (outcome.ok) failures.succeeded(outcome.username, source.remoteAddress);
      else if (outcome.status === 403) failures.failed(username, source.remoteAddress);
      return outcome;
    };
    return locked instanceof Promise ? locked.then(check) : check(locked);
  };
}

/** The stale challenge for credentials whose genuine nonce another worker issued; undefined otherwise. */
function staleIfOtherIssuer(req: SipRequest, read: CredentialsRead, kind: 'www' | 'proxy', policy: DigestPolicy): DigestOutcome | undefined {
  const self = policy.nonceIssuer;
  const nonce = read.creds?.nonce;
  if (self === undefined || nonce === undefined) return undefined;
  const issuer = nonceIssuer(nonce);
  if (issuer === undefined || issuer === self) return undefined;
  const nowMs = (policy.nowMs ?? Date.now)();
  // A forged nonce is left to the digest check (a plain challenge); a genuine one, even expired, is stale.
  if (checkNonce(policy.secret, nonce, policy.nonceTtlS, nowMs) === 'invalid') return undefined;
  const status = kind === 'www' ? 401 : 407;
  return {
    ok: false,
    status,
    reason: status === 401 ? 'Unauthorized' : 'Proxy Authentication Required',
    headers: challengeHeaders(kind, policy.realm, offered(policy), policy.secret, nowMs, true, self, req),
    detail: `nonce of worker ${issuer}`,
  };
}

/** AOR of To (`www`) or From (`proxy`), canonical, or undefined. */
function claimedAor(req: SipRequest, kind: 'www' | 'proxy', certs: CertificateAuthPolicy): string | undefined {
  try {
    const uri = parseNameAddr(getHeader(req, kind === 'www' ? 'to' : 'from') ?? '').uri;
    parseUri(uri);
    return certs.aorOf(uri);
  } catch {
    return undefined;
  }
}
