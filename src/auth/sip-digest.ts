/**
 * Digest authentication of SIP requests (RFC 3261 §22, RFC 7616, RFC 8760).
 *
 * One function, {@link authenticateRequest}, checks the Authorization (registrar,
 * §22.2) or Proxy-Authorization (proxy, §22.3) credentials of a request and
 * answers with either the authenticated identity or the response to send:
 * a 401/407 challenge, 403, or 400. Nonces are stateless (`nonce.ts`).
 *
 * The caller decides which requests to challenge: ACK and CANCEL cannot be
 * challenged (§22.1) and must not be passed here.
 */
import { createHmac, hash, timingSafeEqual } from 'node:crypto';
import { type Logger, silentLogger } from '../log.js';
import { getHeader, getHeaderValues, type SipRequest } from '../sip/message.js';
import { parseUri, type SipUri, uriEquals } from '../sip/uri.js';
import { type Awaitable, UserSourceUnavailableError } from './user-source.js';
import {
  computeResponse,
  type DigestAlgorithm,
  type DigestCredentials,
  digestHexLength,
  formatChallenge,
  parseAlgorithm,
  parseCredentials,
} from './digest.js';
import { AuthError } from './errors.js';
import { checkNonce, createNonce, type NonceCountTracker } from './nonce.js';
import { detachString } from '../sip/detach.js';

/** What the server accepts and how it finds users. Passed in by the registrar or proxy. */
export interface DigestPolicy {
  /** Realm of the challenges; the served domain (RFC 3261 §22.1). Credentials for other realms are ignored. */
  realm: string;
  /** Key of the nonce MAC; at least 16 random bytes, the same on every node of a cluster. */
  secret: Buffer;
  /** Nonce lifetime in seconds; after it the client is challenged again with stale=true. */
  nonceTtlS: number;
  /** Issuer byte of the nonces this policy makes (0..255, the SIP worker index; default 0), see nonce.ts. */
  nonceIssuer?: number;
  /** Algorithms offered, one challenge header each, in this order (RFC 8760 §2.4: preferred first). Default ['MD5']. */
  algorithms: DigestAlgorithm[];
  /**
   * HA1 = H(username:realm:password) as hex for this algorithm, or undefined for an unknown user
   * or a user without a credential for `alg` (both answered 403 alike).
   * A {@link UserSourceUnavailableError} becomes 503 with Retry-After; any other rejection
   * propagates out of {@link authenticateRequest}.
   */
  lookupHa1(username: string, realm: string, alg: DigestAlgorithm): Awaitable<string | undefined>;
  /**
   * Digest `uri` check (RFC 7616 §3.4.6). false (default): the uri must be a SIP or SIPS URI naming
   * the realm, a host for which `isOwnHost` is true, or the Request-URI's host (the target), or equal
   * the Request-URI; SIPp's `[authentication]` sends `sip:<target host>`. true: it must equal the
   * Request-URI (RFC 3261 §19.1.4 comparison). A mismatch is answered 400.
   */
  strictUri?: boolean;
  /** True for a served domain or one of this server's addresses (host without brackets, lowercase). Default: host = realm. */
  isOwnHost?: (host: string) => boolean;
  /** Replay protection for qop=auth answers; without it, nc is not checked. */
  nonceCounts?: NonceCountTracker;
  /** Clock in ms since the epoch; Date.now by default. */
  nowMs?: () => number;
  /** Debug logging of refusals (never logs responses or HA1). */
  logger?: Logger;
}

/** One response header to add: a WWW-Authenticate or Proxy-Authenticate challenge. */
export interface ChallengeHeader {
  name: string;
  value: string;
}

/**
 * Result of {@link authenticateRequest}.
 * On failure, send `status` with `reason` as reason phrase and add `headers` (challenges, possibly none).
 * `detail` says why, for logs only; never put it on the wire (it tells unknown users from known ones apart
 * no more than the outcome does, but it names the failing check).
 */
export type DigestOutcome =
  | { ok: true; username: string; realm: string; algorithm: DigestAlgorithm }
  | {
      ok: false;
      status: 401 | 407 | 403 | 400 | 503;
      reason: string;
      headers: ChallengeHeader[];
      detail?: string;
    };

/** Reason phrases of RFC 3261 §21. */
const REASON = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  407: 'Proxy Authentication Required',
  503: 'Service Unavailable',
} as const;

const NC_FORMAT = /^[0-9a-fA-F]{8}$/;

