/**
 * The entry of a SIP worker process (node:cluster runs this file): waits for
 * the primary's `start`, joins the mesh, starts the SIP server as a worker
 * (server.ts, `worker` option) and reports `ready`; then serves the primary's
 * reload, binding and stop messages. It exits when the primary goes away.
 *
 * SIGINT is ignored (a terminal's ^C reaches the whole process group; the
 * primary stops the workers); SIGTERM stops this worker gracefully.
 */
import dgram from 'node:dgram';
import { createLogger, flushLogSync, type Logger } from '../log.js';
import type { Config } from '../config/schema.js';
import { SocketMesh } from '../transport/socket-mesh.js';
import { startServer, type RunningServer } from '../server.js';
import type { FromWorker, ToWorker } from './ipc.js';
import { metricsHandlers } from '../admin/cluster-metrics.js';

/** Longest a worker's stop may take before it exits anyway, ms (the primary kills a worker after as long). */
const WORKER_STOP_GRACE_MS = 10_000;

/** Topic handlers for the primary's `ask` messages (metrics and the like); set before or after start. */
export const workerTopics = new Map<string, (payload: unknown) => unknown>();

function send(msg: FromWorker): void {
  process.send?.(msg);
}

async function start(msg: Extract<ToWorker, { type: 'start' }>, udpSockets: ReadonlyMap<string, dgram.Socket>): Promise<void> {
  const base = createLogger(msg.config.log.level, { maxBufferBytes: msg.config.log.max_buffer_bytes });
  const logger = base.child({ worker: msg.index });
  /** The worker's own lines (start-up failure, stopping, a fatal error), under the component of the primary's. */
  const log = logger.child({ component: 'cluster' });
  let config: Config = msg.config;
  const mesh = new SocketMesh({ dir: msg.meshDir, self: msg.index, count: msg.count, logger });
  let server: RunningServer;
  try {
    await mesh.start();
    server = await startServer(config, logger, {
      reloadConfig: () => config,
      worker: { mesh, udpSockets },
    });
  } catch (err) {
    log.error({ err: (err as Error).message }, 'sip worker failed to start');
    send({ type: 'failed', error: (err as Error).message });
    flushLogSync();
    process.exit(1);
  }
  // The primary's /metrics sums every worker's registry with its own (admin/cluster-metrics.ts).
  if (server.metricsRegistry) for (const [topic, handler] of Object.entries(metricsHandlers(server.metricsRegistry))) workerTopics.set(topic, handler);
  send({ type: 'ready', sip: server.sip });
  let stopping = false;
  const stop = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    // As the primary would (its STOP_GRACE_MS): a stop that hangs, with no primary left to kill this worker, ends here.
    setTimeout(() => {
      log.error({ graceMs: WORKER_STOP_GRACE_MS }, 'sip worker did not stop in time: exiting');
      flushLogSync();
      process.exit(1);
    }, WORKER_STOP_GRACE_MS).unref();
    let code = 0;
    try {
      await server.stop();
      await mesh.close();
    } catch (err) {
      log.error({ err }, 'error while stopping the worker');
      code = 1;
    }
    flushLogSync();
    process.exit(code);
  };
  process.on('message', (m: ToWorker) => {
    if (m.type === 'stop') void stop();
    else if (m.type === 'reload') {
      config = m.config;
      answer(m.id, () => server.reload());
    } else if (m.type === 'bindings') answer(m.id, () => server.replication?.remoteChange(m.aors));
    else if (m.type === 'ask') {
      const handler = workerTopics.get(m.topic);
      answer(m.id, () => {
        if (!handler) throw new Error(`no handler for ${m.topic}`);
        return handler(m.payload);
      });
    }
  });
  process.on('SIGTERM', () => void stop());
  // The primary died or closed the channel: nobody dispatches or restarts any more.
  process.on('disconnect', () => void stop());
  handleFatal(log);
}

function answer(id: number, work: () => unknown): void {
  Promise.resolve()
    .then(work)
    .then(
      (value) => send({ type: 'reply', id, ok: true, value }),
      (err: unknown) => send({ type: 'reply', id, ok: false, error: (err as Error)?.message ?? String(err) }),
    );
}

function handleFatal(logger: Logger): void {
  process.on('uncaughtException', (err) => {
    logger.fatal({ err }, 'uncaught exception in sip worker');
    flushLogSync();
    process.exit(70);
  });
}

process.on('SIGINT', () => {});
// The steered UDP sockets (handles of `udp-socket` messages) and `start` may arrive in either order.
const udpSockets = new Map<string, dgram.Socket>();
let startMessage: Extract<ToWorker, { type: 'start' }> | undefined;
const launch = (m: ToWorker, handle?: unknown): void => {
  if (m.type === 'udp-socket' && handle instanceof dgram.Socket) udpSockets.set(m.listen, handle);
  else if (m.type === 'start') startMessage = m;
  if (startMessage && udpSockets.size >= startMessage.udpSockets) {
    process.off('message', launch);
    void start(startMessage, udpSockets);
  }
};
process.on('message', launch);
send({ type: 'loaded' });
