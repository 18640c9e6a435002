/**
 * The messages between the primary process and its SIP workers over the
 * node:cluster IPC channel (JSON). The workers talk to each other over the
 * mesh (transport/socket-mesh.ts); this channel carries the lifecycle, the
 * reload, and what the primary's own location service (admin API) needs.
 */
import type { Config } from '../config/schema.js';

/** Primary → worker. */
export type ToWorker =
  /**
   * Start as worker `index` of `count`, mesh sockets in `meshDir`, once the `udpSockets` steered UDP sockets
   * (`udp-socket` messages, sent before it or after) have arrived.
   */
  | { type: 'start'; config: Config; index: number; count: number; meshDir: string; udpSockets: number }
  /** This worker's steered socket of the UDP listener `listen` (cluster/udp-steering.ts), sent as the message's handle. */
  | { type: 'udp-socket'; listen: string }
  /** Re-read what can change (RunningServer.reload) with this configuration; answered by a reply. */
  | { type: 'reload'; id: number; config: Config }
  /** Read these AORs again from the store (the admin API changed them); answered by a reply. */
  | { type: 'bindings'; id: number; aors: string[] }
  /** Stop gracefully and exit. */
  | { type: 'stop' }
  /** A request of another component (e.g. metrics); answered by a reply, with an error when the worker has no handler. */
  | { type: 'ask'; id: number; topic: string; payload: unknown };

/** Worker → primary. */
export type FromWorker =
  /** The worker's code is loaded and listens for `start` (a message sent before would be lost). */
  | { type: 'loaded' }
  /** Listening, with the SIP listeners as bound (`udp:127.0.0.1:5060`). */
  | { type: 'ready'; sip: string[] }
  /** Start failed (then the worker exits 1). */
  | { type: 'failed'; error: string }
  | { type: 'reply'; id: number; ok: boolean; value?: unknown; error?: string };
