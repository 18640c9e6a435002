/**
 * A transport layer on real loopback sockets for the transport tests, and raw
 * clients that keep every byte the server writes, so tests assert on the wire.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { ensureTlsCertificate } from '../../src/config/tls-cert.js';
import { silentLogger } from '../../src/log.js';
import { DEFAULT_LIMITS } from '../../src/sip/parser.js';
import { TransportLayer } from '../../src/transport/transport-layer.js';
import type { BoundListener, Inbound, ListenSpec, TransportName } from '../../src/transport/types.js';

/** Poll `cond` every 5 ms until it holds; rejects with `what` after `timeoutMs`. */
export async function until(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A self-signed certificate for 127.0.0.1, made by the server's own generator in a temporary directory. */
export async function testCertificate(): Promise<{ cert: Buffer; key: Buffer }> {
  const dir = mkdtempSync(join(tmpdir(), 'rtcedge-transport-cert-'));
  try {
    const files = await ensureTlsCertificate(dir, ['localhost'], silentLogger);
    return { cert: readFileSync(files.certPath), key: readFileSync(files.keyPath) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A started transport layer on 127.0.0.1 (OS-chosen ports) that records what it hands up. */
export class ServerSide {
  readonly inbound: Inbound[] = [];
  private constructor(readonly layer: TransportLayer) {
    layer.onMessage = (m) => this.inbound.push(m);
  }

  static async start(transports: TransportName[], opts: { idleTimeoutMs?: number; tls?: { cert: Buffer; key: Buffer }; maxConnectionsPerListener?: number } = {}): Promise<ServerSide> {
    const listen: ListenSpec[] = transports.map((transport) => ({ transport, host: '127.0.0.1', port: 0 }));
    const layer = new TransportLayer({ listen, limits: DEFAULT_LIMITS, logger: silentLogger, ...opts });
    await layer.start();
    return new ServerSide(layer);
  }

  listener(transport: TransportName): BoundListener {
    const l = this.layer.listenerFor(transport);
    if (!l) throw new Error(`no ${transport} listener`);
    return l;
  }

  stop(): Promise<void> {
    return this.layer.stop();
  }
}

/** A TCP or TLS client that keeps every byte received and knows when the server closed. */
export class RawStreamClient {
  received = Buffer.alloc(0);
  closed = false;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      this.received = Buffer.concat([this.received, d]);
    });
    socket.on('close', () => {
      this.closed = true;
    });
    socket.on('error', () => {});
  }

  static connect(transport: 'tcp' | 'tls', port: number): Promise<RawStreamClient> {
    return new Promise((resolve, reject) => {
      const socket =
        transport === 'tls'
          ? tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => resolve(new RawStreamClient(socket)))
          : net.connect({ host: '127.0.0.1', port }, () => resolve(new RawStreamClient(socket)));
      socket.once('error', reject);
    });
  }

  write(data: string | Buffer): Promise<void> {
    return new Promise((resolve, reject) => this.socket.write(data, (err) => (err ? reject(err) : resolve())));
  }

  text(): string {
    return this.received.toString('latin1');
  }

  close(): void {
    this.socket.destroy();
  }
}

/** A request of `bodyLength` bytes of body (`x`), with Content-Length, from 127.0.0.1:`port` over `transport`. */
export function request(method: string, branch: string, transport: string, port: number, bodyLength = 0): string {
  return [
    `${method} sip:bob@example.test SIP/2.0`,
    `Via: SIP/2.0/${transport.toUpperCase()} 127.0.0.1:${port};branch=${branch};rport`,
    'Max-Forwards: 70',
    'From: <sip:alice@example.test>;tag=a1',
    'To: <sip:bob@example.test>',
    `Call-ID: ${branch}@127.0.0.1`,
    `CSeq: 1 ${method}`,
    ...(bodyLength > 0 ? ['Content-Type: text/plain'] : []),
    `Content-Length: ${bodyLength}`,
    '',
    'x'.repeat(bodyLength),
  ].join('\r\n');
}
