/**
 * Client of baresip's ctrl_tcp module: netstring-framed JSON commands,
 * responses matched by token, and the event stream kept in order.
 */
import { connect, type Socket } from 'node:net';
import { encodeNetstring, NetstringDecoder } from './netstring.js';

/** A reply to a command: `{"response":true,"ok":true,"data":"...","token":"1"}`. */
export interface CtrlResponse {
  response: true;
  ok: boolean;
  data?: string;
  token?: string;
}

/**
 * An event: `{"event":true,"class":"call","type":"CALL_ESTABLISHED",
 * "accountaor":"sip:...","direction":"outgoing","peeruri":"sip:...","id":"...","param":"..."}`.
 */
export interface CtrlEvent {
  event: true;
  class: string;
  type: string;
  accountaor?: string;
  direction?: string;
  peeruri?: string;
  id?: string;
  param?: string;
  /** Arrival time, ms since epoch (added by this client). */
  receivedAt: number;
  [key: string]: unknown;
}

/** A connection to one baresip ctrl_tcp listener. */
export class CtrlTcpClient {
  /** Every event received, in order. */
  readonly events: CtrlEvent[] = [];
  private readonly pending = new Map<string, { resolve: (r: CtrlResponse) => void; reject: (e: Error) => void }>();
  private readonly listeners = new Set<() => void>();
  private nextToken = 1;
  private closed = false;

  private constructor(private readonly socket: Socket) {
    const dec = new NetstringDecoder();
    socket.on('data', (chunk: Buffer) => {
      for (const payload of dec.push(chunk)) this.onPayload(payload);
    });
    socket.on('close', () => {
      this.closed = true;
      for (const p of this.pending.values()) p.reject(new Error('ctrl_tcp connection closed'));
      this.pending.clear();
      for (const l of [...this.listeners]) l();
    });
    socket.on('error', () => {
      /* 'close' follows */
    });
  }

  /** Connects to host:port; rejects after timeoutMs (ms). */
  static connect(host: string, port: number, timeoutMs = 3000): Promise<CtrlTcpClient> {
    return new Promise((resolve, reject) => {
      const s = connect({ host, port });
      const timer = setTimeout(() => {
        s.destroy();
        reject(new Error(`ctrl_tcp connect ${host}:${port} timed out`));
      }, timeoutMs);
      s.once('connect', () => {
        clearTimeout(timer);
        resolve(new CtrlTcpClient(s));
      });
      s.once('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
    });
  }

  private onPayload(payload: string): void {
    let msg: Record<string, unknown>;
    try {
      msg = JSON.parse(payload) as Record<string, unknown>;
    } catch {
      return;
    }
    if (msg.response === true) {
      const token = typeof msg.token === 'string' ? msg.token : undefined;
      const p = token !== undefined ? this.pending.get(token) : undefined;
      if (p && token !== undefined) {
        this.pending.delete(token);
        p.resolve(msg as unknown as CtrlResponse);
      }
    } else if (msg.event === true) {
      this.events.push({ ...(msg as object), receivedAt: Date.now() } as CtrlEvent);
      for (const l of [...this.listeners]) l();
    }
  }

  /**
   * Sends `{"command":cmd,"params":params,"token":N}` and resolves with the
   * matching response; rejects after timeoutMs (ms) or if the connection closes.
   */
  command(cmd: string, params = '', timeoutMs = 5000): Promise<CtrlResponse> {
    if (this.closed) return Promise.reject(new Error('ctrl_tcp connection closed'));
    const token = String(this.nextToken++);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(token);
        reject(new Error(`ctrl_tcp command ${cmd} ${params}: no response in ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(token, {
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.socket.write(encodeNetstring(JSON.stringify({ command: cmd, params, token })));
    });
  }

  /**
   * Resolves with the first event at index >= from (default 0) of `events`
   * satisfying the predicate; rejects after timeoutMs (ms) or on close. The
   * error lists the events seen.
   */
  waitForEvent(pred: (e: CtrlEvent) => boolean, timeoutMs: number, from = 0): Promise<CtrlEvent> {
    return new Promise((resolve, reject) => {
      let next = from;
      const describe = (): string =>
        this.events
          .slice(from)
          .map((e) => `${e.type}${e.param ? `(${e.param})` : ''}`)
          .join(', ');
      const check = (): void => {
        for (; next < this.events.length; next++) {
          const e = this.events[next]!;
          if (pred(e)) {
            done();
            resolve(e);
            return;
          }
        }
        if (this.closed) {
          done();
          reject(new Error(`ctrl_tcp closed before the awaited event; events: ${describe()}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no matching baresip event in ${timeoutMs} ms; events: ${describe()}`));
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        this.listeners.delete(check);
      };
      this.listeners.add(check);
      check();
    });
  }

  /** Closes the connection. */
  close(): void {
    this.socket.destroy();
  }
}