/**
 * Authenticate `req` with HTTP Digest as RFC 3261 §22.2 (kind `www`) or §22.3 (kind `proxy`) describe.
 *
 * - `www` reads Authorization and challenges with 401 + WWW-Authenticate;
 *   `proxy` reads Proxy-Authorization and challenges with 407 + Proxy-Authenticate.
 * - Only Digest credentials whose realm equals `policy.realm` are considered; other schemes and realms
 *   are left for others (§22.3). None → challenge.
 * - The challenge offers qop="auth" (RFC 7616 §3.3). An answer with qop=auth needs nc (8 hex digits) and
 *   cnonce; an answer with no qop at all is checked in the RFC 2069 form. Any other qop → 400.
 * - The digest `uri` must name this server, the realm or the target, or (`strictUri`) equal the Request-URI;
 *   otherwise 400 (RFC 7616 §3.4.6). HA2 uses the uri as the client sent it.
 * - Nonce forged or malformed → challenge. Nonce expired: challenge with stale=true when the digest is right
 *   for it (RFC 7616 §3.3), a plain challenge otherwise.
 * - Unknown user or wrong response → 403 Forbidden. Both paths do the same work: the lookup (the store's
 *   costs the same for a missing user), a stand-in HA1 derived from the username (used for an unknown
 *   user, discarded otherwise), a response computed and compared in constant time, identical outcomes;
 *   bench/auth-timing.mjs compares their answer times.
 * - nc not above the highest seen for this nonce (replay, RFC 7616 §3.3) → challenge with a fresh nonce.
 * - Algorithm not offered, `-sess` or userhash=true (neither is offered) → challenge.
 * - Malformed credentials → 400; an {@link AuthError} never escapes.
 * - `lookupHa1` throws {@link UserSourceUnavailableError} (directory down) → 503 with Retry-After,
 *   not 403 (RFC 3261 §21.5.4). Other `lookupHa1` errors propagate (thrown, or rejected when it
 *   answered with a promise).
 *
 * The outcome itself when `lookupHa1` answers at once (the credential cache, the store), a promise of it
 * only while the user source is asked: most requests then cost no promise and no turn.
 */
export function authenticateRequest(
  req: SipRequest,
  kind: 'www' | 'proxy',
  policy: DigestPolicy,
  read: CredentialsRead = readCredentials(req, kind, policy.realm),
): Awaitable<DigestOutcome> {
  const nowMs = policy.nowMs ?? Date.now;
  const algorithms = offeredAlgorithms(policy);

  if (read.error !== undefined) return refusal(req, policy, 400, read.error);
  const creds = read.creds;
  if (!creds) return challenge(req, kind, policy, 'no credentials for realm');

  const algo = parseAlgorithm(creds.algorithm);
  if (!algo || algo.sess || !algorithms.includes(algo.alg)) return challenge(req, kind, policy, `algorithm ${creds.algorithm} not offered`);
  if (creds.userhash) return challenge(req, kind, policy, 'userhash not offered');
  // RFC 7616 §3.4: opaque comes back unchanged; many SIP UAs leave it out, which is accepted.
  if (creds.opaque !== undefined && creds.opaque !== opaqueFor(policy.secret, policy.realm)) return challenge(req, kind, policy, 'opaque mismatch');

  let qop: 'auth' | undefined;
  let nc: number | undefined;
  if (creds.qop !== undefined) {
    if (creds.qop.toLowerCase() !== 'auth') return refusal(req, policy, 400, `unsupported qop ${creds.qop}`);
    if (creds.nc === undefined || !NC_FORMAT.test(creds.nc)) return refusal(req, policy, 400, 'qop=auth without a valid nc');
    if (creds.cnonce === undefined) return refusal(req, policy, 400, 'qop=auth without cnonce');
    qop = 'auth';
    nc = parseInt(creds.nc, 16);
  }

  if (!digestUriMatches(creds.uri, req, policy)) return refusal(req, policy, 400, 'digest uri does not match the request');

  const nonceState = checkNonce(policy.secret, creds.nonce, policy.nonceTtlS, nowMs());
  if (nonceState === 'invalid') return challenge(req, kind, policy, 'invalid nonce');

  const check: CheckInputs = { req, kind, policy, creds, alg: algo.alg, qop, nc, stale: nonceState === 'stale' };
  let stored: Awaitable<string | undefined>;
  try {
    stored = policy.lookupHa1(creds.username, creds.realm, algo.alg);
  } catch (e) {
    return unavailable(req, policy, e);
  }
  if (stored instanceof Promise) {
    return stored.then(
      (ha1) => checkResponse(check, ha1),
      (e: unknown) => unavailable(req, policy, e),
    );
  }
  return checkResponse(check, stored);
}

