/**
 * The bound on DNS lookups in flight (dns/resolver.ts): against a DNS server
 * on loopback that holds every query until the test lets it answer
 * (NXDOMAIN), distinct lookups past MAX_LOOKUPS_IN_FLIGHT fail at once with
 * EBUSY and send nothing; the held ones then complete and the resolver
 * answers again.
 */
import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { DnsLookupError, MAX_LOOKUPS_IN_FLIGHT } from '../../src/dns/resolver.js';
import { until } from '../transport/harness.js';
import { testResolver } from './test-resolver.js';

/**
 * Code of the DNS server: in a worker thread of its own, so it reads the queries while the test's thread
 * is busy sending them (a socket's receive buffer holds only a few hundred). It keeps each query; told a
 * number n, it answers the n held longest NXDOMAIN, and once none is held answers later ones at once.
 * It posts each question's name.
 */
const SERVER = `
const dgram = require('node:dgram');
const { parentPort } = require('node:worker_threads');
const sock = dgram.createSocket('udp4');
const held = [];
let releasing = false;
function answer(q) {
  let end = 12;
  while (q.msg[end] !== 0) end += q.msg[end] + 1;
  const r = Buffer.from(q.msg.subarray(0, end + 5)); // header and the one question (name, type, class)
  r[2] = 0x81 | (q.msg[2] & 0x78); // QR, opcode, RD
  r[3] = 0x83; // RA, RCODE 3 (NXDOMAIN)
  r.writeUInt16BE(0, 6); r.writeUInt16BE(0, 8); r.writeUInt16BE(0, 10); // no answer, authority, additional records
  sock.send(r, q.port, q.address);
}
sock.on('message', (msg, rinfo) => {
  if (msg.length < 12) return;
  const labels = [];
  for (let i = 12; msg[i] !== 0; i += msg[i] + 1) labels.push(msg.toString('latin1', i + 1, i + 1 + msg[i]));
  parentPort.postMessage(labels.join('.'));
  const q = { msg, port: rinfo.port, address: rinfo.address };
  if (releasing) answer(q); else held.push(q);
});
parentPort.on('message', (n) => {
  for (const q of held.splice(0, n)) answer(q);
  releasing = held.length === 0;
});
sock.bind(0, '127.0.0.1', () => parentPort.postMessage({ port: sock.address().port }));
`;

/** Starts the DNS server above; `names` holds the name of every query it got, in order. */
async function holdingServer(): Promise<{ server: string; names: string[]; release: (n: number) => void; close: () => Promise<unknown> }> {
  const worker = new Worker(SERVER, { eval: true });
  const names: string[] = [];
  const port = await new Promise<number>((resolve, reject) => {
    worker.once('error', reject);
    worker.on('message', (m: string | { port: number }) => (typeof m === 'string' ? names.push(m) : resolve(m.port)));
  });
  return { server: `127.0.0.1:${port}`, names, release: (n) => worker.postMessage(n), close: () => worker.terminate() };
}

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

describe('DnsResolver: lookups in flight (docs/LIMITS.md)', () => {
  it('holds at most MAX_LOOKUPS_IN_FLIGHT distinct queries; one more fails at once with EBUSY (503), a repeated one joins; all answer once the server does', async () => {
    const dns = await holdingServer();
    cleanups.push(dns.close);
    const resolver = testResolver(dns.server, { timeout_ms: 10_000, tries: 1 });
    cleanups.push(() => resolver.close());
    const name = (i: number) => `h${i}.example.test`;
    const lookups = new Map<string, Promise<unknown>>();
    for (let i = 0; i < MAX_LOOKUPS_IN_FLIGHT; i++) lookups.set(name(i), resolver.addresses(name(i), 4));
    expect(resolver.lookupsInFlight).toBe(MAX_LOOKUPS_IN_FLIGHT);
    const refused = await resolver.addresses(name(MAX_LOOKUPS_IN_FLIGHT), 4).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(refused).toBeInstanceOf(DnsLookupError);
    expect((refused as DnsLookupError).code).toBe('EBUSY');
    expect((refused as DnsLookupError).status).toBe(503);
    // The same name again joins the query under way: nothing new is asked.
    const again = resolver.addresses(name(0), 4);
    expect(resolver.queries).toBe(MAX_LOOKUPS_IN_FLIGHT);
    expect(resolver.lookupsInFlight).toBe(MAX_LOOKUPS_IN_FLIGHT);
    await until(() => dns.names.length === MAX_LOOKUPS_IN_FLIGHT, 'every query held by the server');
    expect(new Set(dns.names).size).toBe(MAX_LOOKUPS_IN_FLIGHT);
    expect(dns.names).not.toContain(name(MAX_LOOKUPS_IN_FLIGHT));
    // Answered 100 at a time, in the order asked, so that the answers fit the resolver's socket buffer.
    for (let i = 0; i < MAX_LOOKUPS_IN_FLIGHT; i += 100) {
      dns.release(100);
      for (const n of dns.names.slice(i, i + 100)) expect(await lookups.get(n)).toEqual([]);
    }
    expect(await again).toEqual([]);
    expect(resolver.lookupsInFlight).toBe(0);
    // Answering again: the refused name is asked now.
    expect(await resolver.addresses(name(MAX_LOOKUPS_IN_FLIGHT), 4)).toEqual([]);
    expect(dns.names.at(-1)).toBe(name(MAX_LOOKUPS_IN_FLIGHT));
  });
});
