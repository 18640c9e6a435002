/**
 * Message framing on stream transports (TCP, TLS, WebSocket-less streams):
 * RFC 3261 §18.3 (Content-Length delimits the body) and the CRLF keepalives
 * of RFC 5626 §3.5.1 (a double CRLF is a ping, a single CRLF the pong).
 */
import { SipParseError } from './errors.js';
import { DEFAULT_LIMITS, parseMessage, type ParseLimits } from './parser.js';

/**
 * What a push produced, in stream order: a whole message (header section and
 * body, ready for parseMessage), a keepalive, or a framing error after which
 * the framer is unusable and the connection should be closed.
 */
export type FramerEvent =
  | { type: 'message'; data: Buffer }
  | { type: 'keepalive'; kind: 'ping' | 'pong' }
  | { type: 'error'; error: SipParseError };

const CR = 0x0d;
const LF = 0x0a;

/**
 * Splits a byte stream into SIP messages. State: bytes received but not yet
 * emitted, and how far the header-end search has got, so each byte is scanned
 * a bounded number of times (linear time overall).
 *
 * Between messages `\r\n\r\n` is reported as a ping and a lone `\r\n` as a
 * pong. A lone CRLF at the end of what has arrived so far is reported as a
 * pong at once; when the next chunk opens with another CRLF the pair was a ping
 * split in two, and a ping is reported too (so a split ping still gets its
 * pong, RFC 5626 §4.4.1). Errors: 400 "Bad Request: missing Content-Length",
 * 400 "Bad Request: malformed Content-Length" (also for two different values,
 * RFC 4475 §3.3.9), 413 "Message Too Large" when the header section or the
 * whole message exceeds `limits.maxMessageBytes`.
 */
export class StreamFramer {
  private readonly limits: ParseLimits;
  /** The bytes being framed: `own`, or during a push that found nothing buffered, the chunk itself. */
  private buf: Buffer = Buffer.alloc(0);
  /** This framer's buffer, holding what one push left unframed for the next. */
  private own: Buffer = Buffer.alloc(0);
  private start = 0;
  private end = 0;
  /** Where to resume searching for CRLFCRLF (absolute index into buf). */
  private scan = 0;
  /** Total bytes of the message being assembled once its header section is known, else -1. */
  private need = -1;
  private failed = false;
  /** A lone CRLF ended the previous push and was reported as a pong: a CRLF opening this push completes a split ping. */
  private halfPing = false;

  /** @param limits size limits; `maxMessageBytes` bounds the header section and the whole message. */
  constructor(limits: ParseLimits = DEFAULT_LIMITS) {
    this.limits = limits;
  }

  /**
   * Feed the next chunk of the stream; returns the events it completed (possibly none).
   * After an `error` event every later push returns an empty list. A message may
   * be a view of `chunk` (when nothing was buffered before it): the caller must
   * not change a chunk after pushing it (a socket's chunks are never reused).
   */
  push(chunk: Buffer): FramerEvent[] {
    if (this.failed) return [];
    // Nothing buffered: frame the chunk where it is, and messages are views of it (no copy).
    const inChunk = this.start === this.end;
    if (inChunk) {
      this.buf = chunk;
      this.start = this.scan = 0;
      this.end = chunk.length;
    } else {
      this.append(chunk);
    }
    const events: FramerEvent[] = [];
    let halfPing = this.halfPing;
    this.halfPing = false;
    for (let first = true; ; first = false) {
      if (!first) halfPing = false;
      const avail = this.end - this.start;
      if (avail === 0) break;
      if (this.need < 0) {
        const b = this.buf;
        const s = this.start;
        // Keepalives between messages (RFC 5626 §3.5.1).
        if (b[s] === CR || b[s] === LF) {
          if (b[s] === LF) {
            this.start++;
            continue;
          }
          if (avail < 2) {
            this.halfPing = halfPing;
            break;
          }
          if (b[s + 1] !== LF) {
            this.start++;
            continue;
          }
          if (avail >= 4 && b[s + 2] === CR && b[s + 3] === LF) {
            events.push({ type: 'keepalive', kind: 'ping' });
            this.start += 4;
            continue;
          }
          if (avail === 3 && b[s + 2] === CR) {
            this.halfPing = halfPing; // wait: may be a ping
            break;
          }
          if (halfPing) {
            events.push({ type: 'keepalive', kind: 'ping' });
            this.start += 2;
            continue;
          }
          events.push({ type: 'keepalive', kind: 'pong' });
          this.start += 2;
          if (this.start === this.end) this.halfPing = true;
          continue;
        }
        if (this.scan < this.start) this.scan = this.start;
        const idx = b.indexOf('\r\n\r\n', this.scan, 'latin1');
        if (idx < 0 || idx >= this.end - 3) {
          this.scan = Math.max(this.start, this.end - 3);
          if (avail > this.limits.maxMessageBytes) return this.fail(events, new SipParseError(413, 'Message Too Large'));
          break;
        }
        const headerLen = idx + 4 - this.start;
        if (headerLen > this.limits.maxMessageBytes) return this.fail(events, new SipParseError(413, 'Message Too Large'));
        const cl = contentLengthOf(b, this.start, idx + 2);
        if (cl instanceof SipParseError) return this.fail(events, withPartial(b.subarray(this.start, idx + 4), cl, this.limits));
        if (headerLen + cl > this.limits.maxMessageBytes) return this.fail(events, new SipParseError(413, 'Message Too Large'));
        this.need = headerLen + cl;
      }
      if (this.end - this.start < this.need) break;
      const view = this.buf.subarray(this.start, this.start + this.need);
      // A view of our own buffer would be overwritten by the next push: copied.
      const data = inChunk ? view : Buffer.from(view);
      this.start += this.need;
      this.need = -1;
      events.push({ type: 'message', data });
    }
    if (this.start === this.end) {
      this.start = 0;
      this.end = 0;
      this.scan = 0;
      this.buf = this.own;
    } else if (inChunk) {
      this.keepRest();
    }
    return events;
  }

