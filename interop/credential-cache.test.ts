/**
 * The in-memory credential cache of a running server follows the store when
 * another process changes it: `rtcedge user passwd`, `user del` and `user add`
 * (the CLI, a separate process writing the SQLite file) take effect for
 * sipsak's digest REGISTERs within the cache's poll interval (500 ms,
 * auth/credential-cache.ts), without a restart or reload.
 *
 * Ports: rtcedge UDP 29480; sipsak's own on ephemeral loopback ports.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWithPeers } from './harness/peers.js';
import { assertPortsFree } from './harness/ports.js';
import { stopAllStarted } from './harness/process.js';
import { startRtcedge, type Rtcedge } from './harness/rtcedge.js';
import { runSipsak, sipsakRegisterArgs } from './harness/sipsak.js';
import { makeTempDir, removeTempDir } from './harness/temp-dir.js';

const PORT = 29480;
const REALM = 'example.test';
/** Longer than the users generation poll interval (USERS_GENERATION_POLL_MS = 500). */
const AFTER_POLL_MS = 700;

const register = (user: string, password: string) =>
  runSipsak(sipsakRegisterArgs({ target: `sip:${user}@127.0.0.1:${PORT}`, contact: `sip:${user}@127.0.0.1:29481`, user, password, expires: 60 }), {
    timeoutMs: 10_000,
  });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** 403s the server has sent to REGISTERs so far (its SIP log). */
const refusals = () => server!.sipLog({ direction: 'send', status: 403, cseqMethod: 'REGISTER' }).length;

let server: Rtcedge | undefined;

describeWithPeers(['sipsak'])('credential cache: changes made by the CLI reach the running server', () => {
  let dir: string;

  beforeAll(async () => {
    await assertPortsFree('127.0.0.1', [PORT]);
    dir = makeTempDir('credential-cache');
    server = await startRtcedge({ dir, ports: { udp: PORT }, users: [{ aor: `carol@${REALM}`, password: 'old-pw-1' }] });
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
    await stopAllStarted();
    removeTempDir(dir);
  });

  it('user passwd: the new password registers and the old one gets 403 once the poll interval passed', async () => {
    const before = await register('carol', 'old-pw-1');
    expect(before.code, before.output).toBe(0);
    expect(server!.bindings(`sip:carol@${REALM}`)).toHaveLength(1);
    const passwd = await server!.cli(['user', 'passwd', `carol@${REALM}`, '--password-stdin'], 'new-pw-2\n');
    expect(passwd.code, passwd.output).toBe(0);
    await sleep(AFTER_POLL_MS);
    const refused = refusals();
    const old = await register('carol', 'old-pw-1');
    expect(old.code).not.toBe(0);
    expect(refusals()).toBe(refused + 1);
    const fresh = await register('carol', 'new-pw-2');
    expect(fresh.code, fresh.output).toBe(0);
    expect(refusals()).toBe(refused + 1);
  });

  it('user del and user add: a deleted user gets 403, a user added while the server runs registers', async () => {
    // Both answers are in the cache now (the unknown one too).
    const refused = refusals();
    expect((await register('dave', 'dave-pw-3')).code).not.toBe(0);
    expect(refusals()).toBe(refused + 1);
    expect((await server!.cli(['user', 'del', `carol@${REALM}`])).code).toBe(0);
    await server!.addUser({ aor: `dave@${REALM}`, password: 'dave-pw-3' });
    await sleep(AFTER_POLL_MS);
    expect((await register('carol', 'new-pw-2')).code).not.toBe(0);
    expect(refusals()).toBe(refused + 2);
    const added = await register('dave', 'dave-pw-3');
    expect(added.code, added.output).toBe(0);
    expect(server!.bindings(`sip:dave@${REALM}`)).toHaveLength(1);
  });
});
