import type { RegisterStep } from './register-context.js';
import { requestUriDomain } from './request-uri.js';
import { requireExtensions } from './require-extensions.js';
import { addressOfRecord } from './address-of-record.js';
import { authorization } from './authorization.js';
import { registerHeaders } from './expires.js';
import { pathSupport } from './path-support.js';
import { currentBindings } from './current-bindings.js';
import { wildcardContact } from './wildcard.js';
import { contactBindings } from './contact-bindings.js';
import { bindingLimit, storeBindings } from './store-bindings.js';
import { bindingsResponse } from './bindings-response.js';

/**
 * The registrar's steps, in order (RFC 3261 §10.3). Each returns nothing to
 * go on or the final response; the last always answers. The AOR (step 5) is
 * read before authentication (steps 3–4), so a REGISTER with a bad To gets
 * its 400/404 without a challenge.
 */
export const REGISTER_STEPS: readonly RegisterStep[] = [
  requestUriDomain, //  step 1     404 for a domain not served here
  requireExtensions, // step 2     420 for an unsupported Require
  addressOfRecord, //   step 5     the To URI as AOR (400, 404)
  authorization, //     steps 3-4  401 challenge; 403 for another user's AOR
  registerHeaders, //   step 6     Call-ID, CSeq, Contact, Expires, Supported
  pathSupport, //       RFC 3327 §5.3  420 for Path without Supported: path
  currentBindings, //   step 6     the AOR's bindings now (read through a shared store on a cache miss)
  wildcardContact, //   step 6     Contact: * with Expires: 0 removes every binding
  contactBindings, //   steps 6-7  per contact: ordering, expiry (423), Outbound
  bindingLimit, //      step 7     403 beyond max_bindings_per_aor
  storeBindings, //     step 7     apply and commit the changes
  bindingsResponse, //  step 8     200 with every binding and its expiry
];
