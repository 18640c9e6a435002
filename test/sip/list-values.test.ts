/**
 * List header values (RFC 3261 §7.3.1): the first element without splitting
 * the rest agrees with splitList on any text, and header names map to their
 * canonical form whatever their spelling.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalName, firstListElement, nameIs, splitList } from '../../src/sip/message.js';

describe('firstListElement', () => {
  it('is the first element splitList gives, for Via lists, quoted commas, <...> and empty elements', () => {
    for (const v of [
      'SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK1, SIP/2.0/TCP 127.0.0.2;branch=z9hG4bK2',
      'SIP/2.0/UDP 127.0.0.1',
      ' , , SIP/2.0/UDP 127.0.0.3;branch=z9hG4bK3',
      '"a, b" <sip:x@127.0.0.1>, <sip:y@127.0.0.1>',
      '<sip:a@127.0.0.1;x=1,2>, b',
      '',
      ' , ',
    ]) {
      expect(firstListElement(v)).toBe(splitList(v)[0]);
    }
  });

  it('agrees with splitList on arbitrary text of list characters', () => {
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom('a', ' ', ',', '"', '\\', '<', '>', ';', '=') , maxLength: 40 }), (v) => {
        expect(firstListElement(v)).toBe(splitList(v)[0]);
      }),
      { numRuns: 5000 },
    );
  });
});

describe('canonicalName', () => {
  it('maps compact and mixed-case names to the full lowercase name, the same way on every call', () => {
    for (let i = 0; i < 2; i++) {
      expect(canonicalName('V')).toBe('via');
      expect(canonicalName('Call-ID')).toBe('call-id');
      expect(canonicalName('i')).toBe('call-id');
      expect(canonicalName('X-Custom')).toBe('x-custom');
    }
  });
});

describe('nameIs', () => {
  it('matches a name as written against a canonical name, in any case and in compact form', () => {
    expect(nameIs('Via', 'via')).toBe(true);
    expect(nameIs('VIA', 'via')).toBe(true);
    expect(nameIs('v', 'via')).toBe(true);
    expect(nameIs('V', 'via')).toBe(true);
    expect(nameIs('Call-ID', 'call-id')).toBe(true);
    expect(nameIs('i', 'call-id')).toBe(true);
    expect(nameIs('Vib', 'via')).toBe(false);
    expect(nameIs('Vias', 'via')).toBe(false);
    expect(nameIs('f', 'to')).toBe(false);
    expect(nameIs('[ia', '{ia')).toBe(false); // only A–Z fold
  });

  it('agrees with comparing canonical names, for any spelling of the known names', () => {
    const names = ['via', 'v', 'call-id', 'i', 'from', 'f', 'to', 't', 'contact', 'm', 'cseq', 'x-custom', 'content-length', 'l'];
    const spelling = fc.tuple(fc.constantFrom(...names), fc.array(fc.boolean(), { minLength: 16, maxLength: 16 })).map(([n, up]) =>
      [...n].map((c, i) => (up[i] ? c.toUpperCase() : c)).join(''),
    );
    fc.assert(
      fc.property(spelling, fc.constantFrom(...names.filter((n) => n.length > 1)), (name, want) => {
        expect(nameIs(name, want)).toBe(canonicalName(name) === want);
      }),
      { numRuns: 5000 },
    );
  });
});
