import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from '@jest/globals';

import {
  LoginThrottle,
  checkGrantedPrincipals,
  generateApiKey,
  hashSecret,
  isSecretHash,
  permissionsFor,
  readPrincipalsFile,
  resolveAccess,
  verifySecret,
  type Permissions,
} from '../../src/auth/index.js';
import type { CollectionRecord } from '../../src/store/index.js';

const dir = mkdtempSync(join(tmpdir(), 'feedhub-auth-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('secret hashes', () => {
  it('verify round trip', async () => {
    const hash = await hashSecret('correct horse');

    expect(isSecretHash(hash)).toBe(true);
    expect(await verifySecret('correct horse', hash)).toBe(true);
    expect(await verifySecret('correct horsE', hash)).toBe(false);
  });

  it('hash is salted', async () => {
    expect(await hashSecret('same')).not.toBe(await hashSecret('same'));
  });

  it('empty secret rejected', async () => {
    await expect(hashSecret('')).rejects.toThrow('empty');
  });

  it.each(['', 'plain', 'scrypt$N=3,r=8,p=1$c2FsdA$aGFzaGhhc2hoYXNoaGFzaA', 'bcrypt$x'])(
    'invalid hash %p never matches',
    async (encoded) => {
      expect(isSecretHash(encoded)).toBe(false);
      expect(await verifySecret('anything', encoded)).toBe(false);
    },
  );

  it('api key token', async () => {
    const { token, hash } = await generateApiKey('ci-1');
    const [id, secret] = token.split('.');

    expect(id).toBe('ci-1');
    expect(await verifySecret(secret ?? '', hash)).toBe(true);
    await expect(generateApiKey('bad id')).rejects.toThrow('key id');
  });
});

describe('login throttle', () => {
  it('empties and refills', () => {
    let now = 0;
    const throttle = new LoginThrottle({ capacity: 2, refillMs: 1000, now: () => now });

    throttle.recordFailure(['ip:a']);
    expect(throttle.retryAfterMs(['ip:a'])).toBe(0);
    throttle.recordFailure(['ip:a']);
    expect(throttle.retryAfterMs(['ip:a'])).toBe(1000);
    now = 500;
    expect(throttle.retryAfterMs(['ip:a'])).toBe(500);
    now = 1000;
    expect(throttle.retryAfterMs(['ip:a'])).toBe(0);
  });

  it('keys are independent', () => {
    const throttle = new LoginThrottle({ capacity: 1, now: () => 0 });

    throttle.recordFailure(['ip:a', 'basic:alice']);

    expect(throttle.retryAfterMs(['ip:b'])).toBe(0);
    expect(throttle.retryAfterMs(['ip:b', 'basic:alice'])).toBeGreaterThan(0);
  });

  it('drops refilled buckets', () => {
    let now = 0;
    const throttle = new LoginThrottle({
      capacity: 1,
      refillMs: 10,
      maxBuckets: 2,
      now: () => now,
    });
    throttle.recordFailure(['a']);
    throttle.recordFailure(['b']);
    now = 100;

    throttle.recordFailure(['c']);

    expect(throttle.retryAfterMs(['a'])).toBe(0);
    expect(throttle.retryAfterMs(['c'])).toBeGreaterThan(0);
  });
});

describe('collection permissions', () => {
  const base: CollectionRecord = {
    id: 'c',
    alias: 'c',
    title: 'c',
    canRead: true,
    canWrite: true,
    mediaTypes: [],
  };

  type Case = [string, Partial<CollectionRecord>, string | undefined, Permissions];
  it.each<Case>([
    ['no access key: public read', {}, undefined, { read: true, write: false }],
    ['no access key: principal', {}, 'alice', { read: true, write: false }],
    [
      'private, anonymous',
      { access: { public: false, read: ['alice'], write: [] } },
      undefined,
      { read: false, write: false },
    ],
    [
      'private, granted',
      { access: { public: false, read: ['alice'], write: ['alice'] } },
      'alice',
      { read: true, write: true },
    ],
    [
      'wildcard',
      { access: { public: false, read: ['*'], write: ['*'] } },
      'bob',
      { read: true, write: true },
    ],
    [
      'anonymous never writes',
      { access: { public: true, read: [], write: ['*'] } },
      undefined,
      { read: true, write: false },
    ],
    [
      'read switched off',
      { canRead: false, access: { public: true, read: ['alice'], write: [] } },
      'alice',
      { read: false, write: false },
    ],
    [
      'write switched off',
      { canWrite: false, access: { public: false, read: [], write: ['alice'] } },
      'alice',
      { read: false, write: false },
    ],
  ])('%s', (_name, overrides, principal, expected) => {
    const collection: CollectionRecord = { ...base, ...overrides };

    expect(permissionsFor(collection, principal)).toEqual(expected);
  });

  it('yaml default is public read-only', () => {
    expect(resolveAccess(undefined)).toEqual({ public: true, read: [], write: [] });
    expect(resolveAccess({ write: ['alice'] })).toEqual({
      public: true,
      read: [],
      write: ['alice'],
    });
  });

  it('grants must name known principals', () => {
    const problems: string[] = [];
    const collections = [
      { file: 'a.yaml', access: { public: false, read: ['alice', '*'], write: ['mallory'] } },
    ];

    checkGrantedPrincipals(collections, new Set(['alice']), 'principals.yaml', problems);
    checkGrantedPrincipals(collections, new Set(), undefined, problems);

    expect(problems).toHaveLength(3);
    expect(problems[0]).toContain('"mallory" is not defined in principals.yaml');
    expect(problems[1]).toContain('FEEDHUB_PRINCIPALS_FILE is not set');
  });
});

describe('principals file', () => {
  function load(text: string): { principals: unknown[]; problems: string[] } {
    const file = join(dir, `p-${Math.random()}.yaml`);
    writeFileSync(file, text);
    const problems: string[] = [];
    return { principals: readPrincipalsFile(file, problems), problems };
  }

  it('reads principals', async () => {
    const hash = await hashSecret('pw');
    const { principals, problems } = load(
      `principals:\n  - name: alice\n    password: "${hash}"\n    apiKeys:\n      - { id: k1, hash: "${hash}" }\n  - name: bot\n`,
    );

    expect(problems).toEqual([]);
    expect(principals).toEqual([
      { name: 'alice', password: hash, apiKeys: [{ id: 'k1', hash }] },
      { name: 'bot', apiKeys: [] },
    ]);
  });

  it('plain password rejected', () => {
    const { problems } = load('principals:\n  - name: alice\n    password: hunter2\n');

    expect(problems.join('\n')).toContain('/principals/0/password');
  });

  it('duplicates rejected', async () => {
    const hash = await hashSecret('pw');
    const { problems } = load(
      `principals:\n  - { name: a, apiKeys: [{ id: k, hash: "${hash}" }] }\n  - { name: a, apiKeys: [{ id: k, hash: "${hash}" }] }\n`,
    );

    expect(problems).toHaveLength(2);
  });

  it('unknown key rejected', () => {
    const { problems } = load('principals:\n  - name: alice\n    colour: red\n');

    expect(problems[0]).toContain('unknown key "colour"');
  });

  it('missing file reported', () => {
    const problems: string[] = [];

    readPrincipalsFile(join(dir, 'absent.yaml'), problems);

    expect(problems[0]).toContain('could not be read');
  });
});
