/** NAPTR substitution expressions (RFC 3402 §3.2) and E.164 numbers in URIs (RFC 6116 §2.4, RFC 3966): pure functions. */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { applySubstitution, EnumRegexpError, MAX_QUANTIFIERS, parseSubstitution } from '../../src/dns/naptr-regexp.js';
import { e164FromUri, enumDomain } from '../../src/dns/e164.js';
import { isSipEnumService } from '../../src/dns/enum.js';
import { parseUri } from '../../src/sip/uri.js';

const apply = (expr: string, subject: string): string | undefined => applySubstitution(parseSubstitution(expr), subject);

describe('NAPTR substitution expressions', () => {
  it('rewrites with the whole match replaced and \\1-\\9 back-references', () => {
    expect(apply('!^.*$!sip:bob@beta.test!', '+441632960083')).toBe('sip:bob@beta.test');
    expect(apply('!^\\+44(.*)$!sip:\\1@beta.test!', '+441632960083')).toBe('sip:1632960083@beta.test');
    expect(apply('!^\\+(4)(4)([0-9]{4})(.*)$!sip:\\4-\\3-\\2\\1@x.test!', '+441632960083')).toBe('sip:960083-1632-44@x.test');
    expect(apply('!^\\+1(.*)$!sip:\\1@x.test!', '+441632960083')).toBeUndefined();
  });

  it('takes any delimiter, escaped delimiters, \\\\ and the i flag', () => {
    expect(apply('/^\\+44(.*)$/sip:\\1@x.test/', '+4412')).toBe('sip:12@x.test');
    expect(apply('#^.*$#sip:a\\#b@x.test#', '+1')).toBe('sip:a#b@x.test');
    expect(apply('!^\\+44!\\\\!', '+44')).toBe('\\');
    expect(parseSubstitution('!^A$!x!i').regex.flags).toBe('i');
    expect(apply('!^[[:digit:]+]+$!ok!', '+4412')).toBe('ok');
    expect(apply('!^[^a-z]+$!ok!', '+4412')).toBe('ok');
  });

  it.each([
    ['!^(\\+?[0-9]+)+$!x!', 'nested quantifier'],
    ['!^(a|aa)*$!x!', 'nested quantifier'],
    ['!^((a)*b)+$!x!', 'nested quantifier'],
    ['!^a**$!x!', 'two quantifiers in a row'],
    ['!^a*?$!x!', 'two quantifiers in a row'],
    ['!*a!x!', 'quantifier without an atom'],
    ['!^(a)\\1$!x!', 'escape "\\1"'],
    ['!^\\d+$!x!', 'escape "\\d"'],
    ['!^.*$!\\2!', 'back-reference \\2'],
    ['!^a$b!x!', '"$" not at the end'],
    ['!a^!x!', '"^" not at the start'],
    ['!^(a!x!', 'unbalanced "("'],
    ['!^a)!x!', 'unbalanced ")"'],
    ['!^[a-!x!', 'unterminated bracket'],
    ['!^[[:punct:]]!x!', 'unknown character class'],
    ['!^a{300}$!x!', 'bad interval'],
    ['!^a{3,1}$!x!', 'bad interval'],
    ['!^.*$!x!g', 'unknown flags'],
    ['!^.*$!x', 'expected delim ERE delim repl delim'],
    ['1^.*$1x1', 'bad delimiter'],
    [`!^${'a*'.repeat(MAX_QUANTIFIERS + 1)}$!x!`, `more than ${MAX_QUANTIFIERS} quantifiers`],
    [`!^${'(a)'.repeat(10)}$!x!`, 'more than 9 groups'],
  ])('refuses %s (%s)', (expr, why) => {
    let err: unknown;
    try {
      parseSubstitution(expr);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(EnumRegexpError);
    expect((err as Error).message).toContain(why);
  });

  it('never throws anything but EnumRegexpError, and accepted expressions apply to any E.164 string', () => {
    const piece = fc.constantFrom('^', '$', '.', '*', '+', '?', '(', ')', '|', '[0-9]', '[^5]', '{1,3}', '\\+', '4', '1', 'a', '\\1', '[', ']');
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 14 }), fc.stringMatching(/^\+[0-9]{1,15}$/), (pieces, number) => {
        const expr = `!${pieces.join('')}!sip:x@y.test!`;
        let sub;
        try {
          sub = parseSubstitution(expr);
        } catch (e) {
          expect(e).toBeInstanceOf(EnumRegexpError);
          return;
        }
        const out = applySubstitution(sub, number);
        expect(out === undefined || out === 'sip:x@y.test').toBe(true);
      }),
      { numRuns: 3000 },
    );
  });
});

describe('E.164 numbers in Request-URIs', () => {
  it.each([
    ['tel:+44-1632-960083', '+441632960083'],
    ['tel:+1.(555).000-1;phone-context=x', '+15550001'],
    ['sip:+44-1632-960083;isub=12@beta.test;user=phone', '+441632960083'],
    ['sip:+441632960083@beta.test', '+441632960083'],
    ['sips:+1(555)0001@beta.test', '+15550001'],
    ['sip:%2B15550001@beta.test;user=phone', '+15550001'],
  ])('%s denotes %s', (uri, number) => {
    expect(e164FromUri(parseUri(uri))).toBe(number);
  });

  it.each([
    'tel:5550001;phone-context=example.test',
    'sip:bob@beta.test',
    'sip:+44abc@beta.test',
    'sip:+1234567890123456@beta.test',
    'sip:+15550001;isub=1@beta.test',
    'sip:beta.test',
    'sip:+@beta.test',
  ])('%s denotes no E.164 number', (uri) => {
    expect(e164FromUri(parseUri(uri))).toBeUndefined();
  });

  it('maps a number to its ENUM domain (RFC 6116 §2.4)', () => {
    expect(enumDomain('+441632960083', 'e164.arpa')).toBe('3.8.0.0.6.9.2.3.6.1.4.4.e164.arpa');
    expect(enumDomain('+1', 'e164.example.test.')).toBe('1.e164.example.test');
    expect(() => enumDomain('441632960083', 'e164.arpa')).toThrow(RangeError);
  });

  it('recognises E2U services with a sip or sips enumservice', () => {
    expect(isSipEnumService('E2U+sip')).toBe(true);
    expect(isSipEnumService('e2u+voice:tel+sip')).toBe(true);
    expect(isSipEnumService('E2U+sips')).toBe(true);
    expect(isSipEnumService('E2U+email:mailto')).toBe(false);
    expect(isSipEnumService('SIP+D2U')).toBe(false);
  });
});
