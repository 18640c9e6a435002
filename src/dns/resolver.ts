/**
 * DNS lookups for server location (RFC 3263) and ENUM (RFC 6116): NAPTR
 * (RFC 3403), SRV (RFC 2782), A and AAAA, asked of configured servers
 * (`dns.servers`, default the system's) through node:dns's c-ares `Resolver`,
 * never with our own wire format.
 *
 * Caching (bounded, `dns.cache_entries`):
 * - A/AAAA answers for their TTL (`resolve4/6` with `{ ttl: true }`), capped by
 *   `dns.max_ttl_seconds`.
 * - NAPTR/SRV answers: node:dns does not expose their TTL, so they are kept for
 *   `dns.naptr_srv_ttl_seconds` (default 60 s, 0 = not cached), a ceiling the
 *   operator chooses below the TTLs the zones publish.
 * - Negative answers (NXDOMAIN, no data; RFC 2308) for `dns.negative_ttl_seconds`.
 * - Failures (timeout, SERVFAIL, refused) are not cached: they throw
 *   {@link DnsLookupError}.
 *
 * Concurrent lookups of the same name and type share one query; at most
 * {@link MAX_LOOKUPS_IN_FLIGHT} distinct queries run at once.
 */
import { Resolver } from 'node:dns/promises';
import type { DnsConfig } from '../config/schema.js';
import { SipError } from '../sip/errors.js';
import type { Logger } from '../log.js';
import { TtlCache } from './ttl-cache.js';

/** A NAPTR record (RFC 3403 §4.1): `order`, `preference` (lower first), `flags`, `service`, `regexp`, `replacement` (no trailing dot; '' for "."). */
export interface NaptrRecord {
  order: number;
  preference: number;
  flags: string;
  service: string;
  regexp: string;
  replacement: string;
}

/** An SRV record (RFC 2782): `priority` (lower first), `weight`, `port`, `target` (no trailing dot; '' for "."). */
export interface SrvRecord {
  priority: number;
  weight: number;
  port: number;
  target: string;
}

/** An A or AAAA answer: address text, IP family, TTL in s as the server gave it. */
export interface AddressRecord {
  address: string;
  family: 4 | 6;
  ttlS: number;
}

/**
 * What server location and ENUM need from DNS. Each method resolves to the
 * records ([] when the name or the type does not exist) or rejects with
 * {@link DnsLookupError} when the servers could not answer.
 */
export interface DnsLookup {
  naptr(name: string): Promise<NaptrRecord[]>;
  srv(name: string): Promise<SrvRecord[]>;
  addresses(name: string, family: 4 | 6): Promise<AddressRecord[]>;
}

/** The DNS servers could not answer (timeout, SERVFAIL, refused, bad reply): SIP status 503 (RFC 3263 §4.3 leaves the request unroutable). `code` is c-ares' (`ETIMEOUT`, `ESERVFAIL`, ...). */
export class DnsLookupError extends SipError {
  constructor(
    readonly queryName: string,
    readonly queryType: string,
    readonly code: string,
  ) {
    super(503, `Service Unavailable: DNS ${queryType} ${queryName} failed (${code})`);
    this.name = 'DnsLookupError';
  }
}

/** Bound on distinct queries awaiting an answer; beyond it a lookup fails with DnsLookupError code `EBUSY`. */
export const MAX_LOOKUPS_IN_FLIGHT = 1000;

/** Answer codes that mean "no such records" (cached negatively) rather than "no answer". */
const NEGATIVE = new Set(['ENOTFOUND', 'ENODATA', 'ENONAME']);

/** Options of {@link DnsResolver}: the `dns` config keys it uses, plus a clock for tests. */
export type DnsResolverOptions = Pick<
  DnsConfig,
  'servers' | 'timeout_ms' | 'tries' | 'cache_entries' | 'max_ttl_seconds' | 'naptr_srv_ttl_seconds' | 'negative_ttl_seconds'
> & {
  nowMs?: () => number;
  /** Logger (component `dns` is added): each query at debug, failures at warn. */
  log?: Logger;
};

type Answer = NaptrRecord[] | SrvRecord[] | AddressRecord[];

/** Lowercase, no trailing dot: the form names are cached and compared in. */
export function normalizeDnsName(name: string): string {
  const n = name.toLowerCase();
  return n.endsWith('.') ? n.slice(0, -1) : n;
}

