import type { CollectionRecord } from '../../src/store/index.js';
import {
  TAXII,
  buildCollection,
  readError,
  buildObject,
  startTaxii,
  type TaxiiFixture,
} from './helpers.js';

let hub: TaxiiFixture;
let big: CollectionRecord;
let versioned: CollectionRecord;
let empty: CollectionRecord;

const objectId = 'indicator--11111111-1111-4111-8111-111111111111';
const versions = [
  '2024-01-01T00:00:00.000Z',
  '2024-02-01T00:00:00.000Z',
  '2024-03-01T00:00:00.000Z',
];

beforeAll(async () => {
  hub = await startTaxii({ maxPageSize: 1000 });
  big = buildCollection({ title: 'Big' });
  versioned = buildCollection({ title: 'Versioned' });
  empty = buildCollection({ title: 'Empty' });
  for (const collection of [big, versioned, empty]) {
    await hub.store.upsertCollection(collection);
  }

  await hub.store.putObjects(
    big.id,
    Array.from({ length: 2500 }, () => buildObject()),
  );

  await hub.store.putObjects(versioned.id, [
    ...versions.map((modified) => buildObject({ id: objectId, modified })),
    buildObject({ type: 'malware', id: 'malware--22222222-2222-4222-8222-222222222222' }),
    buildObject({
      type: 'indicator',
      id: 'indicator--33333333-3333-4333-8333-333333333333',
      specVersion: '2.0',
    }),
  ]);
});

afterAll(async () => {
  await hub.close();
});

function objectsUrl(collection: CollectionRecord, query = '', resource = 'objects'): string {
  return `${hub.baseUrl}/taxii2/hub/collections/${collection.id}/${resource}/${query === '' ? '' : `?${query}`}`;
}

async function get(url: string): Promise<Response> {
  return fetch(url, { headers: { Accept: TAXII } });
}

interface Envelope {
  more?: boolean;
  next?: string;
  objects?: { id: string; modified: string; spec_version: string; type: string }[];
}

describe('TAXII objects paging', () => {
  test('2500 objects in pages of 1000', async () => {
    const seen: string[] = [];
    const pages: Envelope[] = [];
    let next: string | undefined;
    do {
      const query = new URLSearchParams({ limit: '1000' });
      if (next !== undefined) {
        query.set('next', next);
      }
      const response = await get(objectsUrl(big, query.toString()));
      expect(response.status).toBe(200);
      const page = (await response.json()) as Envelope;
      pages.push(page);
      seen.push(...(page.objects ?? []).map((object) => object.id));
      next = page.next;
    } while (next !== undefined);

    expect(pages.map((page) => page.objects?.length)).toEqual([1000, 1000, 500]);
    expect(pages.map((page) => page.more)).toEqual([true, true, false]);
    expect(pages[2]!.next).toBeUndefined();
    expect(new Set(seen).size).toBe(2500);
  });

  test('body joins stored texts', async () => {
    const [stored] = (await hub.store.queryObjects({ collectionId: big.id, limit: 1 })).items;

    const text = await (await get(objectsUrl(big, 'limit=1'))).text();

    expect(text.startsWith('{"more":true,"next":"')).toBe(true);
    expect(text.endsWith(`,"objects":[${stored!.json}]}`)).toBe(true);
  });

  test('limit above maximum is capped', async () => {
    const page = (await (await get(objectsUrl(big, 'limit=5000'))).json()) as Envelope;

    expect(page.objects).toHaveLength(1000);
    expect(page.more).toBe(true);
  });

  test.each(['0', '-1', 'abc', '1.5', ''])('limit %p is 400', async (limit) => {
    const response = await get(objectsUrl(big, `limit=${limit}`));

    expect(response.status).toBe(400);
    expect(response.headers.get('content-type')).toBe(TAXII);
    expect((await readError(response)).title).toContain('limit');
  });

  test('tampered next is 400', async () => {
    const first = (await (await get(objectsUrl(big, 'limit=10'))).json()) as Envelope;
    const next = first.next!;
    const [payload, signature] = next.split('.') as [string, string];
    const fields = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
    fields[1] = fields[1] - 1000;
    const forged = `${Buffer.from(JSON.stringify(fields)).toString('base64url')}.${signature}`;

    const response = await get(objectsUrl(big, `limit=10&next=${encodeURIComponent(forged)}`));
    const garbage = await get(objectsUrl(big, 'limit=10&next=not-a-cursor'));

    expect(response.status).toBe(400);
    expect(response.headers.get('content-type')).toBe(TAXII);
    expect((await readError(response)).title).toContain('next');
    expect(garbage.status).toBe(400);
  });

  test('next with other filters is 400', async () => {
    const first = (await (await get(objectsUrl(big, 'limit=10'))).json()) as Envelope;

    const otherFilters = await get(
      objectsUrl(big, `limit=10&match[type]=indicator&next=${encodeURIComponent(first.next!)}`),
    );
    const otherCollection = await get(
      objectsUrl(versioned, `limit=10&next=${encodeURIComponent(first.next!)}`),
    );
    const otherLimit = await get(
      objectsUrl(big, `limit=20&next=${encodeURIComponent(first.next!)}`),
    );

    expect(otherFilters.status).toBe(400);
    expect(otherCollection.status).toBe(400);
    expect(otherLimit.status).toBe(200);
  });

  test('date added headers on pages', async () => {
    const response = await get(objectsUrl(big, 'limit=2'));
    const manifest = (await (await get(objectsUrl(big, 'limit=2', 'manifest'))).json()) as {
      objects: { date_added: string }[];
    };

    expect(response.headers.get('x-taxii-date-added-first')).toBe(manifest.objects[0]!.date_added);
    expect(response.headers.get('x-taxii-date-added-last')).toBe(manifest.objects[1]!.date_added);
    expect(response.headers.get('x-taxii-date-added-first')).toMatch(
      /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/,
    );
  });

  test('empty page is {} without headers', async () => {
    const response = await get(objectsUrl(empty));
    const manifest = await get(objectsUrl(empty, '', 'manifest'));

    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe(TAXII);
    expect(await response.text()).toBe('{}');
    expect(response.headers.get('x-taxii-date-added-first')).toBeNull();
    expect(response.headers.get('x-taxii-date-added-last')).toBeNull();
    expect(await manifest.text()).toBe('{}');
    expect(manifest.headers.get('x-taxii-date-added-first')).toBeNull();
  });
});

