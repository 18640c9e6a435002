/**
 * LDAP as the user directory, against a throwaway slapd holding the users:
 * - two baresip UAs register with digest credentials from H.350.4 SIPIdentity
 *   entries and call each other through rtcedge;
 * - sipsak registers a user whose entry holds only an HA1 attribute; a user with
 *   only a hashed userPassword, a wrong password and an unknown user get 403;
 * - the service account alone can read the passwords (an anonymous search sees none);
 * - with slapd stopped, REGISTER gets 503 with Retry-After, not 403; once it is back, 200.
 *
 * Ports: slapd 29010; rtcedge UDP/TCP 29060; baresip alice 29100 (ctrl 29110, RTP 29120-29139),
 * bob 29200 (ctrl 29210, RTP 29220-29239).
 */
import { join } from 'node:path';
import { Client } from 'ldapts';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWithPeers } from './harness/peers.js';
import { computeHA1 } from '../src/auth/digest.js';
import { startBaresip, type BaresipUa } from './harness/baresip.js';
import { assertPortsFree } from './harness/ports.js';
import { stopAllStarted } from './harness/process.js';
import { startRtcedge, type Rtcedge } from './harness/rtcedge.js';
import { headerValues } from './harness/sip-log.js';
import { runSipsak, sipsakRegisterArgs } from './harness/sipsak.js';
import { startSlapd, type Slapd } from './harness/slapd.js';
import { makeTempDir, removeTempDir } from './harness/temp-dir.js';

const LDAP_PORT = 29010;
const SIP_PORT = 29060;
const ALICE_SIP = 29100;
const BOB_SIP = 29200;
const SUFFIX = 'dc=example,dc=test';
const SERVICE_DN = `cn=rtcedge,ou=services,${SUFFIX}`;
const SERVICE_PW = 'service-pw-1';
const REALM = 'example.test';

/**
 * The SIPIdentity object class of ITU-T H.350.4 with the attributes rtcedge reads,
 * and HA1 attributes private to this test (OIDs under the 2.25 UUID arc).
 */
const SCHEMA = `
attributetype ( 0.0.8.350.1.1.6.1.1 NAME 'SIPIdentitySIPURI' EQUALITY caseExactMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )
attributetype ( 0.0.8.350.1.1.6.1.4 NAME 'SIPIdentityPassword' EQUALITY octetStringMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.40 )
attributetype ( 0.0.8.350.1.1.6.1.5 NAME 'SIPIdentityUserName' EQUALITY caseExactMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )
objectclass ( 0.0.8.350.1.1.6.2.1 NAME 'SIPIdentity' SUP top AUXILIARY MAY ( SIPIdentitySIPURI $ SIPIdentityUserName $ SIPIdentityPassword ) )
attributetype ( 2.25.184211943128617209514532915441364390401 NAME 'rtcedgeHa1Md5' EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
objectclass ( 2.25.184211943128617209514532915441364390402 NAME 'rtcedgeDigestUser' SUP top AUXILIARY MAY ( rtcedgeHa1Md5 ) )
`;

const PASSWORDS = { alice: 'alice-ldap-pw', bob: 'bob-ldap-pw', carol: 'carol-ldap-pw' };

function person(uid: string, extra: string[]): string {
  // slapadd wants the values of one attribute together: object classes first.
  const classes = extra.filter((l) => l.startsWith('objectClass:'));
  const rest = extra.filter((l) => !l.startsWith('objectClass:'));
  return [`dn: uid=${uid},ou=people,${SUFFIX}`, 'objectClass: inetOrgPerson', ...classes, `uid: ${uid}`, `cn: ${uid}`, `sn: ${uid}`, ...rest, ''].join('\n');
}

