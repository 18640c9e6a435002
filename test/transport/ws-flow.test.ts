/**
 * SIP over WebSocket on real loopback sockets, WS and WSS (RFC 7118): the
 * "sip" subprotocol is required (§4.1), each frame carries one whole message
 * (§5) and answers go back as one frame on the same connection, idle
 * connections are closed.
 */
import { afterEach, describe, expect, test } from 'vitest';
import WebSocket from 'ws';
import type { SipRequest } from '../../src/sip/message.js';
import { createResponse } from '../../src/sip/response.js';
import { request, ServerSide, testCertificate, until } from './harness.js';

let server: ServerSide | undefined;
let ws: WebSocket | undefined;
afterEach(async () => {
  ws?.terminate();
  ws = undefined;
  await server?.stop();
  server = undefined;
});

async function open(transport: 'ws' | 'wss', idleTimeoutMs?: number, protocol: string | undefined = 'sip') {
  server = await ServerSide.start([transport], { idleTimeoutMs, tls: transport === 'wss' ? await testCertificate() : undefined });
  const scheme = transport === 'wss' ? 'wss' : 'ws';
  const client = new WebSocket(`${scheme}://127.0.0.1:${server.listener(transport).port}`, protocol ? [protocol] : [], { rejectUnauthorized: false });
  ws = client;
  const frames: string[] = [];
  client.on('message', (d) => frames.push(d.toString()));
  const opened = await new Promise<boolean>((resolve) => {
    client.once('open', () => resolve(true));
    client.once('unexpected-response', () => resolve(false));
    client.once('error', () => resolve(false));
  });
  return { server, client, frames, opened };
}

describe.each(['ws', 'wss'] as const)('%s flow', (transport) => {
  test('one frame is one message; the answer comes back as one frame on the same connection', async () => {
    const { server, client, frames, opened } = await open(transport);
    expect(opened).toBe(true);
    expect(client.protocol).toBe('sip');
    client.send(request('MESSAGE', 'z9hG4bKw1', transport, 0, 100));
    client.send(request('OPTIONS', 'z9hG4bKw2', transport, 0));
    await until(() => server.inbound.length === 2, 'two messages');
    const [m1, m2] = server.inbound;
    expect(m1!.msg.body.toString()).toBe('x'.repeat(100));
    expect((m2!.msg as SipRequest).method).toBe('OPTIONS');
    expect(m1!.source.transport).toBe(transport);
    expect(m1!.source.flowId).toBe(m2!.source.flowId);

    const src = m2!.source;
    await server.layer.send(createResponse(m2!.msg as SipRequest, 200, { toTag: 't' }), {
      transport,
      address: src.remoteAddress,
      port: src.remotePort,
      flowId: src.flowId,
    });
    await until(() => frames.length === 1, 'the answer frame');
    expect(frames[0]).toMatch(/^SIP\/2\.0 200 OK\r\n/);
    expect(frames[0]).toMatch(/Content-Length: 0\r\n\r\n$/);
  });

  test('a handshake without the "sip" subprotocol is refused (RFC 7118 §4.1)', async () => {
    const { server, opened } = await open(transport, undefined, 'chat');
    expect(opened).toBe(false);
    expect(server.inbound).toHaveLength(0);
  });

  test('an idle connection is closed after idleTimeoutMs', async () => {
    const { client, opened } = await open(transport, 300);
    expect(opened).toBe(true);
    let closed = false;
    client.on('close', () => {
      closed = true;
    });
    await until(() => closed, 'the idle close', 5000);
  });
});
