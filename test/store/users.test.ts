import { createHash } from 'node:crypto';
import { expect, test } from 'vitest';
import { ALL_HA1_ALGORITHMS, credentialsFor } from '../../src/store/users.js';

const h = (alg: string, s: string) => createHash(alg).update(s, 'utf8').digest('hex');

test('one HA1 per algorithm, realm = lowercase domain', () => {
  expect(credentialsFor('bob', 'Example.TEST', 'pässword', ALL_HA1_ALGORITHMS)).toEqual({
    MD5: h('md5', 'bob:example.test:pässword'),
    'SHA-256': h('sha256', 'bob:example.test:pässword'),
    'SHA-512-256': h('sha512-256', 'bob:example.test:pässword'),
  });
});

test('only the algorithms asked for', () => {
  expect(credentialsFor('bob', 'example.test', 'pw', ['MD5'])).toEqual({ MD5: h('md5', 'bob:example.test:pw') });
  expect(credentialsFor('bob', 'example.test', 'pw', [])).toEqual({});
});
