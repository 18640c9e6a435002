import { AttributeType, StunMethod, decodeStunMessage, encodeStunMessage, looksLikeStun } from '../stun/stun-message.js';
import { encodeXorAddress } from '../stun/stun-attributes.js';

/**
 * The STUN keepalive of SIP Outbound on a SIP UDP port (RFC 5626 §4.4.2, §8):
 * a STUN Binding request arriving where SIP is expected is answered with a
 * Binding success response carrying XOR-MAPPED-ADDRESS (RFC 8489 §7.3).
 *
 * @returns the response bytes, or undefined when `data` is not a STUN Binding request
 *   (anything else STUN-like is dropped by the caller).
 */
export function stunKeepaliveResponse(data: Buffer, remoteAddress: string, remotePort: number): Buffer | undefined {
  if (!looksLikeStun(data)) return undefined;
  let req;
  try {
    req = decodeStunMessage(data);
  } catch {
    return undefined;
  }
  if (req.method !== StunMethod.Binding || req.class !== 'request') return undefined;
  const family = remoteAddress.includes(':') ? 'IPv6' : 'IPv4';
  const fingerprint = req.attributes.some((a) => a.type === AttributeType.Fingerprint);
  return encodeStunMessage(
    {
      method: StunMethod.Binding,
      class: 'success',
      transactionId: req.transactionId,
      attributes: [{ type: AttributeType.XorMappedAddress, value: encodeXorAddress({ family, address: remoteAddress, port: remotePort }, req.transactionId) }],
    },
    { fingerprint },
  );
}

/** True when a datagram starts like STUN rather than SIP (first byte 0x00 or 0x01; SIP starts with a letter or CR/LF). */
export function isStunDatagram(data: Buffer): boolean {
  return data.length >= 20 && data[0]! < 2;
}
