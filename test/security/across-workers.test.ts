/**
 * Bans, failed-authentication counts and call limits across SIP workers
 * (security/worker-peers.ts): N security layers joined by an in-process mesh
 * group, payloads copied between them as over a socket.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { BanFileWriter, readBanFile } from '../../src/admin/ban-file.js';
import { parseConfig } from '../../src/config/load.js';
import { silentLogger } from '../../src/log.js';
import { BanList } from '../../src/security/ban-list.js';
import { createSecurity, type Security } from '../../src/security/security.js';
import type { CallTransaction } from '../../src/security/call-limits.js';
import { ownerOf, SECURITY_CHANNELS } from '../../src/security/worker-peers.js';
import type { SipMessage, SipResponse } from '../../src/sip/message.js';
import { meshGroup, type MeshGroup } from '../helpers/mesh-group.js';

/** `sip.security` with the given overrides (snake_case, as in the file). */
function settings(security: Record<string, unknown>) {
  return parseConfig({ sip: { security } }).sip.security;
}

/** One security layer per worker of `group`, sharing a fake clock. */
function workers(group: MeshGroup, security: Record<string, unknown>, hooks: (i: number) => Parameters<typeof createSecurity>[2] = () => ({})): Security[] {
  return group.meshes.map((peers, i) => createSecurity(settings(security), silentLogger, hooks(i), { peers }));
}

/** A key whose owner among `count` workers is `owner`. */
function keyOwnedBy(prefix: string, owner: number, count: number): string {
  for (let i = 0; ; i++) if (ownerOf(`${prefix}${i}`, count) === owner) return `${prefix}${i}`;
}

/** An INVITE server transaction as the call limits see it; the responses sent on it are collected. */
function invite(callId: string): CallTransaction & { sent: number[]; finalSent: boolean } {
  const sent: number[] = [];
  return {
    sent,
    finalSent: false,
    request: { kind: 'request', method: 'INVITE', uri: 'sip:bob@example.test', headers: [{ name: 'Call-ID', value: callId }], body: Buffer.alloc(0) } as never,
    respond: (res: SipResponse) => void sent.push(res.status),
  };
}

function bye(callId: string): SipMessage {
  return { kind: 'request', method: 'BYE', uri: 'sip:alice@127.0.0.1', headers: [{ name: 'Call-ID', value: callId }], body: Buffer.alloc(0) } as unknown as SipMessage;
}

describe('ownerOf', () => {
  it('gives every worker a share of the keys, the same in every process', () => {
    const seen = [0, 0, 0];
    for (let i = 0; i < 3000; i++) seen[ownerOf(`192.0.2.${i % 256}:${i}`, 3)]!++;
    for (const n of seen) expect(n).toBeGreaterThan(800);
    // The published FNV-1a 32-bit test vectors: "a" → 0xe40c292c, "foobar" → 0xbf9cf968 (no per-process seed).
    expect(ownerOf('a', 2 ** 31)).toBe(0xe40c292c % 2 ** 31);
    expect(ownerOf('foobar', 1000)).toBe(0xbf9cf968 % 1000);
    expect(ownerOf('alice', 1)).toBe(0);
  });
});

describe('bans across workers', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('a ban decided by one worker is applied by every worker; only worker 0 writes bans.json; an unban reaches all', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rtcedge-bans-'));
    dirs.push(dir);
    const group = meshGroup(3);
    const writes: number[] = [];
    const file = new BanFileWriter(dir, silentLogger, 0);
    const sec = workers(group, { auth_failures: { per_source: 2 } }, (i) => ({
      onBansChanged: (bans) => {
        writes.push(i);
        file.update(bans);
      },
    }));
    sec[2]!.bans.ban('192.0.2.9', 600, 'request-rate');
    await group.settle();
    for (const s of sec) expect(s.bans.isBanned('192.0.2.9')).toBe(true);
    // The ban decided on worker 2 reached worker 0's file, written by worker 0 alone.
    expect(writes).toEqual([0]);
    file.flush();
    expect(readBanFile(dir).map((b) => [b.address, b.reason])).toEqual([['192.0.2.9', 'request-rate']]);

    sec[1]!.bans.unban('192.0.2.9');
    await group.settle();
    for (const s of sec) expect(s.bans.isBanned('192.0.2.9')).toBe(false);
    file.flush();
    expect(readBanFile(dir)).toEqual([]);
  });

  it('a worker that starts after a ban fetches the active bans from worker 0', async () => {
    const group = meshGroup(2);
    const first = createSecurity(settings({}), silentLogger, {}, { peers: group.meshes[0]! });
    first.bans.ban('192.0.2.44', 600, 'auth-failures');
    await group.settle();
    const late = createSecurity(settings({}), silentLogger, {}, { peers: group.meshes[1]! });
    await group.settle();
    expect(late.bans.list().map((b) => [b.address, b.reason])).toEqual([['192.0.2.44', 'auth-failures']]);
  });
});

