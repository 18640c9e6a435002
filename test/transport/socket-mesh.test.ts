import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { connect } from 'node:net';
import { decodeFrame, encodeFrame, FrameReader, MESH_MAX_FRAME_BYTES, MESH_MAX_PENDING_REQUESTS, meshSocketPath, SocketMesh } from '../../src/transport/socket-mesh.js';

const logger = pino({ level: 'silent' });

describe('mesh framing', () => {
  it('splits frames at any chunk boundary, keeps the rest, and joins a frame cut inside its length', () => {
    const a = encodeFrame([1, 'x', 0, { n: 1 }]);
    const b = encodeFrame([1, 'y', 0, Buffer.from('bytes')]);
    const all = Buffer.concat([a, b]);
    for (let cut = 0; cut <= all.length; cut++) {
      const r = new FrameReader(1024);
      const frames = [...r.push(all.subarray(0, cut)), ...r.push(all.subarray(cut))];
      expect(frames.map((f) => f.length)).toEqual([a.length - 4, b.length - 4]);
    }
  });

  it('carries JSON, a Buffer, and a payload whose data is a Buffer (as bytes after the JSON of the rest)', () => {
    const body = (f: Buffer) => f.subarray(4);
    const sip = { data: Buffer.from('OPTIONS sip:x SIP/2.0\r\n\r\n'), source: { transport: 'udp', remotePort: 5060, tlsIdentities: ['sip:a@b'] } };
    expect(decodeFrame(body(encodeFrame([1, 'sip.in', 0, sip])))).toEqual([1, 'sip.in', 0, sip]);
    expect(decodeFrame(body(encodeFrame([2, 'ch', 7, Buffer.from([0, 1, 255])])))).toEqual([2, 'ch', 7, Buffer.from([0, 1, 255])]);
    expect(decodeFrame(body(encodeFrame([3, 'ché', 2 ** 32 - 1, ['a', 1, null]])))).toEqual([3, 'ché', 2 ** 32 - 1, ['a', 1, null]]);
    expect(decodeFrame(body(encodeFrame([0, '', 1, undefined])))).toEqual([0, '', 1, undefined]);
    // The message is raw bytes in the frame, after the JSON: not escaped, not base64.
    expect(encodeFrame([1, 'sip.in', 0, sip]).includes(sip.data)).toBe(true);
  });

  it('carries text and bytes as they are: the text not parsed, the bytes after it', () => {
    const body = (f: Buffer) => f.subarray(4);
    const source = JSON.stringify({ transport: 'tcp', remoteAddress: '127.0.0.1', remotePort: 5060, flowId: 'tcp-1' });
    const data = Buffer.from('REGISTER sip:x SIP/2.0\r\nContent-Length: 0\r\n\r\n');
    const frame = encodeFrame([1, 'sip.in', 0, [source, data]]);
    const [, , , got] = decodeFrame(body(frame));
    expect(got).toEqual([source, data]);
    expect(frame.includes(Buffer.from(source + data.toString('latin1'), 'latin1'))).toBe(true);
    // Not text and bytes: JSON as before.
    expect(decodeFrame(body(encodeFrame([1, 'x', 0, ['a', 'b']])))[3]).toEqual(['a', 'b']);
    expect(decodeFrame(body(encodeFrame([1, 'x', 0, ['', Buffer.alloc(0)]])))[3]).toEqual(['', Buffer.alloc(0)]);
  });

  it('gives frames of one chunk as views of it and joins a frame spread over many chunks once', () => {
    const small = encodeFrame([1, 'a', 0, Buffer.from('one')]);
    const chunk = Buffer.concat([small, small]);
    const r = new FrameReader(1 << 20);
    const frames = r.push(chunk);
    expect(frames).toHaveLength(2);
    expect(frames[1]!.buffer).toBe(chunk.buffer);
    // A 256 KiB frame in 1 KiB chunks, then a small frame in the same chunk as its tail.
    const big = encodeFrame([1, 'b', 0, Buffer.alloc(256 * 1024, 0x5a)]);
    const all = Buffer.concat([big, small]);
    const got: Buffer[] = [];
    for (let o = 0; o < all.length; o += 1024) got.push(...r.push(all.subarray(o, Math.min(o + 1024, all.length))));
    expect(got.map((f) => decodeFrame(f)[1])).toEqual(['b', 'a']);
    expect((decodeFrame(got[0]!)[3] as Buffer).equals(Buffer.alloc(256 * 1024, 0x5a))).toBe(true);
  });

  it('refuses a frame announcing more than the bound', () => {
    const head = Buffer.alloc(4);
    head.writeUInt32BE(2048);
    expect(() => new FrameReader(1024).push(head)).toThrow(RangeError);
  });
});