describe('TAXII objects filters', () => {
  test('added_after is exclusive', async () => {
    const manifest = (await (await get(objectsUrl(big, 'limit=3', 'manifest'))).json()) as {
      objects: { id: string; date_added: string }[];
    };
    const [first, second, third] = manifest.objects as [
      { id: string; date_added: string },
      { id: string; date_added: string },
      { id: string; date_added: string },
    ];

    const page = (await (
      await get(objectsUrl(big, `limit=2&added_after=${first.date_added}`))
    ).json()) as Envelope;

    expect(page.objects!.map((object) => object.id)).toEqual([second.id, third.id]);
  });

  test('added_after invalid is 400', async () => {
    const response = await get(objectsUrl(big, 'added_after=yesterday'));

    expect(response.status).toBe(400);
    const body = await readError(response);
    expect(body.title).toContain('added_after');
    expect(body.description).toContain('yesterday');
  });

  test('match[id] selects objects', async () => {
    const page = (await (
      await get(
        objectsUrl(
          versioned,
          `match[id]=${objectId},malware--22222222-2222-4222-8222-222222222222`,
        ),
      )
    ).json()) as Envelope;

    expect(page.objects!.map((object) => object.id).sort()).toEqual([
      objectId,
      'malware--22222222-2222-4222-8222-222222222222',
    ]);
  });

  test('match[type] repeated parameters combine', async () => {
    const indicators = (await (
      await get(objectsUrl(versioned, 'match[type]=indicator'))
    ).json()) as Envelope;
    const both = (await (
      await get(objectsUrl(versioned, 'match[type]=indicator&match[type]=malware'))
    ).json()) as Envelope;

    expect(indicators.objects!.every((object) => object.type === 'indicator')).toBe(true);
    expect(indicators.objects).toHaveLength(2);
    expect(both.objects).toHaveLength(3);
  });

  test('match[version] defaults to last', async () => {
    const page = (await (
      await get(objectsUrl(versioned, `match[id]=${objectId}`))
    ).json()) as Envelope;

    expect(page.objects!.map((object) => object.modified)).toEqual(['2024-03-01T00:00:00.000Z']);
  });

  test('match[version] first, all and timestamps', async () => {
    const first = (await (
      await get(objectsUrl(versioned, `match[id]=${objectId}&match[version]=first`))
    ).json()) as Envelope;
    const all = (await (
      await get(objectsUrl(versioned, `match[id]=${objectId}&match[version]=all`))
    ).json()) as Envelope;
    // The same instant as the stored 2024-02-01T00:00:00.000Z, written with other precision.
    const exact = (await (
      await get(
        objectsUrl(versioned, `match[id]=${objectId}&match[version]=2024-02-01T00:00:00Z,first`),
      )
    ).json()) as Envelope;

    expect(first.objects!.map((object) => object.modified)).toEqual(['2024-01-01T00:00:00.000Z']);
    expect(all.objects!.map((object) => object.modified).sort()).toEqual(versions);
    expect(exact.objects!.map((object) => object.modified).sort()).toEqual(versions.slice(0, 2));
  });

  test('match[spec_version] filters', async () => {
    const page = (await (
      await get(objectsUrl(versioned, 'match[spec_version]=2.0'))
    ).json()) as Envelope;

    expect(page.objects!.map((object) => object.spec_version)).toEqual(['2.0']);
  });

  const invalid = [
    ['match[version]', 'latest'],
    ['match[type]', 'Indicator'],
    ['match[id]', 'indicator-1'],
    ['match[spec_version]', 'two'],
    ['match[type]', 'indicator,'],
  ];
  test.each(invalid)('%s=%s is 400 naming it', async (name, value) => {
    const response = await get(objectsUrl(versioned, `${name}=${encodeURIComponent(value)}`));

    expect(response.status).toBe(400);
    expect(response.headers.get('content-type')).toBe(TAXII);
    expect((await readError(response)).title).toContain(name);
  });

  test('unknown parameters are ignored', async () => {
    const response = await get(objectsUrl(versioned, 'match[color]=blue&foo=bar'));

    expect(response.status).toBe(200);
  });
});

