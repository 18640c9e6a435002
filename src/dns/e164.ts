/**
 * E.164 numbers in Request-URIs and their ENUM domains (RFC 6116 §2.4,
 * RFC 3966 for tel: URIs, RFC 3261 §19.1.1 for `user=phone`).
 */
import { unescapeUri, type SipUri } from '../sip/uri.js';

/** RFC 3966 §3 visual-separator = "-" / "." / "(" / ")". */
const VISUAL_SEPARATORS = /[-.()]/g;

/** `+` then 1 to 15 digits (ITU-T E.164: at most 15 digits). */
const E164 = /^\+[0-9]{1,15}$/;

/**
 * The E.164 number a URI denotes, as `+` and digits (`+441632960083`), or
 * undefined when it denotes none:
 * - `tel:` with a global number (`tel:+44-1632-960083`; local numbers, which
 *   need a phone-context, denote none);
 * - `sip:`/`sips:` with `user=phone` and a global number as the user part
 *   (parameters of the telephone-subscriber, after `;`, are ignored);
 * - `sip:`/`sips:` whose user part is a `+` E.164 number even without
 *   `user=phone` (as deployed).
 * Visual separators are removed; escapes are decoded first.
 */
export function e164FromUri(uri: SipUri): string | undefined {
  if (uri.user === undefined) return undefined;
  if (uri.scheme !== 'tel' && uri.scheme !== 'sip' && uri.scheme !== 'sips') return undefined;
  let user = unescapeUri(uri.user);
  const semi = user.indexOf(';');
  if (semi >= 0) {
    // Only user=phone makes telephone-subscriber parameters part of the user part.
    if (uri.scheme !== 'tel' && uri.params.user !== 'phone') return undefined;
    user = user.slice(0, semi);
  }
  if (user.length > 64) return undefined;
  const digits = user.replace(VISUAL_SEPARATORS, '');
  return E164.test(digits) ? digits : undefined;
}

/**
 * The ENUM domain of an E.164 number under `suffix` (RFC 6116 §2.4):
 * `+441632960083`, `e164.arpa` → `3.8.0.0.6.9.2.3.6.1.4.4.e164.arpa`.
 *
 * @throws RangeError when `number` is not `+` and 1–15 digits.
 */
export function enumDomain(number: string, suffix: string): string {
  if (!E164.test(number)) throw new RangeError(`not an E.164 number: ${number}`);
  return `${number.slice(1).split('').reverse().join('.')}.${suffix.replace(/\.$/, '')}`;
}