describe('bans and failures through a shared store (Redis) instead of the mesh', () => {
  /**
   * Three workers whose bans and failures per source go to a store as RedisAbuseChannel does (publish once, handed
   * back to every worker; one count per address); with `up` false the store cannot be reached and the hooks fall back
   * to the mesh, as server.ts shareAbuse does.
   */
  function sharedWorkers(perSource: number) {
    const group = meshGroup(3);
    const store = { up: true, published: [] as string[], counts: new Map<string, number>() };
    const sec: Security[] = [];
    group.meshes.forEach((peers, i) => {
      sec.push(
        createSecurity(settings({ auth_failures: { per_source: perSource, per_user: 0 } }), silentLogger, {}, { peers }, {
          ban(ban) {
            if (!store.up) return sec[i]!.bans.broadcast(ban);
            store.published.push(ban.address);
            for (const w of sec) w.bans.applyShared(ban, 'debug');
          },
          sourceFailure(address, username) {
            if (!store.up) return sec[i]!.failures.countSource(address, username);
            const n = (store.counts.get(address) ?? 0) + 1;
            store.counts.set(address, n);
            if (n >= perSource) sec[i]!.bans.ban(address, 600, 'auth-failures');
          },
        }),
      );
    });
    return { group, store, sec };
  }

  it('a ban is published once and applied by every worker from the store; failures are counted there; nothing goes over the mesh', async () => {
    const { group, store, sec } = sharedWorkers(3);
    sec[2]!.bans.ban('192.0.2.9', 600, 'request-rate');
    for (const s of sec) s.failures.failed('alice', '192.0.2.77');
    await group.settle();
    for (const s of sec) expect([s.bans.isBanned('192.0.2.9'), s.bans.isBanned('192.0.2.77')]).toEqual([true, true]);
    expect(store.published).toEqual(['192.0.2.9', '192.0.2.77']);
    expect(store.counts.get('192.0.2.77')).toBe(3);
    expect(group.delivered.get(SECURITY_CHANNELS.ban) ?? 0).toBe(0);
    expect(group.delivered.get(SECURITY_CHANNELS.sourceFailure) ?? 0).toBe(0);
    // The worker's own ban handed back by the store changes nothing.
    expect(sec[2]!.bans.applyShared({ address: '192.0.2.9', reason: 'request-rate', until: sec[2]!.bans.list()[0]!.until }, 'debug')).toBe(false);
  });

  it('with the store unreachable, a ban and the failures of a source go over the mesh as without it', async () => {
    const { group, store, sec } = sharedWorkers(3);
    store.up = false;
    sec[1]!.bans.ban('192.0.2.10', 600, 'request-rate');
    for (const s of sec) s.failures.failed('alice', '192.0.2.78');
    await group.settle();
    for (const s of sec) expect([s.bans.isBanned('192.0.2.10'), s.bans.isBanned('192.0.2.78')]).toEqual([true, true]);
    expect(store.published).toEqual([]);
    expect(group.delivered.get(SECURITY_CHANNELS.sourceFailure)).toBe(2);
  });
});

