import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig, type Config } from '../../src/config/load.js';
import { startServer, type RunningServer } from '../../src/server.js';
import { openUserStore } from '../../src/store/user-store.js';
import { credentialsFor } from '../../src/store/users.js';
import { silentLogger, type Logger } from '../../src/log.js';

/** How to start an rtcedge instance in the test process. */
export interface TestServerOptions {
  /** Names the temporary data_dir (`rtcedge-<name>-XXXXXX`). */
  name: string;
  /** The served domain; default `example.test`. */
  domain?: string;
  /**
   * The `sip` section of the configuration (listeners, timers, security...). Admission control is off unless it
   * has `overload`: see {@link OVERLOAD_OFF}.
   */
  sip: Record<string, unknown>;
  /** Users to create in the store before start, name → password (MD5 credentials). */
  users?: Record<string, string>;
  /**
   * The `federation` section; default `{ require_tls: false }`: most tests
   * play UAs of other domains over UDP/TCP, which mutual TLS between domains would refuse.
   */
  federation?: Record<string, unknown>;
  /** The `dns` section (e.g. `{ servers: [named.server] }`); default the defaults. */
  dns?: Record<string, unknown>;
  /** Where the server logs; default nowhere. */
  logger?: Logger;
  /** Further top-level sections (e.g. `store`, `node`, `admin`), replacing the defaults. */
  more?: Record<string, unknown>;
}

/** A running instance with its data_dir and configuration; `stop()` stops it and removes the data_dir. */
export interface TestServer {
  server: RunningServer;
  dir: string;
  config: Config;
  stop(): Promise<void>;
}

/**
 * `sip.overload` of an in-process server: no 503 for lag or utilisation, no drop before parsing. The server shares
 * its event loop with the test's own senders, so the lag and utilisation it measures are the test's, and on a busy
 * machine a test of anything else got 503s (a REGISTER in beforeAll, the RFC 4475 replay). The admission
 * decisions have their own tests (test/transaction/admission.test.ts, interop/overload.test.ts).
 */
export const OVERLOAD_OFF = { lag_ms: 0, drop_lag_ms: 0, target_utilization: 1 };

/**
 * Start rtcedge in the test process on a fresh data_dir (TURN off, silent
 * logs), with the given users in its SQLite store: the start-up every
 * in-process server test shares.
 */
export async function startTestServer(opts: TestServerOptions): Promise<TestServer> {
  const domain = opts.domain ?? 'example.test';
  const dir = mkdtempSync(join(tmpdir(), `rtcedge-${opts.name}-`));
  const config = parseConfig({ data_dir: dir, domains: [domain], log: { level: 'silent' }, sip: { overload: OVERLOAD_OFF, ...opts.sip }, turn: { enabled: false }, federation: opts.federation ?? { require_tls: false }, dns: opts.dns ?? {}, ...opts.more });
  const users = Object.entries(opts.users ?? {});
  if (users.length) {
    const store = await openUserStore(config);
    for (const [user, password] of users) await store.addUser({ username: user, domain, ha1: credentialsFor(user, domain, password, ['MD5']), phones: [] });
    await store.close();
  }
  let server: RunningServer;
  try {
    server = await startServer(config, opts.logger ?? silentLogger);
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    server,
    dir,
    config,
    async stop() {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
