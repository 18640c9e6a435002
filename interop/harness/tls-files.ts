/**
 * Throwaway TLS material for peers (baresip wants one PEM holding certificate
 * and private key), made with the openssl command.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCommand } from './process.js';

/** Paths written by makeSelfSignedPem. */
export interface PemFiles {
  certPath: string;
  keyPath: string;
  /** Certificate followed by key, in one file. */
  combinedPath: string;
}

/**
 * Writes a self-signed RSA-2048 certificate for CN=`cn` (valid 2 days) into
 * dir as `<name>-cert.pem`, `<name>-key.pem` and `<name>-combined.pem`.
 */
export async function makeSelfSignedPem(dir: string, name: string, cn = '127.0.0.1'): Promise<PemFiles> {
  const certPath = join(dir, `${name}-cert.pem`);
  const keyPath = join(dir, `${name}-key.pem`);
  const combinedPath = join(dir, `${name}-combined.pem`);
  const r = await runCommand(
    'openssl',
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${cn}`, '-days', '2', '-keyout', keyPath, '-out', certPath],
    { timeoutMs: 20_000 },
  );
  if (r.code !== 0) throw new Error(`openssl req failed (${r.code}): ${r.output}`);
  writeFileSync(combinedPath, readFileSync(certPath, 'utf8') + readFileSync(keyPath, 'utf8'));
  return { certPath, keyPath, combinedPath };
}
