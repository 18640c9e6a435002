/**
 * The host's own addresses, read from its network interfaces: what the
 * transport recognises as "us" (RFC 3261 §16.4, §19.1.1), what TURN refuses as
 * peers and where relays and advertised hosts bind by default.
 */
import os from 'node:os';

/** Every interface address of the host, lowercase, without an IPv6 zone (`%eth0`). */
export function hostAddresses(): string[] {
  return Object.values(os.networkInterfaces()).flatMap((list) => (list ?? []).map((i) => i.address.split('%')[0]!.toLowerCase()));
}

/** The host's first non-loopback address of a family (IPv6: not link-local fe80::/10), or undefined. */
export function firstExternalAddress(family: 'IPv4' | 'IPv6'): string | undefined {
  for (const list of Object.values(os.networkInterfaces())) {
    for (const i of list ?? []) if (i.family === family && !i.internal && !(family === 'IPv6' && /^fe[89ab]/i.test(i.address))) return i.address;
  }
  return undefined;
}
