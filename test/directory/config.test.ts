import { describe, expect, it } from 'vitest';
import { configSchema } from '../../src/config/schema.js';

describe('directory and sip.auth config keys', () => {
  it('type ldap requires url and base_dn, and bind_dn with bind_password', () => {
    const r = configSchema.safeParse({ directory: { type: 'ldap', bind_dn: 'cn=x' } });
    expect(r.success).toBe(false);
    const paths = r.error!.issues.map((i) => i.path.join('.'));
    expect(paths.sort()).toEqual(['directory.base_dn', 'directory.bind_password', 'directory.url']);
  });

  it('a complete ldap section parses with defaults filled in', () => {
    const c = configSchema.parse({ directory: { type: 'ldap', url: 'ldap://127.0.0.1:389', base_dn: 'dc=example,dc=test' } });
    expect(c.directory).toMatchObject({ filter: '(uid={user})', cache_ttl: 60, timeout: 3000, retry_after: 30, attributes: { password: ['SIPIdentityPassword'] } });
  });

  it('a filter without {user} or parentheses, and a bad attribute name, are refused', () => {
    expect(configSchema.safeParse({ directory: { filter: 'uid={user}' } }).success).toBe(false);
    expect(configSchema.safeParse({ directory: { filter: '(uid=alice)' } }).success).toBe(false);
    expect(configSchema.safeParse({ directory: { attributes: { password: ['bad name'] } } }).success).toBe(false);
  });

  it('sip.auth.algorithms: case-insensitive names, canonical out, each once, not empty', () => {
    expect(configSchema.parse({ sip: { auth: { algorithms: ['sha-256', 'md5'] } } }).sip.auth.algorithms).toEqual(['SHA-256', 'MD5']);
    expect(configSchema.safeParse({ sip: { auth: { algorithms: [] } } }).success).toBe(false);
    expect(configSchema.safeParse({ sip: { auth: { algorithms: ['MD5', 'md5'] } } }).success).toBe(false);
    expect(configSchema.safeParse({ sip: { auth: { algorithms: ['SHA-1'] } } }).success).toBe(false);
  });
});
