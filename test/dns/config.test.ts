/** The `dns` configuration section: defaults, the errors a bad value gives, and the services built from it. */
import { describe, expect, it } from 'vitest';
import { ConfigError, defaultConfig, parseConfig } from '../../src/config/load.js';
import { dnsFromConfig } from '../../src/dns/from-config.js';

function errorText(data: unknown): string {
  try {
    parseConfig(data, 'rtcedge.yaml');
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('expected a ConfigError');
}

describe('dns config', () => {
  it('defaults to the system resolver and e164.arpa (full defaults: test/config/load.test.ts)', () => {
    expect(defaultConfig().dns).toMatchObject({ servers: [], enum_suffixes: ['e164.arpa'], failed_target_seconds: 30 });
  });

  it('takes addresses with or without a port, IPv6 in brackets', () => {
    const c = parseConfig({ dns: { servers: ['127.0.0.1', '127.0.0.1:5353', '::1', '[::1]:5353'], enum_suffixes: ['E164.Example.test'] } });
    expect(c.dns.servers).toEqual(['127.0.0.1', '127.0.0.1:5353', '::1', '[::1]:5353']);
    expect(c.dns.enum_suffixes).toEqual(['e164.example.test']);
    const services = dnsFromConfig(c.dns);
    expect(services.enumSuffixes).toEqual(['e164.example.test']);
    services.resolver.close();
  });

  it('names the key and the file for a bad value', () => {
    expect(errorText({ dns: { servers: ['ns.example.test'] } })).toContain('dns.servers[0]');
    expect(errorText({ dns: { servers: ['127.0.0.1:99999'] } })).toContain('dns.servers[0]');
    expect(errorText({ dns: { cache_entries: 0 } })).toContain('dns.cache_entries');
    expect(errorText({ dns: { enum_suffixes: ['bad domain'] } })).toContain('dns.enum_suffixes[0]');
    expect(errorText({ dns: { unknown: 1 } })).toContain('rtcedge.yaml');
  });
});
