/**
 * Two SIP workers in this process (startServer with a worker mesh each, one
 * data_dir), each on its own ports so that a test chooses the worker a
 * message lands on: a request without credentials that a worker does not own
 * is challenged where it lands, with the bytes its Call-ID owner sends for
 * the same request in the same second; the credentialed request then goes to
 * the owner and succeeds; the ACK of the challenge is absorbed wherever it
 * lands. The mesh group counts what is handed over (channel `sip.in`), the
 * summary lines count what was answered where it landed.
 *
 * Ports: 27330 (worker 0, UDP and TCP), 27331 (worker 1, UDP and TCP).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { startServer, type RunningServer } from '../../src/server.js';
import { openUserStore } from '../../src/store/user-store.js';
import { credentialsFor } from '../../src/store/users.js';
import { getHeader, type SipRequest, type SipResponse } from '../../src/sip/message.js';
import { parseMessage } from '../../src/sip/parser.js';
import { meshGroup, type MeshGroup } from '../helpers/mesh-group.js';
import { UdpUa } from '../helpers/udp-ua.js';
import { TcpConnection } from '../helpers/tcp-ua.js';
import { callIdFor } from './harness.js';

const PORTS = [27330, 27331];
const DOMAIN = 'example.test';
const PW = 'landing-pw';

/** One summary line of a worker (the counters this test reads). */
interface Summary {
  worker: number;
  handedOff: number;
  handedIn: number;
  answeredHere: number;
  statelessChallenges: number;
  challengeAcks: number;
}

