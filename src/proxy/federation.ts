import type { Logger } from '../log.js';
import type { DnsLookup } from '../dns/resolver.js';
import type { FailedTargets } from '../dns/failed-targets.js';

/** The local user an E.164 number is assigned to (`rtcedge user add --phone`, or a directory attribute). */
export interface PhoneOwner {
  user: string;
  domain: string;
}

/**
 * What the proxy needs to talk to other domains: DNS for RFC 3263
 * server location and ENUM, the failed-target table (RFC 3263 §4.3), and the
 * `federation.*` / `enum.*` policy. Built once per process (server.ts).
 */
export interface Federation {
  /** NAPTR/SRV/A/AAAA lookups (src/dns/resolver.ts). */
  dns: DnsLookup;
  /** Targets that failed, skipped for `dns.failed_target_seconds`. */
  failedTargets: FailedTargets;
  /** ENUM suffixes (`dns.enum_suffixes`, RFC 6116 §2.4). */
  enumSuffixes: readonly string[];
  /** `federation.require_tls`: TLS with verified certificates both ways between domains (RFC 5922). */
  requireTls: boolean;
  /** `federation.allow_domains` ([] = any) and `deny_domains`, lowercase. */
  allowDomains: readonly string[];
  denyDomains: readonly string[];
  /** `federation.wildcard_certificates` (RFC 5922 §7.2: off). */
  wildcards: boolean;
  /** `enum.pstn_route`: where E.164 numbers without owner or ENUM entry go; undefined = 404. */
  pstnRoute?: string;
  /** The local owner of an E.164 number (`+` and digits), if any. */
  phoneOwner?(number: string): PhoneOwner | undefined | Promise<PhoneOwner | undefined>;
  logger: Logger;
}
