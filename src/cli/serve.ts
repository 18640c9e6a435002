/**
 * `rtcedge serve`: run the server until SIGINT or SIGTERM.
 */
import type { Config } from '../config/schema.js';
import { createLogger } from '../log.js';

/**
 * Start the server with `config` and stop it cleanly on SIGINT/SIGTERM, then
 * exit 0 (1 if stopping failed). A second signal while stopping exits 1 at once.
 * Resolves once the server is running.
 *
 * @throws whatever startServer throws (e.g. a port that cannot be bound).
 */
export async function serve(config: Config): Promise<void> {
  const logger = createLogger(config.log.level);
  const { startServer } = await import('../server.js');
  const server = await startServer(config, logger);
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) {
      logger.warn({ signal }, 'second signal while stopping: exiting now');
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, 'stopping');
    server.stop().then(
      () => {
        logger.info('stopped');
        process.exit(0);
      },
      (err: unknown) => {
        logger.error({ err }, 'error while stopping');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}
