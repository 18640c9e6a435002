/**
 * Responses sent through another SIP worker (TransportLayer.relayResponsesThrough):
 * two transport layers joined by a real SocketMesh, each with its own UDP
 * listener on loopback (in a cluster both read one shared socket; here the
 * listener a datagram leaves from tells which worker sent it), and a UA that
 * keeps every datagram with its source port.
 */
import dgram from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log.js';
import { DEFAULT_LIMITS, parseMessage } from '../../src/sip/parser.js';
import { SocketMesh } from '../../src/transport/socket-mesh.js';
import { TransportLayer } from '../../src/transport/transport-layer.js';
import { until } from './harness.js';

const RESPONSE = Buffer.from(
  'SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-relay\r\nFrom: <sip:alice@example.test>;tag=a\r\n' +
    'To: <sip:alice@example.test>;tag=reg\r\nCall-ID: relay-1@127.0.0.1\r\nCSeq: 2 REGISTER\r\nContent-Length: 0\r\n\r\n',
);
const REQUEST = Buffer.from(
  'OPTIONS sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-opt\r\nFrom: <sip:alice@example.test>;tag=a\r\n' +
    'To: <sip:bob@example.test>\r\nCall-ID: relay-2@127.0.0.1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n',
);

describe('responses relayed through another worker', () => {
  let dir: string;
  let meshes: SocketMesh[] = [];
  let layers: TransportLayer[] = [];
  let ua: dgram.Socket | undefined;

  afterEach(async () => {
    ua?.close();
    ua = undefined;
    await Promise.all(layers.map((l) => l.stop()));
    await Promise.all(meshes.map((m) => m.close()));
    layers = [];
    meshes = [];
    rmSync(dir, { recursive: true, force: true });
  });

  /** Datagrams at the UA and the other worker's mesh handler, in the order they happened. */
  let events: string[] = [];

  async function start(): Promise<{ uaPort: number; got: { from: number; text: string }[]; ports: number[] }> {
    events = [];
    dir = mkdtempSync(join(tmpdir(), 'relay-'));
    meshes = [0, 1].map((self) => new SocketMesh({ dir, self, count: 2, logger: silentLogger }));
    await Promise.all(meshes.map((m) => m.start(5000)));
    layers = meshes.map((mesh) => new TransportLayer({ listen: [{ transport: 'udp', host: '127.0.0.1', port: 0 }], limits: DEFAULT_LIMITS, logger: silentLogger, mesh, udpSend: 'dgram' }));
    await Promise.all(layers.map((l) => l.start()));
    const got: { from: number; text: string }[] = [];
    ua = dgram.createSocket('udp4');
    ua.on('message', (m, rinfo) => {
      got.push({ from: rinfo.port, text: m.toString() });
      events.push(`datagram from ${rinfo.port}`);
    });
    await new Promise<void>((r) => ua!.bind(0, '127.0.0.1', () => r()));
    return { uaPort: ua.address().port, got, ports: layers.map((l) => l.listenerFor('udp')!.port) };
  }

  it('until the end of the turn, responses leave through the other worker after what was sent to it before; requests and later responses do not', async () => {
    const { uaPort, got, ports } = await start();
    const [t0, t1] = layers as [TransportLayer, TransportLayer];
    const dest = { transport: 'udp' as const, address: '127.0.0.1', port: uaPort };
    meshes[1]!.on('before', () => void events.push('before'));
    expect(t0.relayResponsesThrough(0)).toBe(false); // itself
    expect(t0.relayResponsesThrough(2)).toBe(false); // no such worker
    await Promise.resolve().then(async () => {
      expect(meshes[0]!.send(1, 'before', null)).toBe(true);
      expect(t0.relayResponsesThrough(1)).toBe(true);
      await Promise.resolve(); // a continuation of the same turn, as the registrar's after the commit
      await t0.sendWire(RESPONSE, dest, parseMessage(RESPONSE, DEFAULT_LIMITS));
      await t0.sendWire(REQUEST, dest, parseMessage(REQUEST, DEFAULT_LIMITS));
    });
    await new Promise((r) => setTimeout(r, 20));
    await t0.sendWire(RESPONSE, dest, parseMessage(RESPONSE, DEFAULT_LIMITS));
    await until(() => got.length === 3, 'three datagrams at the UA');
    const from = (text: Buffer) => got.filter((g) => g.text === text.toString()).map((g) => g.from);
    // The relayed 200 left from worker 1's listener, the request and the later 200 from worker 0's.
    expect(from(RESPONSE).sort()).toEqual([ports[0], ports[1]].sort());
    expect(from(REQUEST)).toEqual([ports[0]]);
    expect(got.find((g) => g.from === ports[1])!.text).toBe(RESPONSE.toString());
    // Worker 1 handled the message sent before the response first.
    expect(events.indexOf('before')).toBeGreaterThanOrEqual(0);
    expect(events.indexOf('before')).toBeLessThan(events.indexOf(`datagram from ${ports[1]}`));
    expect(t0.counters.relayedOut).toBe(1);
    expect(t1.counters.relayedOut).toBe(0);
  });

  it('a response the mesh cannot take (the other worker gone) leaves from this worker', async () => {
    const { uaPort, got, ports } = await start();
    const t0 = layers[0]!;
    await meshes[1]!.close();
    await until(() => !meshes[0]!.connected(1), 'the connection to worker 1 to close');
    expect(t0.relayResponsesThrough(1)).toBe(true);
    await t0.sendWire(RESPONSE, { transport: 'udp', address: '127.0.0.1', port: uaPort }, parseMessage(RESPONSE, DEFAULT_LIMITS));
    await until(() => got.length === 1, 'the response at the UA');
    expect(got[0]!.from).toBe(ports[0]);
    expect(t0.counters.relayedOut).toBe(0);
  });

  it('one worker has no one to relay through', async () => {
    const layer = new TransportLayer({ listen: [{ transport: 'udp', host: '127.0.0.1', port: 0 }], limits: DEFAULT_LIMITS, logger: silentLogger });
    dir = mkdtempSync(join(tmpdir(), 'relay-'));
    expect(layer.relayResponsesThrough(1)).toBe(false);
  });
});
