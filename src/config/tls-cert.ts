/**
 * The TLS certificate used by TLS listeners that have no `sip.tls.cert`/`key`:
 * a self-signed one generated once under `<data_dir>/tls/`.
 */
import { X509Certificate } from 'node:crypto';
import { chmodSync, existsSync, renameSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { generate } from 'selfsigned';
import type { Logger } from '../log.js';
import { dataDirLayout, prepareDataDir, SECRET_FILE_MODE } from './data-dir.js';

/** Validity of a generated certificate, years. */
export const GENERATED_CERT_YEARS = 10;

/** Where the certificate and key are, and whether this call generated them. */
export interface TlsCertificateFiles {
  /** PEM certificate, `<dataDir>/tls/cert.pem`. */
  certPath: string;
  /** PEM PKCS#8 private key, `<dataDir>/tls/key.pem`, mode 0600. */
  keyPath: string;
  /** true when this call wrote new files, false when existing ones are reused. */
  generated: boolean;
}

/**
 * Return `<dataDir>/tls/cert.pem` and `key.pem`, generating them first when
 * either is missing: a self-signed EC P-256 certificate, SHA-256 signature,
 * valid 10 years, CN = the first hostname, subjectAltName = every hostname
 * (DNS, or IP for an address literal) plus IP 127.0.0.1, extended key usage
 * serverAuth and clientAuth (a TLS peer of RFC 5922 presents it both ways).
 *
 * @param dataDir data directory; it and `tls/` are made by prepareDataDir (data-dir.ts) if missing.
 * @param hostnames names the certificate is for, e.g. the configured domains.
 * @param logger logs at info where new files were written.
 * @throws Error from the file system when dataDir is not writable.
 */
export async function ensureTlsCertificate(
  dataDir: string,
  hostnames: string[],
  logger: Logger,
): Promise<TlsCertificateFiles> {
  const log = logger.child({ component: 'tls-cert' });
  const { tlsCert: certPath, tlsKey: keyPath } = dataDirLayout(dataDir);
  if (existsSync(certPath) && existsSync(keyPath)) {
    return { certPath, keyPath, generated: false };
  }
  prepareDataDir(dataDir);

  const names = [...new Set(hostnames.map((h) => h.toLowerCase()))];
  const altNames: { type: 2 | 7; value?: string; ip?: string }[] = [];
  for (const name of names) {
    altNames.push(isIP(name) ? { type: 7, ip: name } : { type: 2, value: name });
  }
  if (!names.includes('127.0.0.1')) altNames.push({ type: 7, ip: '127.0.0.1' });

  const notBeforeDate = new Date();
  const notAfterDate = new Date(notBeforeDate);
  notAfterDate.setUTCFullYear(notAfterDate.getUTCFullYear() + GENERATED_CERT_YEARS);
  const pems = await generate([{ name: 'commonName', value: names[0] ?? 'rtcedge' }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notBeforeDate,
    notAfterDate,
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true, clientAuth: true },
      { name: 'subjectAltName', altNames },
    ],
  });

  // Write each file under a temporary name, then rename, so a reader never sees half a file.
  const tmpKey = `${keyPath}.${process.pid}.tmp`;
  writeFileSync(tmpKey, pems.private, { mode: SECRET_FILE_MODE });
  chmodSync(tmpKey, SECRET_FILE_MODE);
  renameSync(tmpKey, keyPath);
  const tmpCert = `${certPath}.${process.pid}.tmp`;
  writeFileSync(tmpCert, pems.cert, { mode: 0o644 });
  renameSync(tmpCert, certPath);

  const cert = new X509Certificate(pems.cert);
  log.info(
    { certPath, keyPath, subjectAltName: cert.subjectAltName, validTo: cert.validTo, fingerprint256: cert.fingerprint256 },
    'generated a self-signed TLS certificate',
  );
  return { certPath, keyPath, generated: true };
}
