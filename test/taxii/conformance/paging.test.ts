/**
 * TAXII 2.1 pagination (limit, next, more and the X-TAXII-Date-Added
 * headers) on Get Objects and Get Object Manifests.
 */
import type { AddressInfo } from 'node:net';

import { beforeAll, expect, it } from '@jest/globals';
import Koa from 'koa';
import { pino } from 'pino';

import type { CollectionRecord, ObjectVersionInput } from '../../../src/store/index.js';
import { toStoredVersion } from '../../../src/stix/index.js';
import { createTaxiiRouter } from '../../../src/taxii/index.js';
import {
  TAXII,
  addObjects,
  collectionPath,
  describeOnStores,
  indicator,
  ipv4,
  readAllPages,
  request,
  type EnvelopeBody,
} from './harness.js';

const SEEDED = 1050;

interface ManifestBody {
  more?: boolean;
  next?: string;
  objects?: { id: string; date_added: string; version: string; media_type?: string }[];
}

describeOnStores('Pagination', (hub) => {
  let record: CollectionRecord;

  beforeAll(async () => {
    record = await hub().addCollection({ public: true, read: ['alice'], write: ['alice'] });
    const inputs: ObjectVersionInput[] = Array.from({ length: SEEDED }, () =>
      toStoredVersion(JSON.stringify(indicator())),
    );
    await hub().store.putObjects(record.id, inputs);
  });

  it('1000+ objects while new ones arrive', async () => {
    const seen = new Set<string>();
    const arrived: string[] = [];
    let next: string | undefined;
    let pages = 0;
    do {
      const query = next === undefined ? '' : `?next=${encodeURIComponent(next)}`;
      const response = await request(hub(), `${collectionPath(record, 'objects/')}${query}`, {
        as: 'alice',
      });
      const page = (await response.json()) as EnvelopeBody;
      for (const object of page.objects ?? []) {
        expect(seen.has(object['id'] as string)).toBe(false);
        seen.add(object['id'] as string);
      }
      if (pages < 3) {
        const object = indicator();
        arrived.push(object['id'] as string);
        await addObjects(hub(), record, [object]);
      }
      expect(page.more === true).toBe(page.next !== undefined);
      next = page.next;
      pages += 1;
    } while (next !== undefined);

    expect(seen.size).toBe(SEEDED + arrived.length);
    for (const id of arrived) expect(seen.has(id)).toBe(true);
    expect(pages).toBeGreaterThan(10);
  });

  it('limit over max is capped', async () => {
    const response = await request(hub(), `${collectionPath(record, 'objects/')}?limit=5000`, {
      as: 'alice',
    });
    const body = (await response.json()) as EnvelopeBody;

    expect(response.status).toBe(200);
    expect(body.objects).toHaveLength(100);
    expect(body.more).toBe(true);
  });

  it('headers match page edges', async () => {
    const response = await request(hub(), `${collectionPath(record, 'manifest/')}?limit=7`, {
      as: 'alice',
    });
    const body = (await response.json()) as ManifestBody;

    expect(response.headers.get('x-taxii-date-added-first')).toBe(body.objects?.[0]?.date_added);
    expect(response.headers.get('x-taxii-date-added-last')).toBe(body.objects?.[6]?.date_added);
  });

  it('last page has no next', async () => {
    const pages = await readAllPages(hub(), collectionPath(record, 'manifest/'), { limit: '100' });
    const last = pages[pages.length - 1]!;

    expect(last.more).toBe(false);
    expect(last.next).toBeUndefined();
  });

  it('manifest shape', async () => {
    const response = await request(hub(), `${collectionPath(record, 'manifest/')}?limit=1`, {
      as: 'alice',
    });
    const body = (await response.json()) as ManifestBody;

    expect(response.headers.get('content-type')).toBe(TAXII);
    expect(body.objects?.[0]).toEqual({
      id: expect.stringMatching(/^indicator--/),
      date_added: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/),
      version: '2024-01-01T00:00:00.000000Z',
      media_type: 'application/stix+json;version=2.1',
    });
  });

  it('manifest of sco', async () => {
    const sco = ipv4('192.0.2.200');
    await addObjects(hub(), record, [sco]);

    const response = await request(
      hub(),
      `${collectionPath(record, 'manifest/')}?match[id]=${sco['id'] as string}`,
      { as: 'alice' },
    );
    const manifestRecord = ((await response.json()) as ManifestBody).objects?.[0];

    expect(manifestRecord?.version).toBe(manifestRecord?.date_added);
  });

  it('manifest empty is {}', async () => {
    const response = await request(
      hub(),
      `${collectionPath(record, 'manifest/')}?match[type]=campaign`,
      { as: 'alice' },
    );

    expect(await response.json()).toEqual({});
    expect(response.headers.get('x-taxii-date-added-first')).toBeNull();
  });

  it('next for other filters is 400', async () => {
    const first = await request(hub(), `${collectionPath(record, 'objects/')}?limit=2`, {
      as: 'alice',
    });
    const { next } = (await first.json()) as EnvelopeBody;

    const response = await request(
      hub(),
      `${collectionPath(record, 'objects/')}?limit=2&match[type]=indicator&next=${encodeURIComponent(next!)}`,
      { as: 'alice' },
    );

    expect(response.status).toBe(400);
  });

  it('next of another caller is 400', async () => {
    const first = await request(hub(), `${collectionPath(record, 'objects/')}?limit=2`, {
      as: 'alice',
    });
    const { next } = (await first.json()) as EnvelopeBody;

    const anonymous = await request(
      hub(),
      `${collectionPath(record, 'objects/')}?limit=2&next=${encodeURIComponent(next!)}`,
    );

    expect(anonymous.status).toBe(400);
  });

  it('next of manifest not for objects', async () => {
    const first = await request(hub(), `${collectionPath(record, 'manifest/')}?limit=2`, {
      as: 'alice',
    });
    const { next } = (await first.json()) as ManifestBody;

    const response = await request(
      hub(),
      `${collectionPath(record, 'objects/')}?limit=2&next=${encodeURIComponent(next!)}`,
      { as: 'alice' },
    );

    expect(response.status).toBe(400);
  });

  it('tampered next is 400', async () => {
    const first = await request(hub(), `${collectionPath(record, 'objects/')}?limit=2`, {
      as: 'alice',
    });
    const { next } = (await first.json()) as EnvelopeBody;
    const tampered = `A${next!.slice(1)}`;

    const response = await request(
      hub(),
      `${collectionPath(record, 'objects/')}?limit=2&next=${encodeURIComponent(tampered)}`,
      { as: 'alice' },
    );

    expect(response.status).toBe(400);
  });

  it('next works on another server', async () => {
    const first = await request(hub(), `${collectionPath(record, 'objects/')}?limit=2`);
    const { next, objects } = (await first.json()) as EnvelopeBody;
    const app = new Koa();
    app.use(
      createTaxiiRouter({
        store: hub().store,
        logger: pino({ level: 'silent' }),
        publicUrl: 'https://other.example.test',
        title: 'Second process',
        apiRootPath: 'hub',
        maxPageSize: 100,
        cursorSecret: 'conformance-cursor-secret',
      }).routes(),
    );
    const server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    const { port } = server.address() as AddressInfo;

    const response = await fetch(
      `http://127.0.0.1:${port}/taxii2/hub/${collectionPath(record, 'objects/')}?limit=2&next=${encodeURIComponent(next!)}`,
      { headers: { Accept: TAXII } },
    );
    const page = (await response.json()) as EnvelopeBody;
    await new Promise((resolve) => server.close(resolve));

    expect(response.status).toBe(200);
    expect(page.objects).toHaveLength(2);
    expect(page.objects?.[0]?.['id']).not.toBe(objects?.[1]?.['id']);
  });

  it('repeated limit is 400', async () => {
    const response = await request(hub(), `${collectionPath(record, 'objects/')}?limit=1&limit=2`, {
      as: 'alice',
    });

    expect(response.status).toBe(400);
  });
});
