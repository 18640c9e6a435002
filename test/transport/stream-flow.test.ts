/**
 * Stream flows over real loopback sockets, TCP and TLS (RFC 3261 §18.3,
 * RFC 5626 §3.5.1): framing by Content-Length across and within segments,
 * answers on the same connection, CRLF keepalive pongs, the 400 and close after
 * a framing error, and the idle close.
 */
import { afterEach, describe, expect, test } from 'vitest';
import { createResponse } from '../../src/sip/response.js';
import { getHeader, type SipRequest } from '../../src/sip/message.js';
import { RawStreamClient, request, ServerSide, testCertificate, until } from './harness.js';

let server: ServerSide | undefined;
let client: RawStreamClient | undefined;
afterEach(async () => {
  client?.close();
  client = undefined;
  await server?.stop();
  server = undefined;
});

async function open(transport: 'tcp' | 'tls', idleTimeoutMs?: number): Promise<{ server: ServerSide; client: RawStreamClient }> {
  const tlsFiles = transport === 'tls' ? await testCertificate() : undefined;
  server = await ServerSide.start([transport], { idleTimeoutMs, tls: tlsFiles });
  client = await RawStreamClient.connect(transport, server.listener(transport).port);
  return { server, client };
}

describe.each(['tcp', 'tls'] as const)('%s stream flow', (transport) => {
  test('frames a message split over three writes, then two messages in one write, bodies intact', async () => {
    const { server, client } = await open(transport);
    const port = client.socket.localPort!;
    const first = request('MESSAGE', 'z9hG4bKs1', transport, port, 300);
    await client.write(first.slice(0, 10));
    await client.write(first.slice(10, 200));
    await new Promise((r) => setTimeout(r, 20));
    expect(server.inbound).toHaveLength(0);
    await client.write(first.slice(200));
    await client.write(request('OPTIONS', 'z9hG4bKs2', transport, port) + request('MESSAGE', 'z9hG4bKs3', transport, port, 5));
    await until(() => server.inbound.length === 3, 'three messages');
    const [a, b, c] = server.inbound;
    expect(a!.msg.body.toString()).toBe('x'.repeat(300));
    expect((b!.msg as SipRequest).method).toBe('OPTIONS');
    expect(c!.msg.body.toString()).toBe('xxxxx');
    expect(a!.source).toMatchObject({ transport, remoteAddress: '127.0.0.1', remotePort: port });
    expect(a!.source.flowId).toBeDefined();
    expect(new Set(server.inbound.map((m) => m.source.flowId)).size).toBe(1);
    // rport filled with the source port (RFC 3581 §4).
    expect(getHeader(a!.msg, 'via')).toContain(`rport=${port}`);
  });

  test('a response sent to the flow id comes back on the same connection', async () => {
    const { server, client } = await open(transport);
    await client.write(request('OPTIONS', 'z9hG4bKs4', transport, client.socket.localPort!));
    await until(() => server.inbound.length === 1, 'the request');
    const { msg, source } = server.inbound[0]!;
    await server.layer.send(createResponse(msg as SipRequest, 200, { toTag: 't' }), {
      transport,
      address: source.remoteAddress,
      port: source.remotePort,
      flowId: source.flowId,
    });
    await until(() => client.text().includes('\r\n\r\n'), 'the response');
    expect(client.text()).toMatch(/^SIP\/2\.0 200 OK\r\n/);
    expect(client.text()).toContain('CSeq: 1 OPTIONS\r\n');
    expect(client.text()).toContain('Content-Length: 0\r\n\r\n');
  });

  test('a double-CRLF ping gets a single CRLF pong (RFC 5626 §3.5.1), also when the ping comes in two writes', async () => {
    const { server, client } = await open(transport);
    await client.write('\r\n\r\n');
    await until(() => client.received.length >= 2, 'the pong');
    expect(client.text()).toBe('\r\n');
    await client.write('\r\n');
    await new Promise((r) => setTimeout(r, 30));
    await client.write('\r\n');
    await until(() => client.received.length >= 4, 'the second pong');
    expect(client.text()).toBe('\r\n\r\n');
    expect(server.inbound).toHaveLength(0);
    expect(client.closed).toBe(false);
  });

  test('a request without Content-Length is answered 400 on the flow, then the connection is closed', async () => {
    const { server, client } = await open(transport);
    const port = client.socket.localPort!;
    await client.write(request('OPTIONS', 'z9hG4bKs5', transport, port).replace('Content-Length: 0\r\n', ''));
    await until(() => client.text().includes('\r\n\r\n'), 'the 400');
    expect(client.text()).toMatch(/^SIP\/2\.0 400 Bad Request: missing Content-Length\r\n/);
    await until(() => client.closed, 'the close', 5000);
    expect(server.inbound).toHaveLength(0);
    await until(() => !server.layer.hasFlowTo(transport, '127.0.0.1', port), 'the flow to be forgotten');
  });

  test('a flow idle for idleTimeoutMs is closed and forgotten; traffic keeps it open', async () => {
    const { server, client } = await open(transport, 400);
    const port = client.socket.localPort!;
    await until(() => server.layer.hasFlowTo(transport, '127.0.0.1', port), 'the flow');
    for (let i = 0; i < 4; i++) {
      await new Promise((r) => setTimeout(r, 200));
      await client.write('\r\n\r\n');
    }
    expect(client.closed).toBe(false);
    const quietSince = Date.now();
    await until(() => client.closed, 'the idle close', 5000);
    expect(Date.now() - quietSince).toBeGreaterThanOrEqual(300);
    await until(() => !server.layer.hasFlowTo(transport, '127.0.0.1', port), 'the flow to be forgotten');
  });
});
