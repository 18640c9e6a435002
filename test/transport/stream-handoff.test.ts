/**
 * Messages of one TCP connection processed by the worker owning their Call-ID
 * (docs/ARCHITECTURE.md, "Workers"): two transport layers joined by a real
 * socket mesh, a raw client on the first one's listener. The connection's
 * layer frames the stream (RFC 3261 §18.3), hands what the other owns over
 * the mesh (`sip.in`), and writes the owner's answers (`flow.write`) on the
 * connection. Asserted on the bytes the client reads.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { silentLogger } from '../../src/log.js';
import { getHeader, type SipRequest } from '../../src/sip/message.js';
import { DEFAULT_LIMITS } from '../../src/sip/parser.js';
import { createResponse } from '../../src/sip/response.js';
import { callIdOwner } from '../../src/transport/call-id-owner.js';
import { SocketMesh } from '../../src/transport/socket-mesh.js';
import { TransportLayer } from '../../src/transport/transport-layer.js';
import type { Inbound } from '../../src/transport/types.js';
import { RawStreamClient, until } from './harness.js';

interface Worker {
  layer: TransportLayer;
  mesh: SocketMesh;
  /** Call-IDs of the requests this worker processed, in order. */
  handled: string[];
  /** Call-IDs whose answer is held until released. */
  hold: Map<string, () => void>;
}

let workers: Worker[] = [];
let dir = '';
const clients: RawStreamClient[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  for (const w of workers) await w.layer.stop();
  await Promise.all(workers.map((w) => w.mesh.close()));
  workers = [];
  rmSync(dir, { recursive: true, force: true });
});

/** Two workers; worker 0 listens on TCP (the client's connection lands there), worker 1 on UDP only. */
async function start(): Promise<Worker[]> {
  dir = mkdtempSync(join(tmpdir(), 'handoff-'));
  const meshes = [0, 1].map((self) => new SocketMesh({ dir, self, count: 2, logger: silentLogger }));
  await Promise.all(meshes.map((m) => m.start(5000)));
  workers = meshes.map((mesh, self) => {
    const layer = new TransportLayer({
      listen: [{ transport: self === 0 ? 'tcp' : 'udp', host: '127.0.0.1', port: 0 }],
      limits: DEFAULT_LIMITS,
      logger: silentLogger,
      mesh,
    });
    const w: Worker = { layer, mesh, handled: [], hold: new Map() };
    layer.onMessage = ({ msg, source }: Inbound) => {
      if (msg.kind !== 'request') return;
      const callId = getHeader(msg, 'call-id')!;
      w.handled.push(callId);
      const answer = (): void =>
        void layer
          .send(createResponse(msg as SipRequest, 200, { reason: `OK from ${self}` }), { transport: source.transport, address: source.remoteAddress, port: source.remotePort, flowId: source.flowId })
          .catch(() => {});
      if (callId.startsWith('hold-')) w.hold.set(callId, answer);
      else answer();
    };
    return w;
  });
  await Promise.all(workers.map((w) => w.layer.start()));
  // Each worker has learned the other's flows once it connected (flow.open); no flow is open yet.
  await until(() => meshes.every((m) => m.connected(1 - m.self)), 'the mesh');
  return workers;
}

/** A Call-ID that worker `owner` of two owns, made from `tag`. */
function callIdOwnedBy(owner: number, tag: string): string {
  for (let i = 0; ; i++) if (callIdOwner(`${tag}-${i}@client`, 2) === owner) return `${tag}-${i}@client`;
}

function options(callId: string, body = ''): string {
  return [
    'OPTIONS sip:bob@example.test SIP/2.0',
    `Via: SIP/2.0/TCP 127.0.0.1:5099;branch=z9hG4bK${callId.replace(/\W/g, '')};rport`,
    'Max-Forwards: 70',
    'From: <sip:alice@example.test>;tag=a1',
    'To: <sip:bob@example.test>',
    `Call-ID: ${callId}`,
    'CSeq: 1 OPTIONS',
    ...(body ? ['Content-Type: text/plain'] : []),
    `Content-Length: ${Buffer.byteLength(body)}`,
    '',
    body,
  ].join('\r\n');
}