  /** Move what is left unframed of the chunk into our own buffer (grown by doubling when short). */
  private keepRest(): void {
    const rest = this.end - this.start;
    if (this.own.length < rest) this.own = Buffer.allocUnsafe(Math.max(rest * 2, 4096));
    this.buf.copy(this.own, 0, this.start, this.end);
    this.buf = this.own;
    this.scan = Math.max(0, this.scan - this.start);
    this.start = 0;
    this.end = rest;
  }

  private fail(events: FramerEvent[], error: SipParseError): FramerEvent[] {
    this.failed = true;
    this.buf = this.own = Buffer.alloc(0);
    this.start = this.end = this.scan = 0;
    events.push({ type: 'error', error });
    return events;
  }

  /** Append with amortised doubling, moving unread bytes to the front when that frees enough room. */
  private append(chunk: Buffer): void {
    const used = this.end - this.start;
    if (this.end + chunk.length > this.buf.length) {
      const needed = used + chunk.length;
      const target = needed <= this.buf.length / 2 ? this.buf : Buffer.allocUnsafe(Math.max(needed * 2, 4096));
      this.buf.copy(target, 0, this.start, this.end);
      this.buf = this.own = target;
      this.scan -= this.start;
      if (this.scan < 0) this.scan = 0;
      this.start = 0;
      this.end = used;
    }
    chunk.copy(this.buf, this.end);
    this.end += chunk.length;
  }
}

/**
 * The framing error with the request as far as it parses attached, so the
 * connection can answer it before closing (RFC 4475 §3.1.2.3, §3.3.9: 400,
 * then close). Without a request that can be answered the error is returned as is.
 */
function withPartial(head: Buffer, err: SipParseError, limits: ParseLimits): SipParseError {
  let partial;
  try {
    const m = parseMessage(head, limits);
    partial = m.kind === 'request' ? m : undefined;
  } catch (e) {
    partial = e instanceof SipParseError ? e.partial : undefined;
  }
  return partial ? new SipParseError(err.status, err.reason, partial) : err;
}

/** JavaScript's `trim()` whitespace among the bytes a latin1 decoding gives: TAB, LF, VT, FF, CR, SP and NBSP (0xA0). */
function isTrimmed(c: number): boolean {
  return c === 0x20 || (c >= 0x09 && c <= 0x0d) || c === 0xa0;
}

/** True when bytes [from, to) are `name` in ASCII, ignoring case; `name` is lowercase. */
function bytesAre(buf: Buffer, from: number, to: number, name: string): boolean {
  if (to - from !== name.length) return false;
  for (let i = 0; i < name.length; i++) {
    let c = buf[from + i];
    if (c >= 0x41 && c <= 0x5a) c += 0x20;
    if (c !== name.charCodeAt(i)) return false;
  }
  return true;
}

/**
 * Content-Length (or `l`) of the header section in bytes [start, end) of `buf`
 * (lines ending LF or CRLF, RFC 3261 §7.3.1, §20.14), read from the bytes
 * without decoding them; an error when it is missing, malformed (not 1 to 10
 * digits) or given twice with different values (RFC 4475 §3.3.9). A field name
 * is compared only on lines that start with it (no folding before the colon),
 * spaces before the colon and around the value are ignored, as the latin1
 * text's `trim()` would.
 */
export function contentLengthOf(buf: Buffer, start: number, end: number): number | SipParseError {
  let found = -1;
  let pos = start;
  while (pos < end) {
    let e = buf.indexOf(LF, pos);
    if (e < 0 || e > end) e = end;
    const c0 = buf[pos] | 0x20;
    if (c0 === 0x6c || c0 === 0x63) {
      let colon = pos;
      while (colon < e && buf[colon] !== 0x3a) colon++;
      if (colon > pos && colon < e) {
        let ne = colon;
        while (ne > pos && isTrimmed(buf[ne - 1])) ne--;
        if (bytesAre(buf, pos, ne, 'l') || bytesAre(buf, pos, ne, 'content-length')) {
          let vs = colon + 1;
          let ve = e;
          while (vs < ve && isTrimmed(buf[vs])) vs++;
          while (ve > vs && isTrimmed(buf[ve - 1])) ve--;
          if (ve === vs || ve - vs > 10) return new SipParseError(400, 'Bad Request: malformed Content-Length');
          let n = 0;
          for (let i = vs; i < ve; i++) {
            const d = buf[i] - 0x30;
            if (d < 0 || d > 9) return new SipParseError(400, 'Bad Request: malformed Content-Length');
            n = n * 10 + d;
          }
          if (found >= 0 && found !== n) return new SipParseError(400, 'Bad Request: malformed Content-Length');
          found = n;
        }
      }
    }
    pos = e + 1;
  }
  if (found < 0) return new SipParseError(400, 'Bad Request: missing Content-Length');
  return found;
}
