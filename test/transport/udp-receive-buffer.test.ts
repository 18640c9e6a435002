/**
 * The SIP UDP receive buffer (`sip.limits.udp_receive_buffer_bytes`, SO_RCVBUF): datagrams that arrive
 * while the event loop is busy wait in the socket instead of being dropped. A burst of SIP requests is
 * sent by another process while this one is blocked (execFileSync); once the loop runs again, every one of
 * them reaches the transport's consumer with the buffer asked for, and most are lost with the kernel's
 * default (212992 bytes), which is what the setting is for.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, test } from 'vitest';
import { pino } from 'pino';
import { silentLogger, type Logger } from '../../src/log.js';
import { DEFAULT_LIMITS } from '../../src/sip/parser.js';
import { TransportLayer } from '../../src/transport/transport-layer.js';
import type { Inbound } from '../../src/transport/types.js';

const BURST = 2000;
const ASKED_BYTES = 4 * 1024 * 1024;

let layer: TransportLayer | undefined;
afterEach(async () => {
  await layer?.stop();
  layer = undefined;
});

/** A UDP listener on 127.0.0.1 with the given receive buffer (undefined: the kernel's default), and what it hands up. */
async function listen(udpReceiveBufferBytes?: number, logger: Logger = silentLogger): Promise<{ port: number; inbound: Inbound[] }> {
  layer = new TransportLayer({ listen: [{ transport: 'udp', host: '127.0.0.1', port: 0 }], limits: DEFAULT_LIMITS, logger, udpReceiveBufferBytes });
  const inbound: Inbound[] = [];
  layer.onMessage = (m) => inbound.push(m);
  await layer.start();
  return { port: layer.listenerFor('udp')!.port, inbound };
}

/**
 * Send BURST OPTIONS requests (about 600 bytes each, Call-ID burst-N) to `port` from a child process, while
 * this process's event loop is blocked waiting for it; then let the loop read what the socket kept, until all
 * BURST reached `inbound` or none came for 500 ms (at most 10 s: on a busy machine reading and parsing them
 * takes longer than the few polls a quiet one needs).
 */
async function burstWhileBlocked(port: number, inbound: Inbound[]): Promise<void> {
  const script = `
    const s = require('node:dgram').createSocket('udp4');
    const pad = 'x'.repeat(300);
    let n = 0;
    const next = () => {
      if (n === ${BURST}) return s.close();
      const m = 'OPTIONS sip:example.test SIP/2.0\\r\\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK-burst-' + n + '\\r\\nMax-Forwards: 70\\r\\n' +
        'From: <sip:a@example.test>;tag=1\\r\\nTo: <sip:example.test>\\r\\nCall-ID: burst-' + n + '\\r\\nCSeq: 1 OPTIONS\\r\\nX-Pad: ' + pad + '\\r\\nContent-Length: 0\\r\\n\\r\\n';
      n++;
      s.send(m, ${port}, '127.0.0.1', next);
    };
    next();`;
  execFileSync(process.execPath, ['-e', script], { timeout: 20_000 });
  // Let the loop drain the socket: datagrams already queued arrive in the next polls.
  const deadline = Date.now() + 10_000;
  let seen = -1;
  let quietSince = Date.now();
  while (inbound.length < BURST && Date.now() < deadline && Date.now() - quietSince < 500) {
    await new Promise((r) => setTimeout(r, 20));
    if (inbound.length !== seen) {
      seen = inbound.length;
      quietSince = Date.now();
    }
  }
}

const rmemMax = Number(readFileSync('/proc/sys/net/core/rmem_max', 'utf8'));

describe('SIP UDP receive buffer', () => {
  // The kernel caps SO_RCVBUF at net.core.rmem_max (212992 on a stock Debian); .ci/run raises it for the run.
  const capped = rmemMax < ASKED_BYTES ? ` [skipped: net.core.rmem_max is ${rmemMax}, below ${ASKED_BYTES}: sysctl -w net.core.rmem_max=${ASKED_BYTES}]` : '';
  test.skipIf(rmemMax < ASKED_BYTES)(`a burst that arrives while the loop is blocked is read whole with sip.limits.udp_receive_buffer_bytes${capped}`, async () => {
    const { port, inbound } = await listen(ASKED_BYTES);
    await burstWhileBlocked(port, inbound);
    expect(inbound.length).toBe(BURST);
    const ids = new Set(inbound.map((m) => m.msg.headers.find((h) => h.name.toLowerCase() === 'call-id')?.value));
    expect(ids.size).toBe(BURST);
  });

  test('a size above net.core.rmem_max is capped by the kernel, and start-up warns with the size it got', async () => {
    const lines: { msg: string; askedBytes?: number; gotBytes?: number }[] = [];
    const logger = pino({ level: 'warn' }, { write: (s: string) => void lines.push(JSON.parse(s)) });
    await listen(rmemMax * 2, logger);
    expect(lines).toContainEqual(
      expect.objectContaining({ msg: 'SIP UDP receive buffer smaller than sip.limits.udp_receive_buffer_bytes: raise net.core.rmem_max', askedBytes: rmemMax * 2, gotBytes: rmemMax * 2 }),
    );
    lines.length = 0;
    await layer!.stop();
    await listen(rmemMax, logger);
    expect(lines).toEqual([]);
  });

  test("with the kernel's default buffer the same burst loses datagrams", async () => {
    const { port, inbound } = await listen(undefined);
    await burstWhileBlocked(port, inbound);
    expect(inbound.length).toBeGreaterThan(0);
    expect(inbound.length).toBeLessThan(BURST);
  });
});
