/**
 * A TURN client over TCP or TLS for tests: connect, exchange STUN requests
 * framed on the stream (RFC 8656 §12.5 / RFC 6062), and sign requests with a
 * long-term credential key (RFC 8489 §9.2).
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import { decodeErrorCode, decodeText, encodeRequestedTransport } from '../../src/stun/stun-attributes.js';
import { AttributeType as A, decodeStunMessage, encodeStunMessage, getAttribute, type StunAttribute, type StunMessage, StunMethod } from '../../src/stun/stun-message.js';
import { StreamFramer } from '../../src/turn/stream-framer.js';

/** Opens a TCP or TLS (any certificate accepted) connection to 127.0.0.1:`port`; errors after connecting are ignored. */
export async function connectStream(transport: 'tcp' | 'tls', port: number): Promise<net.Socket> {
  const s = transport === 'tls' ? tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false }) : net.connect({ host: '127.0.0.1', port });
  await new Promise<void>((resolve, reject) => {
    s.once(transport === 'tls' ? 'secureConnect' : 'connect', () => resolve());
    s.once('error', reject);
  });
  s.on('error', () => undefined);
  return s;
}

/** A STUN request/response exchange over a stream, answers framed with StreamFramer (one request at a time); indications go to `onIndication`. */
export function streamClient(s: net.Socket, onIndication?: (m: StunMessage) => void): (req: Buffer) => Promise<StunMessage> {
  const framer = new StreamFramer();
  const waiting: Array<(m: StunMessage) => void> = [];
  s.on('data', (chunk: Buffer) => {
    for (const f of framer.push(chunk)) {
      const m = decodeStunMessage(f);
      if (m.class !== 'indication') waiting.shift()?.(m);
      else onIndication?.(m);
    }
  });
  return (req) =>
    new Promise((resolve) => {
      waiting.push(resolve);
      s.write(req);
    });
}

/** A request of `username` in `realm` with NONCE, MESSAGE-INTEGRITY under `key` (MD5 of user:realm:password) and FINGERPRINT. */
export function signedRequest(method: number, attrs: StunAttribute[], cred: { username: string; realm: string; key: Buffer; nonce: string }, tid = randomBytes(12)): Buffer {
  const a = [...attrs, { type: A.Username, value: Buffer.from(cred.username) }, { type: A.Realm, value: Buffer.from(cred.realm) }, { type: A.Nonce, value: Buffer.from(cred.nonce) }];
  return encodeStunMessage({ method, class: 'request', transactionId: tid, attributes: a }, { integrityKey: cred.key, fingerprint: true });
}

/** A long-term credential of a test user (RFC 8489 §9.2): `key` is MD5(username:realm:password). */
export interface TurnTestCredential {
  username: string;
  realm: string;
  key: Buffer;
}

/**
 * Allocates a TCP relay (RFC 6062 §5.1) through `transact`: an unsigned
 * Allocate for the 401 and its NONCE, then the signed one.
 * @returns the nonce (for later requests) and the success response.
 * @throws Error when the first answer is not 401 or the second not a success.
 */
export async function allocateTcpRelay(transact: (req: Buffer) => Promise<StunMessage>, cred: TurnTestCredential): Promise<{ nonce: string; allocation: StunMessage }> {
  const transport = { type: A.RequestedTransport, value: encodeRequestedTransport(6) };
  const first = await transact(encodeStunMessage({ method: StunMethod.Allocate, class: 'request', transactionId: randomBytes(12), attributes: [transport] }));
  const code = getAttribute(first, A.ErrorCode);
  if (!code || decodeErrorCode(code.value).code !== 401) throw new Error('expected 401 to the first Allocate');
  const nonce = decodeText(getAttribute(first, A.Nonce)!.value);
  const allocation = await transact(signedRequest(StunMethod.Allocate, [transport], { ...cred, nonce }));
  if (allocation.class !== 'success') throw new Error('TCP Allocate failed');
  return { nonce, allocation };
}
