import dgram from 'node:dgram';
import { createHash, randomBytes } from 'node:crypto';
import { parseMessage } from '../../src/sip/parser.js';
import { serializeMessage } from '../../src/sip/serializer.js';
import { getHeader, type SipHeader, type SipMessage, type SipRequest, type SipResponse } from '../../src/sip/message.js';
import { MessageLog } from './message-log.js';
import { computeResponse, formatCredentials, parseAuthParams } from '../../src/auth/digest.js';

/**
 * A minimal SIP user agent on a UDP socket bound to 127.0.0.1, for tests of
 * the registrar and proxy: it builds requests, keeps everything it receives
 * and answers digest challenges (MD5, qop=auth).
 */
export class UdpUa {
  private readonly log = new MessageLog();

  private constructor(
    readonly socket: dgram.Socket,
    readonly port: number,
  ) {
    socket.on('message', (data) => {
      let msg: SipMessage;
      try {
        msg = parseMessage(data);
      } catch {
        return;
      }
      this.log.add(msg);
    });
  }

  /** Every message received, in order. */
  get received(): SipMessage[] {
    return this.log.received;
  }

  static async open(): Promise<UdpUa> {
    const socket = dgram.createSocket('udp4');
    await new Promise<void>((r) => socket.bind(0, '127.0.0.1', () => r()));
    return new UdpUa(socket, socket.address().port);
  }

  close(): void {
    this.socket.close();
  }

  /** Send a message to 127.0.0.1:port. */
  send(msg: SipMessage, port: number): void {
    this.socket.send(serializeMessage(msg), port, '127.0.0.1');
  }

  /** Send raw bytes to 127.0.0.1:port. */
  sendRaw(data: Buffer | string, port: number): void {
    this.socket.send(typeof data === 'string' ? Buffer.from(data) : data, port, '127.0.0.1');
  }

  /** Resolve with the first message (already received since `since`, or arriving) that matches; reject after timeoutMs. */
  waitFor(pred: (m: SipMessage) => boolean, timeoutMs = 3000, since = 0): Promise<SipMessage> {
    return this.log.waitFor(pred, timeoutMs, () => `got: ${this.received.map(startLine).join(' | ')}`, since);
  }

  /** Wait for a response to `req` (same Call-ID and CSeq) whose status is `status`, or any final status when omitted. */
  response(req: SipRequest, status?: number, timeoutMs = 3000): Promise<SipResponse> {
    const callId = getHeader(req, 'call-id');
    const cseq = getHeader(req, 'cseq');
    return this.waitFor(
      (m) =>
        m.kind === 'response' &&
        getHeader(m, 'call-id') === callId &&
        getHeader(m, 'cseq') === cseq &&
        (status === undefined ? m.status >= 200 : m.status === status),
      timeoutMs,
    ) as Promise<SipResponse>;
  }

  /** A request with Via (rport), From (tag), To, Call-ID, CSeq, Max-Forwards and Contact for this UA. */
  request(
    method: string,
    uri: string,
    o: { from: string; to: string; callId?: string; cseq?: number; fromTag?: string; toTag?: string; headers?: SipHeader[]; body?: string; contactUser?: string; contact?: string },
  ): SipRequest {
    const headers: SipHeader[] = [
      { name: 'Via', value: `SIP/2.0/UDP 127.0.0.1:${this.port};branch=z9hG4bK${randomBytes(8).toString('hex')};rport` },
      { name: 'Max-Forwards', value: '70' },
      { name: 'From', value: `<${o.from}>;tag=${o.fromTag ?? randomBytes(4).toString('hex')}` },
      { name: 'To', value: `<${o.to}>${o.toTag ? `;tag=${o.toTag}` : ''}` },
      { name: 'Call-ID', value: o.callId ?? randomBytes(8).toString('hex') },
      { name: 'CSeq', value: `${o.cseq ?? 1} ${method}` },
      { name: 'Contact', value: o.contact ?? `<sip:${o.contactUser ?? 'ua'}@127.0.0.1:${this.port}>` },
      ...(o.headers ?? []),
    ];
    const body = Buffer.from(o.body ?? '');
    if (body.length) headers.push({ name: 'Content-Type', value: 'application/sdp' });
    return { kind: 'request', method, uri, headers, body };
  }

  /**
   * REGISTER `user@domain` with this UA's address as Contact at the server on
   * 127.0.0.1:serverPort, answering the 401 digest challenge; resolves with
   * the final response to the authorized REGISTER.
   */
  async register(serverPort: number, user: string, password: string, domain: string): Promise<SipResponse> {
    const req = this.request('REGISTER', `sip:${domain}`, { from: `sip:${user}@${domain}`, to: `sip:${user}@${domain}`, contactUser: user });
    this.send(req, serverPort);
    const authed = this.authorize(req, await this.response(req), user, password);
    this.send(authed, serverPort);
    return this.response(authed);
  }

  /**
   * The same request with a new branch, CSeq+1 and credentials answering the
   * challenge in `challenge` (401 → Authorization, 407 → Proxy-Authorization).
   */
  authorize(req: SipRequest, challenge: SipResponse, username: string, password: string, ha1?: string): SipRequest {
    const header = challenge.status === 401 ? 'www-authenticate' : 'proxy-authenticate';
    const { params } = parseAuthParams(getHeader(challenge, header) ?? '', 'digest');
    const realm = params.get('realm')!;
    const nonce = params.get('nonce')!;
    const key = ha1 ?? md5ha1(username, realm, password);
    const cnonce = randomBytes(6).toString('hex');
    const nc = '00000001';
    const response = computeResponse({ alg: 'MD5', ha1: key, method: req.method, uri: req.uri, nonce, qop: 'auth', nc, cnonce });
    const creds = formatCredentials({ username, realm, nonce, uri: req.uri, response, algorithm: 'MD5', qop: 'auth', nc, cnonce });
    const cseq = Number((getHeader(req, 'cseq') ?? '1').split(' ')[0]) + 1;
    const headers = req.headers
      .filter((h) => !/^(authorization|proxy-authorization)$/i.test(h.name))
      .map((h) => {
        if (/^via$/i.test(h.name)) return { name: h.name, value: `SIP/2.0/UDP 127.0.0.1:${this.port};branch=z9hG4bK${randomBytes(8).toString('hex')};rport` };
        if (/^cseq$/i.test(h.name)) return { name: h.name, value: `${cseq} ${req.method}` };
        return h;
      });
    headers.push({ name: challenge.status === 401 ? 'Authorization' : 'Proxy-Authorization', value: creds });
    return { ...req, headers };
  }
}

function md5ha1(u: string, r: string, p: string): string {
  return createHash('md5').update(`${u}:${r}:${p}`).digest('hex');
}

export function startLine(m: SipMessage): string {
  return m.kind === 'request' ? `${m.method} ${m.uri}` : `${m.status} ${m.reason} (${getHeader(m, 'cseq')})`;
}
