import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, test } from 'vitest';
import { ConfigError } from '../../src/config/errors.js';
import { loadOrCreateSecret } from '../../src/config/secret.js';
import { prepareDataDir } from '../../src/config/data-dir.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'rtcedge-secret-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

test('created on first call with 32 bytes, mode 0600, then reused', () => {
  const dataDir = prepareDataDir(join(dir, 'data')).root;
  const first = loadOrCreateSecret(dataDir);
  expect(first.length).toBe(32);
  const file = join(dataDir, 'secret');
  expect(readFileSync(file).equals(first)).toBe(true);
  expect(statSync(file).mode & 0o777).toBe(0o600);
  const second = loadOrCreateSecret(dataDir);
  expect(second.equals(first)).toBe(true);
});

test('two data dirs get different secrets; a copied file is shared', () => {
  const a = loadOrCreateSecret(prepareDataDir(join(dir, 'a')).root);
  const b = loadOrCreateSecret(prepareDataDir(join(dir, 'b')).root);
  expect(a.equals(b)).toBe(false);
  writeFileSync(join(dir, 'b', 'secret'), a);
  expect(loadOrCreateSecret(join(dir, 'b')).equals(a)).toBe(true);
});

test('a file of the wrong length is refused', () => {
  writeFileSync(join(dir, 'secret'), Buffer.alloc(5));
  expect(() => loadOrCreateSecret(dir)).toThrow(ConfigError);
  expect(() => loadOrCreateSecret(dir)).toThrow(`config ${join(dir, 'secret')}: expected 32 bytes of server secret, found 5`);
});