/** What {@link checkResponse} needs of a request whose credentials passed the checks before the lookup. */
interface CheckInputs {
  req: SipRequest;
  kind: 'www' | 'proxy';
  policy: DigestPolicy;
  creds: DigestCredentials;
  alg: DigestAlgorithm;
  qop: 'auth' | undefined;
  nc: number | undefined;
  /** The nonce is genuine but expired. */
  stale: boolean;
}

/** The digest check once the HA1 is known (`stored`, undefined for an unknown user): the same work for both. */
function checkResponse(c: CheckInputs, stored: string | undefined): DigestOutcome {
  const { req, kind, policy, creds } = c;
  // The same steps for known and unknown users: the stand-in is derived either way and one of the two is used.
  const standIn = dummyHa1(policy.secret, c.alg, creds.username);
  const ha1 = (stored ?? standIn).toLowerCase();
  const expected = computeResponse({
    alg: c.alg,
    ha1,
    method: req.method,
    uri: creds.uri,
    nonce: creds.nonce,
    qop: c.qop,
    nc: creds.nc,
    cnonce: creds.cnonce,
  });
  const match = constantTimeHexEqual(expected, creds.response);
  const known = stored !== undefined;

  if (c.stale) return challenge(req, kind, policy, 'stale nonce', match && known);
  if (!match || !known) return refusal(req, policy, 403, 'wrong response or unknown user');
  if (c.nc !== undefined && policy.nonceCounts && !policy.nonceCounts.accept(creds.nonce, c.nc)) {
    return challenge(req, kind, policy, 'nonce count replayed');
  }
  return { ok: true, username: creds.username, realm: creds.realm, algorithm: c.alg };
}

/** The algorithms a policy offers (MD5 when it lists none). */
function offeredAlgorithms(policy: DigestPolicy): DigestAlgorithm[] {
  return policy.algorithms.length > 0 ? policy.algorithms : MD5_ONLY;
}
const MD5_ONLY: DigestAlgorithm[] = ['MD5'];

/** A 401 (`www`) or 407 (`proxy`) with a fresh nonce, stale=true when `stale`. */
function challenge(req: SipRequest, kind: 'www' | 'proxy', policy: DigestPolicy, detail: string, stale = false): DigestOutcome {
  const log = authLogger(policy);
  if (log.isLevelEnabled('debug')) log.debug({ method: req.method, detail, stale }, 'digest challenge');
  const status = kind === 'www' ? 401 : 407;
  const nowMs = (policy.nowMs ?? Date.now)();
  return {
    ok: false,
    status,
    reason: REASON[status],
    headers: challengeHeaders(kind, policy.realm, offeredAlgorithms(policy), policy.secret, nowMs, stale, policy.nonceIssuer, req),
    detail,
  };
}

/** A 400 or 403 without challenge. */
function refusal(req: SipRequest, policy: DigestPolicy, status: 400 | 403, detail: string): DigestOutcome {
  const log = authLogger(policy);
  if (log.isLevelEnabled('debug')) log.debug({ method: req.method, status, detail }, 'digest refused');
  return { ok: false, status, reason: REASON[status], headers: [], detail };
}

/** 503 with Retry-After for a {@link UserSourceUnavailableError} from the lookup; any other error is thrown again. */
function unavailable(req: SipRequest, policy: DigestPolicy, e: unknown): DigestOutcome {
  if (!(e instanceof UserSourceUnavailableError)) throw e;
  authLogger(policy).warn({ method: req.method, err: e.message }, 'user source unavailable');
  return {
    ok: false,
    status: 503,
    reason: REASON[503],
    headers: [{ name: 'Retry-After', value: String(e.retryAfterS) }],
    detail: 'user source unavailable',
  };
}

/** What {@link readCredentials} found: the credentials for the realm, none, or why a Digest field is malformed. */
export interface CredentialsRead {
  creds?: DigestCredentials;
  error?: string;
}

/**
 * The first Digest credentials for `realm` in the Authorization (`www`) or
 * Proxy-Authorization (`proxy`) fields of `req` (other schemes and realms are
 * skipped, RFC 3261 §22.3). Read once per request: the authenticator needs the
 * user name before the check, {@link authenticateRequest} the rest.
 * A malformed Digest field gives `error` (answered 400).
 */
export function readCredentials(req: SipRequest, kind: 'www' | 'proxy', realm: string): CredentialsRead {
  try {
    for (const value of getHeaderValues(req, kind === 'www' ? 'Authorization' : 'Proxy-Authorization')) {
      if (!isDigestScheme(value)) continue;
      const c = parseCredentials(value);
      if (c.realm === realm) return { creds: c };
    }
  } catch (e) {
    if (e instanceof AuthError) return { error: e.message };
    throw e;
  }
  return {};
}

