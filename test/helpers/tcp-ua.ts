import net from 'node:net';
import { StreamFramer } from '../../src/sip/stream-framer.js';
import { parseMessage } from '../../src/sip/parser.js';
import { serializeMessage } from '../../src/sip/serializer.js';
import type { SipMessage } from '../../src/sip/message.js';

/**
 * One TCP connection to the server speaking SIP, for tests of flows: it
 * frames what it receives by Content-Length, keeps keepalive pongs apart,
 * and records every message.
 */
export class TcpConnection {
  readonly received: SipMessage[] = [];
  pongs = 0;
  private waiters: { pred: (m: SipMessage) => boolean; resolve: (m: SipMessage) => void }[] = [];
  private readonly framer = new StreamFramer();

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk) => {
      for (const ev of this.framer.push(chunk)) {
        if (ev.type === 'keepalive') {
          if (ev.kind === 'pong') this.pongs++;
          continue;
        }
        if (ev.type !== 'message') continue;
        const msg = parseMessage(ev.data);
        this.received.push(msg);
        for (const w of [...this.waiters]) {
          if (w.pred(msg)) {
            this.waiters.splice(this.waiters.indexOf(w), 1);
            w.resolve(msg);
          }
        }
      }
    });
    socket.on('error', () => {});
  }

  static connect(port: number): Promise<TcpConnection> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ host: '127.0.0.1', port }, () => resolve(new TcpConnection(s)));
      s.once('error', reject);
    });
  }

  get localPort(): number {
    return this.socket.localPort!;
  }

  send(msg: SipMessage): void {
    this.socket.write(serializeMessage(msg));
  }

  write(raw: string): void {
    this.socket.write(raw);
  }

  waitFor(pred: (m: SipMessage) => boolean, timeoutMs = 3000): Promise<SipMessage> {
    const seen = this.received.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const w = { pred, resolve };
      this.waiters.push(w);
      setTimeout(() => {
        const i = this.waiters.indexOf(w);
        if (i >= 0) {
          this.waiters.splice(i, 1);
          reject(new Error(`no matching message on TCP within ${timeoutMs} ms`));
        }
      }, timeoutMs);
    });
  }

  destroy(): void {
    this.socket.destroy();
  }
}
