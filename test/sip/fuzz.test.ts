import { describe, expect, it } from 'vitest';
import { readdirSync } from 'node:fs';
import { parseMessage } from '../../src/sip/parser.js';
import { SipParseError } from '../../src/sip/errors.js';
import { StreamFramer } from '../../src/sip/stream-framer.js';
import { fixture } from './fixtures.js';

/** Small deterministic PRNG (mulberry32) so failures reproduce. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function onlyParseErrors(buf: Buffer): void {
  try {
    parseMessage(buf);
  } catch (e) {
    if (!(e instanceof SipParseError)) throw new Error(`non-SipParseError for ${buf.toString('hex')}: ${String(e)}`);
    expect([400, 413, 505]).toContain(e.status);
  }
}

const seeds = readdirSync(new URL('../vectors/rfc4475/', import.meta.url))
  .filter((f) => f.endsWith('.dat'))
  .map((f) => fixture(`rfc4475/${f}`));
const ALPHABET = Buffer.from(' \t\r\n:;,<>"\\@[]%=?/.0123456789SIPsip\x00\xff');

describe('parser fuzzing', () => {
  it('random bytes only ever raise SipParseError', () => {
    const r = rng(1);
    for (let n = 0; n < 3000; n++) {
      const len = Math.floor(r() * 300);
      const buf = Buffer.alloc(len);
      for (let i = 0; i < len; i++) buf[i] = r() < 0.5 ? ALPHABET[Math.floor(r() * ALPHABET.length)] : Math.floor(r() * 256);
      onlyParseErrors(buf);
    }
  });

  it('mutated torture messages only ever raise SipParseError', () => {
    const r = rng(2);
    for (let n = 0; n < 5000; n++) {
      const seed = seeds[n % seeds.length];
      const buf = Buffer.from(seed);
      const edits = 1 + Math.floor(r() * 8);
      for (let k = 0; k < edits; k++) {
        const at = Math.floor(r() * buf.length);
        buf[at] = r() < 0.7 ? ALPHABET[Math.floor(r() * ALPHABET.length)] : Math.floor(r() * 256);
      }
      const cut = r() < 0.2 ? buf.subarray(0, Math.floor(r() * buf.length)) : buf;
      onlyParseErrors(cut);
    }
  });

  it('the stream framer never throws on mutated streams', () => {
    const r = rng(3);
    for (let n = 0; n < 500; n++) {
      const f = new StreamFramer();
      const stream = Buffer.concat([seeds[n % seeds.length], seeds[(n + 7) % seeds.length]]);
      for (let k = 0; k < 4; k++) stream[Math.floor(r() * stream.length)] = ALPHABET[Math.floor(r() * ALPHABET.length)];
      let pos = 0;
      while (pos < stream.length) {
        const step = 1 + Math.floor(r() * 200);
        for (const ev of f.push(stream.subarray(pos, pos + step))) {
          if (ev.type === 'message') onlyParseErrors(ev.data);
          if (ev.type === 'error') expect(ev.error).toBeInstanceOf(SipParseError);
        }
        pos += step;
      }
    }
  });
});
