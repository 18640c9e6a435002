import { createHash, randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log.js';
import { decodeChannelData, encodeChannelData } from '../../src/turn/channel-data.js';
import { TurnServer, type TurnServerOptions } from '../../src/turn/index.js';
import { decodeErrorCode, decodeText, decodeXorAddress, encodeChannelNumber, encodeRequestedTransport, encodeXorAddress } from '../../src/stun/stun-attributes.js';
import { AttributeType as A, decodeStunMessage, encodeStunMessage, getAttribute, type StunAttribute, type StunMessage, StunMethod } from '../../src/stun/stun-message.js';

const REALM = 'rtcedge.test';
const KEY = createHash('md5').update(`alice:${REALM}:alicepw`).digest();

function options(over: Partial<TurnServerOptions> = {}): TurnServerOptions {
  return {
    realm: REALM,
    listen: [
      { transport: 'udp', host: '127.0.0.1', port: 0 },
      { transport: 'tcp', host: '127.0.0.1', port: 0 },
    ],
    relayAddress: '127.0.0.1',
    relayPortMin: 34850,
    relayPortMax: 34859,
    defaultLifetimeS: 600,
    maxLifetimeS: 3600,
    nonceTtlS: 600,
    nonceSecret: Buffer.from('k'),
    allowLoopbackPeers: true,
    getKey: async (u) => (u === 'alice' ? KEY : undefined),
    logger: silentLogger,
    ...over,
  };
}

const started: TurnServer[] = [];
const sockets: dgram.Socket[] = [];
afterEach(async () => {
  for (const s of started.splice(0)) await s.stop();
  for (const s of sockets.splice(0)) s.close();
});

async function udpSocket(): Promise<dgram.Socket> {
  const s = dgram.createSocket('udp4');
  sockets.push(s);
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  return s;
}

function nextMessage(s: dgram.Socket, timeoutMs = 2000): Promise<{ data: Buffer; port: number }> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('timeout waiting for datagram')), timeoutMs);
    s.once('message', (data, rinfo) => {
      clearTimeout(t);
      resolve({ data, port: rinfo.port });
    });
  });
}

async function transact(s: dgram.Socket, port: number, req: Buffer): Promise<StunMessage> {
  const p = nextMessage(s);
  s.send(req, port, '127.0.0.1');
  return decodeStunMessage((await p).data);
}

function req(method: number, attrs: StunAttribute[], nonce?: string, tid = randomBytes(12)): Buffer {
  const a = [...attrs];
  if (nonce) a.push({ type: A.Username, value: Buffer.from('alice') }, { type: A.Realm, value: Buffer.from(REALM) }, { type: A.Nonce, value: Buffer.from(nonce) });
  return encodeStunMessage({ method, class: 'request', transactionId: tid, attributes: a }, { integrityKey: nonce ? KEY : undefined, fingerprint: true });
}

