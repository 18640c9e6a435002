/**
 * Open connections per SIP stream listener are bounded
 * (`sip.limits.max_connections`): at the bound, one more TCP or WS
 * connection is closed as soon as it is accepted and counted, the open ones
 * keep working, and a slot freed by a close is taken again. Real sockets on
 * loopback (OS-chosen ports).
 */
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { ServerSide, until } from './harness.js';

function options(i: number): string {
  return (
    `OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bKlimit${i}\r\nMax-Forwards: 70\r\n` +
    `From: <sip:probe@example.test>;tag=l${i}\r\nTo: <sip:127.0.0.1>\r\nCall-ID: limit-${i}@127.0.0.1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n`
  );
}

let server: ServerSide | undefined;
const open: Array<{ close(): void }> = [];
afterEach(async () => {
  for (const c of open.splice(0)) c.close();
  await server?.stop();
  server = undefined;
});

async function tcpClient(port: number): Promise<{ socket: net.Socket; closed: Promise<void> }> {
  const socket = net.connect({ host: '127.0.0.1', port });
  socket.on('error', () => undefined);
  open.push({ close: () => socket.destroy() });
  const closed = new Promise<void>((r) => socket.once('close', () => r()));
  await new Promise((r) => socket.once('connect', r));
  return { socket, closed };
}

describe('connections per SIP stream listener', () => {
  it('TCP: closes one more than max_connections on accept, counts it, and accepts again once one closes', async () => {
    server = await ServerSide.start(['tcp'], { maxConnectionsPerListener: 2 });
    const { port } = server.listener('tcp');
    const a = await tcpClient(port);
    const b = await tcpClient(port);
    a.socket.write(options(1));
    b.socket.write(options(2));
    await until(() => server!.inbound.length === 2, 'two requests over the two open connections');
    const c = await tcpClient(port);
    await c.closed;
    expect(server.layer.counters.connectionsRefused).toBe(1);
    const flowA = server.inbound.find((m) => m.msg.headers.some((h) => h.value.includes('limit-1@')))!.source.flowId!;
    const serverSawClose = new Promise<void>((r) => server!.layer.onFlowClosed(flowA, r));
    a.socket.destroy();
    await serverSawClose;
    const d = await tcpClient(port);
    d.socket.write(options(4));
    await until(() => server!.inbound.length === 3, 'a request over the new connection');
    expect(server.layer.counters.connectionsRefused).toBe(1);
  });

  it('WS: the third WebSocket of two allowed never opens', async () => {
    server = await ServerSide.start(['ws'], { maxConnectionsPerListener: 2 });
    const { port } = server.listener('ws');
    const ws = () => {
      const w = new WebSocket(`ws://127.0.0.1:${port}`, 'sip');
      w.on('error', () => undefined);
      open.push({ close: () => w.terminate() });
      return new Promise<'open' | 'closed'>((r) => {
        w.once('open', () => r('open'));
        w.once('close', () => r('closed'));
      });
    };
    expect(await ws()).toBe('open');
    expect(await ws()).toBe('open');
    expect(await ws()).toBe('closed');
    expect(server.layer.counters.connectionsRefused).toBe(1);
  });
});
