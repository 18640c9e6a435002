/**
 * Property-based fuzzing (fast-check) of the SIP parser and stream framer,
 * the STUN/TURN codec (messages, attributes, ChannelData, TCP framing) and the
 * digest header parser: every corpus file as is, then `FUZZ_RUNS` inputs per
 * target (default 3000, a few seconds) mutated from the seeds (byte flips
 * biased to the grammar's delimiters, insertions, deletions, duplicated spans,
 * truncation) or random. `FUZZ_SEED` replays a run; bench/fuzz.mjs runs long
 * ones with `FUZZ_SAVE=1`, which writes a minimized failing input into the
 * corpus so it stays a regression case.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { TARGETS, type FuzzTarget } from './targets.js';

const RUNS = Number(process.env.FUZZ_RUNS ?? 3000);
const SEED = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : undefined;

/** Bytes the grammars care about, so mutations hit delimiters more often than chance would. */
const INTERESTING = [...Buffer.from(' \t\r\n:;,<>"\\@[]%=?/.0123456789SIPsipZz*\'')].concat([0x00, 0x7f, 0x80, 0xc3, 0xff, 0x21, 0x12, 0xa4, 0x42, 0x40]);

type Edit =
  | { op: 'set'; at: number; byte: number }
  | { op: 'insert'; at: number; bytes: Uint8Array }
  | { op: 'delete'; at: number; len: number }
  | { op: 'dup'; at: number; len: number }
  | { op: 'truncate'; at: number };

const byte = fc.oneof(fc.constantFrom(...INTERESTING), fc.integer({ min: 0, max: 255 }));
const edit: fc.Arbitrary<Edit> = fc.oneof(
  fc.record({ op: fc.constant('set' as const), at: fc.nat(), byte }),
  fc.record({ op: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
  fc.record({ op: fc.constant('delete' as const), at: fc.nat(), len: fc.integer({ min: 1, max: 32 }) }),
  fc.record({ op: fc.constant('dup' as const), at: fc.nat(), len: fc.integer({ min: 1, max: 64 }) }),
  fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }),
);

function apply(seed: Buffer, edits: Edit[]): Buffer {
  let b = Buffer.from(seed);
  for (const e of edits) {
    const at = b.length ? e.at % (b.length + 1) : 0;
    if (e.op === 'set' && b.length) b[at % b.length] = e.byte;
    else if (e.op === 'insert') b = Buffer.concat([b.subarray(0, at), Buffer.from(e.bytes), b.subarray(at)]);
    else if (e.op === 'delete') b = Buffer.concat([b.subarray(0, at), b.subarray(at + e.len)]);
    else if (e.op === 'dup') b = Buffer.concat([b.subarray(0, at + e.len), b.subarray(at, at + e.len), b.subarray(at + e.len)]);
    else if (e.op === 'truncate') b = b.subarray(0, at);
  }
  return b;
}

/** Inputs for one target: a mutated seed (most of the time) or random bytes. */
export function inputs(t: FuzzTarget): fc.Arbitrary<Buffer> {
  const seeds = t.seeds();
  const mutated = fc
    .tuple(fc.integer({ min: 0, max: seeds.length - 1 }), fc.array(edit, { minLength: 1, maxLength: 8 }))
    .map(([i, edits]) => apply(seeds[i]!, edits));
  const random = fc.uint8Array({ maxLength: 600 }).map((u) => Buffer.from(u));
  return fc.oneof({ arbitrary: mutated, weight: 4 }, { arbitrary: random, weight: 1 });
}

describe.each(TARGETS.map((t) => [t.name, t] as const))('fuzz %s', (_name, target) => {
  it('every seed and corpus file passes as is', () => {
    for (const s of target.seeds()) target.run(s);
  });

  it(`${RUNS} mutated or random inputs raise only the codec's own errors`, () => {
    const details = fc.check(
      fc.property(inputs(target), (input) => {
        target.run(input);
      }),
      { numRuns: RUNS, seed: SEED },
    );
    if (details.failed && details.counterexample && process.env.FUZZ_SAVE) {
      const input = details.counterexample[0];
      const name = `crash-${createHash('sha1').update(input).digest('hex').slice(0, 12)}.bin`;
      writeFileSync(new URL(`./corpus/${target.name}/${name}`, import.meta.url), input);
    }
    expect(details.failed, fc.defaultReportMessage(details) ?? '').toBe(false);
  }, 600_000);
});
