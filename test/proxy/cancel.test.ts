import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cancel } from '../../src/proxy/processors/cancel.js';
import { DOMAIN, openSipWorld, sipRequest, type SipWorld } from '../helpers/sip-world.js';
import type { ServerTransaction } from '../../src/transaction/server-transaction.js';

describe('cancel processor (RFC 3261 §16.10)', () => {
  let world: SipWorld;
  let invite: ServerTransaction | undefined;
  beforeEach(() => {
    invite = undefined;
    world = openSipWorld({}, { findInviteFor: () => invite });
  });
  afterEach(() => world.close());

  it('goes on for other methods', () => {
    expect(cancel.process(world.context(sipRequest('INVITE', `sip:bob@${DOMAIN}`)))).toBe('continue');
  });

  it('answers 481 when no INVITE matches', () => {
    expect(cancel.process(world.context(sipRequest('CANCEL', `sip:bob@${DOMAIN}`)))).toEqual({ kind: 'reply', status: 481, reason: 'Call/Transaction Does Not Exist' });
  });

  it('answers 200, then 487 on an INVITE not yet forwarded', () => {
    invite = world.transaction(sipRequest('INVITE', `sip:bob@${DOMAIN}`));
    const outcome = cancel.process(world.context(sipRequest('CANCEL', `sip:bob@${DOMAIN}`)));
    expect(outcome).toEqual({ kind: 'handled' });
    expect(world.sent.map((r) => `${r.status} ${r.headers.find((h) => h.name === 'CSeq')?.value}`)).toEqual(['200 1 CANCEL', '487 1 INVITE']);
    expect((invite as { cancelled?: boolean }).cancelled).toBe(true);
  });
});
