/**
 * Which peer addresses a client may reach through a relay (RFC 8656 §21.2.3
 * and §9: a server should refuse peers it must not talk to). Refused peers
 * get 403 Forbidden in CreatePermission and ChannelBind.
 */
import { parseIp } from './ip-address.js';

/** Policy switches. */
export interface PeerPolicyOptions {
  /** Allow 127.0.0.0/8 and ::1 (tests only). */
  allowLoopbackPeers: boolean;
}

/**
 * True if a relay may send to / accept from `address`. Always refused:
 * 0.0.0.0/8, 224.0.0.0/4 (multicast), 240.0.0.0/4 and 255.255.255.255, ::,
 * ff00::/8, and IPv4-mapped forms of those; loopback unless allowed; text that is not an IP.
 */
export function isPeerAllowed(address: string, opts: PeerPolicyOptions): boolean {
  const p = parseIp(address);
  if (!p) return false;
  let v4: Buffer | undefined;
  if (p.family === 'IPv4') v4 = p.bytes;
  else {
    const b = p.bytes;
    const prefixZero = b.subarray(0, 10).every((x) => x === 0);
    if (prefixZero && b[10] === 0xff && b[11] === 0xff) v4 = b.subarray(12, 16);
    else {
      if (b.every((x) => x === 0)) return false;
      if (b[0] === 0xff) return false;
      if (b.subarray(0, 15).every((x) => x === 0) && b[15] === 1) return opts.allowLoopbackPeers;
      return true;
    }
  }
  const first = v4[0]!;
  if (first === 0) return false;
  if (first >= 224) return false;
  if (first === 127) return opts.allowLoopbackPeers;
  return true;
}
