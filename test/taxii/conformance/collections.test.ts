/**
 * TAXII 2.1 Get Collections and Get A Collection, with per-collection
 * access: `can_read` and `can_write` describe the caller, and collections
 * the caller may neither read nor write are hidden.
 */
import { expect, it } from '@jest/globals';

import {
  TAXII,
  collectionPath,
  describeOnStores,
  request,
  type Hub,
  type User,
} from './harness.js';

interface CollectionBody {
  id: string;
  title: string;
  alias?: string;
  can_read: boolean;
  can_write: boolean;
  media_types?: string[];
}

async function listIds(hub: Hub, as?: User): Promise<string[]> {
  const response = await request(hub, 'collections/', as === undefined ? {} : { as });
  const body = (await response.json()) as { collections?: CollectionBody[] };
  return (body.collections ?? []).map((collection) => collection.id);
}

async function getCollection(hub: Hub, id: string, as?: User): Promise<Response> {
  return request(hub, `collections/${id}/`, as === undefined ? {} : { as });
}

describeOnStores('Get Collections', (hub) => {
  it('anonymous sees public only', async () => {
    const { open, shared, inbox, hidden } = hub().collections;

    const ids = await listIds(hub());

    expect(ids).toContain(open.id);
    expect(ids).not.toContain(shared.id);
    expect(ids).not.toContain(inbox.id);
    expect(ids).not.toContain(hidden.id);
  });

  it('alice sees hers', async () => {
    const { open, shared, inbox, hidden } = hub().collections;

    const ids = await listIds(hub(), 'alice');

    expect(ids).toEqual(expect.arrayContaining([open.id, shared.id]));
    expect(ids).not.toContain(inbox.id);
    expect(ids).not.toContain(hidden.id);
  });

  it('write-only collection listed', async () => {
    const ids = await listIds(hub(), 'carol');

    expect(ids).toContain(hub().collections.inbox.id);
  });

  it('hidden never listed', async () => {
    for (const user of ['alice', 'bob', 'carol'] as const) {
      expect(await listIds(hub(), user)).not.toContain(hub().collections.hidden.id);
    }
  });

  it('collection shape', async () => {
    const response = await request(hub(), 'collections/', { as: 'alice' });
    const body = (await response.json()) as { collections: CollectionBody[] };
    const shared = body.collections.find((c) => c.id === hub().collections.shared.id);

    expect(response.headers.get('content-type')).toBe(TAXII);
    expect(shared).toEqual({
      id: hub().collections.shared.id,
      title: 'Shared',
      alias: hub().collections.shared.alias,
      can_read: true,
      can_write: true,
      media_types: ['application/stix+json;version=2.1'],
    });
  });

  it('empty list is {}', async () => {
    // Runs last in this block: it makes the one public collection private.
    await hub().store.upsertCollection({
      ...hub().collections.open,
      access: { public: false, read: [], write: ['alice'] },
    });

    const response = await request(hub(), 'collections/');

    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({});
  });
});

describeOnStores('Get A Collection', (hub) => {
  const cases: [string, User | undefined, 'open' | 'shared' | 'inbox', boolean, boolean][] = [
    ['anonymous on open', undefined, 'open', true, false],
    ['alice on open', 'alice', 'open', true, true],
    ['bob on open', 'bob', 'open', true, false],
    ['alice on shared', 'alice', 'shared', true, true],
    ['bob on shared', 'bob', 'shared', true, false],
    ['carol on inbox', 'carol', 'inbox', false, true],
  ];
  it.each(cases)('%s', async (_name, user, key, canRead, canWrite) => {
    const response = await getCollection(hub(), hub().collections[key].id, user);
    const body = (await response.json()) as CollectionBody;

    expect(response.status).toBe(200);
    expect(body.can_read).toBe(canRead);
    expect(body.can_write).toBe(canWrite);
  });

  it('hidden is 404 for a principal', async () => {
    const response = await getCollection(hub(), hub().collections.hidden.id, 'alice');

    expect(response.status).toBe(404);
    expect(response.headers.get('content-type')).toBe(TAXII);
  });

  it('private is 401 for anonymous', async () => {
    const response = await getCollection(hub(), hub().collections.shared.id);

    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toContain('Basic realm=');
    expect(response.headers.get('www-authenticate')).toContain('Bearer realm=');
  });

  it('unknown id is 404', async () => {
    const response = await getCollection(hub(), '00000000-0000-4000-8000-000000000000', 'alice');

    expect(response.status).toBe(404);
  });

  it('carol cannot read inbox objects', async () => {
    const response = await request(hub(), collectionPath(hub().collections.inbox, 'objects/'), {
      as: 'carol',
    });

    expect(response.status).toBe(403);
  });

  it('bob cannot read inbox', async () => {
    const response = await request(hub(), collectionPath(hub().collections.inbox, 'objects/'), {
      as: 'bob',
    });

    expect(response.status).toBe(404);
  });

  it('read switched off hides it', async () => {
    const record = await hub().addCollection({ read: ['alice'], write: [] });
    await hub().store.upsertCollection({ ...record, canRead: false });

    const response = await getCollection(hub(), record.id, 'alice');

    expect(response.status).toBe(404);
  });

  it('wildcard grants every principal', async () => {
    const record = await hub().addCollection({ read: ['*'], write: [] });

    const asBob = await getCollection(hub(), record.id, 'bob');
    const anonymous = await getCollection(hub(), record.id);

    expect(asBob.status).toBe(200);
    expect(anonymous.status).toBe(401);
  });
});
