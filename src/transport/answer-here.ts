/**
 * Which messages a SIP worker that does not own their Call-ID may answer where
 * they land instead of handing them to the owner (docs/ARCHITECTURE.md,
 * "Workers"): a digest challenge is answered statelessly (RFC 3261 §8.2.7) and
 * gives the same bytes on every worker, and the ACK of one is absorbed by its
 * To tag. A byte scan of the header lines, before any parse, picks the
 * candidates; the transaction user then decides on the parsed request.
 */
const CR = 0x0d;
const LF = 0x0a;
const SP = 0x20;
const HT = 0x09;
const COLON = 0x3a;
const SEMI = 0x3b;
const EQUALS = 0x3d;

/** What a landing worker may do with a message without its Call-ID owner. */
export type LandingCandidate =
  /** A request outside a dialog without credentials: answered here when its outcome is a stateless challenge. */
  | 'challenge'
  /** An ACK whose To tag has the stateless challenge prefix: absorbed here when it acknowledges such a challenge. */
  | 'challenge-ack';

/**
 * Scans raw message bytes (no parse) for what {@link LandingCandidate} names:
 * - a request other than ACK and CANCEL with no `Authorization` or
 *   `Proxy-Authorization` header line (any case) and no `tag` parameter in
 *   its To header (`To` or `t`, RFC 3261 §20.39): `challenge`;
 * - an ACK whose To tag starts with `challengeTagPrefix` (the transaction
 *   layer's `CHALLENGE_TAG_PREFIX`, `ch`): `challenge-ack`.
 * Undefined for everything else (responses, CANCEL, credentialed or in-dialog
 * requests, messages without a To header): those go to the Call-ID owner.
 * Conservative: a `;tag=` inside a quoted display name counts as a tag.
 */
export function landingCandidate(data: Uint8Array, challengeTagPrefix: string): LandingCandidate | undefined {
  const n = data.length;
  let i = 0;
  while (i < n && (data[i] === CR || data[i] === LF)) i++;
  const ack = startsWith(data, i, 'ACK ');
  if (!ack && (startsWith(data, i, 'SIP/') || startsWith(data, i, 'CANCEL '))) return undefined;
  let toTag = -2; // -2: no To header seen; -1: a To header without tag; else the index of the tag's value
  i = nextLine(data, i);
  while (i < n) {
    const c = data[i]!;
    if (c === CR || c === LF) break; // the empty line: end of the headers
    if (c !== SP && c !== HT) {
      if (isHeader(data, i, 'authorization') || isHeader(data, i, 'proxy-authorization')) return undefined;
      const toValue = toValueStart(data, i);
      if (toValue >= 0) toTag = tagValueStart(data, toValue);
    }
    i = nextLine(data, i);
  }
  if (toTag === -2) return undefined;
  if (!ack) return toTag === -1 ? 'challenge' : undefined;
  return toTag >= 0 && startsWith(data, toTag, challengeTagPrefix) ? 'challenge-ack' : undefined;
}

/** Index of the first byte after the line break of the line starting at `i` (or the end). */
function nextLine(data: Uint8Array, i: number): number {
  const at = data.indexOf(LF, i);
  return at < 0 ? data.length : at + 1;
}

/** True when the bytes at `i` are exactly `text` (ASCII). */
function startsWith(data: Uint8Array, i: number, text: string): boolean {
  if (i + text.length > data.length) return false;
  for (let k = 0; k < text.length; k++) if (data[i + k] !== text.charCodeAt(k)) return false;
  return true;
}

/** True when the line at `i` is a header named `lower` (any case), white space, then `:`. */
function isHeader(data: Uint8Array, i: number, lower: string): boolean {
  if (i + lower.length > data.length) return false;
  for (let k = 0; k < lower.length; k++) if ((data[i + k]! | 0x20) !== lower.charCodeAt(k)) return false;
  return colonAfter(data, i + lower.length) >= 0;
}

/** The index after the `:` that follows optional white space at `j`, or -1. */
function colonAfter(data: Uint8Array, j: number): number {
  while (j < data.length && (data[j] === SP || data[j] === HT)) j++;
  return j < data.length && data[j] === COLON ? j + 1 : -1;
}

/** When the line at `i` is a To header (`To` or compact `t`, any case), the index after its colon; else -1. */
function toValueStart(data: Uint8Array, i: number): number {
  if ((data[i]! | 0x20) !== 0x74 /* t */) return -1;
  const j = i + 1 < data.length && (data[i + 1]! | 0x20) === 0x6f /* o */ ? i + 2 : i + 1;
  return colonAfter(data, j);
}

/** In the header value from `i` to the end of its line, the index of the `tag` parameter's value; -1 without one. */
function tagValueStart(data: Uint8Array, i: number): number {
  const end = nextLine(data, i);
  for (let j = i; j < end; j++) {
    if (data[j] !== SEMI) continue;
    let k = j + 1;
    while (k < end && (data[k] === SP || data[k] === HT)) k++;
    if (k + 3 > end || (data[k]! | 0x20) !== 0x74 || (data[k + 1]! | 0x20) !== 0x61 || (data[k + 2]! | 0x20) !== 0x67) continue;
    k += 3;
    while (k < end && (data[k] === SP || data[k] === HT)) k++;
    if (k >= end || data[k] !== EQUALS) continue;
    k++;
    while (k < end && (data[k] === SP || data[k] === HT)) k++;
    return k;
  }
  return -1;
}
