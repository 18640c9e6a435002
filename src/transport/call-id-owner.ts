/**
 * Which SIP worker owns a message: the one its Call-ID hashes to (see
 * docs/ARCHITECTURE.md, "Workers"). Every message of a call — the request,
 * its retransmissions, ACK, CANCEL, the responses to our client transactions
 * and the requests inside the dialog — carries the same Call-ID (RFC 3261
 * §8.1.1.4, §12), so they all meet at one worker without parsing.
 */
import { FNV_OFFSET, fnvStep } from '../sip/fnv.js';

const CR = 0x0d;
const LF = 0x0a;
const SP = 0x20;
const HT = 0x09;
const COLON = 0x3a;


/**
 * The 32-bit FNV-1a hash of the Call-ID header value in raw message bytes,
 * found by a byte scan of the header lines (no parse): a line starting with
 * `Call-ID` or its compact form `i` (RFC 3261 §7.3.3, §20.8), any case,
 * optional white space, then `:`. The value's white space, line breaks and
 * folded continuation lines (§7.3.1) are left out of the hash (a Call-ID is a
 * `word`, without white space). Undefined when the header part (up to the
 * first empty line) has no Call-ID: keepalives, garbage.
 */
export function callIdHash(data: Uint8Array): number | undefined {
  const n = data.length;
  let i = 0;
  // Skip leading CRLFs (keepalives before a message) and the start line.
  while (i < n && (data[i] === CR || data[i] === LF)) i++;
  i = nextLine(data, i);
  while (i < n) {
    const c = data[i];
    if (c === CR || c === LF) return undefined; // the empty line: end of the headers
    const valueAt = callIdValueStart(data, i);
    if (valueAt >= 0) return hashValue(data, valueAt);
    i = nextLine(data, i);
  }
  return undefined;
}

/**
 * The worker (0 ≤ owner < count) that owns a message: its Call-ID hash modulo
 * `count`; undefined without a Call-ID (the message stays where it landed).
 */
export function callIdOwnerOf(data: Uint8Array, count: number): number | undefined {
  const h = callIdHash(data);
  return h === undefined ? undefined : h % count;
}

/** The worker that owns Call-ID `callId` among `count` workers: the same answer as {@link callIdOwnerOf} for a message carrying it. */
export function callIdOwner(callId: string, count: number): number {
  return hashValue(Buffer.from(`${callId}\r\n`, 'utf8'), 0) % count;
}

/** Index of the first byte after the line break of the line starting at `i` (or the end). */
function nextLine(data: Uint8Array, i: number): number {
  const at = data.indexOf(LF, i);
  return at < 0 ? data.length : at + 1;
}

/** When the line at `i` is a Call-ID header line, the index just after its colon; else -1. */
function callIdValueStart(data: Uint8Array, i: number): number {
  let j = i;
  const c = data[j]! | 0x20;
  if (c === 0x69 /* i */) {
    j++;
    if (j < data.length && data[j] !== SP && data[j] !== HT && data[j] !== COLON) return -1;
  } else if (c === 0x63 /* c */ && matchesLower(data, j + 1, 'all-id')) {
    j += 7;
  } else {
    return -1;
  }
  while (j < data.length && (data[j] === SP || data[j] === HT)) j++;
  return j < data.length && data[j] === COLON ? j + 1 : -1;
}

/** True when the bytes at `i` are `lower` in any case (ASCII letters; `-` as is). */
function matchesLower(data: Uint8Array, i: number, lower: string): boolean {
  if (i + lower.length > data.length) return false;
  for (let k = 0; k < lower.length; k++) {
    if ((data[i + k]! | 0x20) !== lower.charCodeAt(k)) return false;
  }
  return true;
}

/** FNV-1a of the value starting at `i`, skipping white space, through folded continuation lines. */
function hashValue(data: Uint8Array, i: number): number {
  let h = FNV_OFFSET;
  const n = data.length;
  while (i < n) {
    const c = data[i]!;
    if (c === LF) {
      // A continuation line starts with white space (§7.3.1); anything else ends the value.
      if (i + 1 < n && (data[i + 1] === SP || data[i + 1] === HT)) {
        i++;
        continue;
      }
      break;
    }
    if (c !== CR && c !== SP && c !== HT) h = fnvStep(h, c);
    i++;
  }
  return h >>> 0;
}
