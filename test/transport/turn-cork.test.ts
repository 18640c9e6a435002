import { afterEach, describe, expect, it } from 'vitest';
import net from 'node:net';
import { CORK_FLUSH_BYTES, TurnCork } from '../../src/transport/turn-cork.js';

/** A connected pair of real loopback TCP sockets; the server side collects what it reads. */
async function pair(): Promise<{ client: net.Socket; received: () => Buffer; close: () => void }> {
  const chunks: Buffer[] = [];
  let accepted: net.Socket | undefined;
  const server = net.createServer((s) => {
    accepted = s;
    s.on('data', (c: Buffer) => chunks.push(c));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  await new Promise<void>((r, j) => client.once('connect', () => r()).once('error', j));
  return {
    client,
    received: () => Buffer.concat(chunks),
    close: () => {
      client.destroy();
      accepted?.destroy();
      server.close();
    },
  };
}

const tick = () => new Promise<void>((r) => process.nextTick(r));

async function waitForBytes(received: () => Buffer, n: number): Promise<Buffer> {
  const deadline = Date.now() + 5000;
  while (received().length < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  return received();
}

describe('TurnCork', () => {
  let close: (() => void) | undefined;
  afterEach(() => close?.());

  it('holds the writes of one turn and hands them to the socket on the next tick, in order', async () => {
    const p = await pair();
    close = p.close;
    let flushes = 0;
    const cork = new TurnCork(p.client, () => flushes++);
    const parts = ['INVITE 1\r\n', 'SIP/2.0 100 Trying\r\n', 'SIP/2.0 200 OK\r\n'].map((s) => Buffer.from(s));
    for (const b of parts) cork.write(b);
    // Corked once for the turn, nothing handed to the kernel yet.
    expect(p.client.writableCorked).toBe(1);
    expect(p.client.writableLength).toBe(parts.reduce((n, b) => n + b.length, 0));
    await tick();
    expect(p.client.writableCorked).toBe(0);
    expect(flushes).toBe(1);
    const got = await waitForBytes(p.received, 46);
    expect(got.toString('latin1')).toBe(Buffer.concat(parts).toString('latin1'));
    // The next turn corks again.
    cork.write(Buffer.from('x'));
    expect(p.client.writableCorked).toBe(1);
    await tick();
    expect(flushes).toBe(2);
  });

  it(`lets the writes go at once past ${CORK_FLUSH_BYTES} bytes in one turn`, async () => {
    const p = await pair();
    close = p.close;
    let flushes = 0;
    const cork = new TurnCork(p.client, () => flushes++);
    const big = Buffer.alloc(CORK_FLUSH_BYTES - 100, 0x61);
    cork.write(big);
    expect(p.client.writableCorked).toBe(1);
    cork.write(Buffer.alloc(200, 0x62));
    expect(p.client.writableCorked).toBe(0);
    expect(flushes).toBe(1);
    cork.write(Buffer.from('c'));
    expect(p.client.writableCorked).toBe(1);
    await tick();
    expect(p.client.writableCorked).toBe(0);
    expect(flushes).toBe(2);
    const got = await waitForBytes(p.received, CORK_FLUSH_BYTES + 101);
    expect(got.length).toBe(CORK_FLUSH_BYTES + 101);
    expect(got[CORK_FLUSH_BYTES - 101]).toBe(0x61);
    expect(got[CORK_FLUSH_BYTES - 100]).toBe(0x62);
    expect(got.at(-1)).toBe(0x63);
  });
});
