/**
 * The TURN data-plane addon driven from JavaScript on loopback: hand-up of
 * STUN requests, ChannelData and Send indications to the peer, ChannelData
 * and Data indications to the client, every drop reason, socket close and
 * fd/thread accounting.
 */
import { readdirSync } from 'node:fs';
import dgram from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { loadNativeAddon, type NativeAddon, type NativeDataPlane } from '../../src/turn/native-addon.js';
import { encodeXorAddress, decodeXorAddress } from '../../src/stun/stun-attributes.js';
import { AttributeType as A, decodeStunMessage, encodeStunMessage, getAttribute, StunMethod } from '../../src/stun/stun-message.js';

const RELAY_PORT = 31900;
const loaded = loadNativeAddon();

function addon(): NativeAddon {
  if ('error' in loaded) throw new Error(`native addon missing: ${loaded.error}`);
  return loaded.addon;
}

const planes: NativeDataPlane[] = [];
const sockets: dgram.Socket[] = [];
afterEach(() => {
  for (const p of planes.splice(0)) p.close();
  for (const s of sockets.splice(0)) s.close();
});

async function udp(): Promise<dgram.Socket> {
  const s = dgram.createSocket('udp4');
  sockets.push(s);
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  return s;
}

function next(s: dgram.Socket, timeoutMs = 2000): Promise<{ data: Buffer; port: number }> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('timeout waiting for datagram')), timeoutMs);
    s.once('message', (data, rinfo) => {
      clearTimeout(t);
      resolve({ data, port: rinfo.port });
    });
  });
}

async function until(cond: () => boolean, timeoutMs = 2000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
  if (!cond()) throw new Error('condition not met in time');
}

function channelData(ch: number, data: Buffer): Buffer {
  const b = Buffer.alloc(4 + data.length);
  b.writeUInt16BE(ch, 0);
  b.writeUInt16BE(data.length, 2);
  data.copy(b, 4);
  return b;
}

function sendIndication(peerPort: number, data: Buffer, fingerprint: boolean): Buffer {
  const transactionId = Buffer.from('0102030405060708090a0b0c', 'hex');
  return encodeStunMessage(
    {
      method: StunMethod.Send,
      class: 'indication',
      transactionId,
      attributes: [
        { type: A.XorPeerAddress, value: encodeXorAddress({ family: 'IPv4', address: '127.0.0.1', port: peerPort }, transactionId) },
        { type: A.Data, value: data },
      ],
    },
    { fingerprint },
  );
}

function count(dir: string): number {
  return readdirSync(dir).length;
}

