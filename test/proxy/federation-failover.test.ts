/**
 * RFC 3263 §4.3 failover through a running server whose DNS is bind9 on
 * loopback (federation.require_tls off, so plain UDP/TCP targets):
 * - a target answering 503 is failed and the request goes to the next SRV
 *   target; the failed one is skipped by the next request;
 * - targets that refuse the connection fail at once, and when every one has
 *   failed the caller gets 503, not 408 after Timer F (32 s).
 */
import net from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWithPeers } from '../../interop/harness/peers.js';
import { startNamed, zoneFile, type Named } from '../../interop/harness/named.js';
import { makeTempDir, removeTempDir } from '../../interop/harness/temp-dir.js';
import { createResponse } from '../../src/sip/response.js';
import type { SipRequest } from '../../src/sip/message.js';
import { UdpUa } from '../helpers/udp-ua.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';

const PORT = 26490;
const DOMAIN = 'example.test';

/** A TCP port on 127.0.0.1 nothing listens on (bound, read, released). */
function closedTcpPort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

describeWithPeers(['named'])('server location failover (RFC 3263 §4.3)', () => {
  let dir: string;
  let named: Named;
  let test: TestServer;
  let caller: UdpUa;
  let busy: UdpUa;
  let good: UdpUa;

  beforeAll(async () => {
    dir = makeTempDir('failover');
    [caller, busy, good] = await Promise.all([UdpUa.open(), UdpUa.open(), UdpUa.open()]);
    // busy answers 503 to everything, good 200.
    for (const [ua, status] of [[busy, 503], [good, 200]] as const) {
      ua.socket.on('message', () => {
        const req = ua.received.at(-1);
        if (req?.kind === 'request') ua.send(createResponse(req, status, { reason: status === 200 ? 'OK' : 'Service Unavailable', toTag: 'x' }), PORT);
      });
    }
    const [dead1, dead2] = [await closedTcpPort(), await closedTcpPort()];
    named = await startNamed({
      dir,
      zones: {
        'far.test': zoneFile(
          'far.test',
          [
            `_sip._udp IN SRV 10 0 ${busy.port} a.far.test.`,
            `_sip._udp IN SRV 20 0 ${good.port} b.far.test.`,
            'a IN A 127.0.0.1',
            'b IN A 127.0.0.1',
            `_sip._tcp.dead IN SRV 10 0 ${dead1} a.far.test.`,
            `_sip._tcp.dead IN SRV 20 0 ${dead2} b.far.test.`,
          ].join('\n'),
        ),
      },
    });
    test = await startTestServer({
      name: 'failover',
      domain: DOMAIN,
      sip: { listen: [{ transport: 'udp', host: '127.0.0.1', port: PORT }, { transport: 'tcp', host: '127.0.0.1', port: PORT }] },
      users: { alice: 'alicepw' },
      federation: { require_tls: false },
      dns: { servers: [named.server] },
    });
  }, 30_000);

  afterAll(async () => {
    for (const ua of [caller, busy, good]) ua?.close();
    await test?.stop();
    await named?.stop();
    removeTempDir(dir);
  });

  /** MESSAGE from alice to `uri`, answering the proxy's digest challenge; resolves with the final response. */
  async function message(uri: string, timeoutMs: number) {
    const req = caller.request('MESSAGE', uri, { from: `sip:alice@${DOMAIN}`, to: uri });
    caller.send(req, PORT);
    const authed: SipRequest = caller.authorize(req, await caller.response(req, 407), 'alice', 'alicepw');
    caller.send(authed, PORT);
    return caller.response(authed, undefined, timeoutMs);
  }

  const messagesAt = (ua: UdpUa) => ua.received.filter((m) => m.kind === 'request' && m.method === 'MESSAGE').length;

  it('fails a target that answers 503 over to the next SRV target, and skips it for the next request', async () => {
    expect((await message('sip:carol@far.test', 5000)).status).toBe(200);
    expect([messagesAt(busy), messagesAt(good)]).toEqual([1, 1]);
    expect((await message('sip:carol@far.test', 5000)).status).toBe(200);
    expect([messagesAt(busy), messagesAt(good)]).toEqual([1, 2]);
  });

  it('answers 503 when every target refused the connection, long before Timer F', async () => {
    const res = await message('sip:carol@dead.far.test', 5000);
    expect(res.status).toBe(503);
    expect(res.reason).toMatch(/ECONNREFUSED/);
  });
});
