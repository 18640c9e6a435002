import { gruuOf, instanceBindings, openTempGruu, tempGruuBindings } from '../../registrar/gruu.js';
import type { BindingRecord } from '../../store/index.js';
import { CONTINUE, reply, type RequestContext, type RequestProcessor } from '../request-context.js';
import { targetsOfBindings } from './location-lookup.js';

/**
 * GRUU routing (RFC 5627 §8.4.1): a Request-URI of ours with a `gr`
 * parameter goes to exactly the bindings of the instance it names, never to
 * the AOR's other bindings. A public GRUU (`sip:alice@example.test;gr=urn:...`)
 * names the instance itself (404 when the user does not exist); a temp-GRUU
 * (`sip:tgruu.<token>@example.test;gr`) must open under our key (404 when it
 * does not, or when the instance has since registered with another Call-ID,
 * which invalidates it, §5.1). An instance with no binding now gets 480
 * Temporarily Unavailable.
 */
export const gruuRouting: RequestProcessor = {
  name: 'gruu-routing',
  async process(ctx: RequestContext) {
    const aor = ctx.aor;
    if (!aor) return CONTINUE;
    const gruu = gruuOf(ctx.ruri);
    if (!gruu) return CONTINUE;
    let bindings: BindingRecord[];
    if (gruu.kind === 'public') {
      const domain = aor.slice(aor.lastIndexOf('@') + 1);
      if (!(await ctx.env.userExists(ctx.ruri.user!, domain))) return reply(404, 'Not Found');
      bindings = instanceBindings(await ctx.env.location.read(aor), gruu.instance);
    } else {
      const claim = ctx.env.tempGruuKey && openTempGruu(ctx.env.tempGruuKey, gruu.user);
      if (!claim) return reply(404, 'Not Found');
      const current = instanceBindings(await ctx.env.location.read(claim.aor), claim.instance);
      bindings = tempGruuBindings(claim, current);
      if (bindings.length === 0 && current.length > 0) return reply(404, 'Not Found');
    }
    if (bindings.length === 0) return reply(480, 'Temporarily Unavailable');
    return { kind: 'forward', targets: targetsOfBindings(ctx.env, bindings) };
  },
};
