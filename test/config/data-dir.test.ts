/**
 * data_dir layout: created once with mode 0700, secret files 0600, after a real
 * server start with a generated TLS certificate (config/data-dir.ts).
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, test } from 'vitest';
import { DATA_DIR_FILES, dataDirLayout, prepareDataDir } from '../../src/config/data-dir.js';
import { ConfigError } from '../../src/config/errors.js';
import { parseConfig } from '../../src/config/load.js';
import { silentLogger } from '../../src/log.js';
import { startServer } from '../../src/server.js';

let dir: string;
const mode = (p: string) => statSync(p).mode & 0o777;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'rtcedge-datadir-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

test('every path of the layout lies under data_dir', () => {
  const l = dataDirLayout('/srv/rtcedge');
  expect(l).toEqual({
    root: '/srv/rtcedge',
    store: '/srv/rtcedge/rtcedge.db',
    secret: '/srv/rtcedge/secret',
    adminToken: '/srv/rtcedge/admin-token',
    bans: '/srv/rtcedge/bans.json',
    tlsDir: '/srv/rtcedge/tls',
    tlsCert: '/srv/rtcedge/tls/cert.pem',
    tlsKey: '/srv/rtcedge/tls/key.pem',
  });
  expect(Object.keys(l).length).toBe(Object.keys(DATA_DIR_FILES).length + 1);
});

test('a server start creates data_dir 0700, tls/ 0700, and database, secret, key 0600', async () => {
  const dataDir = join(dir, 'a', 'data');
  const server = await startServer(
    parseConfig({
      data_dir: dataDir,
      log: { level: 'silent' },
      sip: { listen: [{ transport: 'tls', host: '127.0.0.1', port: 0 }] },
      turn: { enabled: false },
    }),
    silentLogger,
  );
  await server.stop();
  const l = dataDirLayout(dataDir);
  expect(mode(l.root)).toBe(0o700);
  expect(mode(l.tlsDir)).toBe(0o700);
  for (const f of [l.store, l.secret, l.tlsKey]) expect([f, mode(f)]).toEqual([f, 0o600]);
});

test('an existing 0755 data_dir is tightened to 0700', () => {
  const dataDir = join(dir, 'old');
  mkdirSync(dataDir, { mode: 0o755 });
  chmodSync(dataDir, 0o755);
  prepareDataDir(dataDir);
  expect(mode(dataDir)).toBe(0o700);
});

test('a data_dir that is a file is a ConfigError naming it', () => {
  const notDir = join(dir, 'plain');
  writeFileSync(notDir, 'x');
  expect(() => prepareDataDir(notDir)).toThrow(ConfigError);
  expect(() => prepareDataDir(notDir)).toThrow(`config ${notDir}: data_dir: cannot create or use this directory`);
});