const LDIF = [
  [`dn: ${SUFFIX}`, 'objectClass: dcObject', 'objectClass: organization', 'o: example', 'dc: example', ''].join('\n'),
  [`dn: ou=people,${SUFFIX}`, 'objectClass: organizationalUnit', 'ou: people', ''].join('\n'),
  [`dn: ou=services,${SUFFIX}`, 'objectClass: organizationalUnit', 'ou: services', ''].join('\n'),
  [`dn: ${SERVICE_DN}`, 'objectClass: organizationalRole', 'objectClass: simpleSecurityObject', 'cn: rtcedge', `userPassword: ${SERVICE_PW}`, ''].join('\n'),
  person('alice', ['objectClass: SIPIdentity', 'SIPIdentityUserName: alice', `SIPIdentityPassword: ${PASSWORDS.alice}`, `SIPIdentitySIPURI: sip:alice@${REALM}`]),
  person('bob', ['objectClass: SIPIdentity', 'SIPIdentityUserName: bob', `SIPIdentityPassword: ${PASSWORDS.bob}`]),
  // carol: only an HA1, no password anywhere.
  person('carol', ['objectClass: rtcedgeDigestUser', `rtcedgeHa1Md5: ${computeHA1('MD5', 'carol', REALM, PASSWORDS.carol)}`]),
  // dave: a hashed userPassword only, which cannot serve digest.
  person('dave', ['userPassword: {SSHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=']),
].join('\n');

/** Secrets readable by the service account only. */
const ACL = [
  `access to attrs=userPassword by dn.exact="${SERVICE_DN}" read by anonymous auth by * none`,
  `access to attrs=SIPIdentityPassword,rtcedgeHa1Md5 by dn.exact="${SERVICE_DN}" read by * none`,
  'access to * by * read',
];

