/**
 * Mesh directories left by a server that died are removed at the next start;
 * a running server's directory, one being set up and anything that is not a
 * mesh directory are left alone. Real Unix sockets in a temporary directory.
 */
import { mkdirSync, mkdtempSync, existsSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createMeshDir, MESH_DIR_PREFIX, removeStaleMeshDirs } from '../../src/cluster/mesh-dir.js';

const base = mkdtempSync(join(tmpdir(), 'mesh-dir-test-'));
const servers: Server[] = [];

afterAll(async () => {
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  rmSync(base, { recursive: true, force: true });
});

/** A socket file at `path` whose listener was SIGKILLed (as a killed worker leaves it). */
async function deadSocket(path: string): Promise<void> {
  const child = spawn(process.execPath, ['-e', "require('net').createServer().listen(process.argv[1], () => process.stdout.write('up'))", path], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout.once('data', () => resolve());
    child.once('exit', () => reject(new Error('listener exited early')));
  });
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await exited;
}

async function liveSocket(path: string): Promise<void> {
  const s = createServer((c) => c.destroy());
  await new Promise<void>((r) => s.listen(path, r));
  servers.push(s);
}

describe('mesh directories', () => {
  it('removes the directory of a dead server, keeps a live one, a fresh empty one and foreign ones', async () => {
    const dead = createMeshDir(base);
    await deadSocket(join(dead, 'w0.sock'));
    await deadSocket(join(dead, 'w1.sock'));
    expect(existsSync(join(dead, 'w0.sock'))).toBe(true);

    const live = createMeshDir(base);
    await liveSocket(join(live, 'w0.sock'));
    await liveSocket(join(live, 'w1.sock'));

    const halfLive = createMeshDir(base);
    await deadSocket(join(halfLive, 'w0.sock'));
    await liveSocket(join(halfLive, 'w1.sock'));

    const freshEmpty = createMeshDir(base);
    const oldEmpty = createMeshDir(base);
    const old = (Date.now() - 120_000) / 1000;
    utimesSync(oldEmpty, old, old);

    const foreign = createMeshDir(base);
    writeFileSync(join(foreign, 'notes.txt'), 'not a socket');
    const otherName = join(base, 'rtcedge-something');
    mkdirSync(otherName);

    const removed = await removeStaleMeshDirs(base);
    expect(removed.sort()).toEqual([dead, oldEmpty].sort());
    expect(existsSync(dead)).toBe(false);
    expect(existsSync(oldEmpty)).toBe(false);
    for (const kept of [live, halfLive, freshEmpty, foreign, otherName]) expect(existsSync(kept)).toBe(true);
    expect(live.startsWith(join(base, MESH_DIR_PREFIX))).toBe(true);
  });

  it('answers an unreadable base with nothing removed', async () => {
    expect(await removeStaleMeshDirs(join(base, 'no-such-dir'))).toEqual([]);
  });
});
