/**
 * Fuzz targets: each takes arbitrary bytes and must either accept them or
 * reject them with the codec's own error (the one that becomes a SIP 400/413/505,
 * a STUN 400, a digest 400); any other exception, or a round trip that changes
 * what was accepted, is a defect. Seeds come from the RFC vectors under
 * test/vectors and from test/fuzz/corpus/<target>/ (hand-written seeds and
 * minimized inputs that once failed, kept as regression cases).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { parseMessage } from '../../src/sip/parser.js';
import { serializeMessage } from '../../src/sip/serializer.js';
import { SipParseError } from '../../src/sip/errors.js';
import { canonicalName } from '../../src/sip/message.js';
import { StreamFramer } from '../../src/sip/stream-framer.js';
import { decodeStunMessage, encodeStunMessage, StunDecodeError, AttributeType } from '../../src/stun/stun-message.js';
import { decodeErrorCode, decodeMappedAddress, decodeXorAddress, decodeUnknownAttributes, decodeText } from '../../src/stun/stun-attributes.js';
import { StreamFramer as TurnStreamFramer, StreamFramingError } from '../../src/turn/stream-framer.js';
import { decodeChannelData, ChannelDataError } from '../../src/turn/channel-data.js';
import { parseAuthParams, parseCredentials } from '../../src/auth/digest.js';
import { AuthError } from '../../src/auth/errors.js';

/** One fuzz target. */
export interface FuzzTarget {
  name: 'sip' | 'stun' | 'digest';
  /** Inputs to mutate. */
  seeds(): Buffer[];
  /** Throws (a non-codec error) when the input reveals a defect. */
  run(input: Buffer): void;
}

const VECTORS = new URL('../vectors/', import.meta.url);
const CORPUS = new URL('./corpus/', import.meta.url);

function filesIn(dir: URL, ext?: string): Buffer[] {
  return readdirSync(dir)
    .filter((f) => !f.startsWith('.') && (!ext || f.endsWith(ext)) && !f.endsWith('.md'))
    .sort()
    .map((f) => readFileSync(new URL(f, dir)));
}

/** The minimized failing inputs and hand-written seeds of one target. */
export function corpus(name: FuzzTarget['name']): Buffer[] {
  return filesIn(new URL(`${name}/`, CORPUS));
}

/** A defect: an input that escaped the codec's error handling or broke a round trip. */
export class FuzzDefect extends Error {
  override readonly name = 'FuzzDefect';
}

function expectOnly(e: unknown, ...allowed: (new (...a: never[]) => Error)[]): void {
  if (!allowed.some((c) => e instanceof c)) throw new FuzzDefect(`unexpected ${(e as Error)?.name ?? typeof e}: ${String((e as Error)?.message ?? e)}`);
}

/** Header fields as [name, value] pairs, without Content-Length (the serializer writes its own). */
function headerPairs(m: ReturnType<typeof parseMessage>): string {
  return JSON.stringify(m.headers.filter((h) => canonicalName(h.name) !== 'content-length').map((h) => [h.name, h.value]));
}

/**
 * SIP: parseMessage raises SipParseError (400, 413 or 505) or returns a
 * message that serializes and parses back to the same header fields (but
 * Content-Length, which the serializer sets) and body;
 * the stream framer, fed the bytes in two chunks, never throws.
 */
const sip: FuzzTarget = {
  name: 'sip',
  seeds: () => [...filesIn(new URL('rfc4475/', VECTORS), '.dat'), ...filesIn(new URL('rfc5118/', VECTORS)), ...corpus('sip')],
  run(input) {
    let msg;
    try {
      msg = parseMessage(input);
    } catch (e) {
      expectOnly(e, SipParseError);
      if (![400, 413, 505].includes((e as SipParseError).status)) throw new FuzzDefect(`status ${(e as SipParseError).status}`);
    }
    if (msg) {
      const again = parseMessage(serializeMessage(msg));
      if (headerPairs(again) !== headerPairs(msg) || !again.body.equals(msg.body)) throw new FuzzDefect('serialize/parse round trip changed the message');
    }
    const framer = new StreamFramer({ maxMessageBytes: 65535, maxHeaders: 256, maxLineBytes: 8192 });
    const cut = input.length >> 1;
    framer.push(input.subarray(0, cut));
    framer.push(input.subarray(cut));
  },
};

