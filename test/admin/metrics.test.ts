/**
 * The admin listener of a running server: /metrics scraped during a call
 * between two test UAs and after a TURN session of turnutils_uclient (coturn)
 * finds the counters moved (and the permission and channel gauges during the session); /healthz, /readyz; the API refuses a missing token.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { silentLogger } from '../../src/log.js';
import { startServer, type RunningServer } from '../../src/server.js';
import { getHeader, getHeaderValues, type SipRequest } from '../../src/sip/message.js';
import { createResponse } from '../../src/sip/response.js';
import { credentialsFor, openStore } from '../../src/store/index.js';
import { describeWithPeers } from '../../interop/harness/peers.js';
import { runUclient } from '../../interop/harness/turnutils.js';
import { UdpUa } from '../helpers/udp-ua.js';

const SIP_PORT = 27160;
const TURN_PORT = 27178;
const PEER_PORT = 27179;
const ADMIN = 'http://127.0.0.1:27190';
const DOMAIN = 'example.test';

/** Value of one sample (`name{labels}` exactly as exposed, or a bare name), 0 when absent. */
function sample(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}

async function scrape(): Promise<string> {
  const res = await fetch(`${ADMIN}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return res.text();
}

describeWithPeers(['turnutils_uclient', 'turnutils_peer'])('admin listener of a running server', () => {
  let dir: string;
  let server: RunningServer;
  let alice: UdpUa;
  let bob: UdpUa;
  let peer: ChildProcess | undefined;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'rtcedge-metrics-'));
    const config = parseConfig({
      data_dir: dir,
      domains: [DOMAIN],
      log: { level: 'silent' },
      sip: { listen: [{ transport: 'udp', host: '127.0.0.1', port: SIP_PORT }] },
      // The TypeScript data plane: its per-direction counts are under test here (the native plane's in test/native).
      turn: { listen: [{ transport: 'udp', host: '127.0.0.1', port: TURN_PORT }], relay_address: '127.0.0.1', realm: DOMAIN, allow_loopback_peers: true, data_plane: 'typescript' },
      admin: { listen: ADMIN.slice('http://'.length) },
    });
    const store = openStore(config);
    for (const u of ['alice', 'bob']) store.addUser(u, DOMAIN, credentialsFor(u, DOMAIN, `${u}pw`, ['MD5']));
    store.close();
    server = await startServer(config, silentLogger);
    alice = await UdpUa.open();
    bob = await UdpUa.open();
    peer = spawn('turnutils_peer', ['-L', '127.0.0.1', '-p', String(PEER_PORT)], { stdio: 'ignore' });
  });

  afterAll(async () => {
    if (peer?.pid !== undefined && peer.exitCode === null) process.kill(peer.pid, 'SIGKILL');
    alice?.close();
    bob?.close();
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('health, readiness, and the API without a token', async () => {
    const health = await fetch(`${ADMIN}/healthz`);
    expect([health.status, await health.text()]).toEqual([200, 'ok\n']);
    const ready = await fetch(`${ADMIN}/readyz`);
    expect([ready.status, await ready.json()]).toEqual([200, { ready: true, checks: { store: 'ok', directory: 'ok', listeners: 'ok' } }]);
    const noToken = await fetch(`${ADMIN}/api/users`);
    expect([noToken.status, await noToken.json()]).toEqual([401, { error: 'missing or wrong bearer token (see data_dir/admin-token)' }]);
    const token = readFileSync(join(dir, 'admin-token'), 'utf8').trim();
    const users = await fetch(`${ADMIN}/api/users`, { headers: { authorization: `Bearer ${token}` } });
    expect(((await users.json()) as { username: string }[]).map((u) => u.username)).toEqual(['alice', 'bob']);
  });

  it('counts registrations, the messages of a call, auth failures and the TURN session', async () => {
    const before = await scrape();
    expect(sample(before, 'rtcedge_turn_data_plane{plane="native"}') + sample(before, 'rtcedge_turn_data_plane{plane="typescript"}')).toBe(1);
    expect(sample(before, 'rtcedge_nodejs_eventloop_lag_seconds')).toBeGreaterThanOrEqual(0);
    expect(before).toContain('rtcedge_nodejs_eventloop_lag_seconds ');
    // The lag gauges come from the server's own monitor, once each (prom-client's histogram is not used).
    for (const s of ['min', 'max', 'mean', 'stddev', 'p50', 'p90', 'p99']) {
      expect(before.split('\n').filter((l) => l.startsWith(`# TYPE rtcedge_nodejs_eventloop_lag_${s}_seconds gauge`))).toHaveLength(1);
      expect(sample(before, `rtcedge_nodejs_eventloop_lag_${s}_seconds`)).toBeGreaterThanOrEqual(0);
    }

    expect((await bob.register(SIP_PORT, 'bob', 'wrong', DOMAIN)).status).toBe(403);
    expect((await alice.register(SIP_PORT, 'alice', 'alicepw', DOMAIN)).status).toBe(200);
    expect((await bob.register(SIP_PORT, 'bob', 'bobpw', DOMAIN)).status).toBe(200);

    // A call: INVITE (challenged, then authorized) reaches bob, who answers 180 and 200.
    const invite = alice.request('INVITE', `sip:bob@${DOMAIN}`, { from: `sip:alice@${DOMAIN}`, to: `sip:bob@${DOMAIN}`, contactUser: 'alice', body: 'v=0\r\n' });
    alice.send(invite, SIP_PORT);
    const authed = alice.authorize(invite, await alice.response(invite, 407), 'alice', 'alicepw');
    alice.send(authed, SIP_PORT);
    const callId = getHeader(invite, 'call-id');
    const atBob = (await bob.waitFor((m) => m.kind === 'request' && m.method === 'INVITE' && getHeader(m, 'call-id') === callId)) as SipRequest;
    bob.send(createResponse(atBob, 180, { toTag: 'b1' }), SIP_PORT);
    await alice.response(authed, 180);
    const rr = getHeaderValues(atBob, 'record-route').map((v) => ({ name: 'Record-Route', value: v }));
    bob.send(createResponse(atBob, 200, { toTag: 'b1', headers: [{ name: 'Contact', value: `<sip:bob@127.0.0.1:${bob.port}>` }, ...rr] }), SIP_PORT);
    await alice.response(authed, 200);

    const during = await scrape();
    const moved = (series: string) => sample(during, series) - sample(before, series);
    expect(sample(during, 'rtcedge_registered_aors')).toBe(2);
    expect(sample(during, 'rtcedge_bindings')).toBe(2);
    expect(moved('rtcedge_sip_requests_total{direction="in",method="REGISTER"}')).toBe(6);
    expect(moved('rtcedge_sip_requests_total{direction="in",method="INVITE"}')).toBe(2);
    expect(moved('rtcedge_sip_requests_total{direction="out",method="INVITE"}')).toBe(1);
    expect(moved('rtcedge_sip_responses_total{direction="in",status_class="1xx"}')).toBe(1);
    expect(moved('rtcedge_sip_responses_total{direction="in",status_class="2xx"}')).toBe(1);
    expect(moved('rtcedge_sip_responses_total{direction="out",status_class="2xx"}')).toBe(3);
    // 401 x3, 403, 407.
    expect(moved('rtcedge_sip_responses_total{direction="out",status_class="4xx"}')).toBe(5);
    expect(moved('rtcedge_auth_failures_total')).toBe(1);
    expect(during).toMatch(/^rtcedge_sip_transactions\{kind="server"\} \d+$/m);
    expect(during).not.toMatch(/alice|bob|127\.0\.0\.1/);

    // A TURN session of 1 s (50 ChannelData each way, 20 ms apart): scraped while it runs, its permission and channel show.
    const session = runUclient(['-u', 'alice', '-w', 'alicepw', '-p', String(TURN_PORT), '-e', '127.0.0.1', '-r', String(PEER_PORT), '-n', '50', '-z', '20', '-c', '127.0.0.1'], 30);
    let running = true;
    void session.then(() => (running = false));
    let most = { allocations: 0, permissions: 0, channels: 0 };
    while (running) {
      const t = await scrape();
      most = {
        allocations: Math.max(most.allocations, sample(t, 'rtcedge_turn_allocations')),
        permissions: Math.max(most.permissions, sample(t, 'rtcedge_turn_permissions')),
        channels: Math.max(most.channels, sample(t, 'rtcedge_turn_channels')),
      };
      await new Promise((r) => setTimeout(r, 50));
    }
    expect((await session).out).toContain('Total lost packets 0');
    expect(most.allocations).toBeGreaterThanOrEqual(1);
    expect(most.permissions).toBeGreaterThanOrEqual(1);
    expect(most.channels).toBeGreaterThanOrEqual(1);
    const after = await scrape();
    const grew = (series: string) => sample(after, series) - sample(before, series);
    // Payload bytes: each ChannelData carries uclient's default 100-byte message.
    for (const direction of ['to_peer', 'to_client']) {
      expect(grew(`rtcedge_turn_relayed_packets_total{direction="${direction}"}`)).toBe(50);
      expect(grew(`rtcedge_turn_relayed_bytes_total{direction="${direction}"}`)).toBe(5000);
    }
    expect(after).not.toContain('direction="both"');
  });

  it('counts what the server discards by reason: a datagram that is not SIP is malformed', async () => {
    const before = await scrape();
    for (const reason of ['banned', 'scanner', 'overload', 'malformed', 'stream_closed']) expect(before).toContain(`rtcedge_sip_dropped_total{reason="${reason}"} `);
    alice.sendRaw('NOT SIP AT ALL\r\n\r\n', SIP_PORT);
    const options = alice.request('OPTIONS', `sip:${DOMAIN}`, { from: `sip:alice@${DOMAIN}`, to: `sip:${DOMAIN}` });
    alice.send(options, SIP_PORT);
    await alice.response(options); // the garbage came first on the same socket
    const after = await scrape();
    const series = 'rtcedge_sip_dropped_total{reason="malformed"}';
    expect(sample(after, series) - sample(before, series)).toBe(1);
    expect(after).toMatch(/^rtcedge_sip_overload_refused_total\{reason="[a-z]+"\} 0$/m);
    for (const service of ['sip', 'turn', 'turn_peer']) expect(after).toMatch(new RegExp(`^rtcedge_connections_refused_total\\{service="${service}"\\} 0$`, 'm'));
  });
});
