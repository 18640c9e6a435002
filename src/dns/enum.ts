/**
 * ENUM (RFC 6116, RFC 3761): from an E.164 number to the SIP URIs its owner
 * published, by NAPTR records under the configured suffixes
 * (`dns.enum_suffixes`, default `e164.arpa`).
 *
 * For each suffix in turn, NAPTR of the number's ENUM domain (§2.4):
 * - records whose service is `E2U` with enumservice `sip` or `sips`
 *   (`E2U+sip`, `E2U+sip+voice:tel`..., RFC 6116 §3.4.3) are kept;
 * - flag "u" is terminal: the regexp is applied to the AUS (the number) and
 *   must give a sip:/sips: URI;
 * - an empty flag is non-terminal: the replacement names the next domain to
 *   ask (RFC 3761 §2.4.1), at most {@link MAX_NON_TERMINAL} deep and
 *   {@link MAX_ENUM_QUERIES} queries in all;
 * - records are taken by order then preference; once an order has given a
 *   URI, higher orders are not considered (RFC 3403 §4.1).
 * The first suffix that gives URIs wins. Records whose regexp is unusable (see
 * naptr-regexp.ts) are skipped and reported in `rejected`.
 */
import type { Logger } from '../log.js';
import { parseUri } from '../sip/uri.js';
import { enumDomain } from './e164.js';
import { applySubstitution, EnumRegexpError, parseSubstitution } from './naptr-regexp.js';
import type { DnsLookup, NaptrRecord } from './resolver.js';

/** Depth of non-terminal NAPTR records followed. */
export const MAX_NON_TERMINAL = 4;
/** NAPTR queries per lookup (all suffixes and non-terminal records together). */
export const MAX_ENUM_QUERIES = 10;
/** URIs returned per lookup. */
export const MAX_ENUM_URIS = 20;

/** One URI ENUM gave: the URI text, the record's order/preference and service. */
export interface EnumUri {
  uri: string;
  order: number;
  preference: number;
  service: string;
}

/** What {@link lookupEnum} found: URIs best first ([] = no ENUM entry), the domain that gave them, and records refused with the reason. */
export interface EnumResult {
  uris: EnumUri[];
  domain?: string;
  rejected: { domain: string; regexp: string; reason: string }[];
}

/** True when a NAPTR service field is E2U with a sip or sips enumservice (RFC 6116 §3.4.3, case-insensitive). */
export function isSipEnumService(service: string): boolean {
  const parts = service.toLowerCase().split('+');
  if (parts[0] !== 'e2u') return false;
  return parts.slice(1).some((s) => {
    const type = s.split(':')[0];
    return type === 'sip' || type === 'sips';
  });
}

/**
 * ENUM lookup of `number` (`+` and digits) under each suffix in turn.
 *
 * @throws RangeError when `number` is not an E.164 number; DnsLookupError
 *   (SIP 503) when the DNS servers could not answer.
 */
export async function lookupEnum(
  number: string,
  opts: { dns: DnsLookup; suffixes: readonly string[]; log?: Logger },
): Promise<EnumResult> {
  const rejected: EnumResult['rejected'] = [];
  const budget = { queries: MAX_ENUM_QUERIES };
  let result: EnumResult = { uris: [], rejected };
  for (const suffix of opts.suffixes) {
    const domain = enumDomain(number, suffix);
    const uris = await fromDomain(number, domain, opts.dns, rejected, 0, budget);
    if (uris.length > 0) {
      result = { uris: uris.slice(0, MAX_ENUM_URIS), domain, rejected };
      break;
    }
  }
  const log = opts.log?.child({ component: 'enum' });
  for (const r of rejected) log?.warn({ domain: r.domain, regexp: r.regexp, reason: r.reason }, 'ENUM record skipped');
  log?.debug({ number, domain: result.domain, uris: result.uris.map((u) => u.uri) }, 'ENUM lookup');
  return result;
}

async function fromDomain(
  number: string,
  domain: string,
  dns: DnsLookup,
  rejected: EnumResult['rejected'],
  depth: number,
  budget: { queries: number },
): Promise<EnumUri[]> {
  if (budget.queries <= 0) return [];
  budget.queries--;
  const records = (await dns.naptr(domain))
    .filter((r) => isSipEnumService(r.service) || (r.flags === '' && r.replacement !== ''))
    .sort((a, b) => a.order - b.order || a.preference - b.preference);
  const byOrder = new Map<number, NaptrRecord[]>();
  for (const r of records) {
    const list = byOrder.get(r.order);
    if (list) list.push(r);
    else byOrder.set(r.order, [r]);
  }
  for (const group of byOrder.values()) {
    const out: EnumUri[] = [];
    for (const r of group) {
      const flags = r.flags.toLowerCase();
      if (flags === 'u') {
        const uri = terminalUri(number, domain, r, rejected);
        if (uri !== undefined) out.push({ uri, order: r.order, preference: r.preference, service: r.service });
      } else if (flags === '' && r.regexp === '' && depth < MAX_NON_TERMINAL) {
        out.push(...(await fromDomain(number, r.replacement, dns, rejected, depth + 1, budget)));
      }
    }
    if (out.length > 0) return out;
  }
  return [];
}

/** The URI of a terminal record, or undefined (reason added to `rejected`) when the regexp is unusable, does not match, or gives no sip:/sips: URI. */
function terminalUri(number: string, domain: string, r: NaptrRecord, rejected: EnumResult['rejected']): string | undefined {
  try {
    const out = applySubstitution(parseSubstitution(r.regexp), number);
    if (out === undefined) return undefined;
    const uri = parseUri(out);
    if (uri.scheme !== 'sip' && uri.scheme !== 'sips') throw new Error(`gives ${uri.scheme}: URI, not sip:/sips:`);
    return out;
  } catch (err) {
    const reason = err instanceof EnumRegexpError ? err.message : `regexp output is not a SIP URI (${(err as Error).message})`;
    rejected.push({ domain, regexp: r.regexp, reason });
    return undefined;
  }
}
