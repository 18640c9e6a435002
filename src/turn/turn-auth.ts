/**
 * TURN authentication: the STUN long-term credential mechanism (RFC 8489
 * §9.2) with PASSWORD-ALGORITHM(S), MESSAGE-INTEGRITY-SHA256, USERHASH
 * (§14.4) and stateless nonces, plus TURN REST API names ("EXPIRY:user",
 * rest-credentials.ts). Keys come from a function passed in (`getKey`, the
 * AuthHandler); nothing is stored for a client before it authenticates.
 */
import { checkNonce, createNonce } from '../auth/nonce.js';
import { decodePasswordAlgorithms, decodeText, encodePasswordAlgorithms, PASSWORD_ALGORITHM, type PasswordAlgorithmName } from '../stun/stun-attributes.js';
import { longTermKey, longTermKeySha256, userhash, verifyMessageIntegrity, verifyMessageIntegritySha256 } from '../stun/stun-integrity.js';
import { AttributeType as A, getAttribute, type StunAttribute, type StunMessage } from '../stun/stun-message.js';
import type { Logger } from '../log.js';
import type { FiveTuple } from './five-tuple.js';
import { parseRestUsername, restApiPassword } from './rest-credentials.js';
import { attr, type ResponseIntegrity } from './turn-response.js';
import { TurnError } from './turn-error.js';

/**
 * Nonce cookie announcing RFC 8489 security features (§9.2): "obMatJos2" then
 * base64 of 24 feature bits; here bit 0 (password algorithms) and bit 1
 * (username anonymity) = 0xC00000 = "wAAA".
 */
export const NONCE_COOKIE = 'obMatJos2wAAA';

/** USERHASH values learnt from logins by name (REST API names, users the store cannot hash), at most. */
export const LEARNT_USERHASHES_MAX = 10_000;

/**
 * Long-term key of a user (RFC 8489 §9.2.2): for 'MD5' (the default when
 * `algorithm` is undefined) MD5(username ":" realm ":" password), 16 bytes;
 * for 'SHA-256' SHA-256 of the same, 32 bytes. Undefined = unknown user or no
 * key for that algorithm. May reject (the request then gets 500).
 */
export type AuthHandler = (username: string, realm: string, algorithm?: PasswordAlgorithmName) => Promise<Buffer | undefined>;

/** Settings of the authenticator. */
export interface TurnAuthOptions {
  realm: string;
  /** Nonce lifetime, s; an older nonce gets 438 Stale Nonce. */
  nonceTtlS: number;
  /** HMAC key of the stateless nonces (auth/nonce.ts). */
  nonceSecret: Buffer;
  getKey: AuthHandler;
  /** USERHASH (SHA-256(username ":" realm), 32 bytes) -> username (RFC 8489 §9.2.4); optional. May reject (500). */
  resolveUserhash?(hash: Buffer, realm: string): Promise<string | undefined>;
  /** Password algorithms offered, most preferred first (RFC 8489 §9.2.3); default ['MD5'] (no security-feature nonce). */
  passwordAlgorithms?: PasswordAlgorithmName[];
  /** Shared secrets of the TURN REST API scheme (username "EXPIRY:user"), newest first; default none. */
  authSecrets?: readonly (string | Buffer)[];
}

/** A request that authenticated: its user, and how to protect the response. */
export interface AuthOk extends ResponseIntegrity {
  username: string;
}

/** A request that did not: the error to answer, and whether it is a challenge (REALM, NONCE, PASSWORD-ALGORITHMS added). */
export interface AuthRefusal {
  refusal: TurnError;
  challenge: boolean;
}

/** Checks long-term credentials of TURN requests. One per server. */
export class TurnAuthenticator {
  private readonly algorithms: PasswordAlgorithmName[];
  /** True when an algorithm besides MD5 is offered: nonces carry NONCE_COOKIE (RFC 8489 §9.2). */
  readonly securityFeatures: boolean;
  /** USERHASH hex -> username, learnt from successful authentications by name (bounded). */
  private readonly learnt = new Map<string, string>();

  /** @throws RangeError on an empty `passwordAlgorithms` list. */
  constructor(private readonly opts: TurnAuthOptions, private readonly log: Logger) {
    this.algorithms = opts.passwordAlgorithms ?? ['MD5'];
    if (this.algorithms.length === 0) throw new RangeError('passwordAlgorithms must not be empty');
    this.securityFeatures = this.algorithms.some((a) => a !== 'MD5');
  }

  /** USERHASH values learnt now, 0 ≤ n ≤ {@link LEARNT_USERHASHES_MAX}. */
  get learntUserhashes(): number {
    return this.learnt.size;
  }

  /** REALM, a fresh NONCE bound to the client address and PASSWORD-ALGORITHMS (when offered) for a 401/438 challenge. */
  challengeAttributes(ft: FiveTuple, nowMs: number): StunAttribute[] {
    // Nonces are bound to the client IP address only, so a client opening further connections (RFC 6062 data
    // connections, several transports) can reuse its nonce.
    const nonce = (this.securityFeatures ? NONCE_COOKIE : '') + createNonce(this.opts.nonceSecret, nowMs, { context: ft.clientAddress });
    const out = [attr(A.Realm, Buffer.from(this.opts.realm, 'utf8')), attr(A.Nonce, Buffer.from(nonce, 'ascii'))];
    if (this.securityFeatures) out.push(attr(A.PasswordAlgorithms, this.offeredAlgorithms()));
    return out;
  }

