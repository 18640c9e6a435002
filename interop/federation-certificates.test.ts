/**
 * Our own domains' certificates (`sip.tls.certificates`): SNI picks the one
 * of the domain a client names, the default one serves a client that names
 * none, and `reloadTlsMaterial()` puts renewed files in use for new
 * handshakes while an established connection keeps working.
 * Certificates from a test CA made with openssl; rtcedge in the test process.
 */
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWithPeers } from './harness/peers.js';
import { makeTestCa, type CertFiles, type TestCa } from './harness/test-ca.js';
import { makeTempDir, removeTempDir } from './harness/temp-dir.js';
import { startTestServer, type TestServer } from '../test/helpers/test-server.js';

const TLS_PORT = 26481;

/** The subject CN and serial number of the certificate the server presents for `servername` (none: no SNI). */
function presented(servername?: string): Promise<{ cn: string; serial: string; socket: tls.TLSSocket }> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port: TLS_PORT, servername, rejectUnauthorized: false }, () => {
      const cert = socket.getPeerCertificate();
      resolve({ cn: String(cert.subject.CN), serial: cert.serialNumber, socket });
    });
    socket.once('error', reject);
  });
}

describeWithPeers(['openssl'])('per-domain certificates by SNI, and reload', () => {
  let dir: string;
  let ca: TestCa;
  let alpha: CertFiles;
  let test: TestServer;

  beforeAll(async () => {
    dir = makeTempDir('domain-certs');
    ca = await makeTestCa(dir);
    const main = await ca.issue('main', ['main.test']);
    const issued = await ca.issue('alpha-1', ['alpha.test']);
    alpha = { cert: join(dir, 'alpha.crt'), key: join(dir, 'alpha.key') };
    copyFileSync(issued.cert, alpha.cert);
    copyFileSync(issued.key, alpha.key);
    test = await startTestServer({
      name: 'domain-certs',
      domain: 'main.test',
      sip: {
        listen: [{ transport: 'tls', host: '127.0.0.1', port: TLS_PORT }],
        tls: { cert: main.cert, key: main.key, certificates: [{ domain: 'alpha.test', ...alpha }] },
      },
      federation: { require_tls: true, ca: [ca.cert], system_ca: false },
    });
  });

  afterAll(async () => {
    await test?.stop();
    removeTempDir(dir);
  });

  it('presents the certificate of the domain the client names, else the default one', async () => {
    const a = await presented('alpha.test');
    const d = await presented('unknown.test');
    const none = await presented();
    for (const c of [a, d, none]) c.socket.destroy();
    expect(a.cn).toBe('alpha.test');
    expect(d.cn).toBe('main.test');
    expect(none.cn).toBe('main.test');
  });

  it('uses renewed files after reloadTlsMaterial for new handshakes; an open connection stays up', async () => {
    const before = await presented('alpha.test');
    const renewed = await ca.issue('alpha-2', ['alpha.test']);
    copyFileSync(renewed.cert, alpha.cert);
    copyFileSync(renewed.key, alpha.key);
    await test.server.reloadTlsMaterial();
    const after = await presented('alpha.test');
    after.socket.destroy();
    expect(after.cn).toBe('alpha.test');
    expect(after.serial).not.toBe(before.serial);
    expect(before.socket.destroyed).toBe(false);
    // The old connection still carries SIP: a keepalive ping is answered with a pong (RFC 5626 §3.5.1).
    const pong = await new Promise<string>((resolve) => {
      before.socket.once('data', (d: Buffer) => resolve(d.toString()));
      before.socket.write('\r\n\r\n');
    });
    before.socket.destroy();
    expect(pong).toBe('\r\n');
  });
});