describe('bans for a restarted worker', () => {
  it('the ban-file worker sends its active bans to a worker whose connection opens again', async () => {
    const group = meshGroup(2);
    const keeper = new BanList({ logger: silentLogger, peers: group.meshes[0]!, pushToJoiningWorkers: true });
    group.disconnect(1);
    keeper.ban('192.0.2.45', 600, 'request-rate');
    await group.settle();
    const restarted = new BanList({ logger: silentLogger, peers: group.meshes[1]! });
    expect(restarted.isBanned('192.0.2.45')).toBe(false);
    group.reconnect(1);
    await group.settle();
    expect(restarted.list().map((b) => [b.address, b.reason])).toEqual([['192.0.2.45', 'request-rate']]);
  });
});

describe('failed authentications across workers', () => {
  it('failures of one address spread over three workers reach per_source and ban it on every worker', async () => {
    const group = meshGroup(3);
    const sec = workers(group, { auth_failures: { per_source: 3, per_user: 0 } });
    // The address's owner keeps the count; each worker sees one failure.
    for (const s of sec) s.failures.failed('alice', '192.0.2.77');
    await group.settle();
    for (const s of sec) expect(s.bans.isBanned('192.0.2.77')).toBe(true);
    expect(group.delivered.get('security.auth-failure.source')).toBe(2);
  });

  it('without the mesh, the same spread stays under the threshold (what the owner fixes)', () => {
    const sec = [0, 1, 2].map(() => createSecurity(settings({ auth_failures: { per_source: 3, per_user: 0 } }), silentLogger));
    for (const s of sec) s.failures.failed('alice', '192.0.2.77');
    for (const s of sec) expect(s.bans.isBanned('192.0.2.77')).toBe(false);
  });

  it('a user locked by failures on several workers is locked on all, except from an address it authenticated from on any worker', async () => {
    const group = meshGroup(3);
    const user = keyOwnedBy('carol', 0, 3);
    const sec = workers(group, { auth_failures: { per_source: 0, per_user: 3 } });
    sec[1]!.failures.succeeded(user, '192.0.2.50');
    sec[1]!.failures.failed(user, '192.0.2.1');
    sec[2]!.failures.failed(user, '192.0.2.2');
    await group.settle();
    expect(await sec[2]!.failures.isLocked(user, '192.0.2.99')).toBe(false);
    sec[2]!.failures.failed(user, '192.0.2.3');
    await group.settle();
    for (const s of sec) expect(await s.failures.isLocked(user, '192.0.2.99')).toBe(true);
    // Known through worker 1: worker 2 asks the owner (worker 0), which learnt it from worker 1.
    for (const s of sec) expect(await s.failures.isLocked(user, '192.0.2.50')).toBe(false);

    // The owner does not answer: a locked user's unknown-here address is refused.
    group.disconnect(0);
    expect(await sec[2]!.failures.isLocked(user, '192.0.2.50')).toBe(true);
  });
});