describeWithPeers(['slapd', 'slapadd', 'baresip', 'sipsak'])('LDAP directory: users from slapd register and call; an outage gives 503', () => {
  let dir: string;
  let slapd: Slapd | undefined;
  let server: Rtcedge | undefined;
  let alice: BaresipUa | undefined;
  let bob: BaresipUa | undefined;

  beforeAll(async () => {
    await assertPortsFree('127.0.0.1', [LDAP_PORT, SIP_PORT, ALICE_SIP, ALICE_SIP + 1, BOB_SIP, BOB_SIP + 1, 29110, 29210]);
    dir = makeTempDir('ldap');
    slapd = await startSlapd({ dir: join(dir, 'slapd'), port: LDAP_PORT, suffix: SUFFIX, rootPassword: 'root-pw', schema: SCHEMA, acl: ACL, ldif: LDIF });
    server = await startRtcedge({
      dir: join(dir, 'server'),
      ports: { udp: SIP_PORT, tcp: SIP_PORT },
      config: {
        directory: {
          type: 'ldap',
          url: `ldap://127.0.0.1:${LDAP_PORT}`,
          bind_dn: SERVICE_DN,
          bind_password: SERVICE_PW,
          base_dn: `ou=people,${SUFFIX}`,
          filter: '(uid={user})',
          attributes: { password: ['SIPIdentityPassword', 'userPassword'], ha1_md5: 'rtcedgeHa1Md5' },
          cache_ttl: 1,
          timeout: 1000,
          retry_after: 7,
        },
      },
    });
  }, 60_000);

  afterAll(async () => {
    await Promise.all([alice?.stop(), bob?.stop()]);
    await server?.stop();
    await slapd?.stop();
    await stopAllStarted();
    removeTempDir(dir);
  });

  /**
   * Statuses the server sent to the REGISTERs whose Contact names `contactPort`, in order, once at least
   * two are logged or 5 s passed: the server's log lines reach the harness a moment after sipsak saw the
   * answers, more so on a busy machine.
   */
  async function registerAnswers(contactPort: number): Promise<number[]> {
    const deadline = Date.now() + 5000;
    let answers = loggedRegisterAnswers(contactPort);
    while (answers.length < 2 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      answers = loggedRegisterAnswers(contactPort);
    }
    return answers;
  }

  function loggedRegisterAnswers(contactPort: number): number[] {
    const tries = server!
      .sipLog({ direction: 'recv', method: 'REGISTER', transport: 'udp' })
      .filter((e) => headerValues(e.message, 'Contact').some((v) => v.includes(`127.0.0.1:${contactPort}`)));
    const callIds = new Set(tries.map((t) => t.callId));
    return server!
      .sipLog({ direction: 'send', cseqMethod: 'REGISTER' })
      .filter((e) => callIds.has(e.callId))
      .map((e) => e.status!)
      .filter((s) => s !== undefined);
  }

  async function sipsakRegister(user: string, password: string, contactPort: number) {
    return runSipsak(
      sipsakRegisterArgs({ target: `sip:${user}@127.0.0.1:${SIP_PORT}`, contact: `sip:${user}@127.0.0.1:${contactPort}`, user, password, expires: 60 }),
      { timeoutMs: 10_000 },
    );
  }

  it('only the service account reads the passwords', async () => {
    const anon = new Client({ url: slapd!.url, timeout: 3000, connectTimeout: 3000 });
    try {
      const { searchEntries } = await anon.search(`ou=people,${SUFFIX}`, { filter: '(uid=alice)', attributes: ['SIPIdentityPassword', 'cn'] });
      expect(searchEntries).toHaveLength(1);
      expect(searchEntries[0]!.cn).toBe('alice');
      // Attributes the ACL hides come back without values.
      expect(searchEntries[0]!.SIPIdentityPassword ?? []).toEqual([]);
    } finally {
      await anon.unbind();
    }
  });

  it('two baresip UAs register with credentials from LDAP and call each other', async () => {
    const common = { parentDir: dir, lifetimeS: 100 };
    alice = await startBaresip({
      ...common,
      name: 'alice',
      sipPort: ALICE_SIP,
      ctrlPort: 29110,
      rtpPorts: [29120, 29139],
      accounts: [{ aor: `sip:alice@127.0.0.1:${SIP_PORT}`, password: PASSWORDS.alice, regint: 600 }],
    });
    bob = await startBaresip({
      ...common,
      name: 'bob',
      sipPort: BOB_SIP,
      ctrlPort: 29210,
      rtpPorts: [29220, 29239],
      accounts: [{ aor: `sip:bob@127.0.0.1:${SIP_PORT}`, password: PASSWORDS.bob, regint: 600, answermode: 'auto' }],
    });
    await alice.waitForRegistered(10_000);
    await bob.waitForRegistered(10_000);
    expect(server!.bindings('sip:alice@example.test')).toHaveLength(1);
    expect(server!.bindings('sip:bob@example.test')).toHaveLength(1);

    const a0 = alice.events.length;
    const b0 = bob.events.length;
    expect((await alice.dial(`sip:bob@127.0.0.1:${SIP_PORT}`)).ok).toBe(true);
    await alice.waitForEventType('CALL_ESTABLISHED', 10_000, a0);
    await bob.waitForEventType('CALL_ESTABLISHED', 10_000, b0);
    expect((await alice.hangup()).ok).toBe(true);
    await bob.waitForEventType('CALL_CLOSED', 8000, b0);
    // The INVITE was challenged (407) and then passed with alice's LDAP credentials.
    expect(server!.sipLog({ direction: 'send', status: 407, cseqMethod: 'INVITE' }).length).toBeGreaterThanOrEqual(1);
  }, 45_000);

  it('sipsak registers a user whose entry holds only an HA1; hashed-only, wrong and unknown users get 403', async () => {
    const carol = await sipsakRegister('carol', PASSWORDS.carol, 29301);
    expect(carol.code, carol.output).toBe(0);
    expect(server!.bindings('sip:carol@example.test').map((b) => b.contact_uri)).toEqual(['sip:carol@127.0.0.1:29301']);

    for (const [user, pw, port] of [
      ['dave', 'anything', 29302],
      ['alice', 'wrong-password', 29303],
      ['nobody', 'whatever', 29304],
    ] as const) {
      const r = await sipsakRegister(user, pw, port);
      expect(r.code, `${user}: ${r.output}`).not.toBe(0);
      expect(await registerAnswers(port), user).toEqual([401, 403]);
    }
  }, 45_000);

  it('with slapd stopped REGISTER gets 503 with Retry-After, not 403; with slapd back, 200', async () => {
    await slapd!.stop();
    await new Promise((r) => setTimeout(r, 1200)); // past cache_ttl
    const r = await sipsakRegister('alice', PASSWORDS.alice, 29305);
    expect(r.code, r.output).not.toBe(0);
    expect(await registerAnswers(29305)).toEqual([401, 503]);
    const sent503 = server!.sipLog({ direction: 'send', status: 503, cseqMethod: 'REGISTER' });
    expect(headerValues(sent503[0]!.message, 'Retry-After')).toEqual(['7']);

    await slapd!.start();
    const again = await sipsakRegister('alice', PASSWORDS.alice, 29306);
    expect(again.code, again.output).toBe(0);
    expect(await registerAnswers(29306)).toEqual([401, 200]);
  }, 45_000);
});
