import type { RequestProcessor } from '../request-context.js';
import { maxForwards } from './max-forwards.js';
import { loopDetection } from './loop-detection.js';
import { proxyRequire } from './proxy-require.js';
import { cancel } from './cancel.js';
import { strictRoute } from './strict-route.js';
import { ownRoute } from './own-route.js';
import { localHandling } from './local-handling.js';
import { recordedRoute } from './recorded-route.js';
import { authentication } from './authentication.js';
import { callAdmission } from './call-admission.js';
import { gruuRouting } from './gruu-routing.js';
import { responsibility } from './responsibility.js';
import { locationLookup } from './location-lookup.js';
import { sipsTransport } from './sips-transport.js';
import { domainPolicy } from './domain-policy.js';
import { enumLookup } from './enum-lookup.js';

/**
 * The request path of the proxy, in order (RFC 3261 §16.3–§16.5). Each
 * processor returns `continue` or a final outcome (reply, forward, handled);
 * the first outcome ends the chain and ProxyCore carries it out (forwarding is
 * §16.6, in ProxyCore; responses §16.7, in ResponseContext).
 *
 * Federation: `sips:` needs TLS on the hop it arrived over;
 * domain policy (allowed and denied peer domains, mutual TLS naming the From
 * domain) runs before any routing, so in-dialog requests from other domains
 * are checked too; ENUM (RFC 6116: retarget a tel: or E.164 Request-URI)
 * before responsibility. Server location (RFC 3263) is per target, at
 * next-hop resolution (destination.ts), with failover in ResponseContext.
 */
export const REQUEST_PROCESSORS: readonly RequestProcessor[] = [
  maxForwards, //     §16.3 step 3   483 at zero (OPTIONS/REGISTER/CANCEL may be answered here)
  loopDetection, //   §16.3 step 4   482 when our Via carries this request's hash
  proxyRequire, //    §16.3 step 5   420 for any Proxy-Require
  cancel, //          §16.10         200/481 here, CANCEL of the branches
  strictRoute, //     §16.4          Request-URI from the last Route after a strict router
  ownRoute, //        §16.4          remove our Route entries, read their flow token
  sipsTransport, //   RFC 5630       480 for a sips: request that came over UDP/TCP/WS
  localHandling, //   §16.4, §10, §11 REGISTER → registrar, OPTIONS → 200, 420 for Require
  domainPolicy, //    RFC 5922 §7    403 for denied domains, or other domains without mutual TLS naming them
  recordedRoute, //   §16.4, §12.2   Route / contact / flow token / in-dialog → one target
  authentication, //  §16.3 step 6, §22.3 407 for local senders, From must match
  callAdmission, //   call limits of the authenticated user
  gruuRouting, //     RFC 5627 §8.4.1 a GRUU → that instance's bindings only (404/480)
  enumLookup, //      RFC 6116       E.164 → local owner, ENUM targets, PSTN route, or 404
  responsibility, //  §16.5          our AOR → lookup; other domain → relay for local users
  locationLookup, //  §16.5, §10.2   bindings → target set (404/480 when none)
];
