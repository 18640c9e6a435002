/**
 * The substitution expression of a NAPTR record (RFC 3402 §3.2, used by ENUM,
 * RFC 6116 §3.2.2 / RFC 3761 §2.4.3): `delim ERE delim repl delim [i]`, e.g.
 * `!^.*$!sip:bob@beta.test!` or `!^\+44(.*)$!sip:\1@beta.test!`.
 *
 * The ERE (POSIX extended regular expression) comes from DNS, i.e. from
 * whoever controls a zone, and is run with JavaScript's backtracking engine,
 * so it is checked before use and refused (EnumRegexpError) unless it is in a
 * subset whose matching cost is bounded:
 * - at most 255 characters, at most 9 groups, at most {@link MAX_QUANTIFIERS}
 *   quantifiers (`*`, `+`, `?`, `{m,n}` with m, n <= 255), one per atom;
 * - no quantifier on a group that itself holds a quantifier or an alternation
 *   (the nested repetition behind catastrophic backtracking);
 * - `^` only at the start and `$` only at the end; no back-references in the
 *   ERE; bracket expressions of literal characters and ranges, plus
 *   `[:digit:]`-style classes; `\` escapes only of non-alphanumerics.
 * The string it is applied to is an E.164 number (at most 16 characters), so
 * with these limits a match takes at most a few hundred thousand steps.
 *
 * The output is the repl with `\1`–`\9` replaced by the groups of the match
 * (the whole AUS is replaced, as RFC 3402 §3.2 and ENUM use it); `\\` is a
 * backslash and `\<delim>` the delimiter.
 */

/** A substitution expression that cannot be used; `message` says why (e.g. `nested quantifier at 5`). */
export class EnumRegexpError extends Error {
  constructor(
    readonly expression: string,
    why: string,
  ) {
    super(`unusable NAPTR regexp ${JSON.stringify(expression)}: ${why}`);
    this.name = 'EnumRegexpError';
  }
}

/** Quantifiers allowed in one ERE. */
export const MAX_QUANTIFIERS = 6;
/** Longest string {@link applySubstitution} accepts (an E.164 AUS is at most 16). */
export const MAX_SUBJECT_LENGTH = 64;

/** A checked substitution expression, ready to apply. */
export interface Substitution {
  /** The ERE as a JavaScript RegExp (no `g`, `y`, `u` flags; `i` when the expression had it). */
  regex: RegExp;
  /** The repl, split into literal text and group numbers. */
  repl: (string | number)[];
}

const POSIX_CLASSES: Record<string, string> = {
  digit: '0-9',
  alpha: 'A-Za-z',
  alnum: '0-9A-Za-z',
  upper: 'A-Z',
  lower: 'a-z',
  xdigit: '0-9A-Fa-f',
};

const ALNUM = /^[0-9A-Za-z]$/;

/** Escapes one literal character for a JavaScript pattern. */
function lit(c: string): string {
  return /[\\^$.*+?()[\]{}|/-]/.test(c) ? `\\${c}` : c;
}

/**
 * Splits and checks `delim ERE delim repl delim flags`.
 *
 * @throws EnumRegexpError for bad syntax or an ERE outside the safe subset.
 */
export function parseSubstitution(expression: string): Substitution {
  const fail = (why: string): never => {
    throw new EnumRegexpError(expression, why);
  };
  if (expression.length < 3 || expression.length > 300) fail('length out of range');
  const delim = expression[0]!;
  if (/[0-9i\\]/.test(delim)) fail('bad delimiter');
  // Split on unescaped delimiters.
  const parts: string[] = [];
  let cur = '';
  for (let i = 1; i < expression.length; i++) {
    const c = expression[i]!;
    if (c === '\\' && i + 1 < expression.length) {
      const n = expression[i + 1]!;
      cur += n === delim ? `\\${delim}` : `\\${n}`;
      i++;
    } else if (c === delim) {
      parts.push(cur);
      cur = '';
    } else cur += c;
  }
  if (parts.length !== 2) fail('expected delim ERE delim repl delim [flags]');
  const flags = cur;
  if (flags !== '' && flags !== 'i') fail(`unknown flags "${flags}"`);
  const [ere, replText] = parts as [string, string];
  const { source, groups } = translateEre(ere, delim, fail);
  const repl: (string | number)[] = [];
  let text = '';
  for (let i = 0; i < replText.length; i++) {
    const c = replText[i]!;
    if (c !== '\\') {
      text += c;
      continue;
    }
    const n = replText[++i];
    if (n === undefined) fail('trailing backslash in repl');
    if (n! >= '1' && n! <= '9') {
      const g = Number(n);
      if (g > groups) fail(`back-reference \\${g} to a group the ERE does not have`);
      if (text) repl.push(text);
      text = '';
      repl.push(g);
    } else text += n;
  }
  if (text) repl.push(text);
  let regex: RegExp;
  try {
    regex = new RegExp(source, flags);
  } catch (err) {
    return fail(`not a valid pattern (${(err as Error).message})`);
  }
  return { regex, repl };
}