describe('SocketMesh over Unix sockets', () => {
  let dir: string;
  let meshes: SocketMesh[] = [];

  afterEach(async () => {
    await Promise.all(meshes.map((m) => m.close()));
    meshes = [];
    rmSync(dir, { recursive: true, force: true });
  });

  async function startMesh(count: number, opts: { maxQueuedBytes?: number } = {}): Promise<SocketMesh[]> {
    dir = mkdtempSync(join(tmpdir(), 'mesh-'));
    meshes = Array.from({ length: count }, (_, self) => new SocketMesh({ dir, self, count, logger, ...opts }));
    await Promise.all(meshes.map((m) => m.start(5000)));
    return meshes;
  }

  it('sends, broadcasts and answers requests between three workers; Buffers arrive as bytes', async () => {
    const [m0, m1, m2] = await startMesh(3);
    const got: [number, number, unknown][] = [];
    for (const [i, m] of [m0!, m1!, m2!].entries()) {
      m.on('note', (from, p) => void got.push([i, from, p]));
      m.on('double', (_from, p) => (p as number) * 2);
      m.on('slow', async () => new Promise((r) => setTimeout(() => r('late'), 50)));
    }
    m0!.send(2, 'note', Buffer.from('raw'));
    m1!.broadcast('note', 'hello');
    expect(await m2!.request(0, 'double', 21, 1000)).toBe(42);
    expect(await m0!.request(1, 'slow', null, 1000)).toBe('late');
    await expect(m0!.request(1, 'none', null, 1000)).rejects.toThrow(/no handler/);
    await expect(m0!.request(1, 'slow', null, 5)).rejects.toThrow(/did not answer/);
    await new Promise((r) => setTimeout(r, 50));
    expect(got).toEqual(
      expect.arrayContaining([
        [2, 0, Buffer.from('raw')],
        [0, 1, 'hello'],
        [2, 1, 'hello'],
      ]),
    );
    expect(got).toHaveLength(3);
  });

  it('counts frames, bytes and writes: the one-way messages of one turn leave in one write, in order', async () => {
    const [m0, m1] = await startMesh(2);
    const got: unknown[] = [];
    m1!.on('note', (_from, p) => void got.push(p));
    const before = { ...m0!.counters };
    expect(m0!.send(1, 'note', 'first')).toBe(true);
    expect(m0!.send(1, 'note', { data: Buffer.from('second') })).toBe(true);
    expect(m0!.send(1, 'note', 3)).toBe(true);
    const bytes = [encodeFrame([1, 'note', 0, 'first']), encodeFrame([1, 'note', 0, { data: Buffer.from('second') }]), encodeFrame([1, 'note', 0, 3])].reduce((n, f) => n + f.length, 0);
    await expect.poll(() => got.length, { timeout: 2000 }).toBe(3);
    expect(got).toEqual(['first', { data: Buffer.from('second') }, 3]);
    expect(m0!.counters.framesSent - before.framesSent).toBe(3);
    expect(m0!.counters.bytesSent - before.bytesSent).toBe(bytes);
    expect(m0!.counters.writes - before.writes).toBe(1);
    expect(m1!.counters.framesReceived).toBe(3);
    // A worker that is not connected: send says the message was dropped.
    await m1!.close();
    await expect.poll(() => m0!.connected(1), { timeout: 2000 }).toBe(false);
    expect(m0!.send(1, 'note', 'lost')).toBe(false);
  });

  it('drops and counts what goes past the queue bound towards a peer that does not read', async () => {
    const [m0, m1] = await startMesh(2, { maxQueuedBytes: 256 * 1024 });
    let received = 0;
    m1!.on('bulk', () => void received++);
    // Nothing reads while this loop runs: the queue towards worker 1 fills up and the rest is dropped.
    const chunk = Buffer.alloc(16 * 1024);
    for (let i = 0; i < 200; i++) m0!.send(1, 'bulk', chunk);
    expect(m0!.counters.framesDropped).toBeGreaterThan(0);
    expect(m0!.counters.framesSent + m0!.counters.framesDropped).toBe(200);
    await new Promise((r) => setTimeout(r, 300));
    expect(received).toBe(m0!.counters.framesSent);
  });

  it('holds at most MESH_MAX_PENDING_REQUESTS requests waiting: one more fails at once, unsent; the others are answered, and new ones go again', async () => {
    const [m0, m1] = await startMesh(2);
    const held: (() => void)[] = [];
    let asked = 0;
    m1!.on('hold', (_from, p) => {
      asked++;
      return new Promise((r) => held.push(() => r(p)));
    });
    const answers: Promise<unknown>[] = [];
    for (let i = 0; i < MESH_MAX_PENDING_REQUESTS; i++) answers.push(m0!.request(1, 'hold', i, 60_000));
    expect(m0!.pendingRequests).toBe(MESH_MAX_PENDING_REQUESTS);
    await expect(m0!.request(1, 'hold', 'one more', 60_000)).rejects.toThrow('too many mesh requests waiting');
    expect(m0!.pendingRequests).toBe(MESH_MAX_PENDING_REQUESTS);
    for (const start = Date.now(); asked < MESH_MAX_PENDING_REQUESTS && Date.now() - start < 5000; ) await new Promise((r) => setTimeout(r, 5));
    expect(asked).toBe(MESH_MAX_PENDING_REQUESTS); // the one refused never reached worker 1
    for (const release of held.splice(0)) release();
    expect(await Promise.all(answers)).toEqual(answers.map((_, i) => i));
    expect(m0!.pendingRequests).toBe(0);
    m1!.on('double', (_from, p) => (p as number) * 2);
    expect(await m0!.request(1, 'double', 21, 1000)).toBe(42);
  });

  it('does not send a frame over MESH_MAX_FRAME_BYTES (counted), and closes a connection that announces one', async () => {
    const [m0, m1] = await startMesh(2);
    const got: number[] = [];
    m1!.on('bulk', (_from, p) => void got.push((p as Buffer).length));
    const dropped = m0!.counters.framesDropped;
    expect(m0!.send(1, 'bulk', Buffer.alloc(MESH_MAX_FRAME_BYTES))).toBe(false);
    expect(m0!.counters.framesDropped).toBe(dropped + 1);
    expect(m0!.send(1, 'bulk', Buffer.alloc(MESH_MAX_FRAME_BYTES - 1024))).toBe(true);
    // A connection to worker 1 whose first frame announces more than the bound is closed by it.
    const raw = connect(meshSocketPath(dir, 1));
    const closed = new Promise<void>((r) => raw.once('close', () => r()));
    raw.on('error', () => {});
    const head = Buffer.alloc(4);
    head.writeUInt32BE(MESH_MAX_FRAME_BYTES + 1);
    raw.write(head);
    await closed;
    for (const start = Date.now(); got.length === 0 && Date.now() - start < 5000; ) await new Promise((r) => setTimeout(r, 5));
    expect(got).toEqual([MESH_MAX_FRAME_BYTES - 1024]);
    expect(await m0!.request(1, 'bulk', Buffer.alloc(1), 1000)).toBeUndefined();
  });

  it('tells who went away and who came back, and reconnects to a restarted worker', async () => {
    const [m0, m1] = await startMesh(2);
    const changes: [number, boolean][] = [];
    m0!.onPeerChange((w, up) => changes.push([w, up]));
    await m1!.close();
    const again = new SocketMesh({ dir, self: 1, count: 2, logger });
    meshes[1] = again;
    await again.start(5000);
    again.on('ping', () => 'pong');
    await expect.poll(() => changes, { timeout: 3000 }).toEqual([
      [1, false],
      [1, true],
    ]);
    expect(m0!.connected(1)).toBe(true);
    expect(await m0!.request(1, 'ping', null, 1000)).toBe('pong');
  });
});
