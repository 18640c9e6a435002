/**
 * 200 TURN clients behind one address (one IP, 200 ports)
 * allocate at once, each with one unauthenticated Allocate (401) and one
 * authenticated Allocate, without a retransmission: none of their challenges
 * is held back by the default limits, nor by strict limits when the address
 * is in the exempt sources. Assertions are on answers and counters, not time.
 */
import { createHash, randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { decodeErrorCode, decodeText, encodeRequestedTransport } from '../../src/stun/stun-attributes.js';
import { AttributeType as A, decodeStunMessage, encodeStunMessage, getAttribute, type StunAttribute, type StunMessage, StunMethod } from '../../src/stun/stun-message.js';
import { TurnServer, type TurnServerOptions } from '../../src/turn/index.js';
import { turnTestOptions } from '../helpers/turn-options.js';

const REALM = 'rtcedge.test';
const KEY = createHash('md5').update(`alice:${REALM}:alicepw`).digest();
const CLIENTS = 200;
const transport: StunAttribute = { type: A.RequestedTransport, value: encodeRequestedTransport(17) };

const started: TurnServer[] = [];
const sockets: dgram.Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.close();
  for (const s of started.splice(0)) await s.stop();
});

/** One request, one answer; no retransmission (undefined when nothing came back within 5 s). */
function transact(s: dgram.Socket, port: number, req: Buffer): Promise<StunMessage | undefined> {
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(undefined), 5000);
    s.once('message', (data) => {
      clearTimeout(t);
      resolve(decodeStunMessage(data));
    });
    s.send(req, port, '127.0.0.1');
  });
}

async function client(port: number): Promise<'allocated' | string> {
  const s = dgram.createSocket('udp4');
  sockets.push(s);
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  const challenge = await transact(s, port, encodeStunMessage({ method: StunMethod.Allocate, class: 'request', transactionId: randomBytes(12), attributes: [transport] }));
  if (!challenge) return 'no challenge';
  if (challenge.class !== 'error' || decodeErrorCode(getAttribute(challenge, A.ErrorCode)!.value).code !== 401) return 'not 401';
  const nonce = decodeText(getAttribute(challenge, A.Nonce)!.value);
  const attributes = [transport, { type: A.Username, value: Buffer.from('alice') }, { type: A.Realm, value: Buffer.from(REALM) }, { type: A.Nonce, value: Buffer.from(nonce) }];
  const r = await transact(s, port, encodeStunMessage({ method: StunMethod.Allocate, class: 'request', transactionId: randomBytes(12), attributes }, { integrityKey: KEY, fingerprint: true }));
  if (!r) return 'no answer to the authenticated Allocate';
  return r.class === 'success' ? 'allocated' : `error ${decodeErrorCode(getAttribute(r, A.ErrorCode)!.value).code}`;
}

async function burst(over: Partial<TurnServerOptions>): Promise<{ results: string[]; server: TurnServer }> {
  const server = new TurnServer(turnTestOptions({
    realm: REALM,
    listen: [{ transport: 'udp', host: '127.0.0.1', port: 0 }],
    relayPortMin: 35000,
    relayPortMax: 35399,
    nonceSecret: Buffer.from('k'),
    getKey: async (u) => (u === 'alice' ? KEY : undefined),
    maxAllocationsPerUser: 0,
    dataPlane: 'typescript',
    ...over,
  }));
  started.push(server);
  await server.start();
  const port = server.addresses()[0]!.port;
  const results = await Promise.all(Array.from({ length: CLIENTS }, () => client(port)));
  return { results, server };
}

describe('200 TURN clients behind one address', () => {
  it('all allocate at once under the default challenge limits (loopback not exempt)', async () => {
    const { results, server } = await burst({ exemptSources: [] });
    expect(results.filter((r) => r !== 'allocated')).toEqual([]);
    expect(server.stats()).toMatchObject({ allocations: CLIENTS, challengesSuppressed: 0 });
  });

  it('all allocate at once under strict limits when their address is an exempt source', async () => {
    const { results, server } = await burst({ exemptSources: ['127.0.0.0/8'], challengeRatePerS: 1, challengeAddressRatePerS: 1 });
    expect(results.filter((r) => r !== 'allocated')).toEqual([]);
    expect(server.stats()).toMatchObject({ allocations: CLIENTS, challengesSuppressed: 0 });
  });

  it('holds back challenges over the per-address limit when the address is not exempt', async () => {
    const { results, server } = await burst({ exemptSources: [], challengeAddressRatePerS: 50 });
    expect(results.filter((r) => r === 'allocated').length).toBeLessThan(CLIENTS);
    expect(server.stats().challengesSuppressed).toBeGreaterThan(0);
  });
});
