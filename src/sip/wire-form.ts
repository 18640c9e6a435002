/**
 * The wire bytes of a response kept beside its parsed form, so a response a
 * proxy relays upstream is sent as the bytes it arrived as, less its top Via
 * (RFC 3261 §16.7 step 3: that is the only change a proxy makes to a
 * response it forwards), instead of being serialized again field by field.
 *
 * A {@link WireForm} names the start line, header fields and body it encodes
 * (`headers` is a copy of the field list: fields are read-only objects, an
 * edit replaces one, so any edit of the message shows as a difference). It is
 * used only while the message still has exactly those ({@link wireBytes});
 * an edited message (a 503 sent upstream as 500, a header added) is
 * serialized as before.
 *
 * The form the parser attaches points into the received datagram or frame;
 * the transport layer drops it once the message has been handled
 * (synchronously), so nothing keeps the input buffer alive.
 */
import { cloneMessage, removeFirstValue, type SipHeader, type SipResponse } from './message.js';

/** Wire bytes of a response and the message they encode. */
export interface WireForm {
  /**
   * True for the bytes a message was parsed from: kept for relaying it, never sent as they are
   * (a received message serializes in canonical form). False for a relayed copy's bytes, which
   * the serializer sends while they still encode the copy.
   */
  readonly received: boolean;
  /** Buffer holding the bytes: `bytes[start, end)` is the whole message, body included. */
  readonly bytes: Buffer;
  readonly start: number;
  readonly end: number;
  /**
   * `bytes[viaStart, viaEnd)` are the bytes that make up the top Via: the first Via header field,
   * its line end and continuation lines included, when that field holds one via-parm; the
   * first via-parm and the comma and LWS after it when the field holds several on its first
   * line (`Via: a, b` becomes `Via: b`). -1 when neither (a folded list, an empty element).
   */
  readonly viaStart: number;
  readonly viaEnd: number;
  /** Status code, reason phrase, header fields (a copy of the list) and body the bytes encode. */
  readonly status: number;
  readonly reason: string;
  readonly headers: readonly SipHeader[];
  readonly body: Buffer;
}

/**
 * The wire bytes of `msg` when it is a relayed copy ({@link withoutTopVia})
 * whose {@link WireForm} still encodes it (same status, reason, body and the
 * same header fields in the same order), else undefined (serialize it).
 */
export function wireBytes(msg: SipResponse): Buffer | undefined {
  const w = msg.wire;
  if (w === undefined || w.received || !encodes(w, msg)) return undefined;
  return w.start === 0 && w.end === w.bytes.length ? w.bytes : w.bytes.subarray(w.start, w.end);
}

function encodes(w: WireForm, msg: SipResponse): boolean {
  if (w.status !== msg.status || w.reason !== msg.reason || w.body !== msg.body) return false;
  const h = msg.headers;
  const k = w.headers;
  if (h.length !== k.length) return false;
  for (let i = 0; i < h.length; i++) if (h[i] !== k[i]) return false;
  return true;
}

/**
 * The copy of a response a proxy sends upstream: without its top Via (RFC 3261
 * §16.7 step 3), everything else as received. When `res` carries the bytes it
 * was read from and is unchanged since, the copy carries those bytes with the
 * top Via cut out (its line(s), or its element of a `Via: a, b` field; header
 * order, compact names, unknown headers and spacing kept as received), so
 * sending it serializes nothing; else it carries none and is serialized when sent.
 *
 * `res` itself is not changed.
 */
export function withoutTopVia(res: SipResponse): SipResponse {
  const w = res.wire;
  const raw = w !== undefined && w.received && w.viaStart >= 0 && encodes(w, res);
  const out = cloneMessage(res);
  out.wire = undefined;
  removeFirstValue(out, 'via');
  if (raw) {
    const before = w.viaStart - w.start;
    const bytes = Buffer.allocUnsafe(w.end - w.start - (w.viaEnd - w.viaStart));
    w.bytes.copy(bytes, 0, w.start, w.viaStart);
    w.bytes.copy(bytes, before, w.viaEnd, w.end);
    out.wire = { received: false, bytes, start: 0, end: bytes.length, viaStart: -1, viaEnd: -1, status: out.status, reason: out.reason, headers: out.headers.slice(), body: out.body };
  }
  return out;
}
