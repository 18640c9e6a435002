/**
 * Loopback port helpers: check that a port is free before a test binds it, and
 * wait until a spawned program listens on a TCP port.
 */
import { createSocket } from 'node:dgram';
import { connect, createServer } from 'node:net';

/** True when a TCP listener could bind host:port right now. */
export function tcpPortFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen({ host, port, exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

/** True when a UDP socket could bind host:port right now. */
export function udpPortFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = createSocket(host.includes(':') ? 'udp6' : 'udp4');
    sock.once('error', () => {
      sock.close();
      resolve(false);
    });
    sock.bind({ address: host, port, exclusive: true }, () => sock.close(() => resolve(true)));
  });
}

/**
 * Throws an Error naming every port of the list that is taken (TCP and UDP
 * both checked), so a test fails fast instead of talking to a stray process.
 */
export async function assertPortsFree(host: string, ports: number[]): Promise<void> {
  const taken: string[] = [];
  for (const p of ports) {
    if (!(await tcpPortFree(host, p))) taken.push(`tcp/${p}`);
    if (!(await udpPortFree(host, p))) taken.push(`udp/${p}`);
  }
  if (taken.length > 0) throw new Error(`ports already in use on ${host}: ${taken.join(', ')}`);
}

/** Resolves once a TCP connect to host:port succeeds; rejects after timeoutMs. */
export async function waitForTcpPort(host: string, port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ host, port });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() >= deadline) throw new Error(`nothing listens on tcp ${host}:${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
