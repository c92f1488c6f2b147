/**
 * TAXII 2.1 Get An Object, Get Object Versions and Delete An Object,
 * including their filters and the delete permission rules.
 */
import { beforeAll, expect, it } from '@jest/globals';

import type { CollectionRecord } from '../../../src/store/index.js';
import {
  TAXII,
  addObjects,
  collectionPath,
  describeOnStores,
  indicator,
  ipv4,
  request,
  type EnvelopeBody,
  type User,
} from './harness.js';

const VERSIONS = [
  '2024-02-01T00:00:00.000Z',
  '2024-01-01T00:00:00.000Z',
  '2024-03-01T00:00:00.500Z',
];

describeOnStores('Get An Object and Get Object Versions', (hub) => {
  let record: CollectionRecord;
  const id = 'indicator--1f2e3d4c-5b6a-4978-8a6b-5c4d3e2f1a0b';

  const objectPath = (objectId = id, rest = '') =>
    collectionPath(record, `objects/${objectId}/${rest}`);

  beforeAll(async () => {
    record = await hub().addCollection({ read: ['alice', 'bob'], write: ['alice'] });
    for (const created of VERSIONS) {
      await addObjects(hub(), record, [indicator({ id, created, modified: created })]);
    }
  });

  it('last version by default', async () => {
    const response = await request(hub(), objectPath(), { as: 'bob' });
    const body = (await response.json()) as EnvelopeBody;

    expect(response.status).toBe(200);
    expect(body.objects?.map((o) => o['modified'])).toEqual(['2024-03-01T00:00:00.500Z']);
    expect(response.headers.get('x-taxii-date-added-first')).not.toBeNull();
  });

  it('all versions', async () => {
    const response = await request(hub(), `${objectPath()}?match[version]=all`, { as: 'bob' });
    const body = (await response.json()) as EnvelopeBody;

    expect(body.objects?.map((o) => o['modified'])).toEqual(VERSIONS);
  });

  it('object paging', async () => {
    const response = await request(hub(), `${objectPath()}?match[version]=all&limit=2`, {
      as: 'bob',
    });
    const body = (await response.json()) as EnvelopeBody;

    expect(body.objects).toHaveLength(2);
    expect(body.more).toBe(true);
    const rest = await request(
      hub(),
      `${objectPath()}?match[version]=all&limit=2&next=${encodeURIComponent(body.next!)}`,
      { as: 'bob' },
    );
    expect(((await rest.json()) as EnvelopeBody).objects).toHaveLength(1);
  });

  it('match id ignored here', async () => {
    const response = await request(
      hub(),
      `${objectPath()}?match[id]=indicator--00000000-0000-4000-8000-000000000000`,
      { as: 'bob' },
    );

    expect(((await response.json()) as EnvelopeBody).objects).toHaveLength(1);
  });

  it('filters excluding all give {}', async () => {
    const response = await request(hub(), `${objectPath()}?match[version]=2020-01-01T00:00:00Z`, {
      as: 'bob',
    });

    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({});
  });

  it('unknown object is 404', async () => {
    const response = await request(
      hub(),
      objectPath('indicator--00000000-0000-4000-8000-000000000000'),
      { as: 'bob' },
    );

    expect(response.status).toBe(404);
    expect(response.headers.get('content-type')).toBe(TAXII);
  });

  it('versions shape', async () => {
    const response = await request(hub(), objectPath(id, 'versions/'), { as: 'bob' });
    const body = (await response.json()) as { more: boolean; versions: string[] };

    expect(response.status).toBe(200);
    expect(body).toEqual({
      more: false,
      versions: [
        '2024-02-01T00:00:00.000000Z',
        '2024-01-01T00:00:00.000000Z',
        '2024-03-01T00:00:00.500000Z',
      ],
    });
    expect(response.headers.get('x-taxii-date-added-last')).not.toBeNull();
  });

  it('versions paging', async () => {
    const first = await request(hub(), `${objectPath(id, 'versions/')}?limit=2`, { as: 'bob' });
    const page = (await first.json()) as { more: boolean; next: string; versions: string[] };

    const second = await request(
      hub(),
      `${objectPath(id, 'versions/')}?limit=2&next=${encodeURIComponent(page.next)}`,
      { as: 'bob' },
    );

    expect(page.versions).toHaveLength(2);
    expect(page.more).toBe(true);
    expect(((await second.json()) as { versions: string[] }).versions).toHaveLength(1);
  });

  it('versions added_after', async () => {
    const all = await request(hub(), objectPath(id, 'versions/'), { as: 'bob' });
    const first = all.headers.get('x-taxii-date-added-first')!;

    const response = await request(hub(), `${objectPath(id, 'versions/')}?added_after=${first}`, {
      as: 'bob',
    });

    expect(((await response.json()) as { versions: string[] }).versions).toHaveLength(2);
  });

  it('versions of unknown object is 404', async () => {
    const response = await request(
      hub(),
      objectPath('indicator--00000000-0000-4000-8000-000000000000', 'versions/'),
      { as: 'bob' },
    );

    expect(response.status).toBe(404);
  });

  it('versions of sco', async () => {
    const sco = ipv4('198.51.100.99');
    await addObjects(hub(), record, [sco]);

    const response = await request(hub(), objectPath(sco['id'] as string, 'versions/'), {
      as: 'bob',
    });
    const body = (await response.json()) as { versions: string[] };

    expect(body.versions).toHaveLength(1);
    expect(body.versions[0]).toBe(response.headers.get('x-taxii-date-added-first'));
  });
});

