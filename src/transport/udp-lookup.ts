/**
 * The address lookup of the SIP UDP sockets. Node's dgram `send` resolves
 * every destination through `dns.lookup`, which for an IP literal (every
 * response and most requests: Via received/rport, bindings, flow tokens)
 * answers on the next tick: one deferred callback per datagram sent. This
 * lookup answers IP literals at once and leaves names to `dns.lookup`.
 */
import dns from 'node:dns';
import { isIP } from 'node:net';

/** A dgram `lookup` option: IP literals answered synchronously, other hosts by dns.lookup. */
export function literalFirstLookup(
  hostname: string,
  options: dns.LookupOneOptions,
  callback: (err: NodeJS.ErrnoException | null, address: string, family: number) => void,
): void {
  const family = isIP(hostname);
  if (family !== 0) callback(null, hostname, family);
  else dns.lookup(hostname, options, callback);
}
