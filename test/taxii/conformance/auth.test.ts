/**
 * Authentication in front of every TAXII endpoint: HTTP Basic and API keys,
 * 401 challenges, failed-login throttling and write permissions.
 */
import { expect, it } from '@jest/globals';

import {
  TAXII,
  collectionPath,
  describeOnStores,
  indicator,
  request,
  type StatusBody,
} from './harness.js';

const basic = (user: string, password: string) =>
  `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

describeOnStores('Authentication', (hub) => {
  const sharedObjects = () => collectionPath(hub().collections.shared, 'objects/');

  it('basic credentials', async () => {
    const response = await request(hub(), sharedObjects(), { as: 'alice' });

    expect(response.status).toBe(200);
  });

  it('api key', async () => {
    const response = await request(hub(), sharedObjects(), { asKey: 'bob' });

    expect(response.status).toBe(200);
  });

  it('scheme is case-insensitive', async () => {
    const response = await request(hub(), sharedObjects(), {
      authorization: `basic ${Buffer.from('alice:alice-password').toString('base64')}`,
    });

    expect(response.status).toBe(200);
  });

  it('wrong password is 401', async () => {
    const response = await request(hub(), sharedObjects(), {
      authorization: basic('alice', 'wrong'),
    });

    expect(response.status).toBe(401);
    expect(response.headers.get('content-type')).toBe(TAXII);
    expect(response.headers.get('www-authenticate')).toContain('Basic realm="feedhub"');
    expect(response.headers.get('www-authenticate')).toContain('Bearer realm="feedhub"');
  });

  it('unknown user is 401', async () => {
    const response = await request(hub(), sharedObjects(), {
      authorization: basic('mallory', 'alice-password'),
    });

    expect(response.status).toBe(401);
  });

  it('wrong key secret is 401', async () => {
    const response = await request(hub(), sharedObjects(), {
      authorization: 'Bearer alice-key.not-the-secret',
    });

    expect(response.status).toBe(401);
  });

  it('key of one user is not a password', async () => {
    const response = await request(hub(), sharedObjects(), {
      authorization: basic('alice', 'alice-secret-value'),
    });

    expect(response.status).toBe(401);
  });

  it.each(['Digest username="alice"', 'Bearer', 'Basic !!!', 'Bearer no-dot-here'])(
    'malformed %s is 401',
    async (authorization) => {
      const response = await request(hub(), sharedObjects(), { authorization });

      expect(response.status).toBe(401);
    },
  );

  it('bad credentials on public resource are 401', async () => {
    const response = await request(hub(), '/taxii2/', { authorization: basic('alice', 'wrong') });

    expect(response.status).toBe(401);
  });

  it('public collection without credentials', async () => {
    const response = await request(hub(), collectionPath(hub().collections.open, 'objects/'));

    expect(response.status).toBe(200);
  });

  it('anonymous post is 401', async () => {
    const response = await request(hub(), collectionPath(hub().collections.open, 'objects/'), {
      body: { objects: [indicator()] },
    });

    expect(response.status).toBe(401);
  });

  it('reader post is 403', async () => {
    const response = await request(hub(), collectionPath(hub().collections.open, 'objects/'), {
      as: 'bob',
      body: { objects: [indicator()] },
    });

    expect(response.status).toBe(403);
  });

  it('writer post to inbox', async () => {
    const response = await request(hub(), collectionPath(hub().collections.inbox, 'objects/'), {
      asKey: 'carol',
      body: { objects: [indicator()] },
    });

    expect(response.status).toBe(202);
    expect(((await response.json()) as StatusBody).success_count).toBe(1);
  });

  it('stranger post is 404', async () => {
    const response = await request(hub(), collectionPath(hub().collections.inbox, 'objects/'), {
      as: 'bob',
      body: { objects: [indicator()] },
    });

    expect(response.status).toBe(404);
  });
});

describeOnStores(
  'Failed login throttling',
  (hub) => {
    const path = () => collectionPath(hub().collections.shared, 'objects/');

    it('429 after repeated failures', async () => {
      for (let i = 0; i < 3; i++) {
        const failed = await request(hub(), path(), { authorization: basic('bob', 'guess') });
        expect(failed.status).toBe(401);
      }

      const throttled = await request(hub(), path(), { authorization: basic('bob', 'guess') });
      const correct = await request(hub(), path(), { as: 'bob' });

      expect(throttled.status).toBe(429);
      expect(throttled.headers.get('content-type')).toBe(TAXII);
      expect(Number(throttled.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(correct.status).toBe(429);
    });

    it('anonymous requests are not throttled', async () => {
      const response = await request(hub(), collectionPath(hub().collections.open, 'objects/'));

      expect(response.status).toBe(200);
    });
  },
  { throttleCapacity: 3 },
);