/** A caching stub resolver over node:dns (see the module comment). Holds no sockets between lookups. */
export class DnsResolver implements DnsLookup {
  private readonly resolver: Resolver;
  private readonly cache: TtlCache<string, Answer>;
  private readonly inFlight = new Map<string, Promise<Answer>>();
  private readonly log: Logger | undefined;
  /** Queries sent to the servers so far (cache misses); for tests and metrics. */
  queries = 0;

  /** @throws Error from node:dns when a `servers` entry is not an address (the config schema checks this first). */
  constructor(private readonly opts: DnsResolverOptions) {
    this.resolver = new Resolver({ timeout: opts.timeout_ms, tries: opts.tries });
    if (opts.servers.length > 0) this.resolver.setServers(opts.servers);
    this.cache = new TtlCache(opts.cache_entries, opts.nowMs ?? Date.now);
    this.log = opts.log?.child({ component: 'dns' });
  }

  /** NAPTR records of `name` (RFC 3403), in answer order. */
  naptr(name: string): Promise<NaptrRecord[]> {
    return this.lookup('NAPTR', name, async (n) => {
      const rs = await this.resolver.resolveNaptr(n);
      const records = rs.map((r) => ({
        order: r.order,
        preference: r.preference,
        flags: r.flags,
        service: r.service,
        regexp: r.regexp,
        replacement: normalizeDnsName(r.replacement),
      }));
      return { records, ttlS: this.opts.naptr_srv_ttl_seconds };
    }) as Promise<NaptrRecord[]>;
  }

  /** SRV records of `name` (RFC 2782), in answer order. */
  srv(name: string): Promise<SrvRecord[]> {
    return this.lookup('SRV', name, async (n) => {
      const rs = await this.resolver.resolveSrv(n);
      const records = rs.map((r) => ({ priority: r.priority, weight: r.weight, port: r.port, target: normalizeDnsName(r.name) }));
      return { records, ttlS: this.opts.naptr_srv_ttl_seconds };
    }) as Promise<SrvRecord[]>;
  }

  /** A (family 4) or AAAA (family 6) records of `name`, cached for the smallest TTL of the answer. */
  addresses(name: string, family: 4 | 6): Promise<AddressRecord[]> {
    return this.lookup(family === 4 ? 'A' : 'AAAA', name, async (n) => {
      const rs = family === 4 ? await this.resolver.resolve4(n, { ttl: true }) : await this.resolver.resolve6(n, { ttl: true });
      const records = rs.map((r) => ({ address: r.address, family, ttlS: r.ttl }));
      return { records, ttlS: Math.min(...records.map((r) => r.ttlS)) };
    }) as Promise<AddressRecord[]>;
  }

  /** Distinct queries awaiting an answer now, 0 ≤ n ≤ {@link MAX_LOOKUPS_IN_FLIGHT}. */
  get lookupsInFlight(): number {
    return this.inFlight.size;
  }

  /** Cancels queries in flight (they reject) and empties the cache. */
  close(): void {
    this.resolver.cancel();
    this.cache.clear();
  }

  private lookup(type: string, name: string, ask: (name: string) => Promise<{ records: Answer; ttlS: number }>): Promise<Answer> {
    const n = normalizeDnsName(name);
    const key = `${type} ${n}`;
    const cached = this.cache.get(key);
    if (cached !== undefined) return Promise.resolve(cached);
    const pending = this.inFlight.get(key);
    if (pending !== undefined) return pending;
    if (this.inFlight.size >= MAX_LOOKUPS_IN_FLIGHT) return Promise.reject(new DnsLookupError(n, type, 'EBUSY'));
    this.queries++;
    const p = ask(n).then(
      ({ records, ttlS }) => {
        this.log?.debug({ type, name: n, records: records.length, ttlS }, 'dns answer');
        const capped = Math.min(ttlS, this.opts.max_ttl_seconds);
        this.cache.set(key, records, (records.length === 0 ? this.opts.negative_ttl_seconds : capped) * 1000);
        return records;
      },
      (err: NodeJS.ErrnoException) => {
        const code = typeof err.code === 'string' ? err.code : 'EUNKNOWN';
        if (!NEGATIVE.has(code)) {
          this.log?.warn({ type, name: n, code }, 'dns lookup failed');
          throw new DnsLookupError(n, type, code);
        }
        this.log?.debug({ type, name: n, code }, 'dns negative answer');
        this.cache.set(key, [], this.opts.negative_ttl_seconds * 1000);
        return [] as Answer;
      },
    );
    this.inFlight.set(key, p);
    const clear = (): void => void this.inFlight.delete(key);
    p.then(clear, clear);
    return p;
  }
}