/**
 * The challenge headers for a fresh nonce issued at `nowMs`: one per algorithm, in order, all with the
 * same nonce, each `Digest realm="...", nonce="...", algorithm=X, qop="auth", opaque="..."[, stale=true]`
 * (RFC 3261 §22.4, RFC 7616 §3.3, RFC 8760 §2.4: most preferred first).
 * Named WWW-Authenticate for `www`, Proxy-Authenticate for `proxy`. `issuer` is the nonce's issuer byte (0..255).
 *
 * With `req`, the nonce is the one {@link challengeNonceParts} gives for that request: a retransmission
 * of it in the same second gets the very same challenge, as a stateless UAS must answer it (RFC 3261
 * §8.2.7). Without, the nonce takes this process's next counter.
 */
export function challengeHeaders(
  kind: 'www' | 'proxy',
  realm: string,
  algorithms: DigestAlgorithm[],
  secret: Buffer,
  nowMs: number,
  stale = false,
  issuer = 0,
  req?: SipRequest,
): ChallengeHeader[] {
  const name = kind === 'www' ? 'WWW-Authenticate' : 'Proxy-Authenticate';
  const nonce = req ? createNonce(secret, Math.floor(nowMs / 1000) * 1000, { issuer, counter: challengeCounter(secret, req) }) : createNonce(secret, nowMs, { issuer });
  return algorithms.map((algorithm) => ({
    name,
    value: formatChallenge({ realm, nonce, algorithm, qop: 'auth', opaque: opaqueFor(secret, realm), stale }),
  }));
}

/**
 * The nonce counter of a challenge to `req` (see nonce.ts): the first 52 bits of
 * SHA-256(hex(secret), LF, method, top Via, Call-ID, CSeq, From), so a retransmission of the request
 * (the same bytes, RFC 3261 §17.1.1.2, §17.1.2.2) gets the same counter, and a client cannot choose
 * another nonce's counter. Together with the issue time in whole seconds this makes the challenge to a
 * retransmission in the same second byte-identical (§8.2.7); two different requests share a counter
 * only by a 2^-52 chance, which can cost a genuine nonce-count a fresh challenge and never accepts a
 * replay (NonceCountTracker).
 *
 * A hash keyed by the secret as its prefix, not an HMAC: the counter authenticates nothing (the
 * nonce's HMAC covers it), it must only be unknown without the secret, and a client sees 52 of the
 * 256 bits, too few to extend the hash. One one-shot `crypto.hash` costs about half an HMAC.
 */
export function challengeCounter(secret: Buffer, req: SipRequest): number {
  const d = hash(
    'sha256',
    `${counterKeyOf(secret)}${req.method}\n${getHeader(req, 'via') ?? ''}\n${getHeader(req, 'call-id') ?? ''}\n${getHeader(req, 'cseq') ?? ''}\n${getHeader(req, 'from') ?? ''}`,
    'buffer',
  );
  return d.readUIntBE(0, 6) * 16 + (d[6]! >> 4);
}

/** hex(secret) + LF per secret Buffer, the prefix of {@link challengeCounter}'s hash (a WeakMap: one entry per live secret). */
const counterKeys = new WeakMap<Buffer, string>();
function counterKeyOf(secret: Buffer): string {
  let key = counterKeys.get(secret);
  if (key === undefined) counterKeys.set(secret, (key = `${secret.toString('hex')}\n`));
  return key;
}

/** Opaque values already computed, per secret and realm (a server has one secret and a few realms). */
const opaqueMemo = new WeakMap<Buffer, Map<string, string>>();
/** Most realms remembered per secret; the memo is emptied when it holds this many and one more comes. */
export const OPAQUE_MEMO_REALMS = 64;

/**
 * Entries the memos of `secret` hold now: stand-in HA1s (≤ {@link STAND_IN_MEMO_ENTRIES}) and
 * `opaque` values by realm (≤ {@link OPAQUE_MEMO_REALMS}).
 */
export function digestMemoSizes(secret: Buffer): { standIns: number; opaques: number } {
  return { standIns: standInMemo.get(secret)?.size ?? 0, opaques: opaqueMemo.get(secret)?.size ?? 0 };
}

