/**
 * The directory that holds the workers' Unix sockets (`w<index>.sock`, see
 * transport/socket-mesh.ts). The primary creates it under the system's
 * temporary directory and removes it when it stops; a primary that was
 * killed (SIGKILL, power loss) cannot, so the next start removes directories
 * left by servers that no longer run.
 */
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Prefix of every mesh directory's name. */
export const MESH_DIR_PREFIX = 'rtcedge-mesh-';
/** A directory holding no socket is removed only when older than this (ms): it may be one being set up. */
const EMPTY_GRACE_MS = 60_000;
/** How long one probe of a socket may take (ms) before the socket is taken as alive. */
const PROBE_TIMEOUT_MS = 1_000;
/** Most directories examined per start (a bound on start-up work in a crowded /tmp). */
const MAX_EXAMINED = 256;

/** Create a new, empty mesh directory under `base` (default the system temporary directory); returns its path. */
export function createMeshDir(base: string = tmpdir()): string {
  return mkdtempSync(join(base, MESH_DIR_PREFIX));
}

/**
 * Remove the mesh directories under `base` that no running server uses: one
 * whose every socket refuses a connection (ECONNREFUSED: nothing listens, the
 * server died), or one with no socket at all older than 60 s. A directory
 * holding anything other than `w<N>.sock` files, or a socket that accepts or
 * does not answer within 1 s, is left alone. Other servers' directories are
 * safe: a running server's sockets accept.
 *
 * @returns the paths removed. Never throws (a directory that cannot be read or removed is skipped).
 */
export async function removeStaleMeshDirs(base: string = tmpdir(), nowMs: number = Date.now()): Promise<string[]> {
  let names: string[];
  try {
    names = readdirSync(base).filter((n) => n.startsWith(MESH_DIR_PREFIX)).slice(0, MAX_EXAMINED);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    const dir = join(base, name);
    try {
      const st = statSync(dir);
      if (!st.isDirectory() || (typeof process.getuid === 'function' && st.uid !== process.getuid())) continue;
      const entries = readdirSync(dir);
      if (entries.some((e) => !/^w\d+\.sock$/.test(e))) continue;
      if (entries.length === 0 ? nowMs - st.mtimeMs < EMPTY_GRACE_MS : !(await allRefuse(entries.map((e) => join(dir, e))))) continue;
      rmSync(dir, { recursive: true, force: true });
      removed.push(dir);
    } catch {
      // skipped: unreadable, or removed by someone else meanwhile
    }
  }
  return removed;
}

/** True when no socket in `paths` accepts a connection (each refuses or is gone). */
async function allRefuse(paths: string[]): Promise<boolean> {
  const results = await Promise.all(paths.map(refuses));
  return results.every(Boolean);
}

function refuses(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    const done = (dead: boolean): void => {
      clearTimeout(timer);
      s.destroy();
      resolve(dead);
    };
    const timer = setTimeout(() => done(false), PROBE_TIMEOUT_MS);
    s.once('connect', () => done(false));
    s.once('error', (err: NodeJS.ErrnoException) => done(err.code === 'ECONNREFUSED' || err.code === 'ENOENT'));
  });
}