/** The 200s the client read: Call-ID → the reason phrase (which worker answered), each counted. */
function answers(c: RawStreamClient): { byCallId: Map<string, string>; count: number } {
  const byCallId = new Map<string, string>();
  let count = 0;
  for (const m of c.text().matchAll(/SIP\/2\.0 200 ([^\r]*)\r\n[\s\S]*?Call-ID: ([^\r]*)\r\n/g)) {
    byCallId.set(m[2]!, m[1]!);
    count++;
  }
  return { byCallId, count };
}

describe('a TCP connection served by two workers', () => {
  test("several messages in one read, one split across reads, one with a body: each processed by its Call-ID's owner and answered once on the connection", async () => {
    const [w0, w1] = await start();
    const client = await RawStreamClient.connect('tcp', w0!.layer.listenerFor('tcp')!.port);
    clients.push(client);
    const ids = [callIdOwnedBy(0, 'a'), callIdOwnedBy(1, 'b'), callIdOwnedBy(1, 'c'), callIdOwnedBy(0, 'd')];
    // Three messages in one write.
    await client.write(options(ids[0]!) + options(ids[1]!) + options(ids[2]!));
    // One split inside its header section, then inside its body.
    const split = options(ids[3]!, 'x'.repeat(3000));
    const bodyAt = split.indexOf('\r\n\r\n') + 4;
    await client.write(split.slice(0, 40));
    await new Promise((r) => setTimeout(r, 20));
    await client.write(split.slice(40, bodyAt + 1000));
    await new Promise((r) => setTimeout(r, 20));
    // The rest, and a message of the other worker whose body is near the message size limit, in one write.
    const large = callIdOwnedBy(1, 'large');
    const largeText = options(large, 'y'.repeat(DEFAULT_LIMITS.maxMessageBytes - 600));
    expect(Buffer.byteLength(largeText)).toBeLessThanOrEqual(DEFAULT_LIMITS.maxMessageBytes);
    await client.write(split.slice(bodyAt + 1000) + largeText);
    await until(() => answers(client).count === 5, 'five answers');
    const got = answers(client).byCallId;
    expect(got.get(ids[0]!)).toBe('OK from 0');
    expect(got.get(ids[1]!)).toBe('OK from 1');
    expect(got.get(ids[2]!)).toBe('OK from 1');
    expect(got.get(ids[3]!)).toBe('OK from 0');
    expect(got.get(large)).toBe('OK from 1');
    expect(w0!.handled.sort()).toEqual([ids[0]!, ids[3]!].sort());
    expect(w1!.handled.sort()).toEqual([ids[1]!, ids[2]!, large].sort());
    expect(w0!.layer.counters.handedOff).toBe(3);
    expect(w1!.layer.counters.handedIn).toBe(3);
    // Nothing answered twice, nothing left over.
    await new Promise((r) => setTimeout(r, 50));
    expect(answers(client).count).toBe(5);
  });

  test('a connection closed while its message is at the other worker: the late answer is dropped, and the next connection is served', async () => {
    const [w0, w1] = await start();
    const port = w0!.layer.listenerFor('tcp')!.port;
    const first = await RawStreamClient.connect('tcp', port);
    clients.push(first);
    const held = callIdOwnedBy(1, 'hold');
    await first.write(options(held));
    await until(() => w1!.hold.has(held), 'the hand-off');
    const clientPort = first.socket.localPort!;
    first.close();
    // Answered at once: the answer meets a flow closing (flow.write to worker 0, which finds it closed or gone)
    // or, once worker 1 has heard of the close, no flow at all (a connection to the client's port, refused).
    w1!.hold.get(held)!();
    await until(() => !w0!.layer.hasFlowTo('tcp', '127.0.0.1', clientPort) && !w1!.layer.hasFlowTo('tcp', '127.0.0.1', clientPort), 'the flow closed on both workers');
    await new Promise((r) => setTimeout(r, 50));
    expect(first.received.length).toBe(0);
    const second = await RawStreamClient.connect('tcp', port);
    clients.push(second);
    const next = callIdOwnedBy(1, 'next');
    await second.write(options(next));
    await until(() => answers(second).count === 1, 'the answer on the new connection');
    expect(answers(second).byCallId.get(next)).toBe('OK from 1');
  });
});
