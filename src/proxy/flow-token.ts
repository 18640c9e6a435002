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

/** The shape {@link encodeFlowToken} writes: a base64url body, `.`, and 8 bytes of MAC in base64url (11 characters). */
const FLOW_TOKEN_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{11}$/;

/**
 * True when `user` (a URI user part) has the shape of a flow token this server writes, whether or not its MAC
 * verifies: a user part of this shape that {@link decodeFlowToken} refuses was changed on the way or made
 * under another secret (RFC 5626 §5.3 "tampered with").
 */
export function looksLikeFlowToken(user: string): boolean {
  return FLOW_TOKEN_SHAPE.test(user);
}

function mac(body: string, secret: Buffer): string {
  return createHmac('sha256', secret).update(body).digest().subarray(0, 8).toString('base64url');
}

/**
 * For several nodes on one store: the Path value (RFC 3327 §4.3, with `lr`)
 * naming this node (`node.uri`) with a flow token of the connection a REGISTER
 * came over as its user part, or undefined for UDP (any node reaches a UDP
 * contact itself). Another node routes a request for the binding here; this
 * node's own-route step reads the token and sends it down that flow (RFC 5626 §5.3).
 *
 * @param nodeUri `sip:host:port;params` without a user part, e.g. `sip:10.0.0.2:5061;transport=tls`.
 * @param secret the flow-token secret every node shares.
 */
export function nodePathFor(nodeUri: string, secret: Buffer): (source: { transport: TransportName; remoteAddress: string; remotePort: number; flowId?: string }) => string | undefined {
  const lr = /;lr(;|=|$)/i.test(nodeUri) ? '' : ';lr';
  return (source) => {
    if (source.transport === 'udp') return undefined;
    const token = encodeFlowToken({ transport: source.transport, address: source.remoteAddress, port: source.remotePort, flowId: source.flowId }, secret);
    return `<${nodeUri.replace(/^(sips?:)/i, `$1${token}@`)}${lr}>`;
  };
}
