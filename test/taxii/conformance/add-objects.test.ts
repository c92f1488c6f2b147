/**
 * TAXII 2.1 Add Objects and Get Status: envelope handling, media types,
 * size limit, validation with partial success, versions already stored, and
 * status polling.
 */
import { expect, it } from '@jest/globals';

import {
  STIX,
  TAXII,
  addObjects,
  collectionPath,
  describeOnStores,
  indicator,
  ipv4,
  request,
  type StatusBody,
} from './harness.js';

describeOnStores(
  'Add Objects',
  (hub) => {
    const objectsPath = () => collectionPath(hub().collections.shared, 'objects/');

    function post(body: string | object, options: { contentType?: string } = {}) {
      return request(hub(), objectsPath(), { as: 'alice', body, ...options });
    }

    it('202 with status resource', async () => {
      const object = indicator();

      const response = await post({ objects: [object] });
      const status = (await response.json()) as StatusBody;

      expect(response.status).toBe(202);
      expect(response.headers.get('content-type')).toBe(TAXII);
      expect(status).toEqual({
        id: expect.stringMatching(/^[0-9a-f-]{36}$/),
        status: 'complete',
        request_timestamp: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/),
        total_count: 1,
        success_count: 1,
        successes: [{ id: object['id'], version: object['modified'] }],
        failure_count: 0,
        pending_count: 0,
      });
    });

    it('stored objects readable', async () => {
      const object = indicator();
      await addObjects(hub(), hub().collections.shared, [object]);

      const response = await request(hub(), `${objectsPath()}${object['id']}/`, { as: 'bob' });
      const body = (await response.json()) as { objects: unknown[] };

      expect(body.objects).toEqual([object]);
    });

    it('unversioned taxii content type', async () => {
      const response = await post(
        { objects: [indicator()] },
        {
          contentType: 'application/taxii+json',
        },
      );

      expect(response.status).toBe(202);
    });

    it('content type with parameters', async () => {
      const response = await post(
        { objects: [indicator()] },
        {
          contentType: 'application/taxii+json; charset=utf-8; version="2.1"',
        },
      );

      expect(response.status).toBe(202);
    });

    it('stix content type is 415', async () => {
      const response = await post({ objects: [indicator()] }, { contentType: STIX });

      expect(response.status).toBe(415);
      expect(response.headers.get('content-type')).toBe(TAXII);
    });

    it.each(['application/json', 'text/plain', 'application/taxii+json;version=2.0', 'garbage'])(
      'content type %s is 415',
      async (contentType) => {
        const response = await post({ objects: [indicator()] }, { contentType });

        expect(response.status).toBe(415);
      },
    );

    it('gzip body is 415', async () => {
      const response = await request(hub(), objectsPath(), {
        as: 'alice',
        body: { objects: [] },
        headers: { 'Content-Encoding': 'gzip' },
      });

      expect(response.status).toBe(415);
    });

    it('invalid json is 400', async () => {
      const response = await post('{"objects": [');

      expect(response.status).toBe(400);
      expect(response.headers.get('content-type')).toBe(TAXII);
      expect(((await response.json()) as { title: string }).title).toBe('Invalid JSON');
    });

    it.each([
      ['an array', '[]'],
      ['a string', '"objects"'],
      ['objects not a list', '{"objects": {"type": "indicator"}}'],
      ['a bundle', '{"type": "bundle", "id": "bundle--1", "objects": []}'],
    ])('%s is 422', async (_name, body) => {
      const response = await post(body);

      expect(response.status).toBe(422);
      expect(response.headers.get('content-type')).toBe(TAXII);
    });

    it('empty envelope accepted', async () => {
      const response = await post({});
      const status = (await response.json()) as StatusBody;

      expect(response.status).toBe(202);
      expect(status.total_count).toBe(0);
      expect(status.successes).toBeUndefined();
      expect(status.failures).toBeUndefined();
    });

    it('body over limit is 413 and stores nothing', async () => {
      const big = indicator({ description: 'x'.repeat(5000) });
      const before = await hub().store.countObjects(hub().collections.shared.id);

      const response = await post({ objects: [big] });

      expect(response.status).toBe(413);
      expect(response.headers.get('content-type')).toBe(TAXII);
      expect(await hub().store.countObjects(hub().collections.shared.id)).toBe(before);
    });

    it('chunked body over limit is 413', async () => {
      const chunks = [
        Buffer.from('{"objects":['),
        Buffer.from(' '.repeat(5000)),
        Buffer.from(']}'),
      ];
      const stream = new ReadableStream({
        start(controller) {
          for (const chunk of chunks) controller.enqueue(chunk);
          controller.close();
        },
      });
      const response = await fetch(`${hub().baseUrl}/taxii2/hub/${objectsPath()}`, {
        method: 'POST',
        headers: {
          Accept: TAXII,
          'Content-Type': TAXII,
          Authorization: `Basic ${Buffer.from('alice:alice-password').toString('base64')}`,
        },
        body: stream,
        duplex: 'half',
      } as RequestInit);

      expect(response.status).toBe(413);
    });

    it('partial success', async () => {
      const good = indicator();
      const noPattern = indicator();
      delete noPattern['pattern'];
      const badTimestamp = indicator({ modified: '2024-01-01' });

      const status = await addObjects(hub(), hub().collections.shared, [
        good,
        noPattern,
        badTimestamp,
      ]);

      expect(status.total_count).toBe(3);
      expect(status.success_count).toBe(1);
      expect(status.failure_count).toBe(2);
      expect(status.successes?.map((s) => s.id)).toEqual([good['id']]);
      expect(status.failures?.map((f) => f.id)).toEqual([noPattern['id'], badTimestamp['id']]);
      expect(status.failures?.[0]?.message).toContain('pattern');
      expect(status.failures?.[1]?.message).toContain('/modified');
    });

    it('counts add up', async () => {
      const objects = [indicator(), { type: 'indicator' }, 42, indicator(), ipv4('192.0.2.1')];

      const status = await addObjects(hub(), hub().collections.shared, objects);

      expect(status.success_count + status.failure_count + status.pending_count).toBe(
        status.total_count,
      );
      expect(status.total_count).toBe(5);
      expect(status.failure_count).toBe(2);
    });

    it.each([
      ['missing spec_version', { spec_version: undefined }],
      ['spec_version 2.0', { spec_version: '2.0' }],
      [
        'created without millis',
        { created: '2024-01-01T00:00:00Z', modified: '2024-01-01T00:00:00Z' },
      ],
      ['modified before created', { modified: '2023-01-01T00:00:00.000Z' }],
      ['id of another type', { id: 'malware--5a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d' }],
      ['invalid id', { id: 'indicator--not-a-uuid' }],
      ['bad property name', { 'Bad-Name': 1 }],
      ['confidence out of range', { confidence: 101 }],
    ])('rejects %s', async (_name, overrides) => {
      const object = indicator(overrides);
      for (const [key, value] of Object.entries(overrides))
        if (value === undefined) delete object[key];

      const status = await addObjects(hub(), hub().collections.shared, [object]);

      expect(status.failure_count).toBe(1);
      expect(status.failures?.[0]?.message).toMatch(/invalid/i);
    });

    it('per-type required properties', async () => {
      const relationship = {
        type: 'relationship',
        spec_version: '2.1',
        id: 'relationship--1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d',
        created: '2024-01-01T00:00:00.000Z',
        modified: '2024-01-01T00:00:00.000Z',
        relationship_type: 'indicates',
        source_ref: 'indicator--1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d',
      };

      const status = await addObjects(hub(), hub().collections.shared, [relationship]);

      expect(status.failures?.[0]?.message).toContain('target_ref');
    });

    it('custom type with valid common properties', async () => {
      const custom = {
        type: 'x-acme-widget',
        spec_version: '2.1',
        id: 'x-acme-widget--2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e',
        created: '2024-01-01T00:00:00.000Z',
        modified: '2024-01-01T00:00:00.000Z',
        x_acme_size: 3,
      };

      const status = await addObjects(hub(), hub().collections.shared, [custom]);

      expect(status.success_count).toBe(1);
    });

    it('sco gets date_added as version', async () => {
      const status = await addObjects(hub(), hub().collections.shared, [ipv4('192.0.2.44')]);

      expect(status.successes?.[0]?.version).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    });

    it('same version same body adds nothing', async () => {
      const object = indicator();
      await addObjects(hub(), hub().collections.shared, [object]);
      const before = await hub().store.countObjects(hub().collections.shared.id);

      const status = await addObjects(hub(), hub().collections.shared, [object]);

      expect(status.success_count).toBe(1);
      expect(await hub().store.countObjects(hub().collections.shared.id)).toBe(before);
    });

    it('same version other body fails', async () => {
      const object = indicator();
      await addObjects(hub(), hub().collections.shared, [object]);

      const status = await addObjects(hub(), hub().collections.shared, [
        { ...object, name: 'changed' },
      ]);
      const stored = await request(hub(), `${objectsPath()}${object['id']}/`, { as: 'alice' });

      expect(status.failure_count).toBe(1);
      expect(status.failures?.[0]?.message).toContain('already stored');
      expect(((await stored.json()) as { objects: unknown[] }).objects).toEqual([object]);
    });

    it('same version twice in one request', async () => {
      const object = indicator();

      const status = await addObjects(hub(), hub().collections.shared, [
        object,
        { ...object, name: 'other' },
        object,
      ]);

      expect(status.success_count).toBe(2);
      expect(status.failure_count).toBe(1);
    });

    it('no version after a revoked one', async () => {
      const object = indicator();
      const revoked = { ...object, modified: '2024-02-01T00:00:00.000Z', revoked: true };
      await addObjects(hub(), hub().collections.shared, [object, revoked]);

      const status = await addObjects(hub(), hub().collections.shared, [
        { ...object, modified: '2024-03-01T00:00:00.000Z', name: 'back' },
        { ...object, modified: '2024-01-15T00:00:00.000Z', name: 'between' },
      ]);

      expect(status.success_count).toBe(1);
      expect(status.successes?.[0]?.version).toBe('2024-01-15T00:00:00.000Z');
      expect(status.failures).toEqual([
        {
          id: object['id'],
          version: '2024-03-01T00:00:00.000Z',
          message: expect.stringContaining('was revoked in its version') as unknown,
        },
      ]);
    });

    it('revoked in the same request', async () => {
      const object = indicator();

      const status = await addObjects(hub(), hub().collections.shared, [
        { ...object, modified: '2024-03-01T00:00:00.000Z' },
        { ...object, modified: '2024-02-01T00:00:00.000Z', revoked: true },
        object,
      ]);

      expect(status.success_count).toBe(2);
      expect(status.failures?.map((f) => f.version)).toEqual(['2024-03-01T00:00:00.000Z']);
    });

    it('equal instants are one version', async () => {
      const object = indicator({ modified: '2024-04-01T00:00:00.100Z' });
      await addObjects(hub(), hub().collections.shared, [object]);

      const status = await addObjects(hub(), hub().collections.shared, [
        { ...object, modified: '2024-04-01T00:00:00.100000Z' },
      ]);

      expect(status.failure_count).toBe(1);
    });
  },
  { maxContentLength: 4096 },
);