describe.each(['native', 'typescript'] as const)('TurnServer on loopback (%s data plane)', (dataPlane) => {
  it('binds port 0 listeners and answers Binding over UDP and TCP', async () => {
    const server = new TurnServer(options({ dataPlane }));
    started.push(server);
    await server.start();
    const addrs = server.addresses();
    expect(addrs.map((a) => [a.transport, a.address])).toEqual([['udp', '127.0.0.1'], ['tcp', '127.0.0.1']]);
    expect(addrs.every((a) => a.port > 0)).toBe(true);
    const c = await udpSocket();
    const m = await transact(c, addrs[0]!.port, req(StunMethod.Binding, []));
    expect(decodeXorAddress(getAttribute(m, A.XorMappedAddress)!.value, m.transactionId)).toEqual({ family: 'IPv4', address: '127.0.0.1', port: c.address().port });

    const conn = net.connect(addrs[1]!.port, '127.0.0.1');
    const got = new Promise<Buffer>((resolve) => conn.once('data', (d: Buffer) => resolve(d)));
    const b = req(StunMethod.Binding, []);
    conn.write(b.subarray(0, 7));
    setTimeout(() => conn.write(b.subarray(7)), 20);
    const tm = decodeStunMessage(await got);
    expect(tm.class).toBe('success');
    expect(decodeXorAddress(getAttribute(tm, A.XorMappedAddress)!.value, tm.transactionId).port).toBe(conn.localPort);
    conn.destroy();
  });

  it('rejects start() with a clear error when the port is taken', async () => {
    const holder = await udpSocket();
    const server = new TurnServer(options({ dataPlane, listen: [{ transport: 'udp', host: '127.0.0.1', port: holder.address().port }] }));
    await expect(server.start()).rejects.toThrow(/udp listener 127\.0\.0\.1:\d+ cannot bind: .*EADDRINUSE/);
  });

  it('allocates over UDP and relays ChannelData to a peer and back; stop frees the relay port', async () => {
    const server = new TurnServer(options({ dataPlane }));
    started.push(server);
    await server.start();
    const port = server.addresses()[0]!.port;
    const client = await udpSocket();
    const peer = await udpSocket();
    const challenge = await transact(client, port, req(StunMethod.Allocate, [{ type: A.RequestedTransport, value: encodeRequestedTransport(17) }]));
    expect(decodeErrorCode(getAttribute(challenge, A.ErrorCode)!.value).code).toBe(401);
    const nonce = decodeText(getAttribute(challenge, A.Nonce)!.value);
    const ok = await transact(client, port, req(StunMethod.Allocate, [{ type: A.RequestedTransport, value: encodeRequestedTransport(17) }, { type: A.EvenPort, value: Buffer.from([0]) }], nonce));
    expect(ok.class).toBe('success');
    const relayed = decodeXorAddress(getAttribute(ok, A.XorRelayedAddress)!.value, ok.transactionId);
    expect(relayed.address).toBe('127.0.0.1');
    expect(relayed.port % 2).toBe(0);
    expect(relayed.port).toBeGreaterThanOrEqual(34850);
    expect(relayed.port).toBeLessThanOrEqual(34859);

    const tid = randomBytes(12);
    const peerAddr = { family: 'IPv4' as const, address: '127.0.0.1', port: peer.address().port };
    const bound = await transact(client, port, req(StunMethod.ChannelBind, [{ type: A.ChannelNumber, value: encodeChannelNumber(0x4001) }, { type: A.XorPeerAddress, value: encodeXorAddress(peerAddr, tid) }], nonce, tid));
    expect(bound.class).toBe('success');

    const atPeer = nextMessage(peer);
    client.send(encodeChannelData(0x4001, Buffer.from('ping')), port, '127.0.0.1');
    const p = await atPeer;
    expect(p.data.toString()).toBe('ping');
    expect(p.port).toBe(relayed.port);

    const atClient = nextMessage(client);
    peer.send(Buffer.from('pong'), relayed.port, '127.0.0.1');
    const back = decodeChannelData((await atClient).data);
    expect([back.channel, back.data.toString()]).toEqual([0x4001, 'pong']);
    expect(server.stats()).toMatchObject({
      allocations: 1, permissions: 1, channels: 1, packetsRelayed: 2, bytesRelayed: 8, toPeerPackets: 1, toPeerBytes: 4, toClientPackets: 1, toClientBytes: 4, dataPlane,
    });
    if (dataPlane === 'native') {
      // Binding-free exchange: Allocate twice and ChannelBind went up to the control plane; ping and pong never did.
      expect(server.stats().native).toMatchObject({
        toControlPackets: 3, fromControlPackets: 3, toPeerPackets: 1, toPeerBytes: 4, toClientPackets: 1, toClientBytes: 4,
        dropNoAllocation: 0, dropNoPermission: 0, dropNoChannel: 0, dropMalformed: 0, dropSendFailed: 0,
      });
    } else expect(server.stats().native).toBeUndefined();

    await server.stop();
    expect(server.stats().allocations).toBe(0);
    const again = dgram.createSocket('udp4');
    sockets.push(again);
    await new Promise<void>((resolve, reject) => {
      again.once('error', reject);
      again.bind(relayed.port, '127.0.0.1', () => resolve());
    });
  });
});