/**
 * STUN/TURN: decodeStunMessage raises StunDecodeError or returns a message
 * that encodes back to the same bytes when no attribute carried non-zero
 * padding; every address, ERROR-CODE, UNKNOWN-ATTRIBUTES and text attribute
 * decodes or raises StunDecodeError; ChannelData and the TURN stream framer
 * raise only their own errors.
 */
const stun: FuzzTarget = {
  name: 'stun',
  seeds: () => [...filesIn(new URL('rfc5769/', VECTORS), '.bin'), ...corpus('stun')],
  run(input) {
    let msg;
    try {
      msg = decodeStunMessage(input);
    } catch (e) {
      expectOnly(e, StunDecodeError);
    }
    if (msg) {
      for (const a of msg.attributes) {
        try {
          switch (a.type) {
            case AttributeType.MappedAddress:
              decodeMappedAddress(a.value);
              break;
            case AttributeType.XorMappedAddress:
            case AttributeType.XorPeerAddress:
            case AttributeType.XorRelayedAddress:
              decodeXorAddress(a.value, msg.transactionId);
              break;
            case AttributeType.ErrorCode:
              decodeErrorCode(a.value);
              break;
            case AttributeType.UnknownAttributes:
              decodeUnknownAttributes(a.value);
              break;
            case AttributeType.Username:
            case AttributeType.Realm:
            case AttributeType.Nonce:
            case AttributeType.Software:
              decodeText(a.value);
              break;
          }
        } catch (e) {
          expectOnly(e, StunDecodeError);
        }
      }
      const dropped = msg.attributes.length < countAttributes(input);
      if (!dropped && !msg.attributes.some((a) => a.padding)) {
        const zeroPadded = encodeStunMessage(msg);
        if (!zeroPadded.equals(input)) throw new FuzzDefect('decode/encode round trip changed the bytes');
      }
    }
    try {
      decodeChannelData(input);
    } catch (e) {
      expectOnly(e, ChannelDataError);
    }
    try {
      new TurnStreamFramer().push(input);
    } catch (e) {
      expectOnly(e, StreamFramingError);
    }
  },
};

/** Attribute TLVs in a STUN message whose framing decoded (to tell whether the decoder dropped some). */
function countAttributes(buf: Buffer): number {
  let n = 0;
  for (let off = 20; off + 4 <= buf.length; n++) {
    const len = buf.readUInt16BE(off + 2);
    off += 4 + len + ((4 - (len % 4)) % 4);
  }
  return n;
}

/**
 * Digest: parseCredentials and parseAuthParams on the bytes read as UTF-8
 * raise AuthError (a 400) or return; what parseAuthParams returns, written
 * back with every value quoted and escaped, parses to the same parameters.
 */
const digest: FuzzTarget = {
  name: 'digest',
  seeds: () => [...digestSeeds(), ...corpus('digest')],
  run(input) {
    const text = input.toString('utf8');
    try {
      parseCredentials(text);
    } catch (e) {
      expectOnly(e, AuthError);
    }
    let parsed;
    try {
      parsed = parseAuthParams(text);
    } catch (e) {
      expectOnly(e, AuthError);
    }
    if (parsed) {
      const params = [...parsed.params].map(([k, v]) => `${k}="${v.replace(/["\\]/g, (c) => `\\${c}`)}"`);
      const again = parseAuthParams(`${parsed.scheme} ${params.join(', ')}`);
      if (JSON.stringify([...again.params]) !== JSON.stringify([...parsed.params])) throw new FuzzDefect('auth-param round trip changed the parameters');
    }
  },
};

/** Authorization header values built from the digest vectors (RFC 2617 §3.5, RFC 7616 §3.9). */
function digestSeeds(): Buffer[] {
  const { vectors } = JSON.parse(readFileSync(new URL('digest/vectors.json', VECTORS), 'utf8')) as {
    vectors: Record<string, string>[];
  };
  return vectors.map((v) =>
    Buffer.from(
      `Digest username="${v.username}", realm="${v.realm}", nonce="${v.nonce}", uri="${v.uri}", algorithm=${v.algorithm}, ` +
        `response="${v.response}", opaque="${v.opaque}", qop=${v.qop}, nc=${v.nc}, cnonce="${v.cnonce}"`,
    ),
  );
}

export const TARGETS: readonly FuzzTarget[] = [sip, stun, digest];
