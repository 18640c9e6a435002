import { X509Certificate, createPrivateKey } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, test } from 'vitest';
import { ensureTlsCertificate } from '../../src/config/tls-cert.js';
import { silentLogger } from '../../src/log.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'rtcedge-tls-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

test('generated once with the SANs, then reused unchanged', async () => {
  const first = await ensureTlsCertificate(dir, ['Example.test', 'sip.example.test', '192.0.2.5'], silentLogger);
  expect(first).toEqual({ certPath: join(dir, 'tls', 'cert.pem'), keyPath: join(dir, 'tls', 'key.pem'), generated: true });
  const certPem = readFileSync(first.certPath, 'utf8');
  const keyPem = readFileSync(first.keyPath, 'utf8');
  expect(statSync(first.keyPath).mode & 0o777).toBe(0o600);

  const cert = new X509Certificate(certPem);
  expect(cert.subjectAltName).toBe('DNS:example.test, DNS:sip.example.test, IP Address:192.0.2.5, IP Address:127.0.0.1');
  expect(cert.subject).toBe('CN=example.test');
  expect(cert.ca).toBe(false);
  expect(cert.checkHost('sip.example.test')).toBe('sip.example.test');
  expect(cert.checkIP('127.0.0.1')).toBe('127.0.0.1');
  const years = (Date.parse(cert.validTo) - Date.parse(cert.validFrom)) / (365.25 * 86400_000);
  expect(Math.round(years)).toBe(10);
  const key = createPrivateKey(keyPem);
  expect(key.asymmetricKeyType).toBe('ec');
  expect(cert.checkPrivateKey(key)).toBe(true);
  expect(cert.verify(cert.publicKey)).toBe(true);

  const second = await ensureTlsCertificate(dir, ['other.test'], silentLogger);
  expect(second.generated).toBe(false);
  expect(readFileSync(second.certPath, 'utf8')).toBe(certPem);
  expect(readFileSync(second.keyPath, 'utf8')).toBe(keyPem);
});

test('regenerated when the key is missing', async () => {
  const first = await ensureTlsCertificate(dir, ['a.test'], silentLogger);
  rmSync(first.keyPath);
  const again = await ensureTlsCertificate(dir, ['b.test'], silentLogger);
  expect(again.generated).toBe(true);
  const cert = new X509Certificate(readFileSync(again.certPath));
  expect(cert.subjectAltName).toBe('DNS:b.test, IP Address:127.0.0.1');
  expect(cert.checkPrivateKey(createPrivateKey(readFileSync(again.keyPath)))).toBe(true);
});
