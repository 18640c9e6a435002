// What node:cluster's shared UDP handle costs by itself: N worker processes bind the same UDP port (one
// handle, every worker polls it; the kernel gives each datagram to one of them and the others wake for
// nothing), one sender sends --rate datagrams/s of 500 bytes for --seconds; prints each worker's CPU s per
// 1,000 datagrams (utime+stime, /proc) and the sum. Nothing is parsed: the difference between --workers 1
// and 2 is the wake-ups of the worker that does not get the datagram, per datagram.
//
//   node bench/shared-udp-wakeups.mjs [--workers 2] [--rate 2000] [--seconds 8] [--port 29999]
import cluster from 'node:cluster';
import dgram from 'node:dgram';
import { arg, cpuSeconds, sleep } from './lib.mjs';

const WORKERS = Number(arg('workers', 2));
const RATE = Number(arg('rate', 2000));
const SECONDS = Number(arg('seconds', 8));
const PORT = Number(arg('port', 29999));

if (cluster.isPrimary) {
  const workers = Array.from({ length: WORKERS }, () => cluster.fork());
  await Promise.all(workers.map((w) => new Promise((r) => w.once('message', r))));
  const pids = workers.map((w) => w.process.pid);
  const cpu0 = pids.map(cpuSeconds);
  const sender = dgram.createSocket('udp4');
  const datagram = Buffer.alloc(500, 0x61);
  let sent = 0;
  const t0 = Date.now();
  while (Date.now() - t0 < SECONDS * 1000) {
    const due = Math.floor(((Date.now() - t0) / 1000) * RATE);
    while (sent < due) {
      sender.send(datagram, PORT, '127.0.0.1');
      sent++;
    }
    await sleep(1);
  }
  await sleep(300);
  const per1000 = pids.map((p, i) => ((cpuSeconds(p) - cpu0[i]) / sent) * 1000);
  const received = await Promise.all(workers.map((w) => new Promise((r) => (w.once('message', r), w.send('count')))));
  console.log(
    `${WORKERS} worker(s), ${RATE} datagrams/s for ${SECONDS} s: CPU s per 1,000 datagrams ${per1000.map((x) => x.toFixed(4)).join(' + ')}` +
      ` = ${per1000.reduce((a, b) => a + b, 0).toFixed(4)}; received ${received.join(' + ')} of ${sent}`,
  );
  for (const w of workers) w.kill();
  sender.close();
} else {
  const socket = dgram.createSocket('udp4');
  let received = 0;
  socket.on('message', () => received++);
  socket.bind(PORT, '127.0.0.1', () => process.send('ready'));
  process.on('message', () => process.send(received));
}
