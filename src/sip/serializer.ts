/**
 * SIP message serializer (RFC 3261 §7): start line, header fields in order,
 * blank line, body.
 */
import { canonicalName, type SipMessage } from './message.js';

/**
 * Serialize a message to wire bytes.
 *
 * Each header field is written `${name}: ${value}\r\n` with the name exactly as
 * stored. Content-Length is made to equal `body.length` (bytes, §20.14): the
 * first Content-Length (or `l`) field's value is replaced in place, keeping its
 * name, and any further Content-Length fields are left out; without one,
 * `Content-Length: N` is appended. The message object is not modified.
 * Header values are written as stored: callers must not put CR or LF in them.
 */
export function serializeMessage(msg: SipMessage): Buffer {
  let head = msg.kind === 'request' ? `${msg.method} ${msg.uri} SIP/2.0\r\n` : `SIP/2.0 ${msg.status} ${msg.reason}\r\n`;
  const bodyLen = msg.body.length;
  let haveCl = false;
  for (const h of msg.headers) {
    if (!isContentLength(h.name)) head += `${h.name}: ${h.value}\r\n`;
    else if (!haveCl) {
      haveCl = true;
      head += `${h.name}: ${bodyLen}\r\n`;
    }
  }
  if (!haveCl) head += `Content-Length: ${bodyLen}\r\n`;
  head += '\r\n';
  if (bodyLen === 0) return Buffer.from(head, 'utf8');
  // One buffer for head and body (an INVITE or 200 with SDP): no intermediate copy of the head.
  const headLen = Buffer.byteLength(head, 'utf8');
  const out = Buffer.allocUnsafe(headLen + bodyLen);
  out.write(head, 0, headLen, 'utf8');
  msg.body.copy(out, headLen);
  return out;
}

/** `l` or `Content-Length` in any case; the length test skips the lowercase copy for most names. */
function isContentLength(name: string): boolean {
  return (name.length === 1 || name.length === 14) && canonicalName(name) === 'content-length';
}