describe('requests without credentials answered by the worker they land on', () => {
  let dir: string;
  let group: MeshGroup;
  const servers: RunningServer[] = [];
  const summaries: Summary[] = [];
  const uas: UdpUa[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'rtcedge-answer-here-'));
    group = meshGroup(2);
    const base = { data_dir: dir, domains: [DOMAIN], log: { level: 'info', summary_interval: 1 }, turn: { enabled: false }, federation: { require_tls: false } };
    const store = await openUserStore(parseConfig(base));
    for (const user of ['alice', 'bob']) await store.addUser({ username: user, domain: DOMAIN, ha1: credentialsFor(user, DOMAIN, PW, ['MD5']), phones: [] });
    await store.close();
    for (const worker of [0, 1]) {
      const port = PORTS[worker]!;
      const config = parseConfig({ ...base, sip: { workers: 2, listen: [{ transport: 'udp', host: '127.0.0.1', port }, { transport: 'tcp', host: '127.0.0.1', port }] } });
      // The summary lines of this worker, as JSON (the cluster adds `worker` to a worker's lines).
      const lines = new Writable({
        write(chunk: Buffer, _enc, done) {
          for (const l of chunk.toString('utf8').split('\n')) if (l.includes('"msg":"summary"')) summaries.push({ ...(JSON.parse(l) as Summary), worker });
          done();
        },
      });
      servers.push(await startServer(config, pino({ level: 'info' }, lines), { worker: { mesh: group.meshes[worker]! } }));
    }
  }, 30_000);

  afterAll(async () => {
    for (const ua of uas) ua.close();
    for (const s of servers) await s.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A UA that also keeps every datagram it receives as bytes. */
  async function ua(): Promise<UdpUa & { raw: Buffer[] }> {
    const u = Object.assign(await UdpUa.open(), { raw: [] as Buffer[] });
    u.socket.on('message', (d) => u.raw.push(d));
    uas.push(u);
    return u;
  }

  /** The raw bytes of the responses with status `status` to Call-ID `callId`, in arrival order. */
  function rawResponses(u: { raw: Buffer[] }, callId: string, status: number): Buffer[] {
    return u.raw.filter((d) => {
      const m = parseMessage(d);
      return m.kind === 'response' && m.status === status && getHeader(m, 'call-id') === callId;
    });
  }

  /** Wait until less than half of the current second is gone, so two sends fall in the same second. */
  async function earlyInSecond(): Promise<void> {
    const ms = Date.now() % 1000;
    if (ms > 500) await new Promise((r) => setTimeout(r, 1010 - ms));
  }

  const handedIn = () => group.delivered.get('sip.in') ?? 0;
  const total = (k: keyof Summary, worker: number) => summaries.filter((s) => s.worker === worker).reduce((n, s) => n + s[k], 0);

  it('a REGISTER challenged by the worker not owning it gets the owner\'s bytes; the credentialed REGISTER goes to the owner and succeeds', async () => {
    const phone = await ua();
    const callId = callIdFor(0);
    const reg = phone.request('REGISTER', `sip:${DOMAIN}`, { from: `sip:alice@${DOMAIN}`, to: `sip:alice@${DOMAIN}`, callId, contactUser: 'alice' });
    await earlyInSecond();
    const before = handedIn();
    phone.send(reg, PORTS[1]!); // worker 1: not the owner
    await phone.response(reg, 401);
    await group.settle();
    expect(handedIn(), 'nothing handed over for the challenge').toBe(before);
    phone.send(reg, PORTS[0]!); // worker 0: the owner, the same request in the same second
    await expect.poll(() => rawResponses(phone, callId, 401).length).toBe(2);
    const [here, owner] = rawResponses(phone, callId, 401);
    expect(here!.toString('latin1')).toBe(owner!.toString('latin1'));
    expect(here!.equals(owner!)).toBe(true);

    const challenge = parseMessage(here!) as SipResponse;
    const authed = phone.authorize(reg, challenge, 'alice', PW);
    phone.send(authed, PORTS[1]!); // lands on worker 1, handed to worker 0, which accepts the nonce as its own
    expect((await phone.response(authed)).status).toBe(200);
    expect(handedIn()).toBe(before + 1);
  });

  it('an INVITE challenged where it lands: the owner\'s bytes, its ACK absorbed on either worker, the credentialed INVITE reaches the callee', async () => {
    const bob = await ua();
    // Registered through its owner, so that nothing of it is answered elsewhere.
    const reg = bob.request('REGISTER', `sip:${DOMAIN}`, { from: `sip:bob@${DOMAIN}`, to: `sip:bob@${DOMAIN}`, callId: callIdFor(0), contactUser: 'bob' });
    bob.send(reg, PORTS[0]!);
    const regAuthed = bob.authorize(reg, await bob.response(reg, 401), 'bob', PW);
    bob.send(regAuthed, PORTS[0]!);
    expect((await bob.response(regAuthed)).status).toBe(200);
    const alice = await ua();
    const callId = callIdFor(1);
    const invite = alice.request('INVITE', `sip:bob@${DOMAIN}`, { from: `sip:alice@${DOMAIN}`, to: `sip:bob@${DOMAIN}`, callId });
    await earlyInSecond();
    await group.settle();
    const before = handedIn();
    const acksBefore = total('challengeAcks', 0) + total('challengeAcks', 1);
    alice.send(invite, PORTS[0]!); // worker 0: not the owner
    alice.send(invite, PORTS[1]!); // worker 1: the owner
    await expect.poll(() => rawResponses(alice, callId, 407).length).toBe(2);
    const [first, second] = rawResponses(alice, callId, 407);
    expect(first!.equals(second!)).toBe(true);
    const challenge = parseMessage(first!) as SipResponse;
    expect(getHeader(challenge, 'to')).toMatch(/;tag=ch/);

    const ack: SipRequest = {
      kind: 'request',
      method: 'ACK',
      uri: invite.uri,
      headers: [
        ...invite.headers.filter((h) => /^(via|from|call-id|max-forwards)$/i.test(h.name)),
        { name: 'To', value: getHeader(challenge, 'to')! },
        { name: 'CSeq', value: `${getHeader(invite, 'cseq')!.split(' ')[0]} ACK` },
      ],
      body: Buffer.alloc(0),
    };
    alice.send(ack, PORTS[0]!);
    alice.send(ack, PORTS[1]!);
    await group.settle();
    expect(handedIn(), 'neither the challenge nor its ACK handed over').toBe(before);

    const authed = alice.authorize(invite, challenge, 'alice', PW);
    alice.send(authed, PORTS[0]!); // handed to worker 1
    const got = (await bob.waitFor((m) => m.kind === 'request' && m.method === 'INVITE' && getHeader(m, 'call-id') === callId)) as SipRequest;
    expect(getHeader(got, 'proxy-authorization')).toBeUndefined();
    expect(bob.received.filter((m) => m.kind === 'request' && m.method === 'ACK')).toEqual([]);
    expect(handedIn()).toBe(before + 1);
    // Both ACKs absorbed (one per worker), counted in the summary lines.
    await expect.poll(() => total('challengeAcks', 0) + total('challengeAcks', 1) - acksBefore, { timeout: 4000 }).toBe(2);
  });

  it('over TCP the challenge leaves on the connection it came in on, from the worker holding it', async () => {
    const conn = await TcpConnection.connect(PORTS[1]!);
    try {
      const helper = await ua();
      const callId = callIdFor(0);
      const viaTcp = { name: 'Via', value: `SIP/2.0/TCP 127.0.0.1:${conn.localPort};branch=z9hG4bK${callId.slice(0, 12)}` };
      const reg = helper.request('REGISTER', `sip:${DOMAIN}`, { from: `sip:alice@${DOMAIN}`, to: `sip:alice@${DOMAIN}`, callId });
      await group.settle();
      const before = handedIn();
      conn.send({ ...reg, headers: reg.headers.map((h) => (/^via$/i.test(h.name) ? viaTcp : h)) });
      const res = (await conn.waitFor((m) => m.kind === 'response' && getHeader(m, 'call-id') === callId)) as SipResponse;
      expect(res.status).toBe(401);
      await group.settle();
      expect(handedIn()).toBe(before);
    } finally {
      conn.destroy();
    }
  });

  it('the summary lines count what each worker answered where it landed', async () => {
    // Worker 1 answered the REGISTERs (UDP, TCP) of worker 0; worker 0 the INVITE and one ACK of worker 1.
    await expect.poll(() => total('answeredHere', 1), { timeout: 4000 }).toBe(2);
    await expect.poll(() => total('answeredHere', 0), { timeout: 4000 }).toBe(2);
    await expect.poll(() => total('handedIn', 0) + total('handedIn', 1), { timeout: 4000 }).toBe(total('handedOff', 0) + total('handedOff', 1));
    expect(total('handedOff', 0) + total('handedOff', 1)).toBe(2);
  });
});
