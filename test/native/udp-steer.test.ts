/**
 * The eBPF Call-ID program (native/src/udp_steer.cc), run in the kernel with
 * BPF_PROG_TEST_RUN on generated datagrams: its answer is callIdHash (the
 * transport's byte scan, transport/call-id-owner.ts) modulo the number of
 * workers, or "give up" (an index past the group: the kernel picks) exactly
 * where callIdHash finds no Call-ID; past its 2048-byte scan bound it may give
 * up, never answer another worker. The group's first socket is bound only
 * on a free port: another process's group is never joined.
 */
import dgram from 'node:dgram';
import { afterAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { callIdHash } from '../../src/transport/call-id-owner.js';
import { loadUdpSteerAddon, STEERING_GAVE_UP, type UdpSteerAddon } from '../../src/cluster/udp-steering.js';

const loaded = loadUdpSteerAddon();
const addon: UdpSteerAddon | undefined = 'addon' in loaded ? loaded.addon : undefined;
let refused = 'reason' in loaded ? loaded.reason : undefined;
const programs = new Map<number, number>();
if (addon && !refused) {
  try {
    for (const workers of [1, 2, 3, 7]) programs.set(workers, addon.loadCallIdProgram(workers));
  } catch (err) {
    refused = (err as Error).message.split(';')[0];
  }
}

afterAll(() => {
  for (const fd of programs.values()) addon?.closeDescriptor(fd);
});

/** What the program must answer for `data` with `workers` workers. */
function expected(data: Buffer, workers: number): number {
  const h = callIdHash(data);
  return h === undefined ? STEERING_GAVE_UP : h % workers;
}

const pick = <T>(...xs: T[]) => fc.constantFrom(...xs);
const name = pick('Call-ID', 'call-id', 'CALL-ID', 'cALL-iD', 'i', 'I', 'Call-Info', 'Call-IDx', 'Call', 'c', 'Contact', 'CSeq', 'iv', 'Via', 'To', 'X');
const ws = fc.array(pick(' ', '\t'), { maxLength: 2 }).map((a) => a.join(''));
const valueChar = pick('a', 'B', '7', '@', '.', '-', ':', ' ', '\t', '\r', '\r\n', '\r\n ', '\r\n\t', '\n', '\n ', 'é');
const value = fc.array(valueChar, { maxLength: 24 }).map((a) => a.join(''));
const line = fc.tuple(name, ws, pick(':', ':', ':', '', ';'), value, pick('\r\n', '\r\n', '\n', '')).map(([n, w, c, v, e]) => `${n}${w}${c}${v}${e}`);
const message = fc
  .tuple(pick('', '\r\n', '\r\n\r\n', '\n'), pick('REGISTER sip:example.test SIP/2.0\r\n', 'SIP/2.0 200 OK\r\n', 'i: x\r\n', ''), fc.array(line, { maxLength: 8 }), pick('\r\n', '', '\r\nv=0\r\nCall-ID: body\r\n'))
  .map(([lead, start, lines, end]) => Buffer.from(`${lead}${start}${lines.join('')}${end}`, 'utf8'));

describe.skipIf(refused !== undefined)(`the eBPF Call-ID program in the kernel${refused ? ` (skipped: bpf() refused here: ${refused})` : ''}`, () => {
  it('answers callIdHash mod workers, or gives up exactly where callIdHash finds no Call-ID (generated messages, 1, 2, 3 and 7 workers)', () => {
    const answers = new Map<number, number>();
    fc.assert(
      fc.property(message, pick(1, 2, 3, 7), (data, workers) => {
        const got = addon!.runCallIdProgram(programs.get(workers)!, data);
        expect(got).toBe(expected(data, workers));
        answers.set(got, (answers.get(got) ?? 0) + 1);
      }),
      { numRuns: 3000 },
    );
    // Both outcomes are exercised: Call-IDs found (every worker index) and give-ups. Index 6 comes only from the
    // quarter of runs with 7 workers and a Call-ID found, about 20 of 3,000 (18 seen): at least 5 of each.
    for (const index of [STEERING_GAVE_UP, 0, 1, 2, 6]) expect(answers.get(index) ?? 0, `answer ${index}`).toBeGreaterThanOrEqual(5);
  });

  it('agrees on SIPp-like REGISTERs and INVITEs with random Call-IDs, which spread over the workers', () => {
    const seen = new Set<number>();
    fc.assert(
      fc.property(fc.stringMatching(/^[0-9a-f]{1,12}-[0-9]{1,5}@127\.0\.0\.1$/), pick('REGISTER', 'INVITE', 'BYE'), (callId, method) => {
        const data = Buffer.from(
          `${method} sip:example.test SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-1;rport\r\nFrom: <sip:alice@example.test>;tag=1\r\n` +
            `To: <sip:alice@example.test>\r\nCall-ID: ${callId}\r\nCSeq: 1 ${method}\r\nContent-Length: 0\r\n\r\n`,
        );
        const got = addon!.runCallIdProgram(programs.get(3)!, data);
        expect(got).toBe(expected(data, 3));
        seen.add(got);
      }),
      { numRuns: 500 },
    );
    expect([...seen].sort()).toEqual([0, 1, 2]);
  });

  it('past its scan bound (2048 bytes) gives up rather than answer another worker', () => {
    const filler = `X-Pad: ${'p'.repeat(100)}\r\n`.repeat(25);
    const far = Buffer.from(`OPTIONS sip:x SIP/2.0\r\n${filler}Call-ID: far-away\r\n\r\n`);
    expect(far.length).toBeGreaterThan(addon!.callIdScanBytes);
    expect(callIdHash(far)).toBeTypeOf('number');
    expect(addon!.runCallIdProgram(programs.get(2)!, far)).toBe(STEERING_GAVE_UP);
    // A value cut by the bound: the program cannot know its end.
    const cut = Buffer.from(`OPTIONS sip:x SIP/2.0\r\n${'X-Pad: p\r\n'.repeat(200)}Call-ID: ${'v'.repeat(200)}\r\n\r\n`);
    expect(addon!.runCallIdProgram(programs.get(2)!, cut)).toBe(STEERING_GAVE_UP);
    fc.assert(
      fc.property(fc.integer({ min: 1990, max: 2100 }), fc.string({ minLength: 1, maxLength: 40 }), (at, id) => {
        const data = Buffer.from(`OPTIONS sip:x SIP/2.0\r\n${'y'.repeat(at)}\r\nCall-ID: ${id}\r\n\r\n`);
        const got = addon!.runCallIdProgram(programs.get(7)!, data);
        if (got !== STEERING_GAVE_UP) expect(got).toBe(expected(data, 7));
      }),
      { numRuns: 300 },
    );
  });

  it('binds the first socket of a group only on a free port; later ones join it on the same port', () => {
    const errnoOf = (f: () => unknown) => {
      try {
        f();
      } catch (err) {
        return (err as { errno?: number }).errno;
      }
      return undefined;
    };
    const sockets: dgram.Socket[] = [];
    const take = (fd: number) => {
      const s = dgram.createSocket('udp4');
      s.bind({ fd });
      sockets.push(s);
      return s.address().port;
    };
    try {
      const port = take(addon!.reuseportUdpSocket('127.0.0.1', 0, false, true));
      expect(take(addon!.reuseportUdpSocket('127.0.0.1', port, false, false))).toBe(port);
      // A group already there (another server on the port): the first socket of a new group refuses it.
      expect(errnoOf(() => addon!.reuseportUdpSocket('127.0.0.1', port, false, true))).toBe(98 /* EADDRINUSE */);
      expect(() => addon!.reuseportUdpSocket('not-an-ip', port, false, true)).toThrow(TypeError);
    } finally {
      for (const s of sockets) s.close();
    }
  });

  it('gives up on keepalives, empty payloads and messages without a Call-ID', () => {
    for (const text of ['', '\r\n\r\n', 'OPTIONS sip:x SIP/2.0\r\nTo: <sip:x>\r\n\r\nCall-ID: in-body\r\n', 'garbage']) {
      expect(addon!.runCallIdProgram(programs.get(2)!, Buffer.from(text)), JSON.stringify(text)).toBe(STEERING_GAVE_UP);
    }
  });
});