describeOnStores('Delete An Object', (hub) => {
  async function seed(record: CollectionRecord): Promise<string> {
    const object = indicator();
    for (const created of VERSIONS) {
      await addObjects(hub(), record, [{ ...object, created: VERSIONS[1], modified: created }]);
    }
    return object['id'] as string;
  }

  function del(record: CollectionRecord, id: string, query = '', as: User = 'alice') {
    return request(hub(), `${collectionPath(record, `objects/${id}/`)}${query}`, {
      method: 'DELETE',
      as,
    });
  }

  async function versionsLeft(record: CollectionRecord, id: string): Promise<string[]> {
    const response = await request(hub(), collectionPath(record, `objects/${id}/versions/`), {
      as: 'alice',
    });
    if (response.status === 404) return [];
    return ((await response.json()) as { versions: string[] }).versions;
  }

  it('deletes every version', async () => {
    const record = await hub().addCollection();
    const id = await seed(record);

    const response = await del(record, id);

    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe(TAXII);
    expect(await versionsLeft(record, id)).toEqual([]);
  });

  it('deletes one version', async () => {
    const record = await hub().addCollection();
    const id = await seed(record);

    await del(record, id, '?match[version]=2024-02-01T00:00:00Z');

    expect(await versionsLeft(record, id)).toEqual([
      '2024-01-01T00:00:00.000000Z',
      '2024-03-01T00:00:00.500000Z',
    ]);
  });

  it('deleting last exposes previous', async () => {
    const record = await hub().addCollection();
    const id = await seed(record);

    await del(record, id, '?match[version]=last');
    const response = await request(hub(), collectionPath(record, `objects/${id}/`), {
      as: 'alice',
    });

    expect(((await response.json()) as EnvelopeBody).objects?.[0]?.['modified']).toBe(
      '2024-02-01T00:00:00.000Z',
    );
  });

  it('spec version filter', async () => {
    const record = await hub().addCollection();
    const id = await seed(record);

    await del(record, id, '?match[spec_version]=2.0');

    expect(await versionsLeft(record, id)).toHaveLength(3);
  });

  it('unknown object is 404', async () => {
    const record = await hub().addCollection();

    const response = await del(record, 'indicator--00000000-0000-4000-8000-000000000000');

    expect(response.status).toBe(404);
  });

  it('reader without write is 403', async () => {
    const record = await hub().addCollection({ read: ['alice', 'bob'], write: ['alice'] });
    const id = await seed(record);

    const response = await del(record, id, '', 'bob');

    expect(response.status).toBe(403);
    expect(await versionsLeft(record, id)).toHaveLength(3);
  });

  it('writer without read is 403', async () => {
    const record = await hub().addCollection({ read: ['alice'], write: ['alice', 'carol'] });
    const id = await seed(record);

    const response = await del(record, id, '', 'carol');

    expect(response.status).toBe(403);
  });

  it('neither read nor write is 404', async () => {
    const record = await hub().addCollection({ read: ['alice'], write: ['alice'] });
    const id = await seed(record);

    const response = await del(record, id, '', 'bob');

    expect(response.status).toBe(404);
  });

  it('anonymous is 401', async () => {
    const record = hub().collections.open;
    const id = await seed(record);

    const response = await request(hub(), collectionPath(record, `objects/${id}/`), {
      method: 'DELETE',
    });

    expect(response.status).toBe(401);
  });
});
