/**
 * `rtcedge serve` with several SIP workers as a process (the built CLI), for
 * the tests of test/cluster/: a configuration in a new temp dir, users added
 * with the CLI, and Call-IDs chosen for the worker that must own them.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { callIdOwner } from '../../src/transport/call-id-owner.js';
import { requireBuild, runCli, startServe, type ServeProcess } from '../cli/harness.js';

/** A Call-ID that worker `owner` of `count` owns (transport/call-id-owner.ts). */
export function callIdFor(owner: number, count = 2): string {
  for (;;) {
    const id = `${randomBytes(6).toString('hex')}@127.0.0.1`;
    if (callIdOwner(id, count) === owner) return id;
  }
}

/** A running `rtcedge serve` and its temp dir (data_dir is `dir/data`); `stop()` stops it and removes the dir. */
export interface ServedWorkers {
  dir: string;
  server: ServeProcess;
  stop(): Promise<void>;
}

/**
 * Write `config` (YAML; `data_dir` is set to `dir/data`) in a new temp dir
 * named after `name`, add `users` of `domain` with `password`, and start
 * `rtcedge serve` until it logs ready.
 * @throws Error when a user cannot be added or the server does not get ready.
 */
export async function serveWorkers(name: string, config: Record<string, unknown>, domain: string, users: string[], password: string): Promise<ServedWorkers> {
  requireBuild();
  const dir = mkdtempSync(join(tmpdir(), `${name}-`));
  const configFile = join(dir, 'rtcedge.yaml');
  writeFileSync(configFile, stringify({ data_dir: join(dir, 'data'), ...config }));
  for (const user of users) {
    const added = runCli(['user', 'add', `${user}@${domain}`, '--password-stdin', '-c', configFile], dir, `${password}\n`);
    if (added.status !== 0) throw new Error(`user add ${user}: ${added.stderr}`);
  }
  const server = await startServe(configFile, dir);
  return {
    dir,
    server,
    async stop() {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
