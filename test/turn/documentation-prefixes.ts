/**
 * The documentation prefixes (RFC 5737, RFC 3849). Control-plane unit tests
 * use them for clients and peers without sending a packet; the peer policy
 * refuses them by default (RFC 6890), so those tests allow them explicitly.
 */
import { PeerPolicy } from '../../src/turn/peer-policy.js';

export const DOCUMENTATION_PREFIXES: readonly string[] = ['192.0.2.0/24', '198.51.100.0/24', '203.0.113.0/24', '2001:db8::/32'];

/** The default peer policy with the documentation prefixes allowed (and loopback when asked), as a PermissionHandler. */
export function documentationPeersAllowed(allowLoopbackPeers: boolean): (address: string) => boolean {
  const p = new PeerPolicy({ allowLoopbackPeers, allowedPeers: DOCUMENTATION_PREFIXES });
  return (a) => p.allows(a);
}
