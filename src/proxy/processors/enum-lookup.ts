import { e164FromUri } from '../../dns/e164.js';
import { lookupEnum } from '../../dns/enum.js';
import { DnsLookupError } from '../../dns/resolver.js';
import { parseUri } from '../../sip/uri.js';
import { CONTINUE, reply, type RequestContext, type RequestProcessor } from '../request-context.js';

/**
 * ENUM (RFC 6116, RFC 3761) for a Request-URI that denotes an E.164 number
 * (`tel:+…`, `sip:+…;user=phone`, or a `+` E.164 user part; dns/e164.ts),
 * out of dialog and without Route:
 * 1. a number a local user owns (`Federation.phoneOwner`) retargets the
 *    request to that user's AOR, and location lookup goes on (§16.5);
 * 2. otherwise, for local senders only (no open relay), the ENUM NAPTR
 *    records under `dns.enum_suffixes`: a first URI in one of our domains
 *    retargets to it; else each URI becomes a target group of its own, tried
 *    in order (§16.6 sequential);
 * 3. no ENUM entry: `enum.pstn_route` with the number as user part, else 404.
 * A DNS failure gives 503; senders of other domains get 404 for numbers no local user owns.
 */
export const enumLookup: RequestProcessor = {
  name: 'enum-lookup',
  async process(ctx: RequestContext) {
    const fed = ctx.env.federation;
    if (!fed || ctx.toTag || ctx.hasRoute) return CONTINUE;
    const number = e164FromUri(ctx.ruri);
    if (number === undefined) return CONTINUE;
    const owner = await fed.phoneOwner?.(number);
    if (owner) {
      ctx.req.uri = `sip:${owner.user}@${owner.domain}`;
      return CONTINUE;
    }
    if (!ctx.fromLocal) return reply(404, 'Not Found');
    let uris: string[];
    try {
      uris = (await lookupEnum(number, { dns: fed.dns, suffixes: fed.enumSuffixes, log: fed.logger })).uris.map((u) => u.uri);
    } catch (err) {
      if (err instanceof DnsLookupError) return reply(503, `Service Unavailable: ENUM lookup of ${number} failed`);
      throw err;
    }
    if (uris.length > 0) {
      if (ctx.env.domains.isLocal(parseUri(uris[0]).host)) {
        ctx.req.uri = uris[0];
        return CONTINUE;
      }
      return { kind: 'forward', targets: uris.map((uri) => [{ uri }]) };
    }
    if (fed.pstnRoute) return { kind: 'forward', targets: [[{ uri: pstnUri(fed.pstnRoute, number) }]] };
    return reply(404, `Not Found: no ENUM entry for ${number}`);
  },
};

/** `enum.pstn_route` with `number` as its user part and `user=phone` (RFC 3261 §19.1.6). */
export function pstnUri(route: string, number: string): string {
  const colon = route.indexOf(':');
  const scheme = route.slice(0, colon);
  let rest = route.slice(colon + 1);
  const at = rest.indexOf('@');
  if (at >= 0) rest = rest.slice(at + 1);
  return `${scheme}:${number}@${rest}${/;user=phone\b/i.test(rest) ? '' : ';user=phone'}`;
}
