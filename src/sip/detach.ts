/**
 * Copies that share no storage with the message they came from.
 *
 * V8 makes `s.slice(a, b)` of 13 or more characters a *sliced string* that
 * points into its parent, so a 43-character nonce or a transaction key sliced
 * out of a header keeps the whole header text (or, before the parser decoded
 * each line separately, the whole message text) alive for as long as the key
 * lives. Likewise `buf.subarray()` keeps the whole datagram alive. Anything a
 * long-lived table keeps (transaction keys, nonce counts, bindings) goes
 * through these helpers first.
 */

/** Shortest string V8 represents as a slice of its parent (`SlicedString::kMinLength`); shorter ones are copies. */
const MIN_SLICED_LENGTH = 13;

/**
 * A flat copy of `s` that pins no parent string.
 *
 * `' ' + s` is a cons string; slicing it flattens the cons into a fresh
 * sequential string of `s.length + 1` characters and returns a slice of that
 * new string only, so the result holds `s.length + 1` characters and nothing
 * of the original parent. Strings shorter than 13 characters are always
 * copies already and are returned as they are.
 */
export function detachString(s: string): string {
  return s.length < MIN_SLICED_LENGTH ? s : (' ' + s).slice(1);
}

/** The empty body shared by every message without one (never written to). */
export const EMPTY_BODY: Buffer = Buffer.alloc(0);

/**
 * A copy of `buf[start, end)` in its own memory: not a view of the input
 * datagram and not a slice of Node's shared 8 KB allocation pool (which a
 * small `Buffer.from` would pin). Zero bytes give {@link EMPTY_BODY}.
 */
export function copyBytes(buf: Buffer, start: number, end: number): Buffer {
  if (end <= start) return EMPTY_BODY;
  const out = Buffer.allocUnsafeSlow(end - start);
  buf.copy(out, 0, start, end);
  return out;
}
