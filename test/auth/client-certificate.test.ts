import { describe, expect, it } from 'vitest';
import { certificateIdentities, parseSubjectAltName } from '../../src/auth/client-certificate.js';
import { createAuthenticator } from '../../src/auth/request-authenticator.js';
import type { DigestPolicy } from '../../src/auth/sip-digest.js';
import type { SipRequest } from '../../src/sip/message.js';
import type { Source } from '../../src/transport/types.js';

describe('parseSubjectAltName', () => {
  it('splits plain and JSON-quoted entries', () => {
    expect(parseSubjectAltName('URI:sip:alice@example.test, email:alice@example.test, DNS:phone.example.test')).toEqual([
      { type: 'URI', value: 'sip:alice@example.test' },
      { type: 'email', value: 'alice@example.test' },
      { type: 'DNS', value: 'phone.example.test' },
    ]);
    expect(parseSubjectAltName('URI:"sip:a@b;x=1,2", IP Address:127.0.0.1')).toEqual([
      { type: 'URI', value: 'sip:a@b;x=1,2' },
      { type: 'IP Address', value: '127.0.0.1' },
    ]);
    expect(parseSubjectAltName(undefined)).toEqual([]);
    expect(parseSubjectAltName('URI:"unterminated')).toEqual([]);
  });
});

describe('certificateIdentities', () => {
  const cert = { subjectaltname: 'URI:sips:Alice@EXAMPLE.test, URI:https://example.test/, URI:sip:example.test, email:bob@example.test' };
  it('takes sip/sips URIs with a user, host lowercased, sips as sip; email only when asked', () => {
    expect(certificateIdentities(cert, ['uri'])).toEqual(['sip:Alice@example.test']);
    expect(certificateIdentities(cert, ['uri', 'email'])).toEqual(['sip:Alice@example.test', 'sip:bob@example.test']);
    expect(certificateIdentities(cert, ['email'])).toEqual(['sip:bob@example.test']);
    expect(certificateIdentities({}, ['uri'])).toEqual([]);
  });
});

describe('createAuthenticator with client certificates', () => {
  let lookups = 0;
  const policy: DigestPolicy = {
    realm: 'example.test',
    secret: Buffer.alloc(32, 7),
    nonceTtlS: 300,
    algorithms: ['MD5'],
    lookupHa1: async () => {
      lookups++;
      return undefined;
    },
  };
  const aorOf = (uri: string) => {
    const m = /^sips?:([^@]+)@([^;>:]+)/i.exec(uri);
    if (!m) return undefined;
    const host = m[2].toLowerCase();
    return host === 'example.test' || host === '127.0.0.1' ? `sip:${m[1]}@example.test` : undefined;
  };
  const auth = createAuthenticator(policy, { certificates: { aorOf } });
  const req = (method: string, from: string, to: string): SipRequest =>
    ({
      kind: 'request',
      method,
      uri: 'sip:example.test',
      headers: [
        { name: 'From', value: `<${from}>;tag=1` },
        { name: 'To', value: `<${to}>` },
      ],
      body: Buffer.alloc(0),
    }) as SipRequest;
  const source = (ids?: string[]): Source => ({ transport: 'tls', remoteAddress: '127.0.0.1', remotePort: 5061, localAddress: '127.0.0.1', localPort: 5061, flowId: 'tls-1', tlsIdentities: ids });

  it('REGISTER: the To AOR must be a certificate identity (own address stands for the domain)', async () => {
    expect(await auth(req('REGISTER', 'sip:alice@example.test', 'sip:alice@127.0.0.1'), 'www', source(['sip:alice@example.test']))).toEqual({
      ok: true,
      username: 'alice',
      realm: 'example.test',
      method: 'certificate',
    });
    const other = await auth(req('REGISTER', 'sip:alice@example.test', 'sip:bob@example.test'), 'www', source(['sip:alice@example.test']));
    expect(other).toMatchObject({ ok: false, status: 401 });
  });

  it('proxy: the From AOR must match; no identities or unverified flows mean digest', async () => {
    expect(await auth(req('INVITE', 'sip:alice@example.test', 'sip:bob@example.test'), 'proxy', source(['sip:alice@example.test']))).toMatchObject({ ok: true, username: 'alice' });
    expect(await auth(req('INVITE', 'sip:bob@example.test', 'sip:alice@example.test'), 'proxy', source(['sip:alice@example.test']))).toMatchObject({ ok: false, status: 407 });
    expect(await auth(req('INVITE', 'sip:alice@example.test', 'sip:bob@example.test'), 'proxy', source(undefined))).toMatchObject({ ok: false, status: 407 });
    expect(await auth(req('INVITE', 'sip:alice@other.test', 'sip:bob@example.test'), 'proxy', source(['sip:alice@other.test']))).toMatchObject({ ok: false, status: 407 });
    expect(lookups).toBe(0);
  });
});
