/**
 * A throwaway certificate authority made with openssl in a test's own
 * directory: a CA certificate and, per SIP domain, a certificate with
 * subjectAltName `DNS:<domain>, URI:sip:<domain>` (RFC 5922 §7) and extended
 * key usage serverAuth + clientAuth (peers present it both ways).
 */
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { runCommand } from './process.js';

/** PEM files of one certificate. */
export interface CertFiles {
  cert: string;
  key: string;
}

/** A test CA: its certificate file and a function issuing domain certificates. */
export interface TestCa {
  /** PEM CA certificate (give it as `federation.ca`). */
  cert: string;
  /** Issues a certificate for `names` (SIP domains; the first is the CN) into `dir/<label>.{crt,key}`. */
  issue(label: string, names: string[]): Promise<CertFiles>;
}

async function openssl(args: string[], cwd: string): Promise<void> {
  const r = await runCommand('openssl', args, { cwd, timeoutMs: 20_000 });
  if (r.code !== 0) throw new Error(`openssl ${args[0]} failed (exit ${r.code}):\n${r.output}`);
}

/** Makes the CA key and certificate (EC P-256, 1 day) under `dir`. */
export async function makeTestCa(dir: string): Promise<TestCa> {
  const caKey = join(dir, 'ca.key');
  const caCert = join(dir, 'ca.crt');
  await openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', caKey, '-out', caCert, '-days', '1', '-subj', '/CN=rtcedge test CA'], dir);
  return {
    cert: caCert,
    async issue(label, names) {
      const key = join(dir, `${label}.key`);
      const csr = join(dir, `${label}.csr`);
      const cert = join(dir, `${label}.crt`);
      const ext = join(dir, `${label}.ext`);
      writeFileSync(
        ext,
        [
          `subjectAltName=${names.map((n) => `DNS:${n},URI:sip:${n}`).join(',')}`,
          'extendedKeyUsage=serverAuth,clientAuth',
          'basicConstraints=CA:FALSE',
          '',
        ].join('\n'),
      );
      await openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', csr, '-subj', `/CN=${names[0]}`], dir);
      await openssl(['x509', '-req', '-in', csr, '-CA', caCert, '-CAkey', caKey, '-CAcreateserial', '-out', cert, '-days', '1', '-extfile', ext], dir);
      return { cert, key };
    },
  };
}
