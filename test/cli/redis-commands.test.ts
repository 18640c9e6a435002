/**
 * The user commands, import, backup and restore against a Redis store
 * (`store.type: redis`), with a real redis-server on loopback.
 */
import { createHmac } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { describeWithPeers } from '../../interop/harness/peers.js';
import { startRedis, type TestRedis } from '../../interop/harness/redis.js';
import { makeTempDir, removeTempDir } from '../../interop/harness/temp-dir.js';
import { RedisStore } from '../../src/store/index.js';
import { configSchema } from '../../src/config/schema.js';
import { requireBuild, runCliAsync } from './harness.js';

const PORT = 26381;

describeWithPeers(['redis-server'])('CLI against a Redis store', () => {
  let dir: string;
  let redis: TestRedis;
  let configFile: string;
  let store: RedisStore;
  const cli = (args: string[], input = '') => runCliAsync([...args, '-c', configFile], dir, input);
  beforeAll(async () => {
    requireBuild();
    dir = makeTempDir('redis-cli');
    redis = await startRedis('127.0.0.1', PORT, dir);
    configFile = join(dir, 'rtcedge.yaml');
    const yaml = `data_dir: ${join(dir, 'data')}\ndomains: [example.test]\nstore: { type: redis, redis: { url: "${redis.url}", key_prefix: "cli:" } }\nnode: { uri: "sip:127.0.0.1:5060" }\n`;
    writeFileSync(configFile, yaml);
    store = await new RedisStore(configSchema.parse({ store: { type: 'redis', redis: { url: redis.url, key_prefix: 'cli:' } }, node: { uri: 'sip:127.0.0.1' } }).store.redis).connect();
  });
  afterAll(async () => {
    await store?.close();
    await redis?.stop();
    removeTempDir(dir);
  });

  test('user add, passwd, list, show, import, del; backup and restore into an empty Redis', async () => {
    expect(await cli(['user', 'add', 'alice', '--password-stdin', '--phone', '+4930123'], 'alicepw\n')).toMatchObject({ status: 0, stdout: 'added alice@example.test\n' });
    expect(await store.lookupHa1('alice', 'example.test', 'MD5')).toMatch(/^[0-9a-f]{32}$/);
    expect(await cli(['user', 'add', 'alice', '--password-stdin'], 'x\n')).toMatchObject({ status: 1, stderr: 'rtcedge: user alice@example.test already exists\n' });
    const before = await store.lookupHa1('alice', 'example.test', 'MD5');
    expect((await cli(['user', 'passwd', 'alice', '--password-stdin'], 'newpw\n')).status).toBe(0);
    expect(await store.lookupHa1('alice', 'example.test', 'MD5')).not.toBe(before);
    const csv = join(dir, 'users.csv');
    writeFileSync(csv, 'user,password,phones\nbob,bobpw,100\ncarol,,\ndave,davepw,+4930123\n');
    const imported = await cli(['user', 'import', csv, '--json']);
    expect(JSON.parse(imported.stdout)).toEqual({
      added: 1,
      skipped: 2,
      errors: [
        { line: 3, message: 'the password is empty' },
        { line: 4, message: 'phone number +4930123 belongs to alice@example.test' },
      ],
    });
    expect((await cli(['user', 'list'])).stdout).toBe('alice@example.test\nbob@example.test\n');
    expect(JSON.parse((await cli(['user', 'show', 'bob', '--json'])).stdout)).toMatchObject({ username: 'bob', phones: ['100'], algorithms: ['MD5', 'SHA-256', 'SHA-512-256'] });
    expect(await cli(['user', 'del', 'bob'])).toMatchObject({ status: 0, stdout: 'deleted bob@example.test\n' });
    expect(await store.userOfPhone('100')).toBeUndefined();

    await store.sharedSecret(Buffer.alloc(32, 5));
    const snapshot = await store.snapshot();
    const file = join(dir, 'state.tar.gz');
    expect((await cli(['backup', file])).status).toBe(0);
    const notEmpty = await cli(['restore', file]);
    expect(notEmpty.status).toBe(1);
    expect(notEmpty.stderr).toMatch(/data_dir .* is not empty|Redis store .* is not empty/);
    await store.redis.flushall();
    const restoredConfig = join(dir, 'restored.yaml');
    writeFileSync(restoredConfig, `data_dir: ${join(dir, 'restored')}\nstore: { type: redis, redis: { url: "${redis.url}", key_prefix: "cli:" } }\nnode: { uri: "sip:127.0.0.1:5060" }\n`);
    const r = await runCliAsync(['restore', file, '-c', restoredConfig], dir);
    expect(r).toMatchObject({ status: 0, stderr: '' });
    expect(await store.snapshot()).toEqual(snapshot);
    // A second restore finds the Redis store in use and refuses before writing anything.
    const again = await runCliAsync(['restore', file, '-c', restoredConfig], dir);
    expect(again.status).toBe(1);
  });

  test('turn secret add, list, del keep the shared TURN REST secrets in Redis', async () => {
    expect(await cli(['turn', 'secret', 'add', 's3cret'])).toMatchObject({ status: 0, stdout: 'added\n' });
    expect(await cli(['turn', 'secret', 'list'])).toMatchObject({ status: 0, stdout: 's3cret\n' });
    expect(await store.turnSecrets()).toEqual(['s3cret']);
    expect(await cli(['turn', 'secret', 'del', 's3cret'])).toMatchObject({ status: 0, stdout: 'deleted\n' });
    expect(await cli(['turn', 'secret', 'del', 's3cret'])).toMatchObject({ status: 1, stderr: 'rtcedge: no such TURN secret\n' });
    expect(await cli(['turn', 'secret', 'drop'])).toMatchObject({ status: 1, stderr: 'rtcedge: expected add, del or list, got "drop"\n' });
  });

  test('turn credentials signs with the one shared secret, or the one --secret names', async () => {
    /** The password a TURN server with `secret` expects for `username` (RFC 7635 / TURN REST API: base64 HMAC-SHA1). */
    const passwordFor = (secret: string, username: string) => createHmac('sha1', secret).update(username).digest('base64');
    const credentials = async (args: string[]) => {
      const r = await cli(['turn', 'credentials', 'alice', '--json', ...args]);
      expect(r.stderr).toBe('');
      return JSON.parse(r.stdout) as { username: string; password: string; ttl: number };
    };
    expect(await cli(['turn', 'credentials', 'alice'])).toMatchObject({
      status: 1,
      stderr: 'rtcedge: no TURN secret: add one to turn.auth_secrets or with `rtcedge turn secret add`\n',
    });
    await store.addTurnSecret('first-shared');
    const one = await credentials([]);
    expect(one.username).toMatch(/^\d+:alice$/);
    expect(one.password).toBe(passwordFor('first-shared', one.username));
    await store.addTurnSecret('second-shared');
    expect(await cli(['turn', 'credentials', 'alice'])).toMatchObject({ status: 1, stderr: 'rtcedge: the Redis store holds 2 TURN secrets: choose one with --secret\n' });
    const chosen = await credentials(['--secret', 'second-shared']);
    expect(chosen.password).toBe(passwordFor('second-shared', chosen.username));
    expect((await cli(['turn', 'credentials', 'alice', '--secret', 'unknown'])).stderr).toMatch(/^rtcedge: --secret: the server does not accept this secret/);
    await store.deleteTurnSecret('first-shared');
    await store.deleteTurnSecret('second-shared');
  });

  test('Redis unreachable: the command fails with a message naming it, exit status 1', async () => {
    const down = join(dir, 'down.yaml');
    writeFileSync(down, `data_dir: ${join(dir, 'data')}\nstore: { type: redis, redis: { url: "redis://127.0.0.1:1", connect_timeout: 500 } }\nnode: { uri: "sip:127.0.0.1:5060" }\n`);
    const r = await runCliAsync(['user', 'list', '-c', down], dir);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^rtcedge: cannot reach Redis redis:\/\/127\.0\.0\.1:1 \(store\.redis\)/);
  });
});