/** ERE → JavaScript pattern, enforcing the safe subset. `fail` throws. */
function translateEre(ere: string, delim: string, fail: (why: string) => never): { source: string; groups: number } {
  if (ere.length === 0 || ere.length > 255) fail('ERE empty or longer than 255 characters');
  let out = '';
  let groups = 0;
  let quantifiers = 0;
  /** Per open group: whether it holds a quantifier or alternation. */
  const open: { risky: boolean }[] = [];
  /** What the last item was: none (start, "(", "|"), an atom, a group just closed (with its riskiness), a quantifier. */
  let last: 'none' | 'atom' | 'group' | 'quant' = 'none';
  let lastGroupRisky = false;
  for (let i = 0; i < ere.length; i++) {
    const c = ere[i]!;
    const at = ` at ${i}`;
    switch (c) {
      case '^':
        if (i !== 0) fail(`"^" not at the start${at}`);
        out += '^';
        break;
      case '$':
        if (i !== ere.length - 1) fail(`"$" not at the end${at}`);
        out += '$';
        break;
      case '(':
        if (++groups > 9) fail('more than 9 groups');
        open.push({ risky: false });
        out += '(';
        last = 'none';
        break;
      case ')': {
        const g = open.pop();
        if (g === undefined) fail(`unbalanced ")"${at}`);
        if (last === 'none') fail(`empty group or alternative${at}`);
        out += ')';
        last = 'group';
        lastGroupRisky = g!.risky;
        if (g!.risky && open.length > 0) open[open.length - 1]!.risky = true;
        break;
      }
      case '|':
        if (last === 'none') fail(`empty alternative${at}`);
        if (open.length > 0) open[open.length - 1]!.risky = true;
        out += '|';
        last = 'none';
        break;
      case '*':
      case '+':
      case '?':
      case '{': {
        if (last === 'none') fail(`quantifier without an atom${at}`);
        if (last === 'quant') fail(`two quantifiers in a row${at}`);
        if (last === 'group' && lastGroupRisky) fail(`nested quantifier (a quantified group holds a quantifier or "|")${at}`);
        if (++quantifiers > MAX_QUANTIFIERS) fail(`more than ${MAX_QUANTIFIERS} quantifiers`);
        if (c === '{') {
          const close = ere.indexOf('}', i);
          const body = close < 0 ? '' : ere.slice(i + 1, close);
          const m = /^([0-9]{1,3})(,([0-9]{0,3}))?$/.exec(body);
          if (!m) fail(`bad interval${at}`);
          const min = Number(m![1]);
          const max = m![3] === undefined ? min : m![3] === '' ? undefined : Number(m![3]);
          if (min > 255 || (max !== undefined && (max > 255 || max < min))) fail(`bad interval${at}`);
          out += `{${body}}`;
          i = close;
        } else out += c;
        for (const g of open) g.risky = true;
        last = 'quant';
        break;
      }
      case '[': {
        const { source, end } = bracket(ere, i, fail);
        out += source;
        i = end;
        last = 'atom';
        break;
      }
      case '\\': {
        const n = ere[++i];
        if (n === undefined) fail('trailing backslash in ERE');
        if (ALNUM.test(n!)) fail(`escape "\\${n}" (back-references and classes are not allowed)${at}`);
        out += lit(n!);
        last = 'atom';
        break;
      }
      case '.':
        out += '.';
        last = 'atom';
        break;
      case ']':
      case '}':
      default:
        if (c === delim) fail(`unescaped delimiter${at}`);
        out += lit(c);
        last = 'atom';
    }
  }
  if (open.length > 0) fail('unbalanced "("');
  return { source: out, groups };
}

/** A bracket expression starting at `start` ("["): literal characters, ranges and [:class:]; returns the JS class and the index of its "]". */
function bracket(ere: string, start: number, fail: (why: string) => never): { source: string; end: number } {
  let i = start + 1;
  let out = '[';
  if (ere[i] === '^') {
    out += '^';
    i++;
  }
  let first = true;
  for (; i < ere.length; i++) {
    const c = ere[i]!;
    if (c === ']' && !first) return { source: `${out}]`, end: i };
    const isFirst = first;
    first = false;
    if (c === '[' && ere[i + 1] === ':') {
      const close = ere.indexOf(':]', i + 2);
      const cls = close < 0 ? undefined : POSIX_CLASSES[ere.slice(i + 2, close)];
      if (cls === undefined) fail(`unknown character class at ${i}`);
      out += cls;
      i = close + 1;
    } else if (c === '-' && !isFirst && ere[i + 1] !== ']') {
      out += '-';
    } else out += c === '\\' || c === ']' || c === '[' || c === '^' || c === '-' ? `\\${c}` : c;
  }
  return fail(`unterminated bracket expression at ${start}`);
}

/**
 * Applies a checked substitution to `subject` (the AUS, an E.164 number).
 * Returns the output, or undefined when the ERE does not match.
 *
 * @throws RangeError when `subject` is longer than MAX_SUBJECT_LENGTH.
 */
export function applySubstitution(sub: Substitution, subject: string): string | undefined {
  if (subject.length > MAX_SUBJECT_LENGTH) throw new RangeError(`subject longer than ${MAX_SUBJECT_LENGTH} characters`);
  const m = sub.regex.exec(subject);
  if (m === null) return undefined;
  return sub.repl.map((p) => (typeof p === 'number' ? (m[p] ?? '') : p)).join('');
}
