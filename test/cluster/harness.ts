/**
 * `rtcedge serve` with several SIP workers as a process (the built CLI), for
 * the tests of test/cluster/: a configuration in a new temp dir, users added
 * with the CLI, and Call-IDs chosen for the worker that must own them.
 */
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { callIdOwner } from '../../src/transport/call-id-owner.js';
import { expect } from 'vitest';
import { getHeader, type SipRequest, type SipResponse } from '../../src/sip/message.js';
import { parseMessage } from '../../src/sip/parser.js';
import { serializeMessage } from '../../src/sip/serializer.js';
import { requireBuild, runCli, startServe, type ServeProcess } from '../cli/harness.js';
import type { UdpUa } from '../helpers/udp-ua.js';

/** A Call-ID that worker `owner` of `count` owns (transport/call-id-owner.ts). */
export function callIdFor(owner: number, count = 2): string {
  for (;;) {
    const id = `${randomBytes(6).toString('hex')}@127.0.0.1`;
    if (callIdOwner(id, count) === owner) return id;
  }
}

/** A running `rtcedge serve` and its temp dir (data_dir is `dir/data`); `stop()` stops it and removes the dir. */
export interface ServedWorkers {
  dir: string;
  server: ServeProcess;
  stop(): Promise<void>;
}

/**
 * Write `config` (YAML; `data_dir` is set to `dir/data`) in a new temp dir
 * named after `name`, add `users` of `domain` with `password`, and start
 * `rtcedge serve` until it logs ready.
 * @throws Error when a user cannot be added or the server does not get ready.
 */
export async function serveWorkers(name: string, config: Record<string, unknown>, domain: string, users: string[], password: string): Promise<ServedWorkers> {
  requireBuild();
  const dir = mkdtempSync(join(tmpdir(), `${name}-`));
  const configFile = join(dir, 'rtcedge.yaml');
  writeFileSync(configFile, stringify({ data_dir: join(dir, 'data'), ...config }));
  for (const user of users) {
    const added = runCli(['user', 'add', `${user}@${domain}`, '--password-stdin', '-c', configFile], dir, `${password}\n`);
    if (added.status !== 0) throw new Error(`user add ${user}: ${added.stderr}`);
  }
  const server = await startServe(configFile, dir);
  return {
    dir,
    server,
    async stop() {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A guessing UA on 127.0.0.2 (or `address`; its own UDP socket) against a two-worker server
 * on 127.0.0.1:`port`: `guess(perSource)` sends `perSource` REGISTERs for alice with a
 * wrong password, their Call-IDs owned by each worker in turn, and asserts 401
 * then 403 for each; before the last one both workers still answer it. Then
 * `answered(owner)` says whether an OPTIONS owned by `owner` still gets an
 * answer within 1 s (false once the address is banned there).
 * @param ua the UA whose requests and digests are sent from the guessing socket.
 */
export async function guessingSource(ua: UdpUa, port: number, domain: string, address = '127.0.0.2') {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((r) => socket.bind(0, address, () => r()));
  const received: SipResponse[] = [];
  socket.on('message', (data) => received.push(parseMessage(data) as SipResponse));
  const answer = async (req: SipRequest, timeoutMs = 3000): Promise<SipResponse | undefined> => {
    const cseq = getHeader(req, 'cseq');
    const callId = getHeader(req, 'call-id');
    socket.send(serializeMessage(req), port, '127.0.0.1');
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const r = received.find((m) => getHeader(m, 'call-id') === callId && getHeader(m, 'cseq') === cseq && m.status >= 200);
      if (r) return r;
      await new Promise((res) => setTimeout(res, 20));
    }
    return undefined;
  };
  const options = (owner: number) => ua.request('OPTIONS', `sip:${domain}`, { from: `sip:x@${domain}`, to: `sip:${domain}`, callId: callIdFor(owner) });
  return {
    async guess(perSource: number): Promise<void> {
      for (let i = 0; i < perSource; i++) {
        // Before the last failure, both workers still answer the address.
        if (i === perSource - 1) for (const owner of [0, 1]) expect((await answer(options(owner)))?.status).toBe(200);
        const req = ua.request('REGISTER', `sip:${domain}`, { from: `sip:alice@${domain}`, to: `sip:alice@${domain}`, callId: callIdFor(i % 2) });
        const challenge = await answer(req);
        expect(challenge?.status).toBe(401);
        expect((await answer(ua.authorize(req, challenge!, 'alice', 'wrong')))?.status).toBe(403);
      }
    },
    async answered(owner: number): Promise<boolean> {
      return (await answer(options(owner), 1000)) !== undefined;
    },
    close: () => socket.close(),
  };
}

/**
 * Starts a call from `caller` (user `from`, password `password`) to `to` on the
 * server at 127.0.0.1:`port`, its Call-ID owned by worker `owner`: the INVITE,
 * its 407 (asserted), and the INVITE with credentials sent. Resolves with that
 * second INVITE and the Call-ID; its final response is the caller's to await.
 */
export async function authenticatedInvite(caller: UdpUa, port: number, domain: string, owner: number, from: string, password: string, to: string): Promise<{ authed: SipRequest; callId: string }> {
  const callId = callIdFor(owner);
  const req = caller.request('INVITE', `sip:${to}@${domain}`, { from: `sip:${from}@${domain}`, to: `sip:${to}@${domain}`, callId });
  caller.send(req, port);
  const authed = caller.authorize(req, await caller.response(req, 407), from, password);
  caller.send(authed, port);
  return { authed, callId };
}
