/**
 * User directories: where users and digest credentials come from when not from the SQLite store.
 */
import type { DirectoryConfig } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { DigestAlgorithm } from '../auth/digest.js';
import { LdapDirectory } from './ldap-directory.js';

export { LdapDirectory, type LdapDirectoryOptions, type LdapClientLike } from './ldap-directory.js';
export { escapeFilterValue, fillFilter } from './ldap-filter.js';

/**
 * The directory a configuration asks for, or undefined for `type: none` (the SQLite store).
 * @param realms served domains (lowercase): the realms users may be looked up in.
 */
export function openDirectory(config: DirectoryConfig, realms: string[], logger: Logger): LdapDirectory | undefined {
  if (config.type !== 'ldap') return undefined;
  const ha1Attributes: Partial<Record<DigestAlgorithm, string>> = {};
  if (config.attributes.ha1_md5) ha1Attributes.MD5 = config.attributes.ha1_md5;
  if (config.attributes.ha1_sha256) ha1Attributes['SHA-256'] = config.attributes.ha1_sha256;
  if (config.attributes.ha1_sha512_256) ha1Attributes['SHA-512-256'] = config.attributes.ha1_sha512_256;
  return new LdapDirectory({
    // The schema requires url and base_dn for type ldap.
    url: config.url!,
    bindDn: config.bind_dn,
    bindPassword: config.bind_password,
    baseDn: config.base_dn!,
    filter: config.filter,
    passwordAttributes: config.attributes.password,
    ha1Attributes,
    cacheTtl: config.cache_ttl,
    timeoutMs: config.timeout,
    retryAfter: config.retry_after,
    realms,
    logger,
  });
}
