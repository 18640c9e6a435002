import { afterEach, describe, expect, it } from 'vitest';
import { callAdmission } from '../../src/proxy/processors/call-admission.js';
import { DOMAIN, openSipWorld, sipRequest, type SipWorld } from '../helpers/sip-world.js';

describe('call-admission processor', () => {
  let world: SipWorld;
  afterEach(() => world.close());
  const asked: string[] = [];
  const open = () =>
    (world = openSipWorld({}, {
      admitCall: (username) => {
        asked.push(username);
        return username === 'busy' ? { status: 486, reason: 'Busy Here: too many calls', headers: [{ name: 'Retry-After', value: '60' }] } : undefined;
      },
    }));

  it('asks the call policy about an authenticated user\'s INVITE and answers its refusal', () => {
    open();
    const ctx = world.context(sipRequest('INVITE', `sip:bob@${DOMAIN}`));
    ctx.username = 'busy';
    expect(callAdmission.process(ctx)).toEqual({ kind: 'reply', status: 486, reason: 'Busy Here: too many calls', headers: [{ name: 'Retry-After', value: '60' }] });
    ctx.username = 'alice';
    expect(callAdmission.process(ctx)).toBe('continue');
    expect(asked).toEqual(['busy', 'alice']);
  });

  it('does not ask for other methods or unauthenticated senders', () => {
    open();
    asked.length = 0;
    const msg = world.context(sipRequest('MESSAGE', `sip:bob@${DOMAIN}`));
    msg.username = 'busy';
    expect(callAdmission.process(msg)).toBe('continue');
    expect(callAdmission.process(world.context(sipRequest('INVITE', `sip:bob@${DOMAIN}`)))).toBe('continue');
    expect(asked).toEqual([]);
  });

  it('waits for a policy that answers later (another worker counts the user\'s calls)', async () => {
    world = openSipWorld({}, {
      admitCall: async (username) => {
        await new Promise((r) => setTimeout(r, 5));
        return username === 'busy' ? { status: 486, reason: 'Busy Here: concurrent call limit', headers: [] } : undefined;
      },
    });
    const ctx = world.context(sipRequest('INVITE', `sip:bob@${DOMAIN}`));
    ctx.username = 'busy';
    expect(await callAdmission.process(ctx)).toEqual({ kind: 'reply', status: 486, reason: 'Busy Here: concurrent call limit', headers: [] });
    ctx.username = 'alice';
    expect(await callAdmission.process(ctx)).toBe('continue');
  });
});
