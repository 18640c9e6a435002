/** TURN long-term credentials (turn/turn-auth.ts): the USERHASH values learnt from logins by name, bounded. */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log.js';
import { longTermKey, userhash } from '../../src/stun/stun-integrity.js';
import { AttributeType as A, decodeStunMessage, encodeStunMessage, StunMethod, type StunAttribute } from '../../src/stun/stun-message.js';
import type { FiveTuple } from '../../src/turn/five-tuple.js';
import { LEARNT_USERHASHES_MAX, TurnAuthenticator } from '../../src/turn/turn-auth.js';

const REALM = 'example.test';
const FT: FiveTuple = { transport: 'udp', clientAddress: '192.0.2.10', clientPort: 40000, serverAddress: '192.0.2.1', serverPort: 3478 };

describe('TurnAuthenticator: learnt USERHASH values (docs/LIMITS.md)', () => {
  it('keeps at most LEARNT_USERHASHES_MAX, the oldest forgotten: a USERHASH-only request for it is challenged again (401)', async () => {
    // No user store behind the USERHASH: only what was learnt from logins by name resolves.
    const auth = new TurnAuthenticator({ realm: REALM, nonceTtlS: 600, nonceSecret: randomBytes(32), getKey: async (u, r) => longTermKey(u, r, `pw-${u}`) }, silentLogger);
    const now = Date.now();
    const challenge = auth.challengeAttributes(FT, now);
    const nonce = challenge.find((a) => a.type === A.Nonce)!;
    const request = (user: string, byHash: boolean) => {
      const who: StunAttribute = byHash ? { type: A.Userhash, value: userhash(user, REALM) } : { type: A.Username, value: Buffer.from(user) };
      const raw = encodeStunMessage(
        { method: StunMethod.Allocate, class: 'request', transactionId: randomBytes(12), attributes: [who, { type: A.Realm, value: Buffer.from(REALM) }, nonce] },
        { integrityKey: longTermKey(user, REALM, `pw-${user}`) },
      );
      return auth.authenticate(FT, decodeStunMessage(raw), raw, now);
    };
    let most = 0;
    let failed = 0;
    for (let i = 0; i <= LEARNT_USERHASHES_MAX; i++) {
      if (!('username' in (await request(`user${i}`, false)))) failed++;
      most = Math.max(most, auth.learntUserhashes);
    }
    expect(failed).toBe(0);
    expect(most).toBe(LEARNT_USERHASHES_MAX);
    const first = await request('user0', true);
    expect('refusal' in first && first.challenge && first.refusal.status).toBe(401);
    expect(await request('user1', true)).toMatchObject({ username: 'user1' });
    expect(await request(`user${LEARNT_USERHASHES_MAX}`, true)).toMatchObject({ username: `user${LEARNT_USERHASHES_MAX}` });
    // Logging in by name again learns it again, in place of the now oldest (user1).
    expect(await request('user0', false)).toMatchObject({ username: 'user0' });
    expect(await request('user0', true)).toMatchObject({ username: 'user0' });
    expect('refusal' in (await request('user1', true))).toBe(true);
    expect(auth.learntUserhashes).toBe(LEARNT_USERHASHES_MAX);
  });
});
