/**
 * Batched SIP sends over UDP (transport/udp-send-batch.ts, native/src/udp_send.cc):
 * the datagrams of one event-loop turn leave in sendmmsg calls and arrive
 * complete and in order at real UDP peers on loopback, over IPv4 and IPv6;
 * a destination that answers ICMP port unreachable does not stop the others;
 * `udpSend: 'dgram'` (what runs without the addon) sends them one at a time;
 * the addon's sendBatch reports a datagram the kernel refuses and sends the rest.
 */
import dgram from 'node:dgram';
import { afterEach, describe, expect, test } from 'vitest';
import { silentLogger } from '../../src/log.js';
import { DEFAULT_LIMITS } from '../../src/sip/parser.js';
import { TransportLayer } from '../../src/transport/transport-layer.js';
import { chooseUdpSend, SOCKADDR_CACHE_ENTRIES, sockaddrCacheSize, udpDescriptorOf, UDP_BATCH_DATAGRAMS, UdpSendBatch, type UdpSendAddon } from '../../src/transport/udp-send-batch.js';
import { until } from './harness.js';

let layer: TransportLayer | undefined;
const cleanups: (() => void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) c();
  await layer?.stop();
  layer = undefined;
});

async function startLayer(host: string, udpSend: 'native' | 'dgram'): Promise<TransportLayer> {
  layer = new TransportLayer({ listen: [{ transport: 'udp', host, port: 0 }], limits: DEFAULT_LIMITS, logger: silentLogger, udpSend });
  await layer.start();
  return layer;
}

/** A UDP peer that keeps every datagram it receives, as text. */
async function peer(type: 'udp4' | 'udp6', host: string): Promise<{ port: number; got: string[]; close: () => void }> {
  const sock = dgram.createSocket({ type, recvBufferSize: 1 << 20 });
  const got: string[] = [];
  sock.on('message', (m) => got.push(m.toString('latin1')));
  await new Promise<void>((r) => sock.bind(0, host, () => r()));
  const close = () => sock.close();
  cleanups.push(close);
  return { port: sock.address().port, got, close };
}

/** The n-th datagram of a run: a SIP-looking response whose CSeq numbers it. */
const datagram = (tag: string, n: number) => Buffer.from(`SIP/2.0 200 OK\r\nCall-ID: ${tag}\r\nCSeq: ${n} REGISTER\r\nContent-Length: 0\r\n\r\n`, 'latin1');

/** Sends `count` datagrams to each of `dests` in one turn, interleaved; the promises settle once all are queued. */
function sendInOneTurn(l: TransportLayer, dests: { address: string; port: number; tag: string }[], count: number): Promise<unknown> {
  const sends: Promise<unknown>[] = [];
  for (let n = 0; n < count; n++) {
    for (const d of dests) sends.push(l.sendWire(datagram(d.tag, n), { transport: 'udp', address: d.address, port: d.port }));
  }
  return Promise.all(sends);
}

const expected = (tag: string, count: number) => Array.from({ length: count }, (_, n) => datagram(tag, n).toString('latin1'));

