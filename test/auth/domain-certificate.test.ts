/**
 * RFC 5922 §7 SIP domain identities, with certificates made by `openssl` in a
 * temp dir: read as crypto.X509Certificate and, through a real TLS handshake on
 * loopback, as the peer certificate a TLS client sees.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect, createServer, type PeerCertificate } from 'node:tls';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWithPeers } from '../../interop/harness/peers.js';
import { runCommand } from '../../interop/harness/process.js';
import { makeTempDir, removeTempDir } from '../../interop/harness/temp-dir.js';
import { certificateMatchesSipDomain, sipDomainIdentities } from '../../src/auth/domain-certificate.js';
import { parseSubjectAltName } from '../../src/auth/client-certificate.js';

let dir: string;

/** A self-signed EC certificate with subject CN `cn` and, when given, `san` (openssl's subjectAltName syntax). */
async function makeCert(name: string, cn: string, san?: string): Promise<{ cert: X509Certificate; certPem: string; keyPem: string }> {
  const certPath = join(dir, `${name}.crt`);
  const keyPath = join(dir, `${name}.key`);
  const args = ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1'];
  args.push('-subj', `/O=test/CN=${cn}`, '-keyout', keyPath, '-out', certPath);
  if (san !== undefined) args.push('-addext', `subjectAltName=${san}`);
  const r = await runCommand('openssl', args, { timeoutMs: 20_000 });
  if (r.code !== 0) throw new Error(`openssl failed: ${r.output}`);
  const certPem = readFileSync(certPath, 'utf8');
  return { cert: new X509Certificate(certPem), certPem, keyPem: readFileSync(keyPath, 'utf8') };
}

const certs: Record<string, X509Certificate> = {};

describeWithPeers(['openssl'])('RFC 5922 domain certificates', () => {
  beforeAll(async () => {
    dir = makeTempDir('certs');
    const specs: [string, string, string | undefined][] = [
      ['sipUri', 'other.test', 'URI:sip:beta.test'],
      ['userUri', 'beta.test', 'URI:sip:bob@beta.test'],
      ['dnsAndCn', 'other.test', 'DNS:beta.test'],
      ['cnOnly', 'beta.test', undefined],
      ['wildcard', 'other.test', 'DNS:*.beta.test'],
      ['otherSchemes', 'beta.test', 'URI:sips:beta.test,URI:https://beta.test/,email:x@beta.test'],
      ['mixedCase', 'x', 'DNS:BETA.Test,URI:sip:Gamma.TEST;transport=tls'],
    ];
    for (const [name, cn, san] of specs) certs[name] = (await makeCert(name, cn, san)).cert;
  });
  afterAll(() => removeTempDir(dir));

  it('accepts a sip: URI SAN without user part, and nothing else it does not name', () => {
    expect(certificateMatchesSipDomain(certs.sipUri!, 'beta.test')).toBe(true);
    expect(certificateMatchesSipDomain(certs.sipUri!, 'BETA.test.')).toBe(true);
    expect(certificateMatchesSipDomain(certs.sipUri!, 'other.test')).toBe(false); // CN ignored: there is a SAN
    expect(certificateMatchesSipDomain(certs.sipUri!, 'alpha.test')).toBe(false);
    expect(certificateMatchesSipDomain(certs.sipUri!, 'test')).toBe(false); // no suffix match
    expect(certificateMatchesSipDomain(certs.sipUri!, 'sip.beta.test')).toBe(false);
  });

  it('does not take a SAN URI with a user part, another scheme or an email as a domain', () => {
    expect(certificateMatchesSipDomain(certs.userUri!, 'beta.test')).toBe(false);
    expect(certificateMatchesSipDomain(certs.otherSchemes!, 'beta.test')).toBe(false);
    expect(sipDomainIdentities(certs.otherSchemes!)).toEqual({ sipUris: [], dnsNames: [], commonNames: [] });
  });

  it('accepts a dNSName, and the CN only when there is no subjectAltName', () => {
    expect(certificateMatchesSipDomain(certs.dnsAndCn!, 'beta.test')).toBe(true);
    expect(certificateMatchesSipDomain(certs.dnsAndCn!, 'other.test')).toBe(false);
    expect(certificateMatchesSipDomain(certs.cnOnly!, 'beta.test')).toBe(true);
    expect(sipDomainIdentities(certs.cnOnly!)).toEqual({ sipUris: [], dnsNames: [], commonNames: ['beta.test'] });
  });

  it('refuses wildcards unless asked, then matches exactly one label', () => {
    expect(certificateMatchesSipDomain(certs.wildcard!, 'sip.beta.test')).toBe(false);
    expect(certificateMatchesSipDomain(certs.wildcard!, 'sip.beta.test', { wildcards: true })).toBe(true);
    expect(certificateMatchesSipDomain(certs.wildcard!, 'beta.test', { wildcards: true })).toBe(false);
    expect(certificateMatchesSipDomain(certs.wildcard!, 'a.sip.beta.test', { wildcards: true })).toBe(false);
    expect(certificateMatchesSipDomain(certs.wildcard!, '*.beta.test')).toBe(true); // the literal name (RFC 5922 §7.2)
  });

  it('compares case-insensitively and ignores URI parameters', () => {
    expect(sipDomainIdentities(certs.mixedCase!)).toEqual({ sipUris: ['gamma.test'], dnsNames: ['beta.test'], commonNames: [] });
    expect(certificateMatchesSipDomain(certs.mixedCase!, 'Gamma.test')).toBe(true);
  });

  it('reads the peer certificate a TLS client gets in a handshake on loopback', async () => {
    const { certPem, keyPem } = await makeCert('server', 'other.test', 'URI:sip:beta.test,DNS:sip.beta.test');
    const server = createServer({ cert: certPem, key: keyPem }, (s) => s.end());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    try {
      const peer = await new Promise<PeerCertificate>((resolve, reject) => {
        const s = connect({ host: '127.0.0.1', port, servername: 'beta.test', ca: certPem, checkServerIdentity: () => undefined }, () => {
          resolve(s.getPeerCertificate());
          s.end();
        });
        s.once('error', reject);
      });
      expect(certificateMatchesSipDomain(peer, 'beta.test')).toBe(true);
      expect(certificateMatchesSipDomain(peer, 'sip.beta.test')).toBe(true);
      expect(certificateMatchesSipDomain(peer, 'other.test')).toBe(false);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });

  it('splits node subjectAltName text, JSON-quoted values included', () => {
    expect(parseSubjectAltName('DNS:a.test, URI:sip:b.test, DNS:"c, d.test", IP Address:127.0.0.1')).toEqual([
      { type: 'DNS', value: 'a.test' },
      { type: 'URI', value: 'sip:b.test' },
      { type: 'DNS', value: 'c, d.test' },
      { type: 'IP Address', value: '127.0.0.1' },
    ]);
  });
});
