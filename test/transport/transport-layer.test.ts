/**
 * The transport layer on real loopback sockets (RFC 3261 §18): Via stamping
 * of UDP requests (§18.2.1, RFC 3581 §4), the 400 for a malformed request,
 * and outbound connections opened once and reused for the next message.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import { afterEach, describe, expect, test } from 'vitest';
import { getHeader, type SipRequest } from '../../src/sip/message.js';
import { parseMessage } from '../../src/sip/parser.js';
import { request, ServerSide, until } from './harness.js';

let server: ServerSide | undefined;
const cleanups: (() => void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) c();
  await server?.stop();
  server = undefined;
});

async function udpClient(): Promise<{ sock: dgram.Socket; answers: Buffer[] }> {
  const sock = dgram.createSocket('udp4');
  cleanups.push(() => sock.close());
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  const answers: Buffer[] = [];
  sock.on('message', (m) => answers.push(m));
  return { sock, answers };
}

describe('transport layer', () => {
  test('UDP: a request whose Via names another host gets received=, and rport= the source port', async () => {
    server = await ServerSide.start(['udp']);
    const { sock } = await udpClient();
    const text = request('OPTIONS', 'z9hG4bKt1', 'udp', 5099).replace('Via: SIP/2.0/UDP 127.0.0.1:5099', 'Via: SIP/2.0/UDP phone.example.test:5099');
    sock.send(text, server.listener('udp').port, '127.0.0.1');
    await until(() => server!.inbound.length === 1, 'the request');
    const via = getHeader(server.inbound[0]!.msg, 'via')!;
    expect(via).toContain('received=127.0.0.1');
    expect(via).toContain(`rport=${sock.address().port}`);
  });

  test('UDP: a malformed request is answered 400 with the problem as reason phrase and not handed up', async () => {
    server = await ServerSide.start(['udp']);
    const { sock, answers } = await udpClient();
    const text = request('OPTIONS', 'z9hG4bKt2', 'udp', sock.address().port).replace('Max-Forwards: 70', 'Max-Forwards: lots');
    sock.send(text, server.listener('udp').port, '127.0.0.1');
    await until(() => answers.length === 1, 'the 400');
    expect(answers[0]!.toString('latin1')).toMatch(/^SIP\/2\.0 400 Bad Request[^\r]*\r\n/);
    expect(getHeader(parseMessage(answers[0]!), 'cseq')).toBe('1 OPTIONS');
    expect(server.inbound).toHaveLength(0);
  });

  test('TCP out: the first send opens a connection, the next one reuses it (one flow per remote end)', async () => {
    server = await ServerSide.start(['udp', 'tcp']);
    const peer = net.createServer();
    const accepted: net.Socket[] = [];
    let bytes = '';
    peer.on('connection', (s) => {
      accepted.push(s);
      s.on('data', (d) => (bytes += d.toString('latin1')));
    });
    await new Promise<void>((r) => peer.listen(0, '127.0.0.1', () => r()));
    cleanups.push(() => {
      for (const s of accepted) s.destroy();
      peer.close();
    });
    const port = (peer.address() as net.AddressInfo).port;
    const req = parseMessage(Buffer.from(request('OPTIONS', 'z9hG4bKt3', 'tcp', 5060))) as SipRequest;
    const flow1 = await server.layer.send(req, { transport: 'tcp', address: '127.0.0.1', port });
    const flow2 = await server.layer.send(req, { transport: 'tcp', address: '127.0.0.1', port });
    await until(() => (bytes.match(/OPTIONS sip:/g) ?? []).length === 2, 'two requests on the wire');
    expect(flow1).toBeDefined();
    expect(flow2).toBe(flow1);
    expect(accepted).toHaveLength(1);
    expect(server.layer.hasFlowTo('tcp', '127.0.0.1', port)).toBe(true);
  });

  test('TCP out: a refused connection rejects with a TransportError carrying 503', async () => {
    server = await ServerSide.start(['udp', 'tcp']);
    const closed = net.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', () => r()));
    const port = (closed.address() as net.AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const req = parseMessage(Buffer.from(request('OPTIONS', 'z9hG4bKt4', 'tcp', 5060))) as SipRequest;
    await expect(server.layer.send(req, { transport: 'tcp', address: '127.0.0.1', port })).rejects.toMatchObject({ status: 503 });
  });
});
