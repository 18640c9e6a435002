import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Destination, TransportName } from '../transport/types.js';

const TRANSPORTS: TransportName[] = ['udp', 'tcp', 'tls', 'ws', 'wss'];

/**
 * A flow token (RFC 5626 §5.2) naming a flow (a {@link Destination}: transport,
 * remote address and port, and the connection id for streams) for the user part of a Record-Route or Path URI:
 * `base64url(transport ~ address ~ port ~ flowId)` `.` 8 bytes of
 * HMAC-SHA256 under the server secret, so a token cannot be forged to make the
 * proxy send to an arbitrary address.
 */
export function encodeFlowToken(ref: Destination, secret: Buffer): string {
  const body = Buffer.from(`${ref.transport}~${ref.address}~${ref.port}~${ref.flowId ?? ''}`).toString('base64url');
  return `${body}.${mac(body, secret)}`;
}

/** The flow a token names, or undefined when it is malformed or its MAC does not verify. */
export function decodeFlowToken(token: string, secret: Buffer): Destination | undefined {
  const dot = token.indexOf('.');
  if (dot <= 0 || token.length > 256) return undefined;
  const body = token.slice(0, dot);
  const got = Buffer.from(token.slice(dot + 1));
  const want = Buffer.from(mac(body, secret));
  if (got.length !== want.length || !timingSafeEqual(got, want)) return undefined;
  const [transport, address, port, flowId] = Buffer.from(body, 'base64url').toString().split('~');
  if (!TRANSPORTS.includes(transport as TransportName) || !address || !/^\d{1,5}$/.test(port ?? '')) return undefined;
  return { transport: transport as TransportName, address, port: Number(port), flowId: flowId || undefined };
}

function mac(body: string, secret: Buffer): string {
  return createHmac('sha256', secret).update(body).digest().subarray(0, 8).toString('base64url');
}
