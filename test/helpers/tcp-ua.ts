import net from 'node:net';
import tls from 'node:tls';
import { StreamFramer } from '../../src/sip/stream-framer.js';
import { parseMessage } from '../../src/sip/parser.js';
import { serializeMessage } from '../../src/sip/serializer.js';
import type { SipMessage } from '../../src/sip/message.js';
import { MessageLog } from './message-log.js';

/**
 * One TCP connection to the server speaking SIP, for tests of flows: it
 * frames what it receives by Content-Length, keeps keepalive pongs apart,
 * and records every message.
 */
export class TcpConnection {
  pongs = 0;
  private readonly log = new MessageLog();
  private readonly framer = new StreamFramer();

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      for (const ev of this.framer.push(chunk)) {
        if (ev.type === 'keepalive') {
          if (ev.kind === 'pong') this.pongs++;
          continue;
        }
        if (ev.type !== 'message') continue;
        this.log.add(parseMessage(ev.data));
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

  /** A TLS connection (the server's certificate is not verified: tests use self-signed ones). */
  static connectTls(port: number): Promise<TcpConnection> {
    return new Promise((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => resolve(new TcpConnection(s)));
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

  /** Every message received on this connection, in order. */
  get received(): SipMessage[] {
    return this.log.received;
  }

  waitFor(pred: (m: SipMessage) => boolean, timeoutMs = 3000): Promise<SipMessage> {
    return this.log.waitFor(pred, timeoutMs, () => `${this.received.length} messages on TCP`);
  }

  destroy(): void {
    this.socket.destroy();
  }
}