describe('call limits across workers', () => {
  it('the concurrent limit holds over INVITEs reaching three workers; a BYE on the admitting worker frees the line', async () => {
    const group = meshGroup(3);
    const user = keyOwnedBy('alice', 0, 3);
    const sec = workers(group, { calls: { max_concurrent_per_user: 2, max_attempts_per_minute: 0 } });
    expect(await sec[1]!.calls.admitTransaction(user, invite('c1'))).toBeUndefined();
    expect(await sec[2]!.calls.admitTransaction(user, invite('c2'))).toBeUndefined();
    expect(await sec[2]!.calls.admitTransaction(user, invite('c3'))).toEqual({ status: 486, reason: 'Busy Here: concurrent call limit', headers: [] });
    expect(sec[0]!.calls.activeCalls(user)).toBe(2);

    sec[1]!.calls.observe(bye('c1'));
    await group.settle();
    expect(sec[0]!.calls.activeCalls(user)).toBe(1);
    // A non-2xx final response on the transaction ends the call too.
    const t4 = invite('c4');
    expect(await sec[1]!.calls.admitTransaction(user, t4)).toBeUndefined();
    t4.respond({ status: 487 } as SipResponse);
    await group.settle();
    expect(t4.sent).toEqual([487]);
    expect(sec[0]!.calls.activeCalls(user)).toBe(1);
  });

  it('a call cancelled while its owner was asked is ended at once (it holds no line)', async () => {
    const group = meshGroup(2);
    const user = keyOwnedBy('frank', 1, 2);
    const sec = workers(group, { calls: { max_concurrent_per_user: 1, max_attempts_per_minute: 0 } });
    const t = invite('x1');
    const asked = sec[0]!.calls.admitTransaction(user, t);
    t.finalSent = true; // a CANCEL got its 487 before the answer came
    expect(await asked).toBeUndefined();
    await group.settle();
    expect(sec[1]!.calls.activeCalls(user)).toBe(0);
  });

  it('attempts per minute are counted by the owner, whichever worker the INVITE reached', async () => {
    const group = meshGroup(2);
    const user = keyOwnedBy('dave', 1, 2);
    const sec = workers(group, { calls: { max_concurrent_per_user: 0, max_attempts_per_minute: 2 } });
    expect(await sec[0]!.calls.admitTransaction(user, invite('m1'))).toBeUndefined();
    expect(await sec[1]!.calls.admitTransaction(user, invite('m2'))).toBeUndefined();
    const refusal = await sec[0]!.calls.admitTransaction(user, invite('m3'));
    expect(refusal?.status).toBe(503);
    expect(refusal?.headers[0]?.name).toBe('Retry-After');
  });

  it('with both limits 0 a call is admitted at once on any worker: no question to the owner, nothing counted', async () => {
    const group = meshGroup(2);
    const user = keyOwnedBy('gina', 1, 2);
    const sec = workers(group, { calls: { max_concurrent_per_user: 0, max_attempts_per_minute: 0 } });
    // The owner is gone: were it asked, the admission would wait for its timeout and log a warning.
    group.disconnect(1);
    const t = invite('o1');
    const admitted = sec[0]!.calls.admitTransaction(user, t);
    expect(admitted).toBeUndefined();
    expect(sec[0]!.calls.activeCalls(user)).toBe(0);
    expect(sec[1]!.calls.activeCalls(user)).toBe(0);
    // The transaction is not followed: its final response goes out as it is.
    t.respond({ status: 486 } as SipResponse);
    expect(t.sent).toEqual([486]);
    for (let i = 0; i < 20; i++) expect(sec[1]!.calls.admitTransaction(user, invite(`o${i + 2}`))).toBeUndefined();
    expect(sec[1]!.calls.activeCalls(user)).toBe(0);
  });

  it('admits and logs a warning when the owner does not answer in time', async () => {
    const group = meshGroup(2);
    const user = keyOwnedBy('erin', 1, 2);
    const lines: { msg: string; worker?: number }[] = [];
    const logger = pino({ level: 'warn' }, { write: (s: string) => void lines.push(JSON.parse(s)) });
    const calls = createSecurity(settings({ calls: { max_concurrent_per_user: 1 } }), logger, {}, { peers: group.meshes[0]! }).calls;
    group.disconnect(1);
    expect(await calls.admitTransaction(user, invite('t1'))).toBeUndefined();
    expect(lines.map((l) => [l.msg, l.worker])).toContainEqual(["call admitted unchecked: the user's worker did not answer", 1]);
  }, 10_000);
});

describe('malformed messages on the mesh', () => {
  it('are ignored without a throw and change nothing; a malformed call admission is answered with an error', async () => {
    const group = meshGroup(2);
    const sec = workers(group, { auth_failures: { per_source: 1, per_user: 1 }, calls: { max_concurrent_per_user: 1 } });
    const { callAdmit, bans, ...oneWay } = SECURITY_CHANNELS;
    for (const channel of Object.values(oneWay)) {
      // A handler that threw would reject the request.
      for (const garbage of [null, 7, 'x', [], { address: 5, user: {}, until: 'soon', callId: null }]) await group.meshes[0]!.request(1, channel, garbage, 1000);
    }
    expect(await group.meshes[0]!.request(1, bans, 'x', 1000)).toEqual([]);
    expect(await sec[1]!.failures.isLocked('alice', '192.0.2.1')).toBe(false);
    await expect(group.meshes[0]!.request(1, callAdmit, { user: 3 }, 1000)).rejects.toThrow('call admission needs user and callId');
  });
});
