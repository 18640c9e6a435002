/** A DnsResolver for tests, pointed at the named a test started (no system resolver). */
import { DnsResolver, type DnsResolverOptions } from '../../src/dns/resolver.js';

/** Resolver asking only `server` (`127.0.0.1:PORT`), with the default limits; `over` replaces any option. */
export function testResolver(server: string, over: Partial<DnsResolverOptions> = {}): DnsResolver {
  return new DnsResolver({
    servers: [server],
    timeout_ms: 2000,
    tries: 2,
    cache_entries: 100,
    max_ttl_seconds: 3600,
    naptr_srv_ttl_seconds: 60,
    negative_ttl_seconds: 30,
    ...over,
  });
}
