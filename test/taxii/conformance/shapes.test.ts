/**
 * Every TAXII resource the server sends, checked against the resource
 * schemas in schemas/taxii/resources.json: required properties present,
 * nothing outside the specification's tables, no empty lists.
 */
import { readFileSync } from 'node:fs';

import { beforeAll, expect, it } from '@jest/globals';
import { Ajv2020 } from 'ajv/dist/2020.js';

import type { CollectionRecord } from '../../../src/store/index.js';
import {
  addObjects,
  collectionPath,
  describeOnStores,
  indicator,
  ipv4,
  request,
  type StatusBody,
} from './harness.js';

const ajv = new Ajv2020({ allErrors: true, strict: true });
ajv.addSchema(
  JSON.parse(
    readFileSync(new URL('../../../schemas/taxii/resources.json', import.meta.url), 'utf8'),
  ) as object,
);

/** Returns the schema errors of `body` as the resource `name`, empty when it conforms. */
function shapeErrors(name: string, body: unknown): string[] {
  const validate = ajv.getSchema(`urn:feedhub:schema:taxii:resources#/$defs/${name}`);
  if (validate === undefined) throw new Error(`no schema for resource ${name}`);
  if (validate(body)) return [];
  return (validate.errors ?? []).map((error) => `${error.instancePath} ${error.message ?? ''}`);
}

describeOnStores('Resource shapes', (hub) => {
  let record: CollectionRecord;
  let status: StatusBody;
  const objectId = 'indicator--4a5b6c7d-8e9f-4a0b-9c1d-2e3f4a5b6c7d';

  async function bodyOf(path: string): Promise<unknown> {
    const response = await request(hub(), path, { as: 'alice' });
    return response.json();
  }

  beforeAll(async () => {
    record = await hub().addCollection();
    status = await addObjects(hub(), record, [
      indicator({ id: objectId }),
      indicator({ id: objectId, modified: '2024-02-01T00:00:00.000Z' }),
      ipv4('192.0.2.10'),
      { type: 'indicator' },
    ]);
  });

  it.each([
    ['discovery', '/taxii2/'],
    ['apiRoot', ''],
    ['collections', 'collections/'],
  ])('%s', async (name, path) => {
    expect(shapeErrors(name, await bodyOf(path))).toEqual([]);
  });

  it('collection', async () => {
    expect(shapeErrors('collection', await bodyOf(collectionPath(record)))).toEqual([]);
  });

  it('envelope full and empty', async () => {
    const full = await bodyOf(`${collectionPath(record, 'objects/')}?limit=1`);
    const empty = await bodyOf(`${collectionPath(record, 'objects/')}?match[type]=tool`);

    expect(shapeErrors('envelope', full)).toEqual([]);
    expect(empty).toEqual({});
  });

  it('manifest', async () => {
    expect(shapeErrors('manifest', await bodyOf(collectionPath(record, 'manifest/')))).toEqual([]);
  });

  it('object', async () => {
    const body = await bodyOf(collectionPath(record, `objects/${objectId}/`));

    expect(shapeErrors('envelope', body)).toEqual([]);
  });

  it('versions', async () => {
    const body = await bodyOf(collectionPath(record, `objects/${objectId}/versions/`));

    expect(shapeErrors('versions', body)).toEqual([]);
  });

  it('status after post', async () => {
    expect(shapeErrors('status', status)).toEqual([]);
    expect(status.success_count).toBe(3);
    expect(status.failure_count).toBe(1);
  });

  it('status resource', async () => {
    expect(shapeErrors('status', await bodyOf(`status/${status.id}/`))).toEqual([]);
  });

  it.each([
    ['404', () => 'collections/00000000-0000-4000-8000-000000000000/'],
    ['400', () => `${collectionPath(record, 'objects/')}?limit=-1`],
    ['415', () => collectionPath(record, 'objects/')],
  ])('error %s', async (code, path) => {
    const response = await request(hub(), path(), {
      as: 'alice',
      ...(code === '415' ? { body: '{}', contentType: 'text/plain' } : {}),
    });

    expect(String(response.status)).toBe(code);
    expect(shapeErrors('error', await response.json())).toEqual([]);
  });
});
