import { createCipheriv, createDecipheriv, createHash, createHmac, randomBytes } from 'node:crypto';
import type { SipUri } from '../sip/uri.js';
import type { BindingRecord } from '../store/index.js';

/**
 * GRUUs (RFC 5627): the public GRUU of an instance is its AOR with a `gr`
 * parameter naming the instance (§3.1); a temporary GRUU is a URI in the
 * AOR's domain whose user part is opaque (§3.2): here `tgruu.<token>` where
 * the token is the AOR, the instance ID, a tag of the registration's Call-ID
 * and a counter (the REGISTER's CSeq), encrypted and authenticated with
 * AES-256-GCM under a key derived from the server secret. The proxy reads it
 * back without any state, so temp-GRUUs survive restarts, and stay valid
 * while the instance has a binding registered with the same Call-ID (§5.1:
 * refreshes keep earlier temp-GRUUs valid; a new Call-ID, the end of the
 * registration or a new server secret ends them).
 */

/** Prefix of the user part of our temp-GRUUs. */
const TEMP_PREFIX = 'tgruu.';
/** Longest token accepted, characters (an AOR and an instance ID fit well below it). */
const MAX_TOKEN_CHARS = 600;
const IV_BYTES = 12;
const TAG_BYTES = 16;

/** The key temp-GRUUs are sealed with: HMAC-SHA256 of a label under the server secret (32 bytes). */
export function tempGruuKey(secret: Buffer): Buffer {
  return createHmac('sha256', secret).update('rtcedge temp-gruu v1').digest();
}

/** The instance URN of a `+sip.instance` value (`"<urn:uuid:...>"` → `urn:uuid:...`). */
export function instanceUrn(instance: string): string {
  return instance.replace(/^"?<?/, '').replace(/>?"?$/, '');
}

/** The public GRUU of an instance (RFC 5627 §3.1): `sip:alice@example.test;gr=urn:uuid:...`. */
export function publicGruu(aor: string, instance: string): string {
  return `${aor};gr=${instanceUrn(instance)}`;
}

/** A short tag of a registration's Call-ID (12 hex characters of its SHA-256). */
function callIdTag(callId: string): string {
  return createHash('sha256').update(callId).digest('hex').slice(0, 12);
}

/**
 * A new temp-GRUU (RFC 5627 §3.2, §5.1) for the binding of `instance` to
 * `aor` registered with `callId`; `counter` makes each REGISTER's distinct.
 * @param key from {@link tempGruuKey}.
 * @param domain the AOR's domain, host of the temp-GRUU.
 */
export function tempGruu(key: Buffer, aor: string, instance: string, callId: string, counter: number, domain: string): string {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  const plain = Buffer.from(JSON.stringify([aor, instanceUrn(instance), callIdTag(callId), counter]));
  const sealed = Buffer.concat([cipher.update(plain), cipher.final()]);
  const token = Buffer.concat([iv, cipher.getAuthTag(), sealed]).toString('base64url');
  return `sip:${TEMP_PREFIX}${token}@${domain};gr`;
}

/** What a temp-GRUU names: the AOR, the instance URN and the tag of the Call-ID it was issued for. */
export interface TempGruuClaim {
  aor: string;
  instance: string;
  callIdTag: string;
}

/** Open the token of a temp-GRUU user part; undefined when it is not one of ours, was altered, or was sealed under another secret. */
export function openTempGruu(key: Buffer, user: string): TempGruuClaim | undefined {
  if (!user.startsWith(TEMP_PREFIX) || user.length > TEMP_PREFIX.length + MAX_TOKEN_CHARS) return undefined;
  const raw = Buffer.from(user.slice(TEMP_PREFIX.length), 'base64url');
  if (raw.length <= IV_BYTES + TAG_BYTES) return undefined;
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, IV_BYTES));
    decipher.setAuthTag(raw.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
    const plain = Buffer.concat([decipher.update(raw.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]);
    const [aor, instance, tag] = JSON.parse(plain.toString('utf8')) as [string, string, string];
    return { aor, instance, callIdTag: tag };
  } catch {
    return undefined;
  }
}

/**
 * The GRUU a Request-URI names, if any (RFC 5627 §8.4.1: a URI with a `gr`
 * parameter): `public` with the instance URN (AOR from the URI), or `temp`
 * with the user part to open.
 */
export function gruuOf(uri: SipUri): { kind: 'public'; instance: string } | { kind: 'temp'; user: string } | undefined {
  if (!Object.hasOwn(uri.params, 'gr')) return undefined;
  const gr = uri.params.gr;
  if (gr) return { kind: 'public', instance: gr };
  return uri.user ? { kind: 'temp', user: uri.user } : undefined;
}

/** The bindings of `bindings` registered by `instance` (a URN, compared without case as §4.1 URNs are). */
export function instanceBindings(bindings: BindingRecord[], instance: string): BindingRecord[] {
  const want = instance.toLowerCase();
  return bindings.filter((b) => b.instance !== null && instanceUrn(b.instance).toLowerCase() === want);
}

/**
 * The bindings a temp-GRUU routes to (§8.4.1): every binding of its instance,
 * when one of them was registered with the Call-ID the temp-GRUU was issued
 * for (§5.1); none otherwise (the registration ended or changed Call-ID).
 */
export function tempGruuBindings(claim: TempGruuClaim, bindings: BindingRecord[]): BindingRecord[] {
  const mine = instanceBindings(bindings, claim.instance);
  return mine.some((b) => callIdTag(b.callId) === claim.callIdTag) ? mine : [];
}