describe('batched UDP sends (sendmmsg)', () => {
  test('100 datagrams sent in one turn arrive complete and in order, in two sendmmsg calls', async () => {
    const l = await startLayer('127.0.0.1', 'native');
    const p = await peer('udp4', '127.0.0.1');
    await sendInOneTurn(l, [{ address: '127.0.0.1', port: p.port, tag: 'a' }], 100);
    await until(() => p.got.length === 100, '100 datagrams');
    expect(p.got).toEqual(expected('a', 100));
    // 64 leave at once when the queue is full, the other 36 at the end of the turn.
    expect(UDP_BATCH_DATAGRAMS).toBe(64);
    expect(l.udpBatchStats()).toEqual({ batched: 100, calls: 2, viaDgram: 0 });
  });

  test('IPv6: datagrams to [::1] (brackets as in a Via) leave from the ::1 listener in order', async () => {
    const l = await startLayer('::1', 'native');
    const p = await peer('udp6', '::1');
    await sendInOneTurn(l, [{ address: '[::1]', port: p.port, tag: 'v6' }], 20);
    await until(() => p.got.length === 20, '20 datagrams');
    expect(p.got).toEqual(expected('v6', 20));
    expect(l.udpBatchStats()).toEqual({ batched: 20, calls: 1, viaDgram: 0 });
  });

  test('a destination that answers ICMP port unreachable does not break the batch for the others', async () => {
    const l = await startLayer('127.0.0.1', 'native');
    const a = await peer('udp4', '127.0.0.1');
    const b = await peer('udp4', '127.0.0.1');
    const gone = await peer('udp4', '127.0.0.1');
    gone.close();
    cleanups.splice(cleanups.indexOf(gone.close), 1);
    const dests = [
      { address: '127.0.0.1', port: a.port, tag: 'a' },
      { address: '127.0.0.1', port: gone.port, tag: 'gone' },
      { address: '127.0.0.1', port: b.port, tag: 'b' },
    ];
    await sendInOneTurn(l, dests, 10);
    await until(() => a.got.length === 10 && b.got.length === 10, 'both live peers');
    // A second turn after the ICMP errors came back still reaches both.
    await sendInOneTurn(l, dests, 10);
    await until(() => a.got.length === 20 && b.got.length === 20, 'both live peers, second turn');
    expect(a.got).toEqual([...expected('a', 10), ...expected('a', 10)]);
    expect(b.got).toEqual([...expected('b', 10), ...expected('b', 10)]);
    expect(l.udpBatchStats().calls).toBe(2);
  });

  test("udpSend 'dgram' (as without the addon): one dgram send per datagram, same bytes and order", async () => {
    const l = await startLayer('127.0.0.1', 'dgram');
    const p = await peer('udp4', '127.0.0.1');
    await sendInOneTurn(l, [{ address: '127.0.0.1', port: p.port, tag: 'd' }], 30);
    await until(() => p.got.length === 30, '30 datagrams');
    expect(p.got).toEqual(expected('d', 30));
    expect(l.udpBatchStats()).toEqual({ batched: 0, calls: 0, viaDgram: 0 });
  });


  test('addon sendBatch: a datagram the kernel refuses (IPv6 address on an IPv4 socket) gets its errno, the others leave', async () => {
    const chosen = chooseUdpSend('native');
    if (!('addon' in chosen)) throw new Error(chosen.reason);
    const addon: UdpSendAddon = chosen.addon;
    const p = await peer('udp4', '127.0.0.1');
    const from = dgram.createSocket('udp4');
    cleanups.push(() => from.close());
    await new Promise<void>((r) => from.bind(0, '127.0.0.1', () => r()));
    const fd = udpDescriptorOf(from)!;
    const v4 = addon.sockaddrFor('127.0.0.1')!;
    const v6 = addon.sockaddrFor('::1')!;
    expect([v4.length, v6.length, addon.sockaddrFor('sip.example.test')]).toEqual([16, 28, null]);
    const datagrams = Array.from({ length: 70 }, (_, n) => datagram('k', n));
    const sockaddrs = datagrams.map((_, n) => (n % 5 === 4 ? v6 : v4));
    const ports = new Int32Array(64).fill(p.port);
    const errors = new Int32Array(64);
    // At most 64 per call; every fifth is refused (EAFNOSUPPORT) and the batch goes on.
    expect(addon.sendBatch(fd, datagrams, sockaddrs, ports, 70, errors)).toBe(64);
    const refused = [...errors].flatMap((e, n) => (e !== 0 ? [n] : []));
    expect(refused).toEqual(Array.from({ length: 12 }, (_, k) => k * 5 + 4));
    expect(new Set(refused.map((n) => errors[n]))).toEqual(new Set([97]));
    const sent = datagrams.slice(0, 64).filter((_, n) => n % 5 !== 4).map((d) => d.toString('latin1'));
    await until(() => p.got.length === sent.length, `${sent.length} datagrams`);
    expect(p.got).toEqual(sent);
    // A descriptor that is not open stops the batch at once: the caller sends the rest itself.
    expect(addon.sendBatch(1 << 20, datagrams, sockaddrs, ports, 3, errors)).toBe(0);
    expect(() => addon.sendBatch(fd, datagrams, [Buffer.alloc(3)], ports, 1, errors)).toThrow(TypeError);
  });
});

describe('the sockaddr cache (docs/LIMITS.md)', () => {
  test('holds at most SOCKADDR_CACHE_ENTRIES destinations, emptied when full; each datagram still gets its own address', async () => {
    // An addon whose sockaddr is the address text, so what sendBatch receives shows which address each datagram got.
    let lookups = 0;
    const sent: string[] = [];
    const addon: UdpSendAddon = {
      sockaddrFor: (ip) => (lookups++, Buffer.from(ip)),
      sendBatch: (_fd, datagrams, sockaddrs, ports, count) => {
        for (let i = 0; i < count; i++) sent.push(`${sockaddrs[i]!.toString()}:${ports[i]} ${datagrams[i]!.toString()}`);
        return count;
      },
    };
    const socket = dgram.createSocket('udp4');
    cleanups.push(() => socket.close());
    const batch = new UdpSendBatch(socket, 1_000_000, addon, () => {});
    const address = (i: number) => `10.${(i >> 16) & 0xff}.${(i >> 8) & 0xff}.${i & 0xff}`;
    const n = 2 * SOCKADDR_CACHE_ENTRIES + 10;
    let most = 0;
    for (let i = 0; i < n; i++) {
      batch.send(Buffer.from(`d${i}`), 5060, address(i));
      batch.send(Buffer.from(`e${i}`), 5062, address(i)); // the same destination again: from the cache
      most = Math.max(most, sockaddrCacheSize());
    }
    batch.flush();
    expect(most).toBe(SOCKADDR_CACHE_ENTRIES);
    expect(sockaddrCacheSize()).toBeLessThanOrEqual(SOCKADDR_CACHE_ENTRIES);
    expect(lookups).toBe(n);
    expect(sent.length).toBe(2 * n);
    for (const i of [0, SOCKADDR_CACHE_ENTRIES - 1, SOCKADDR_CACHE_ENTRIES, n - 1]) {
      expect(sent[2 * i]).toBe(`${address(i)}:5060 d${i}`);
      expect(sent[2 * i + 1]).toBe(`${address(i)}:5062 e${i}`);
    }
  });
});