describe('native data plane addon', () => {
  it('loads', () => {
    expect(loaded).toHaveProperty('addon');
  });

  it('forwards ChannelData and Send indications, builds ChannelData and Data indications, counts every drop', async () => {
    const handed: Array<{ kind: number; sock: number; address: string; port: number; data: Buffer }> = [];
    const dp = new (addon().DataPlane)((kind, sock, address, port, data) => handed.push({ kind, sock, address, port, data }));
    planes.push(dp);
    const l = dp.listen('127.0.0.1', 0);
    expect(l.port).toBeGreaterThan(0);
    const relay = dp.openRelay('127.0.0.1', RELAY_PORT);
    expect(relay).toBeGreaterThan(0);
    expect(dp.openRelay('127.0.0.1', RELAY_PORT)).toBe(-1);
    const client = await udp();
    const peer = await udp();
    const cport = client.address().port;
    const pport = peer.address().port;

    // A STUN request goes up with its exact bytes; the reply goes out through the listener.
    const binding = Buffer.from('000100002112a442aabbccddeeff001122334455', 'hex');
    client.send(binding, l.port, '127.0.0.1');
    await until(() => handed.length === 1);
    expect(handed[0]).toMatchObject({ kind: 0, sock: l.id, address: '127.0.0.1', port: cport });
    expect(handed[0]!.data.equals(binding)).toBe(true);
    const reply = next(client);
    expect(dp.sendTo(l.id, '127.0.0.1', cport, Buffer.from('reply'))).toBe(true);
    expect((await reply).data.toString()).toBe('reply');

    // No allocation yet, then no channel, then no permission.
    client.send(channelData(0x4001, Buffer.from('x')), l.port, '127.0.0.1');
    await until(() => dp.stats().dropNoAllocation === 1);
    const far = Date.now() + 60_000;
    expect(dp.attach(relay, l.id, '127.0.0.1', cport, far)).toBe(true);
    client.send(channelData(0x4001, Buffer.from('x')), l.port, '127.0.0.1');
    await until(() => dp.stats().dropNoChannel === 1);
    expect(dp.setChannel(relay, 0x4001, '127.0.0.1', pport, far)).toBe(true);
    client.send(channelData(0x4001, Buffer.from('x')), l.port, '127.0.0.1');
    await until(() => dp.stats().dropNoPermission === 1);
    expect(dp.setPermission(relay, '127.0.0.1', far)).toBe(true);

    // ChannelData to the peer: the payload alone, from the relay port.
    let at = next(peer);
    client.send(channelData(0x4001, Buffer.from('ping')), l.port, '127.0.0.1');
    let got = await at;
    expect([got.data.toString(), got.port]).toEqual(['ping', RELAY_PORT]);

    // Peer to client on the bound channel: ChannelData 0x4001, length 4.
    let atc = next(client);
    peer.send(Buffer.from('pong'), RELAY_PORT, '127.0.0.1');
    let back = await atc;
    expect(back.data.toString('hex')).toBe(`40010004${Buffer.from('pong').toString('hex')}`);
    expect(back.port).toBe(l.port);

    // Send indication with FINGERPRINT to the peer; a broken FINGERPRINT is dropped.
    at = next(peer);
    client.send(sendIndication(pport, Buffer.from('via send'), true), l.port, '127.0.0.1');
    got = await at;
    expect(got.data.toString()).toBe('via send');
    const bad = sendIndication(pport, Buffer.from('bad'), true);
    bad[bad.length - 1]! ^= 0xff;
    client.send(bad, l.port, '127.0.0.1');
    await until(() => dp.stats().dropBadFingerprint === 1);
    const truncated = sendIndication(pport, Buffer.from('short'), false).subarray(0, 30);
    client.send(truncated, l.port, '127.0.0.1');
    await until(() => dp.stats().dropMalformed === 1);

    // Channel gone: a Data indication with XOR-PEER-ADDRESS and DATA (5 bytes, padded).
    expect(dp.setChannel(relay, 0x4001, '127.0.0.1', pport, 0)).toBe(true);
    atc = next(client);
    peer.send(Buffer.from('pong2'), RELAY_PORT, '127.0.0.1');
    back = await atc;
    expect(back.data.length).toBe(20 + 12 + 4 + 8);
    const ind = decodeStunMessage(back.data);
    expect([ind.method, ind.class]).toEqual([StunMethod.Data, 'indication']);
    expect(decodeXorAddress(getAttribute(ind, A.XorPeerAddress)!.value, ind.transactionId)).toEqual({ family: 'IPv4', address: '127.0.0.1', port: pport });
    expect(getAttribute(ind, A.Data)!.value.toString()).toBe('pong2');

    // Expired permission: dropped; expired allocation: dropped.
    dp.setPermission(relay, '127.0.0.1', Date.now() - 1);
    peer.send(Buffer.from('late'), RELAY_PORT, '127.0.0.1');
    await until(() => dp.stats().dropNoPermission === 2);
    dp.setPermission(relay, '127.0.0.1', far);
    dp.setExpiry(relay, Date.now() - 1);
    client.send(sendIndication(pport, Buffer.from('gone'), false), l.port, '127.0.0.1');
    await until(() => dp.stats().dropNoAllocation === 2);

    expect(dp.stats()).toEqual({
      fromClientPackets: 9,
      fromClientBytes: expect.any(Number),
      toPeerPackets: 2,
      toPeerBytes: 4 + 8,
      fromPeerPackets: 3,
      fromPeerBytes: 4 + 5 + 4,
      toClientPackets: 2,
      toClientBytes: 4 + 5,
      toControlPackets: 1,
      toControlBytes: 20,
      fromControlPackets: 1,
      fromControlBytes: 5,
      dropNoAllocation: 2,
      dropNoPermission: 2,
      dropNoChannel: 1,
      dropMalformed: 1,
      dropBadFingerprint: 1,
      dropTooBig: 0,
      dropQueueFull: 0,
      dropSendFailed: 0,
      sockets: 2,
    });
    expect(handed).toHaveLength(1);
  });

  it('hands peer data of an unattached relay up, and frees a closed relay port', async () => {
    const handed: Array<{ kind: number; sock: number; port: number; data: string }> = [];
    const dp = new (addon().DataPlane)((kind, sock, _address, port, data) => handed.push({ kind, sock, port, data: data.toString() }));
    planes.push(dp);
    const relay = dp.openRelay('127.0.0.1', RELAY_PORT + 1);
    const peer = await udp();
    peer.send(Buffer.from('up'), RELAY_PORT + 1, '127.0.0.1');
    await until(() => handed.length === 1);
    expect(handed[0]).toEqual({ kind: 1, sock: relay, port: peer.address().port, data: 'up' });
    expect(dp.closeSocket(relay)).toBe(true);
    expect(dp.closeSocket(relay)).toBe(false);
    let id = -1;
    await until(() => id > 0 || (id = dp.openRelay('127.0.0.1', RELAY_PORT + 1)) > 0);
    expect(id).toBeGreaterThan(relay);
    expect(() => dp.listen('127.0.0.1', RELAY_PORT + 1)).toThrow(/EADDRINUSE/);
    expect(() => dp.setChannel(id, 0x3fff, '127.0.0.1', 1, 1)).toThrow(/channel number out of range/);
  });

  it('leaves no file descriptor or thread behind after close', async () => {
    const A2 = addon();
    // Warm up whatever Node creates lazily (dgram, the thread pool) before counting.
    await udp();
    const fds0 = count('/proc/self/fd');
    const threads0 = count('/proc/self/task');
    for (let round = 0; round < 3; round++) {
      const dp = new A2.DataPlane(() => undefined);
      dp.listen('127.0.0.1', 0);
      dp.listen('::1', 0);
      for (let i = 0; i < 5; i++) expect(dp.openRelay('127.0.0.1', RELAY_PORT + 10 + i)).toBeGreaterThan(0);
      expect(count('/proc/self/task')).toBe(threads0 + 1);
      expect(count('/proc/self/fd')).toBe(fds0 + 2 + 7); // epoll + eventfd + sockets
      dp.close();
      dp.close();
      expect(count('/proc/self/fd')).toBe(fds0);
      expect(count('/proc/self/task')).toBe(threads0);
      expect(() => dp.listen('127.0.0.1', 0)).toThrow(/closed/);
    }
  });
});