/** The `opaque` of this server's challenges: 22 base64url characters keyed by the secret and the realm. */
export function opaqueFor(secret: Buffer, realm: string): string {
  let byRealm = opaqueMemo.get(secret);
  if (!byRealm) opaqueMemo.set(secret, (byRealm = new Map()));
  let opaque = byRealm.get(realm);
  if (opaque === undefined) {
    opaque = createHmac('sha256', secret).update(`opaque:${realm}`).digest('base64url').slice(0, 22);
    if (byRealm.size >= OPAQUE_MEMO_REALMS) byRealm.clear();
    byRealm.set(realm, opaque);
  }
  return opaque;
}

/** The `component: auth` child of a policy's logger, made once per policy rather than per request. */
const authLoggers = new WeakMap<DigestPolicy, Logger>();
function authLogger(policy: DigestPolicy): Logger {
  let log = authLoggers.get(policy);
  if (!log) authLoggers.set(policy, (log = (policy.logger ?? silentLogger).child({ component: 'auth' })));
  return log;
}

/**
 * The digest-uri check of RFC 7616 §3.4.6 (see {@link DigestPolicy.strictUri}).
 * `uri` is the parameter as sent; an unparsable uri only matches a Request-URI of identical text.
 */
export function digestUriMatches(uri: string, req: SipRequest, policy: Pick<DigestPolicy, 'strictUri' | 'isOwnHost' | 'realm'>): boolean {
  if (uri === req.uri) return true;
  const parsed = tryParseUri(uri);
  if (!parsed) return false;
  const ruri = tryParseUri(req.uri);
  if (policy.strictUri) return ruri !== undefined && uriEquals(parsed, ruri);
  if (parsed.scheme !== 'sip' && parsed.scheme !== 'sips') return false;
  const host = parsed.host.toLowerCase().replace(/^\[|\]$/g, '');
  if (host === policy.realm.toLowerCase()) return true;
  if (policy.isOwnHost?.(host)) return true;
  return ruri !== undefined && ruri.host.toLowerCase().replace(/^\[|\]$/g, '') === host;
}

function tryParseUri(s: string): SipUri | undefined {
  try {
    return parseUri(s);
  } catch {
    return undefined;
  }
}

/** True when a credentials value uses the Digest scheme (case-insensitive), so other schemes can be skipped. */
function isDigestScheme(value: string): boolean {
  const v = value.trimStart();
  if (v.length < 6 || v.slice(0, 6).toLowerCase() !== 'digest') return false;
  return v.length === 6 || v[6] === ' ' || v[6] === '\t';
}

/** Stand-in HA1s already derived, per secret, keyed by algorithm and user name ({@link dummyHa1}). */
const standInMemo = new WeakMap<Buffer, Map<string, string>>();
/** Most stand-in HA1s remembered per secret; the memo is emptied when full (README "lookup memos"). */
export const STAND_IN_MEMO_ENTRIES = 4096;
/** User names longer than this (characters) are not remembered, so the memo stays under ~3 MB per secret. */
export const STAND_IN_MEMO_NAME_CHARS = 256;

/**
 * A stand-in HA1 for an unknown user: keyed by the secret so nobody can compute a
 * matching response, of the right length for `alg`, different per user name.
 * Derived for every checked response, known user or not, so both cost the same; it
 * depends only on the secret, `alg` and `username`, so it is remembered (at most
 * {@link STAND_IN_MEMO_ENTRIES} per secret, names up to {@link STAND_IN_MEMO_NAME_CHARS}
 * characters) whatever the user is: a name seen before costs a Map lookup, a new one an
 * HMAC, for known and unknown users alike. Keys are copies ({@link detachString}): an
 * entry never pins the header it was read from.
 */
function dummyHa1(secret: Buffer, alg: DigestAlgorithm, username: string): string {
  let memo = standInMemo.get(secret);
  if (!memo) standInMemo.set(secret, (memo = new Map()));
  const key = username.length <= STAND_IN_MEMO_NAME_CHARS ? `${alg} ${username}` : undefined;
  let ha1 = key === undefined ? undefined : memo.get(key);
  if (ha1 === undefined) {
    ha1 = createHmac('sha256', secret).update(`unknown-user:${username}`).digest('hex').slice(0, digestHexLength(alg));
    if (key !== undefined) {
      if (memo.size >= STAND_IN_MEMO_ENTRIES) memo.clear();
      memo.set(detachString(key), ha1);
    }
  }
  return ha1;
}

/** Compare lowercase hex `expected` with a client's `response` (any case) in constant time for equal lengths. */
function constantTimeHexEqual(expected: string, response: string): boolean {
  const a = Buffer.from(expected, 'utf8');
  const b = Buffer.from(response.toLowerCase(), 'utf8');
  if (a.length !== b.length) {
    timingSafeEqual(a, a); // same work as a comparison, result ignored
    return false;
  }
  return timingSafeEqual(a, b);
}
