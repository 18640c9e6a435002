// The cost of sending SIP over UDP from the transport layer (dist/transport/transport-layer.js): N
// response-sized datagrams (~420 bytes) handed to `sendWire` K per event-loop turn, to a sink in another
// process on 127.0.0.1, with `sip.udp_send` native (the turn's datagrams in one sendmmsg per socket,
// transport/udp-send-batch.ts) and dgram (one node:dgram send each). Prints the sender's CPU µs per
// datagram (user + system, which includes the kernel's loopback delivery) and what the sink received.
// Needs `npx tsc` and `npm run build:native` first.
//   node bench/udp-send.mjs [--count 200000] [--per-turn 1,2,4,8,32] [--rounds 3] [--root DIR]
import { fork } from 'node:child_process';
import dgram from 'node:dgram';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { arg } from './lib.mjs';

const here = fileURLToPath(import.meta.url);

if (process.argv[2] === '--sink') {
  const sock = dgram.createSocket({ type: 'udp4', recvBufferSize: 4 << 20 });
  let got = 0;
  sock.on('message', () => got++);
  sock.bind(0, '127.0.0.1', () => process.send({ port: sock.address().port }));
  process.on('message', (m) => {
    if (m === 'count') process.send({ got });
    else if (m === 'reset') {
      got = 0;
      process.send({ got });
    }
    else if (m === 'stop') sock.close();
  });
} else {
  const COUNT = Number(arg('count', 200000));
  const PER_TURN = String(arg('per-turn', '1,2,4,8,32')).split(',').map(Number);
  const ROUNDS = Number(arg('rounds', 3));
  const root = arg('root', join(dirname(here), '..'));
  const { TransportLayer } = await import(`${root}/dist/transport/transport-layer.js`);
  const { DEFAULT_LIMITS } = await import(`${root}/dist/sip/parser.js`);
  const logger = pino({ level: 'silent' });
  const data = Buffer.from(
    'SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-1-1-2;rport=5061;received=127.0.0.1\r\n' +
      'From: <sip:u1@example.test>;tag=1SIPpTag001\r\nTo: <sip:u1@example.test>;tag=8f3a2c\r\nCall-ID: 1-1@127.0.0.1\r\n' +
      'CSeq: 2 REGISTER\r\nContact: <sip:u1@127.0.0.1:5061>;expires=600\r\nDate: Sat, 28 Nov 2026 02:00:00 GMT\r\n' +
      'Server: rtcedge\r\nContent-Length: 0\r\n\r\n',
  );

  const sink = fork(here, ['--sink']);
  const ask = (m) => new Promise((r) => { sink.once('message', r); sink.send(m); });
  const { port } = await new Promise((r) => sink.once('message', r));
  const dest = { transport: 'udp', address: '127.0.0.1', port };

  /** Sends COUNT datagrams, perTurn per setImmediate turn; resolves with the CPU µs it took. */
  function run(layer, perTurn) {
    return new Promise((resolve) => {
      let sent = 0;
      const cpu0 = process.cpuUsage();
      const turn = () => {
        for (let i = 0; i < perTurn && sent < COUNT; i++, sent++) layer.sendWire(data, dest);
        if (sent < COUNT) setImmediate(turn);
        // One more turn lets the last batch and dgram's callbacks run.
        else setImmediate(() => setImmediate(() => { const c = process.cpuUsage(cpu0); resolve(c.user + c.system); }));
      };
      turn();
    });
  }

  console.log(`${COUNT} datagrams of ${data.length} bytes per run, ${ROUNDS} round(s); sender CPU µs per datagram (sink received)`);
  console.log('| per turn | dgram | native (sendmmsg) |');
  console.log('| ---: | ---: | ---: |');
  for (const perTurn of PER_TURN) {
    const cells = {};
    for (const mode of ['dgram', 'native']) {
      const layer = new TransportLayer({ listen: [{ transport: 'udp', host: '127.0.0.1', port: 0 }], limits: DEFAULT_LIMITS, logger, udpSend: mode });
      await layer.start();
      await run(layer, perTurn); // warm-up
      const us = [];
      let got = 0;
      for (let r = 0; r < ROUNDS; r++) {
        await ask('reset');
        us.push((await run(layer, perTurn)) / COUNT);
        await new Promise((res) => setTimeout(res, 100));
        got += (await ask('count')).got;
      }
      await layer.stop();
      cells[mode] = `${Math.min(...us).toFixed(2)}–${Math.max(...us).toFixed(2)} (${((got / (COUNT * ROUNDS)) * 100).toFixed(0)} %)`;
    }
    console.log(`| ${perTurn} | ${cells.dgram} | ${cells.native} |`);
  }
  sink.send('stop');
  sink.disconnect();
}