describe('TAXII single object', () => {
  test('object by id returns last version', async () => {
    const response = await get(
      `${hub.baseUrl}/taxii2/hub/collections/${versioned.id}/objects/${objectId}/`,
    );

    expect(response.status).toBe(200);
    const page = (await response.json()) as Envelope;
    expect(page.more).toBe(false);
    expect(page.objects!.map((object) => object.modified)).toEqual(['2024-03-01T00:00:00.000Z']);
  });

  test('object filtered out is {}', async () => {
    const response = await get(
      `${hub.baseUrl}/taxii2/hub/collections/${versioned.id}/objects/${objectId}/?match[spec_version]=2.0`,
    );

    expect(response.status).toBe(200);
    expect(await response.text()).toBe('{}');
  });

  test('unknown object is 404', async () => {
    const response = await get(
      `${hub.baseUrl}/taxii2/hub/collections/${versioned.id}/objects/indicator--99999999-9999-4999-8999-999999999999/`,
    );

    expect(response.status).toBe(404);
    expect(response.headers.get('content-type')).toBe(TAXII);
  });

  test('versions lists every version', async () => {
    const response = await get(
      `${hub.baseUrl}/taxii2/hub/collections/${versioned.id}/objects/${objectId}/versions/`,
    );

    expect(response.status).toBe(200);
    const body = (await response.json()) as { more: boolean; versions: string[] };
    expect(body.more).toBe(false);
    expect(body.versions.sort()).toEqual(
      versions.map((version) => version.replace('.000Z', '.000000Z')),
    );
    expect(response.headers.get('x-taxii-date-added-first')).not.toBeNull();
  });
});

describe('TAXII manifest', () => {
  test('manifest record shape', async () => {
    const response = await get(objectsUrl(versioned, `match[id]=${objectId}`, 'manifest'));

    expect(response.status).toBe(200);
    const body = (await response.json()) as { more: boolean; objects: Record<string, string>[] };
    expect(body.more).toBe(false);
    expect(body.objects).toHaveLength(1);
    const record = body.objects[0]!;
    expect(Object.keys(record).sort()).toEqual(['date_added', 'id', 'media_type', 'version']);
    expect(record['id']).toBe(objectId);
    expect(record['version']).toBe('2024-03-01T00:00:00.000000Z');
    expect(record['media_type']).toBe('application/stix+json;version=2.1');
    expect(record['date_added']).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/);
  });

  test('manifest pages with next', async () => {
    const first = (await (await get(objectsUrl(big, 'limit=1000', 'manifest'))).json()) as Envelope;
    const second = (await (
      await get(objectsUrl(big, `limit=1000&next=${encodeURIComponent(first.next!)}`, 'manifest'))
    ).json()) as Envelope;

    expect(first.objects).toHaveLength(1000);
    expect(second.objects).toHaveLength(1000);
    expect(new Set([...first.objects!, ...second.objects!].map((record) => record.id)).size).toBe(
      2000,
    );
  });

  test('objects next is rejected by manifest', async () => {
    const first = (await (await get(objectsUrl(big, 'limit=10'))).json()) as Envelope;

    const response = await get(
      objectsUrl(big, `limit=10&next=${encodeURIComponent(first.next!)}`, 'manifest'),
    );

    expect(response.status).toBe(400);
  });
});