describeOnStores('Get Status', (hub) => {
  async function postAs(user: 'alice' | 'carol', path: string) {
    const response = await request(hub(), path, { as: user, body: { objects: [indicator()] } });
    return (await response.json()) as StatusBody;
  }

  it('status readable by its requester', async () => {
    const posted = await postAs('alice', collectionPath(hub().collections.shared, 'objects/'));

    const response = await request(hub(), `status/${posted.id}/`, { as: 'alice' });

    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe(TAXII);
    expect(await response.json()).toEqual(posted);
  });

  it('status by api key too', async () => {
    const posted = await postAs('alice', collectionPath(hub().collections.shared, 'objects/'));

    const response = await request(hub(), `status/${posted.id}/`, { asKey: 'alice' });

    expect(response.status).toBe(200);
  });

  it('status of another principal is 404', async () => {
    const posted = await postAs('carol', collectionPath(hub().collections.inbox, 'objects/'));

    const response = await request(hub(), `status/${posted.id}/`, { as: 'alice' });

    expect(response.status).toBe(404);
  });

  it('status anonymous is 401', async () => {
    const posted = await postAs('alice', collectionPath(hub().collections.shared, 'objects/'));

    const response = await request(hub(), `status/${posted.id}/`);

    expect(response.status).toBe(401);
  });

  it('unknown status is 404', async () => {
    const response = await request(hub(), 'status/2b0e7a8c-1111-4222-8333-944455556666/', {
      as: 'alice',
    });

    expect(response.status).toBe(404);
  });

  it('expired status is 404', async () => {
    const old = {
      id: '3c1f8b9d-2222-4333-8444-a55566667777',
      collectionId: hub().collections.shared.id,
      principal: 'alice',
      requestTimestamp: (Date.now() - 25 * 60 * 60 * 1000) * 1000,
      status: 'complete' as const,
      totalCount: 0,
      successes: [],
      failures: [],
      pendings: [],
    };
    await hub().store.putStatus(old);

    const response = await request(hub(), `status/${old.id}/`, { as: 'alice' });

    expect(response.status).toBe(404);
  });

  it('status kept in the store', async () => {
    // Any process on the same store can serve it.
    const posted = await postAs('alice', collectionPath(hub().collections.shared, 'objects/'));

    expect(await hub().store.getStatus(posted.id)).toMatchObject({ id: posted.id, totalCount: 1 });
  });
});
