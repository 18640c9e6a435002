/**
 * `rtcedge serve`: run the server until SIGINT or SIGTERM.
 */
import { sipWorkerCount, type Config } from '../config/schema.js';
import { ConfigError } from '../config/errors.js';
import { createLogger, flushLogSync } from '../log.js';
import { setAsideDamagedStore } from '../store/index.js';
import { checkStartupPaths } from './startup-checks.js';

/** Options of {@link serve}. */
export interface ServeOptions {
  /** The configuration file, absolute, for messages; undefined for the defaults. */
  configFile?: string;
  /** `--create-store`: set an empty or damaged store aside and start with a new one. */
  createStore?: boolean;
  /** Reads the configuration file again on SIGHUP; undefined: a reload keeps the start-up configuration. */
  reloadConfig?: () => Config;
}
import { CliError } from './errors.js';
import type { RunningServer } from '../server.js';

/** How often a server started by npm (`npm start`, `npx rtcedge serve`: `npm_command` set) checks that npm is still its parent, ms. */
export const PARENT_CHECK_MS = 1000;

/**
 * Start the server with `config` and stop it cleanly on SIGINT/SIGTERM, then
 * exit 0 (1 if stopping failed). A second signal while stopping exits 1 at once.
 * Started by npm (`npm start` or `npx rtcedge serve`: `npm_command` in the
 * environment), it also stops so when npm has ended (npm ends on a SIGTERM
 * sent to it alone without passing it on): checked every {@link PARENT_CHECK_MS} ms.
 * SIGHUP reloads (RunningServer.reload), reading the file again with `opts.reloadConfig`.
 * An uncaught exception is logged (`uncaught exception`, with its stack) and exits 70.
 * Resolves once the server is running.
 *
 * @throws CliError for a bad data_dir or TLS file (startup-checks.ts); StoreError
 *   'damaged' for an empty or damaged store without `createStore`; whatever
 *   startServer throws (e.g. a port that cannot be bound).
 * @throws ConfigError from start-up as is; CliError `cannot start: <reason>` for
 *   anything else start-up throws (e.g. a port in use), printed as one line.
 */
export async function serve(config: Config, opts: ServeOptions = {}): Promise<void> {
  checkStartupPaths(config, opts.configFile);
  const logger = createLogger(config.log.level, { maxBufferBytes: config.log.max_buffer_bytes });
  /** This command's own lines: signals, stopping, reloads. */
  const log = logger.child({ component: 'serve' });
  if (opts.createStore) {
    const aside = setAsideDamagedStore(config);
    if (aside !== undefined) logger.warn({ component: 'store', movedTo: aside }, 'damaged store set aside; starting with a new, empty store');
  }
  const workers = sipWorkerCount(config.sip.workers);
  let server: RunningServer | undefined;
  let stopping = false;
  const stop = (running: RunningServer): void => {
    running.stop().then(
      () => {
        log.info('stopped');
        flushLogSync();
        process.exit(0);
      },
      (err: unknown) => {
        log.error({ err }, 'error while stopping');
        flushLogSync();
        process.exit(1);
      },
    );
  };
  // Listening from the start: a signal that arrives while the server starts stops it once it has started.
  const onSignal = (signal: NodeJS.Signals | 'npm ended'): void => {
    if (stopping) {
      if (signal === 'npm ended') return;
      log.warn({ signal }, 'second signal while stopping: exiting now');
      flushLogSync();
      process.exit(1);
    }
    stopping = true;
    log.info({ signal }, 'stopping');
    if (server) stop(server);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // A bug, not an input: logged as a line of this command (with the stack), then exit 70 (EX_SOFTWARE) for the
  // supervisor to restart; an SIP worker logs and exits the same way, and its primary restarts it.
  process.on('uncaughtException', (err) => {
    log.fatal({ err }, 'uncaught exception');
    flushLogSync();
    process.exit(70);
  });
  // `npm start` and `npx rtcedge serve` run the server as npm's descendant, and npm ends on a SIGTERM sent to it
  // alone without passing it on: the server, left with another parent (init or a subreaper), stops as on SIGTERM.
  if (process.env.npm_command) {
    const parent = process.ppid;
    const watch = setInterval(() => {
      if (process.ppid === parent) return;
      clearInterval(watch);
      onSignal('npm ended');
    }, PARENT_CHECK_MS);
    watch.unref();
  }
  try {
    if (workers > 1) {
      // Several SIP workers (node:cluster): this process is the primary (cluster/primary.ts).
      const { startCluster } = await import('../cluster/primary.js');
      server = await startCluster(config, logger, { workers, reloadConfig: opts.reloadConfig });
    } else {
      const { startServer } = await import('../server.js');
      server = await startServer(config, logger, { reloadConfig: opts.reloadConfig });
    }
  } catch (err) {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (err instanceof ConfigError) throw err;
    throw new CliError(`cannot start: ${(err as Error).message}`);
  }
  const running = server;
  if (stopping) stop(running);
  // SIGHUP (systemctl reload, certbot's deploy hook): re-read certificates; a failure keeps the old ones.
  process.on('SIGHUP', () => {
    running.reload().catch((err: unknown) => log.error({ err: (err as Error).message }, 'reload failed; the running configuration and certificate stay in use'));
  });
}
