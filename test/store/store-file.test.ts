/**
 * Start-up checks of the store file on real files and a real SQLite store:
 * absent (new store), empty, not a database, damaged pages, set aside.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { setAsideDamagedStore, SqliteStore, StoreError } from '../../src/store/index.js';
import { checkStoreFile, setStoreAside } from '../../src/store/store-file.js';
import { credentialsFor } from '../../src/store/users.js';

let dir: string;
let path: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'rtcedge-store-file-'));
  path = join(dir, 'rtcedge.db');
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

function refusal(fn: () => unknown): StoreError {
  try {
    fn();
  } catch (err) {
    if (err instanceof StoreError) return err;
    throw err;
  }
  throw new Error('no StoreError');
}

function populated(users: number): void {
  const store = new SqliteStore(path);
  for (let i = 0; i < users; i++) store.addUser(`u${i}`, 'example.test', credentialsFor(`u${i}`, 'example.test', 'pw', ['MD5', 'SHA-256']));
  store.close();
}

describe('checkStoreFile', () => {
  test('absent is a new store, a healthy file is present', () => {
    expect(checkStoreFile(path)).toBe('missing');
    populated(1);
    expect(checkStoreFile(path)).toBe('present');
  });

  test('an empty file is refused unless its WAL holds data; a directory is refused', () => {
    writeFileSync(path, '');
    expect(refusal(() => checkStoreFile(path))).toMatchObject({ code: 'damaged' });
    writeFileSync(`${path}-wal`, 'x');
    expect(checkStoreFile(path)).toBe('present');
    rmSync(path);
    rmSync(`${path}-wal`);
    mkdirSync(path);
    expect(refusal(() => checkStoreFile(path)).message).toContain('not a regular file');
  });
});

describe('SqliteStore on a refused file', () => {
  test('random bytes over pages of a populated store: damaged, file untouched', () => {
    populated(500);
    const fd = openSync(path, 'r+');
    writeSync(fd, randomBytes(2 * 4096), 0, 2 * 4096, 2 * 4096);
    closeSync(fd);
    const before = readFileSync(path);
    const err = refusal(() => new SqliteStore(path));
    expect(err.code).toBe('damaged');
    expect(err.message).toContain(path);
    expect(readFileSync(path).equals(before)).toBe(true);
  });

  test('a file that is not a database: damaged', () => {
    writeFileSync(path, randomBytes(3 * 4096));
    expect(refusal(() => new SqliteStore(path)).code).toBe('damaged');
  });
});

describe('setting a refused store aside', () => {
  test('setStoreAside renames the file and its WAL; nothing is deleted', () => {
    writeFileSync(path, 'main');
    writeFileSync(`${path}-wal`, 'wal');
    const aside = setStoreAside(path, Date.UTC(2026, 0, 2, 3, 4, 5));
    expect(aside).toBe(`${path}.damaged-2026-01-02T03-04-05-000Z`);
    expect(readFileSync(aside, 'utf8')).toBe('main');
    expect(readFileSync(`${aside}-wal`, 'utf8')).toBe('wal');
    expect(existsSync(path)).toBe(false);
  });

  test('setAsideDamagedStore moves an empty store and leaves a healthy one', () => {
    const config = { data_dir: dir };
    populated(3);
    expect(setAsideDamagedStore(config)).toBeUndefined();
    expect(readdirSync(dir).filter((f) => f.includes('damaged'))).toEqual([]);
    rmSync(path);
    writeFileSync(path, '');
    expect(setAsideDamagedStore(config, 0)).toBe(`${path}.damaged-1970-01-01T00-00-00-000Z`);
    const store = new SqliteStore(path);
    expect(store.listUsers()).toEqual([]);
    store.close();
  });
});
