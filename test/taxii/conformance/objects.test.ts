/**
 * TAXII 2.1 Get Objects with its filters: added_after, match[id],
 * match[type], match[version] and match[spec_version], alone and combined.
 */
import { beforeAll, expect, it } from '@jest/globals';

import type { CollectionRecord } from '../../../src/store/index.js';
import {
  addObjects,
  collectionPath,
  describeOnStores,
  indicator,
  ipv4,
  request,
  type EnvelopeBody,
} from './harness.js';

const MULTI = 'indicator--6b1d2b59-4a3c-4a0e-8f43-4d6a1f0b5c11';
const OTHER = 'indicator--7c2e3c6a-5b4d-4b1f-9a54-5e7b2a1c6d22';
const MIXED = 'indicator--8d3f4d7b-6c5e-4c2a-8b65-6f8c3b2d7e33';
// Versions of MULTI, added in this order: not the order of their timestamps.
const ADDED_ORDER = [
  '2024-03-01T00:00:00.000Z',
  '2024-01-01T00:00:00.000Z',
  '2024-05-01T00:00:00.123456Z',
  '2024-02-01T00:00:00.100Z',
];

describeOnStores('Get Objects', (hub) => {
  let record: CollectionRecord;
  let objects: Record<string, unknown>[];
  const ip = ipv4('203.0.113.7');
  const malware = {
    type: 'malware',
    spec_version: '2.1',
    id: 'malware--9e405e8c-7d6f-4d3b-9c76-7a9d4c3e8f44',
    created: '2024-01-01T00:00:00.000Z',
    modified: '2024-01-01T00:00:00.000Z',
    name: 'Example',
    is_family: true,
  };

  async function get(query: string): Promise<Response> {
    return request(hub(), `${collectionPath(record, 'objects/')}${query}`, { as: 'alice' });
  }

  async function ids(query: string): Promise<string[]> {
    const response = await get(query);
    expect(response.status).toBe(200);
    const body = (await response.json()) as EnvelopeBody;
    return (body.objects ?? []).map((object) => `${object['id']}@${object['modified'] ?? ''}`);
  }

  beforeAll(async () => {
    record = await hub().addCollection();
    objects = [
      ...ADDED_ORDER.map((created) => indicator({ id: MULTI, created, modified: created })),
      indicator({ id: OTHER }),
      malware,
      ip,
    ];
    // One request per object, so that date_added follows this order.
    for (const object of objects) await addObjects(hub(), record, [object]);
    // MIXED: a STIX 2.0-style version (spec_version 2.0 is not in the 2.1 schema, so stored directly).
    await hub().store.putObjects(record.id, [
      {
        id: MIXED,
        type: 'indicator',
        version: '2024-09-01T00:00:00.000000Z',
        specVersion: '2.0',
        json: JSON.stringify({
          type: 'indicator',
          id: MIXED,
          modified: '2024-09-01T00:00:00.000Z',
        }),
      },
    ]);
    await addObjects(hub(), record, [
      indicator({ id: MIXED, created: '2024-06-01T00:00:00.000Z' }),
    ]);
  });

  it('envelope shape', async () => {
    const response = await get('');
    const body = (await response.json()) as EnvelopeBody;

    expect(response.status).toBe(200);
    expect(body.more).toBe(false);
    expect(body.next).toBeUndefined();
    expect(body.objects).toHaveLength(5);
  });

  it('objects served as stored', async () => {
    const response = await get(`?match[id]=${OTHER}`);
    const text = await response.text();

    expect(text).toContain(JSON.stringify(objects[4]));
  });

  it('date added headers', async () => {
    const response = await get('');

    const first = response.headers.get('x-taxii-date-added-first');
    const last = response.headers.get('x-taxii-date-added-last');
    expect(first).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    expect(last).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    expect(first! < last!).toBe(true);
  });

  it('empty result is {} without headers', async () => {
    const response = await get('?match[type]=campaign');

    expect(await response.json()).toEqual({});
    expect(response.headers.get('x-taxii-date-added-first')).toBeNull();
    expect(response.headers.get('x-taxii-date-added-last')).toBeNull();
  });

  it('last version by default', async () => {
    expect(await ids(`?match[id]=${MULTI}`)).toEqual([`${MULTI}@2024-05-01T00:00:00.123456Z`]);
  });

  it('first version', async () => {
    expect(await ids(`?match[id]=${MULTI}&match[version]=first`)).toEqual([
      `${MULTI}@2024-01-01T00:00:00.000Z`,
    ]);
  });

  it('all versions in date_added order', async () => {
    expect(await ids(`?match[id]=${MULTI}&match[version]=all`)).toEqual(
      ADDED_ORDER.map((version) => `${MULTI}@${version}`),
    );
  });

  it('first and last together', async () => {
    expect(await ids(`?match[id]=${MULTI}&match[version]=first,last`)).toEqual([
      `${MULTI}@2024-01-01T00:00:00.000Z`,
      `${MULTI}@2024-05-01T00:00:00.123456Z`,
    ]);
  });

  it('version by timestamp', async () => {
    expect(await ids(`?match[version]=2024-03-01T00:00:00.000Z`)).toEqual([
      `${MULTI}@2024-03-01T00:00:00.000Z`,
    ]);
  });

  it('version timestamp without fraction', async () => {
    expect(await ids(`?match[version]=2024-03-01T00:00:00Z`)).toEqual([
      `${MULTI}@2024-03-01T00:00:00.000Z`,
    ]);
  });

  it('version timestamp other precision', async () => {
    // Stored as .100Z; asked as .1Z and as .100000Z: the same instant.
    expect(await ids(`?match[version]=2024-02-01T00:00:00.1Z`)).toEqual([
      `${MULTI}@2024-02-01T00:00:00.100Z`,
    ]);
    expect(await ids(`?match[version]=2024-02-01T00:00:00.100000Z`)).toEqual([
      `${MULTI}@2024-02-01T00:00:00.100Z`,
    ]);
  });

  it('version timestamp with microseconds', async () => {
    expect(await ids(`?match[version]=2024-05-01T00:00:00.123456Z`)).toEqual([
      `${MULTI}@2024-05-01T00:00:00.123456Z`,
    ]);
  });

  it('timestamp and last together', async () => {
    expect(await ids(`?match[id]=${MULTI}&match[version]=2024-03-01T00:00:00Z,last`)).toEqual([
      `${MULTI}@2024-03-01T00:00:00.000Z`,
      `${MULTI}@2024-05-01T00:00:00.123456Z`,
    ]);
  });

  it('invalid version is 400', async () => {
    const response = await get('?match[version]=latest');

    expect(response.status).toBe(400);
  });

  it('match id list', async () => {
    expect(await ids(`?match[id]=${OTHER},${malware.id}`)).toHaveLength(2);
  });

  it('repeated match id combines', async () => {
    expect(await ids(`?match[id]=${OTHER}&match[id]=${malware.id}`)).toHaveLength(2);
  });

  it('percent-encoded keys', async () => {
    expect(await ids(`?match%5Bid%5D=${OTHER}`)).toEqual([`${OTHER}@2024-01-01T00:00:00.000Z`]);
  });

  it('match type', async () => {
    expect(await ids('?match[type]=malware,ipv4-addr')).toEqual([
      `${malware.id}@2024-01-01T00:00:00.000Z`,
      `${ip['id']}@`,
    ]);
  });

  it('invalid type is 400', async () => {
    const response = await get('?match[type]=Not_A_Type');

    expect(response.status).toBe(400);
  });

  it('type and version combined', async () => {
    expect(await ids('?match[type]=indicator&match[version]=first')).toEqual([
      `${MULTI}@2024-01-01T00:00:00.000Z`,
      `${OTHER}@2024-01-01T00:00:00.000Z`,
      `${MIXED}@2024-06-01T00:00:00.000Z`,
    ]);
  });

  it('newest spec version by default', async () => {
    // MIXED has a later 2.0 version, but 2.1 is the newest spec version.
    expect(await ids(`?match[id]=${MIXED}`)).toEqual([`${MIXED}@2024-06-01T00:00:00.000Z`]);
  });

  it('spec version 2.0 on request', async () => {
    expect(await ids(`?match[spec_version]=2.0`)).toEqual([`${MIXED}@2024-09-01T00:00:00.000Z`]);
  });

  it('both spec versions on request', async () => {
    expect(await ids(`?match[id]=${MIXED}&match[spec_version]=2.0,2.1&match[version]=all`)).toEqual(
      [`${MIXED}@2024-09-01T00:00:00.000Z`, `${MIXED}@2024-06-01T00:00:00.000Z`],
    );
  });

  it('sco without timestamps served', async () => {
    expect(await ids(`?match[id]=${ip['id']}`)).toEqual([`${ip['id']}@`]);
  });

  it('unknown parameters ignored', async () => {
    expect(await ids(`?match[id]=${OTHER}&colour=blue&match[colour]=red`)).toHaveLength(1);
  });

  it('added_after is exclusive', async () => {
    const first = await get('?limit=1&match[version]=all');
    const date = first.headers.get('x-taxii-date-added-first')!;

    const after = (await (
      await get(`?added_after=${date}&match[version]=all`)
    ).json()) as EnvelopeBody;

    expect(
      after.objects?.some(
        (object) => object['id'] === MULTI && object['modified'] === ADDED_ORDER[0],
      ),
    ).toBe(false);
    expect(after.objects?.length).toBe(ADDED_ORDER.length - 1 + 4);
  });

  it('added_after without fraction', async () => {
    expect(await ids('?added_after=2000-01-01T00:00:00Z')).toHaveLength(5);
    expect(await ids('?added_after=2200-01-01T00:00:00Z')).toEqual([]);
  });

  it('added_after invalid is 400', async () => {
    const response = await get('?added_after=yesterday');

    expect(response.status).toBe(400);
  });

  it('repeated added_after is 400', async () => {
    const response = await get(
      '?added_after=2000-01-01T00:00:00Z&added_after=2001-01-01T00:00:00Z',
    );

    expect(response.status).toBe(400);
  });

  it('limit zero is 400', async () => {
    const response = await get('?limit=0');

    expect(response.status).toBe(400);
  });

  it('limit one pages', async () => {
    const body = (await (await get('?limit=1')).json()) as EnvelopeBody;

    expect(body.objects).toHaveLength(1);
    expect(body.more).toBe(true);
    expect(typeof body.next).toBe('string');
  });
});