  /**
   * Long-term credential check of request `msg` (raw bytes `raw`) from `ft`
   * (RFC 8489 §9.2.4): 401 challenge without integrity or for a wrong key or
   * realm, 438 for a stale or foreign nonce, 400 for missing or inconsistent
   * attributes, 500 when a key or USERHASH lookup fails.
   */
  async authenticate(ft: FiveTuple, msg: StunMessage, raw: Buffer, nowMs: number): Promise<AuthOk | AuthRefusal> {
    const challenge = (status: number): AuthRefusal => ({ refusal: new TurnError(status), challenge: true });
    const fail = (err: TurnError): AuthRefusal => ({ refusal: err, challenge: false });
    const mi = getAttribute(msg, A.MessageIntegrity);
    const mi256 = getAttribute(msg, A.MessageIntegritySha256);
    if (!mi && !mi256) return challenge(401);
    const u = getAttribute(msg, A.Username);
    const uh = getAttribute(msg, A.Userhash);
    const r = getAttribute(msg, A.Realm);
    const n = getAttribute(msg, A.Nonce);
    if ((!u && !uh) || !r || !n) return fail(new TurnError(400, 'Bad Request: USERNAME or USERHASH, REALM and NONCE required'));
    let realm: string;
    let nonce: string;
    try {
      realm = decodeText(r.value);
      nonce = decodeText(n.value);
    } catch {
      return fail(new TurnError(400));
    }
    if (this.securityFeatures) {
      if (!nonce.startsWith(NONCE_COOKIE)) return challenge(438);
      nonce = nonce.slice(NONCE_COOKIE.length);
    }
    if (checkNonce(this.opts.nonceSecret, nonce, this.opts.nonceTtlS, nowMs, ft.clientAddress) !== 'valid') return challenge(438);
    if (realm !== this.opts.realm) return challenge(401);

    // Password algorithm (RFC 8489 §9.2.4 step 3).
    let algorithm: PasswordAlgorithmName = 'MD5';
    if (this.securityFeatures) {
      const pa = getAttribute(msg, A.PasswordAlgorithm);
      const pas = getAttribute(msg, A.PasswordAlgorithms);
      if (pa || pas) {
        if (!pa || !pas || !pas.value.equals(this.offeredAlgorithms())) return fail(new TurnError(400, 'Bad Request: PASSWORD-ALGORITHMS does not match'));
        let chosen: number | undefined;
        try {
          chosen = decodePasswordAlgorithms(pa.value)[0];
        } catch {
          return fail(new TurnError(400));
        }
        const name = this.algorithms.find((x) => PASSWORD_ALGORITHM[x] === chosen);
        if (!name) return fail(new TurnError(400, 'Bad Request: PASSWORD-ALGORITHM not offered'));
        algorithm = name;
      } else if (!this.algorithms.includes('MD5')) return fail(new TurnError(400, 'Bad Request: PASSWORD-ALGORITHM required'));
    }

    let username: string | undefined;
    try {
      if (u) username = decodeText(u.value, 513);
      else username = await this.resolveUserhash(uh!.value, realm);
    } catch (e) {
      if ((e as Error).name === 'StunDecodeError') return fail(new TurnError(400));
      this.log.warn({ err: e }, 'resolveUserhash failed');
      return fail(new TurnError(500));
    }
    if (username === undefined) return challenge(401);

    let keys: Buffer[];
    try {
      keys = await this.keysFor(username, realm, algorithm, nowMs);
    } catch (e) {
      this.log.warn({ err: e }, 'getKey failed');
      return fail(new TurnError(500));
    }
    const integrity = mi256 ? 'sha256' : 'sha1';
    const key = keys.find((k) => (integrity === 'sha256' ? verifyMessageIntegritySha256(raw, k) : verifyMessageIntegrity(raw, k)));
    if (!key) {
      this.log.debug({ username, client: ft.clientAddress }, 'TURN authentication failed');
      return challenge(401);
    }
    if (u) this.learnUserhash(username, realm);
    return { username, key, integrity };
  }

  private offeredAlgorithms(): Buffer {
    return encodePasswordAlgorithms(this.algorithms.map((a) => PASSWORD_ALGORITHM[a]));
  }

  /** Candidate keys for a user: one per REST API secret for "EXPIRY:user" names that have not expired, else the stored key. */
  private async keysFor(username: string, realm: string, algorithm: PasswordAlgorithmName, nowMs: number): Promise<Buffer[]> {
    const secrets = this.opts.authSecrets ?? [];
    const rest = secrets.length ? parseRestUsername(username) : undefined;
    if (rest) {
      if (rest.expires * 1000 < nowMs) return [];
      return secrets.map((s) => {
        const password = restApiPassword(s, username);
        return algorithm === 'SHA-256' ? longTermKeySha256(username, realm, password) : longTermKey(username, realm, password);
      });
    }
    const k = await this.opts.getKey(username, realm, algorithm);
    return k ? [k] : [];
  }

  /** Hashes learnt from logins first, then the user store's answer (which works from the first request and across restarts). */
  private async resolveUserhash(hash: Buffer, realm: string): Promise<string | undefined> {
    return this.learnt.get(hash.toString('hex')) ?? (await this.opts.resolveUserhash?.(hash, realm));
  }

  private learnUserhash(username: string, realm: string): void {
    const h = userhash(username, realm).toString('hex');
    if (this.learnt.has(h)) return;
    if (this.learnt.size >= LEARNT_USERHASHES_MAX) this.learnt.delete(this.learnt.keys().next().value!);
    this.learnt.set(h, username);
  }
}
