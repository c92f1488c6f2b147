/**
 * The contract of the storage port, run against every adapter. It uses only
 * the port, so an adapter passes by behaving, not by sharing code.
 */
import { randomUUID } from 'node:crypto';

import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';

import { RecordConflictError, StoreError } from '../../src/store/index.js';
import type {
  AuditInput,
  AuditQuery,
  CollectionRecord,
  IndicatorChange,
  ObjectQuery,
  ObjectVersionInput,
  PollResultInput,
  PollResultSummary,
  RenderedView,
  SightingAttributes,
  SightingInput,
  SourceState,
  Store,
  StoredObject,
  VersionSelector,
} from '../../src/store/index.js';

export interface StoreFixture {
  store: Store;
  /** Opens a second store on the same database, as another process would. */
  openAnother?: () => Promise<Store>;
  /** Closes every store opened by the fixture and removes the database. */
  cleanup(): Promise<void>;
}

/** Real differences between adapters that the contract allows. */
export interface StoreCapabilities {
  /** Whether `applyPoll` is all-or-nothing when it fails midway. Default true. */
  atomicPoll?: boolean;
  /** Values in the case that polls more than one SQLite page (500) of values. Default 510. */
  largePollValues?: number;
}

// ---------------------------------------------------------------- factories

/** Returns a fresh collection id, so that tests share a database but no data. */
function newCollectionId(): string {
  return randomUUID();
}

function collectionRecord(overrides: Partial<CollectionRecord> = {}): CollectionRecord {
  const id = overrides.id ?? randomUUID();
  return {
    id,
    alias: `alias-${id}`,
    title: 'Test collection',
    canRead: true,
    canWrite: false,
    mediaTypes: ['application/stix+json;version=2.1'],
    ...overrides,
  };
}

let objectCounter = 0;

/** Builds an indicator version; `json` is derived from the fields unless given. */
function objectVersion(overrides: Partial<ObjectVersionInput> = {}): ObjectVersionInput {
  objectCounter++;
  const id = overrides.id ?? `indicator--${randomUUID()}`;
  const version = overrides.version ?? '2024-01-01T00:00:00.000000Z';
  const type = overrides.type ?? id.slice(0, id.indexOf('--'));
  const specVersion = overrides.specVersion ?? '2.1';
  const json =
    overrides.json ??
    JSON.stringify({
      type,
      spec_version: specVersion,
      id,
      created: '2024-01-01T00:00:00.000Z',
      modified: version,
      pattern: `[ipv4-addr:value = '10.0.0.${objectCounter % 256}']`,
    });
  return { id, type, version, specVersion, json };
}

function versionKey(second: number): string {
  return `2024-01-01T00:00:${String(second).padStart(2, '0')}.000000Z`;
}

function sighting(value: string, valueType = 'ipv4'): SightingInput {
  return { valueType, value, indicatorId: `indicator--${valueType}-${value}` };
}

function pollInput(
  collectionId: string,
  sourceId: string,
  seenAt: number,
  sightings: SightingInput[],
  overrides: Partial<PollResultInput> = {},
): PollResultInput {
  return {
    collectionId,
    sourceId,
    seenAt,
    sightings,
    buildIndicator: (s) => objectVersion({ id: s.indicatorId }),
    extraObjects: [],
    state: { collectionId, sourceId, lastSuccessAt: seenAt, lastValidCount: sightings.length },
    ...overrides,
  };
}

function view(overrides: Partial<RenderedView> = {}): RenderedView {
  return {
    collectionId: randomUUID(),
    name: 'edl-ipv4',
    contentType: 'text/plain; charset=utf-8',
    etag: '"abc"',
    body: Buffer.from('10.0.0.1\n10.0.0.2\n'),
    renderedAt: 1_700_000_000_000_000,
    entryCount: 2,
    data: Buffer.from('ipv4\t10.0.0.1\nipv4\t10.0.0.2\n'),
    dataEtag: '"data-abc"',
    log: '{"added":2}',
    ...overrides,
  };
}

/** Reads every page of a query and returns all items in order. */
async function readAll(store: Store, query: ObjectQuery): Promise<StoredObject[]> {
  const items: StoredObject[] = [];
  let after = query.after;
  for (;;) {
    const page = await store.queryObjects({ ...query, after });
    items.push(...page.items);
    const last = page.items.at(-1);
    if (!page.more || last === undefined) return items;
    after = { dateAdded: last.dateAdded, id: last.id, version: last.version };
  }
}

function versionsOf(items: StoredObject[]): string[] {
  return items.map((item) => `${item.id}@${item.version}`);
}

// ---------------------------------------------------------------- contract

export function runStoreContract(
  name: string,
  makeStore: () => Promise<StoreFixture>,
  capabilities: StoreCapabilities = {},
): void {
  describe(`store contract: ${name}`, () => {
    let fixture: StoreFixture;
    let store: Store;

    beforeAll(async () => {
      fixture = await makeStore();
      store = fixture.store;
      await store.init();
    });

    afterAll(async () => {
      await fixture.cleanup();
    });

    describe('lifecycle', () => {
      it('init twice', async () => {
        await expect(store.init()).resolves.toBeUndefined();
      });

      it('ping answers', async () => {
        await expect(store.ping(1000)).resolves.toBeUndefined();
      });
    });

    describe('collections', () => {
      it('upsert and read back', async () => {
        const collection = collectionRecord({ description: 'Described' });
        await store.upsertCollection(collection);

        expect(await store.getCollection(collection.id)).toEqual(collection);
        expect(await store.getCollectionByAlias(collection.alias)).toEqual(collection);
        expect(await store.listCollections()).toContainEqual(collection);
      });

      it('upsert replaces fields', async () => {
        const collection = collectionRecord({ description: 'Old' });
        await store.upsertCollection(collection);
        const changed = collectionRecord({
          id: collection.id,
          alias: `renamed-${collection.id}`,
          title: 'New title',
          canWrite: true,
          mediaTypes: ['application/stix+json;version=2.1', 'application/taxii+json'],
        });
        await store.upsertCollection(changed);

        expect(await store.getCollection(collection.id)).toEqual(changed);
        expect(await store.getCollectionByAlias(collection.alias)).toBeUndefined();
      });

      it('unknown id and alias', async () => {
        expect(await store.getCollection(randomUUID())).toBeUndefined();
        expect(await store.getCollectionByAlias(`missing-${randomUUID()}`)).toBeUndefined();
      });

      it('alias taken by another collection', async () => {
        const first = collectionRecord();
        await store.upsertCollection(first);
        const second = collectionRecord({ alias: first.alias });

        await expect(store.upsertCollection(second)).rejects.toThrow(first.alias);
        expect(await store.getCollection(second.id)).toBeUndefined();
        expect(await store.getCollectionByAlias(first.alias)).toEqual(first);
      });
    });

    describe('putObjects', () => {
      it('counts added, unchanged, conflicts', async () => {
        const collectionId = newCollectionId();
        const original = objectVersion();
        const other = objectVersion();
        const first = await store.putObjects(collectionId, [original, other]);
        expect(first).toEqual({ added: 2, unchanged: 0, conflicts: [] });

        const changed = { ...original, json: original.json.replace('10.0.0.', '192.168.0.') };
        const second = await store.putObjects(collectionId, [other, changed]);
        expect(second.added).toBe(0);
        expect(second.unchanged).toBe(1);
        expect(second.conflicts).toEqual([{ id: original.id, version: original.version }]);
      });

      it('conflict keeps stored body', async () => {
        const collectionId = newCollectionId();
        const original = objectVersion();
        await store.putObjects(collectionId, [original]);
        const before = await store.queryObjects({ collectionId, limit: 10 });
        await store.putObjects(collectionId, [{ ...original, json: '{"different":true}' }]);

        const after = await store.queryObjects({ collectionId, limit: 10 });
        expect(after.items).toEqual(before.items);
        expect(after.items[0]?.json).toBe(original.json);
      });

      it('same version twice in one call', async () => {
        const collectionId = newCollectionId();
        const object = objectVersion();
        const result = await store.putObjects(collectionId, [object, object]);

        expect(result).toEqual({ added: 1, unchanged: 1, conflicts: [] });
        expect(await store.countObjects(collectionId)).toBe(1);
      });

      it('empty list', async () => {
        const collectionId = newCollectionId();
        expect(await store.putObjects(collectionId, [])).toEqual({
          added: 0,
          unchanged: 0,
          conflicts: [],
        });
      });

      it('collections are separate', async () => {
        const object = objectVersion();
        const a = newCollectionId();
        const b = newCollectionId();
        await store.putObjects(a, [object]);

        expect(await store.putObjects(b, [object])).toEqual({
          added: 1,
          unchanged: 0,
          conflicts: [],
        });
        expect(await store.countObjects(a)).toBe(1);
        expect(await store.countObjects(b)).toBe(1);
        expect(await store.countObjects(newCollectionId())).toBe(0);
      });

      it('round trip is byte-faithful', async () => {
        const collectionId = newCollectionId();
        const id = 'indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f';
        const texts = [
          // Timestamps with 0, 3 and 6 fractional digits; numbers whose text a
          // parse and re-serialise would change; key order that is not sorted.
          `{"type":"indicator","spec_version":"2.1","id":"${id}","created":"2024-01-01T00:00:00Z","modified":"2024-01-01T00:00:00Z","confidence":1.0,"x_big":1e3}`,
          `{"modified":"2024-01-01T00:00:00.100Z","id":"${id}","type":"indicator","spec_version":"2.1","created":"2024-01-01T00:00:00Z"}`,
          `{"type":"indicator","id":"${id}","modified":"2024-01-01T00:00:00.123456Z","name":"Größe \u00e9\u0301 \u05e9\u05dc\u05d5\u05dd 😀 \\u0000 \\"q\\""}`,
          // Keys containing dots and dollar signs, and custom properties.
          `{"type":"indicator","id":"${id}","modified":"2024-01-01T00:00:01.000000Z","x_acme":{"a.b":1,"$where":"x","$":null,"nested":{"c.d":[{"$e":true}]}}}`,
          // Whitespace and an empty object are kept as sent.
          `{ "type" : "indicator",\n  "id": "${id}", "modified": "2024-01-01T00:00:02.000000Z", "x_empty": {} }`,
        ];
        const versions = [
          '2024-01-01T00:00:00.000000Z',
          '2024-01-01T00:00:00.100000Z',
          '2024-01-01T00:00:00.123456Z',
          '2024-01-01T00:00:01.000000Z',
          '2024-01-01T00:00:02.000000Z',
        ];
        const objects = texts.map((json, i) =>
          objectVersion({ id, version: versions[i] as string, json }),
        );
        await store.putObjects(collectionId, objects);

        const page = await store.queryObjects({
          collectionId,
          versions: [{ kind: 'all' }],
          limit: 10,
        });
        expect(page.items.map((item) => item.json)).toEqual(texts);
        for (const [i, item] of page.items.entries()) {
          expect(
            Buffer.from(item.json, 'utf8').equals(Buffer.from(texts[i] as string, 'utf8')),
          ).toBe(true);
        }
        expect(page.items.map((item) => item.version)).toEqual(versions);
      });

      it('stored object fields', async () => {
        const collectionId = newCollectionId();
        const object = objectVersion({ id: 'malware--1', specVersion: '2.0' });
        await store.putObjects(collectionId, [object]);
        const page = await store.queryObjects({ collectionId, limit: 10 });

        expect(page.items).toHaveLength(1);
        const item = page.items[0] as StoredObject;
        expect(item).toEqual({ ...object, collectionId, dateAdded: item.dateAdded });
        expect(item.type).toBe('malware');
        expect(Number.isSafeInteger(item.dateAdded)).toBe(true);
      });

      it('countObjects counts versions', async () => {
        const collectionId = newCollectionId();
        const id = 'indicator--count';
        await store.putObjects(collectionId, [
          objectVersion({ id, version: versionKey(1) }),
          objectVersion({ id, version: versionKey(2) }),
          objectVersion(),
        ]);
        expect(await store.countObjects(collectionId)).toBe(3);
      });
    });

    describe('date_added', () => {
      it('strictly increasing in one call', async () => {
        const collectionId = newCollectionId();
        const objects = Array.from({ length: 500 }, () => objectVersion());
        await store.putObjects(collectionId, objects);
        const items = await readAll(store, { collectionId, limit: 1000 });

        expect(items).toHaveLength(500);
        expect(items.map((item) => item.id)).toEqual(objects.map((object) => object.id));
        for (let i = 1; i < items.length; i++) {
          expect((items[i] as StoredObject).dateAdded).toBeGreaterThan(
            (items[i - 1] as StoredObject).dateAdded,
          );
        }
      });

      it('strictly increasing in a tight loop', async () => {
        const collectionId = newCollectionId();
        const objects = Array.from({ length: 300 }, () => objectVersion());
        for (const object of objects) await store.putObjects(collectionId, [object]);
        const items = await readAll(store, { collectionId, limit: 100 });

        expect(items.map((item) => item.id)).toEqual(objects.map((object) => object.id));
        const dates = items.map((item) => item.dateAdded);
        expect(new Set(dates).size).toBe(dates.length);
        for (let i = 1; i < dates.length; i++) {
          expect(dates[i]).toBeGreaterThan(dates[i - 1] as number);
        }
      });

      it('close to wall clock', async () => {
        const collectionId = newCollectionId();
        const before = Date.now() * 1000;
        await store.putObjects(collectionId, [objectVersion()]);
        const page = await store.queryObjects({ collectionId, limit: 1 });
        const dateAdded = page.items[0]?.dateAdded ?? 0;

        expect(dateAdded).toBeGreaterThanOrEqual(before - 1_000_000);
        expect(dateAdded).toBeLessThanOrEqual(Date.now() * 1000 + 1_000_000);
      });

      it('unchanged put keeps date_added', async () => {
        const collectionId = newCollectionId();
        const object = objectVersion();
        await store.putObjects(collectionId, [object]);
        const before = await store.queryObjects({ collectionId, limit: 1 });
        await store.putObjects(collectionId, [object]);
        const after = await store.queryObjects({ collectionId, limit: 10 });

        expect(after.items).toEqual(before.items);
      });
    });

    describe('queryObjects', () => {
      it('added_after is exclusive', async () => {
        const collectionId = newCollectionId();
        await store.putObjects(collectionId, [objectVersion(), objectVersion(), objectVersion()]);
        const all = await store.queryObjects({ collectionId, limit: 10 });
        const second = all.items[1] as StoredObject;
        const page = await store.queryObjects({
          collectionId,
          addedAfter: second.dateAdded,
          limit: 10,
        });

        expect(page.items.map((item) => item.id)).toEqual([all.items[2]?.id]);
        const justBefore = await store.queryObjects({
          collectionId,
          addedAfter: second.dateAdded - 1,
          limit: 10,
        });
        expect(justBefore.items.map((item) => item.id)).toEqual(
          all.items.slice(1).map((item) => item.id),
        );
      });

      it('limit and more', async () => {
        const collectionId = newCollectionId();
        await store.putObjects(
          collectionId,
          Array.from({ length: 5 }, () => objectVersion()),
        );

        const partial = await store.queryObjects({ collectionId, limit: 4 });
        expect(partial.items).toHaveLength(4);
        expect(partial.more).toBe(true);
        const exact = await store.queryObjects({ collectionId, limit: 5 });
        expect(exact.items).toHaveLength(5);
        expect(exact.more).toBe(false);
      });

      it('empty collection', async () => {
        const page = await store.queryObjects({ collectionId: newCollectionId(), limit: 10 });
        expect(page).toEqual({ items: [], more: false });
      });

      it('invalid limit rejected', async () => {
        await expect(
          store.queryObjects({ collectionId: newCollectionId(), limit: 0 }),
        ).rejects.toThrow(/limit/);
      });

      it('withoutBody skips json', async () => {
        const collectionId = newCollectionId();
        const object = objectVersion();
        await store.putObjects(collectionId, [object]);
        const page = await store.queryObjects({ collectionId, limit: 10, withoutBody: true });

        expect(page.items).toHaveLength(1);
        expect(page.items[0]?.json).toBe('');
        expect(page.items[0]?.id).toBe(object.id);
        expect(page.items[0]?.version).toBe(object.version);
      });

      it('paging with after while adding', async () => {
        const collectionId = newCollectionId();
        const initial = Array.from({ length: 2500 }, () => objectVersion());
        await store.putObjects(collectionId, initial);

        const seen: string[] = [];
        const addedDuringPaging: string[] = [];
        let after: ObjectQuery['after'];
        for (let pages = 0; pages < 100; pages++) {
          const page = await store.queryObjects({ collectionId, after, limit: 100 });
          seen.push(...page.items.map((item) => item.id));
          const last = page.items.at(-1);
          if (!page.more || last === undefined) break;
          after = { dateAdded: last.dateAdded, id: last.id, version: last.version };

          const extra = [objectVersion(), objectVersion()];
          await store.putObjects(collectionId, extra);
          addedDuringPaging.push(...extra.map((object) => object.id));
        }

        const expected = [...initial.map((object) => object.id), ...addedDuringPaging];
        expect(new Set(seen).size).toBe(seen.length);
        expect(seen).toEqual(expected);
        expect(await store.countObjects(collectionId)).toBe(expected.length);
      });

      it('after resumes within equal date', async () => {
        const collectionId = newCollectionId();
        await store.putObjects(collectionId, [objectVersion(), objectVersion()]);
        const all = await store.queryObjects({ collectionId, limit: 10 });
        const first = all.items[0] as StoredObject;
        const page = await store.queryObjects({
          collectionId,
          after: { dateAdded: first.dateAdded, id: first.id, version: first.version },
          limit: 10,
        });

        expect(page.items.map((item) => item.id)).toEqual([all.items[1]?.id]);
      });

      describe('version selectors', () => {
        // Versions of `multi` are added out of order: v2, v3, v1.
        const multi = 'indicator--multi';
        const single = 'malware--single';
        let collectionId: string;
        let dates: Map<string, number>;

        beforeAll(async () => {
          collectionId = newCollectionId();
          await store.putObjects(collectionId, [
            objectVersion({ id: multi, version: versionKey(2) }),
          ]);
          await store.putObjects(collectionId, [
            objectVersion({ id: multi, version: versionKey(3) }),
          ]);
          await store.putObjects(collectionId, [
            objectVersion({ id: single, version: versionKey(5) }),
          ]);
          await store.putObjects(collectionId, [
            objectVersion({ id: multi, version: versionKey(1) }),
          ]);
          const all = await store.queryObjects({
            collectionId,
            versions: [{ kind: 'all' }],
            limit: 10,
          });
          dates = new Map(all.items.map((item) => [`${item.id}@${item.version}`, item.dateAdded]));
        });

        const at = (id: string, second: number) => `${id}@${versionKey(second)}`;

        it('default is last', async () => {
          const page = await store.queryObjects({ collectionId, limit: 10 });
          expect(versionsOf(page.items)).toEqual([at(multi, 3), at(single, 5)]);
        });

        it('last', async () => {
          const page = await store.queryObjects({
            collectionId,
            versions: [{ kind: 'last' }],
            limit: 10,
          });
          expect(versionsOf(page.items)).toEqual([at(multi, 3), at(single, 5)]);
        });

        it('first', async () => {
          const page = await store.queryObjects({
            collectionId,
            versions: [{ kind: 'first' }],
            limit: 10,
          });
          expect(versionsOf(page.items)).toEqual([at(single, 5), at(multi, 1)]);
        });

        it('all in date_added order', async () => {
          const page = await store.queryObjects({
            collectionId,
            versions: [{ kind: 'all' }],
            limit: 10,
          });
          expect(versionsOf(page.items)).toEqual([
            at(multi, 2),
            at(multi, 3),
            at(single, 5),
            at(multi, 1),
          ]);
        });

        it('at exact version', async () => {
          const page = await store.queryObjects({
            collectionId,
            versions: [{ kind: 'at', version: versionKey(2) }],
            limit: 10,
          });
          expect(versionsOf(page.items)).toEqual([at(multi, 2)]);
        });

        it('at unknown version', async () => {
          const page = await store.queryObjects({
            collectionId,
            versions: [{ kind: 'at', version: versionKey(59) }],
            limit: 10,
          });
          expect(page.items).toEqual([]);
        });

        it('first and last ORed', async () => {
          const page = await store.queryObjects({
            collectionId,
            versions: [{ kind: 'first' }, { kind: 'last' }],
            limit: 10,
          });
          expect(versionsOf(page.items)).toEqual([at(multi, 3), at(single, 5), at(multi, 1)]);
        });

        it('two at versions and last', async () => {
          const page = await store.queryObjects({
            collectionId,
            versions: [
              { kind: 'at', version: versionKey(1) },
              { kind: 'at', version: versionKey(2) },
              { kind: 'last' },
            ],
            limit: 10,
          });
          expect(versionsOf(page.items)).toEqual([
            at(multi, 2),
            at(multi, 3),
            at(single, 5),
            at(multi, 1),
          ]);
        });

        it('ids filter with all', async () => {
          const page = await store.queryObjects({
            collectionId,
            ids: [multi],
            versions: [{ kind: 'all' }],
            limit: 10,
          });
          expect(versionsOf(page.items)).toEqual([at(multi, 2), at(multi, 3), at(multi, 1)]);
        });

        it('types filter with last', async () => {
          const page = await store.queryObjects({
            collectionId,
            types: ['malware'],
            limit: 10,
          });
          expect(versionsOf(page.items)).toEqual([at(single, 5)]);
          const none = await store.queryObjects({ collectionId, types: ['tool'], limit: 10 });
          expect(none.items).toEqual([]);
        });

        it('last ignores added_after', async () => {
          const page = await store.queryObjects({
            collectionId,
            addedAfter: dates.get(at(multi, 3)) as number,
            limit: 10,
          });
          // v3 is the last version but was added before the bound; v1 is
          // after the bound but is not the last version.
          expect(versionsOf(page.items)).toEqual([at(single, 5)]);
        });

        it('first honours added_after', async () => {
          const page = await store.queryObjects({
            collectionId,
            addedAfter: dates.get(at(single, 5)) as number,
            versions: [{ kind: 'first' }],
            limit: 10,
          });
          expect(versionsOf(page.items)).toEqual([at(multi, 1)]);
        });

        it('paging over all versions', async () => {
          const items = await readAll(store, {
            collectionId,
            versions: [{ kind: 'all' }],
            limit: 1,
          });
          expect(versionsOf(items)).toEqual([
            at(multi, 2),
            at(multi, 3),
            at(single, 5),
            at(multi, 1),
          ]);
        });
      });

      describe('selectors with spec_version filter', () => {
        const id = 'indicator--mixed-spec';
        let collectionId: string;

        beforeAll(async () => {
          collectionId = newCollectionId();
          await store.putObjects(collectionId, [
            objectVersion({ id, version: versionKey(1), specVersion: '2.0' }),
            objectVersion({ id, version: versionKey(2), specVersion: '2.0' }),
            objectVersion({ id, version: versionKey(3), specVersion: '2.1' }),
          ]);
        });

        it('last among matching', async () => {
          const page = await store.queryObjects({
            collectionId,
            specVersions: ['2.0'],
            limit: 10,
          });
          expect(versionsOf(page.items)).toEqual([`${id}@${versionKey(2)}`]);
        });

        it('first among matching', async () => {
          const page = await store.queryObjects({
            collectionId,
            specVersions: ['2.1'],
            versions: [{ kind: 'first' }],
            limit: 10,
          });
          expect(versionsOf(page.items)).toEqual([`${id}@${versionKey(3)}`]);
        });

        it('several spec versions', async () => {
          const page = await store.queryObjects({
            collectionId,
            specVersions: ['2.0', '2.1'],
            limit: 10,
          });
          expect(versionsOf(page.items)).toEqual([`${id}@${versionKey(3)}`]);
        });

        it('ids, types and at combined', async () => {
          const page = await store.queryObjects({
            collectionId,
            ids: [id, 'indicator--absent'],
            types: ['indicator'],
            specVersions: ['2.0'],
            versions: [{ kind: 'at', version: versionKey(1) }],
            limit: 10,
          });
          expect(versionsOf(page.items)).toEqual([`${id}@${versionKey(1)}`]);
        });
      });

      describe('selectors after changes', () => {
        // Versions arrive out of order and in two spec versions, then some are
        // deleted, so the last, first and highest spec version of an object
        // move after they were first stored.
        const mixed = 'indicator--00000000-0000-4000-8000-0000000000c1';
        let collectionId: string;

        beforeAll(async () => {
          collectionId = newCollectionId();
          await store.putObjects(collectionId, [
            objectVersion({ id: mixed, version: versionKey(4), specVersion: '2.0' }),
          ]);
          await store.putObjects(collectionId, [
            objectVersion({ id: mixed, version: versionKey(2), specVersion: '2.1' }),
            objectVersion({ id: mixed, version: versionKey(6), specVersion: '2.0' }),
          ]);
          await store.putObjects(collectionId, [
            objectVersion({ id: mixed, version: versionKey(3), specVersion: '2.1' }),
            objectVersion({ id: mixed, version: versionKey(1), specVersion: '2.0' }),
          ]);
        });

        const select = async (query: Omit<ObjectQuery, 'collectionId' | 'limit'>) => {
          const page = await store.queryObjects({ collectionId, limit: 10, ...query });
          return page.items.map((item) => item.version);
        };

        it('out-of-order inserts', async () => {
          expect(await select({})).toEqual([versionKey(6)]);
          expect(await select({ versions: [{ kind: 'first' }] })).toEqual([versionKey(1)]);
          expect(await select({ latestSpecVersion: true })).toEqual([versionKey(3)]);
          expect(await select({ latestSpecVersion: true, versions: [{ kind: 'first' }] })).toEqual([
            versionKey(2),
          ]);
          expect(await select({ specVersions: ['2.1'] })).toEqual([versionKey(3)]);
          expect(await select({ specVersions: ['2.0'], versions: [{ kind: 'first' }] })).toEqual([
            versionKey(1),
          ]);
        });

        it('delete of the last versions', async () => {
          const other = newCollectionId();
          await store.putObjects(other, [
            objectVersion({ id: mixed, version: versionKey(1), specVersion: '2.0' }),
            objectVersion({ id: mixed, version: versionKey(3), specVersion: '2.1' }),
            objectVersion({ id: mixed, version: versionKey(2), specVersion: '2.1' }),
          ]);
          const selectIn = async (query: Omit<ObjectQuery, 'collectionId' | 'limit'>) => {
            const page = await store.queryObjects({ collectionId: other, limit: 10, ...query });
            return page.items.map((item) => item.version);
          };

          const lastRemoved = await store.deleteObjectVersions({
            collectionId: other,
            id: mixed,
            versions: [{ kind: 'last' }],
          });
          expect(lastRemoved).toBe(1);
          expect(await selectIn({})).toEqual([versionKey(2)]);
          expect(await selectIn({ latestSpecVersion: true })).toEqual([versionKey(2)]);

          const specRemoved = await store.deleteObjectVersions({
            collectionId: other,
            id: mixed,
            specVersions: ['2.1'],
          });
          expect(specRemoved).toBe(1);
          // With no 2.1 version left, 2.0 is the highest spec version.
          expect(await selectIn({ latestSpecVersion: true })).toEqual([versionKey(1)]);
          expect(await selectIn({ versions: [{ kind: 'first' }] })).toEqual([versionKey(1)]);
        });

        it('delete of the first version', async () => {
          const other = newCollectionId();
          await store.putObjects(other, [
            objectVersion({ id: mixed, version: versionKey(1) }),
            objectVersion({ id: mixed, version: versionKey(2) }),
          ]);

          await store.deleteObjectVersions({
            collectionId: other,
            id: mixed,
            versions: [{ kind: 'first' }],
          });

          const first = await store.queryObjects({
            collectionId: other,
            versions: [{ kind: 'first' }],
            latestSpecVersion: true,
            limit: 10,
          });
          expect(first.items.map((item) => item.version)).toEqual([versionKey(2)]);
        });

        // FerretDB scans the whole collection for each query, which took about a
        // second per query in the full contract run, so this test gets more time.
        it('selectors match a model', async () => {
          // A seeded sequence of puts and deletes over a few objects, checked
          // against selectors computed here from what the test stored.
          const other = newCollectionId();
          const ids = Array.from(
            { length: 6 },
            (_, i) =>
              `${i % 2 === 0 ? 'indicator' : 'malware'}--00000000-0000-4000-8000-00000000d00${i}`,
          );
          const model = new Map<string, Map<string, string>>(ids.map((id) => [id, new Map()]));
          let seed = 7;
          const random = (n: number) => {
            seed = (seed * 1103515245 + 12345) % 2147483648;
            return seed % n;
          };

          for (let step = 0; step < 24; step++) {
            const id = ids[random(ids.length)] as string;
            const versions = model.get(id) as Map<string, string>;
            if (random(4) === 0 && versions.size > 0) {
              const selector = random(2) === 0 ? 'last' : 'first';
              const sorted = [...versions.keys()].sort();
              const chosen = (selector === 'last' ? sorted.at(-1) : sorted[0]) as string;
              await store.deleteObjectVersions({
                collectionId: other,
                id,
                versions: [{ kind: selector }],
              });
              versions.delete(chosen);
              continue;
            }
            const batch: ObjectVersionInput[] = [];
            for (let n = random(3) + 1; n > 0; n--) {
              const version = versionKey(random(20));
              if (versions.has(version) || batch.some((item) => item.version === version)) continue;
              const specVersion = random(3) === 0 ? '2.0' : '2.1';
              versions.set(version, specVersion);
              batch.push(objectVersion({ id, version, specVersion }));
            }
            await store.putObjects(other, batch);
          }

          const everything = await readAll(store, {
            collectionId: other,
            versions: [{ kind: 'all' }],
            limit: 100,
          });
          const dateOf = new Map(everything.map((item) => [`${item.id}@${item.version}`, item]));
          expect(everything).toHaveLength([...model.values()].reduce((n, m) => n + m.size, 0));

          const expected = (query: Omit<ObjectQuery, 'collectionId' | 'limit'>): string[] => {
            const kinds = new Set((query.versions ?? [{ kind: 'last' }]).map((s) => s.kind));
            const chosen: string[] = [];
            for (const [id, versions] of model) {
              if (query.types && !query.types.includes(id.slice(0, id.indexOf('--')))) continue;
              const topSpec = [...versions.values()].sort().at(-1);
              const candidates = [...versions.entries()]
                .filter(([, spec]) => !query.specVersions || query.specVersions.includes(spec))
                .filter(([, spec]) => !query.latestSpecVersion || spec === topSpec)
                .map(([version]) => version)
                .sort();
              for (const version of candidates) {
                const picked =
                  kinds.has('all') ||
                  (kinds.has('last') && version === candidates.at(-1)) ||
                  (kinds.has('first') && version === candidates[0]);
                if (picked) chosen.push(`${id}@${version}`);
              }
            }
            const dateAdded = (key: string) => dateOf.get(key)?.dateAdded as number;
            return chosen.sort((a, b) => dateAdded(a) - dateAdded(b));
          };

          const selectorSets: VersionSelector[][] = [
            [{ kind: 'last' }],
            [{ kind: 'first' }],
            [{ kind: 'first' }, { kind: 'last' }],
            [{ kind: 'all' }],
          ];
          for (const versions of selectorSets) {
            for (const latestSpecVersion of [false, true]) {
              for (const types of [undefined, ['malware']]) {
                for (const specVersions of [undefined, ['2.0']]) {
                  const query: Omit<ObjectQuery, 'collectionId' | 'limit'> = { versions };
                  if (latestSpecVersion) query.latestSpecVersion = true;
                  if (types) query.types = types;
                  if (specVersions) query.specVersions = specVersions;
                  const items = await readAll(store, { collectionId: other, limit: 50, ...query });
                  expect({ query, selected: versionsOf(items) }).toEqual({
                    query,
                    selected: expected(query),
                  });
                }
              }
            }
          }
        }, 300_000);
      });

      describe('queryJoinedObjects', () => {
        let collectionId: string;

        beforeAll(async () => {
          collectionId = newCollectionId();
          const objects = Array.from({ length: 7 }, (_, i) =>
            objectVersion({ id: `${i % 2 === 0 ? 'indicator' : 'malware'}--joined-${i}` }),
          );
          await store.putObjects(collectionId, objects.slice(0, 4));
          await store.putObjects(collectionId, objects.slice(4));
        });

        /** Reads every joined page of `query` next to the page of queryObjects with bodies. */
        const compare = async (query: ObjectQuery) => {
          let after = query.after;
          for (let pages = 0; pages < 20; pages++) {
            const expected = await store.queryObjects({ ...query, after, withoutBody: false });
            const joined = await store.queryJoinedObjects({ ...query, after });
            const first = expected.items[0];
            const last = expected.items.at(-1);

            expect(joined.joined.toString('utf8')).toBe(
              expected.items.map((item) => item.json).join(','),
            );
            expect(joined.count).toBe(expected.items.length);
            expect(joined.more).toBe(expected.more);
            expect(joined.firstDateAdded).toBe(first?.dateAdded);
            expect(joined.last).toEqual(
              last && { dateAdded: last.dateAdded, id: last.id, version: last.version },
            );
            if (!joined.more || joined.last === undefined) return;
            after = joined.last;
          }
          throw new Error('queryJoinedObjects did not end within 20 pages');
        };

        it('same pages as queryObjects', async () => {
          await compare({ collectionId, limit: 3 });
          await compare({ collectionId, limit: 7 });
          await compare({ collectionId, limit: 100 });
        });

        it('filters as queryObjects', async () => {
          await compare({ collectionId, types: ['malware'], limit: 2 });
          await compare({ collectionId, ids: ['indicator--joined-4'], limit: 2 });
          await compare({ collectionId, versions: [{ kind: 'all' }], limit: 2, withoutBody: true });
        });

        it('empty page', async () => {
          const page = await store.queryJoinedObjects({
            collectionId: newCollectionId(),
            limit: 5,
          });

          expect(page.count).toBe(0);
          expect(page.joined.length).toBe(0);
          expect(page.more).toBe(false);
          expect(page.last).toBeUndefined();
          expect(page.firstDateAdded).toBeUndefined();
        });

        it('invalid limit rejected', async () => {
          await expect(store.queryJoinedObjects({ collectionId, limit: 0 })).rejects.toThrow(
            StoreError,
          );
        });
      });
    });

    describe('applyPoll', () => {
      it('fresh poll creates indicators', async () => {
        const collectionId = newCollectionId();
        const values = [
          sighting('10.0.0.1'),
          sighting('10.0.0.2'),
          sighting('evil.example', 'domain'),
        ];
        const built: string[] = [];
        const summary = await store.applyPoll(
          pollInput(collectionId, 'feed-a', 1_000, values, {
            buildIndicator: (s) => {
              built.push(s.value);
              return objectVersion({ id: s.indicatorId });
            },
          }),
        );

        expect(summary).toEqual({
          created: 3,
          refreshed: 0,
          objects: { added: 3, unchanged: 0, conflicts: [] },
        });
        // Builders are called once per new value, in an order the adapter picks.
        expect([...built].sort()).toEqual(['10.0.0.1', '10.0.0.2', 'evil.example']);
        expect(await store.countObjects(collectionId)).toBe(3);
        expect(await store.listIndicatorEntries(collectionId)).toEqual([
          {
            valueType: 'domain',
            value: 'evil.example',
            indicatorId: 'indicator--domain-evil.example',
            firstSeen: 1_000,
            lastSeen: 1_000,
            sources: ['feed-a'],
          },
          {
            valueType: 'ipv4',
            value: '10.0.0.1',
            indicatorId: 'indicator--ipv4-10.0.0.1',
            firstSeen: 1_000,
            lastSeen: 1_000,
            sources: ['feed-a'],
          },
          {
            valueType: 'ipv4',
            value: '10.0.0.2',
            indicatorId: 'indicator--ipv4-10.0.0.2',
            firstSeen: 1_000,
            lastSeen: 1_000,
            sources: ['feed-a'],
          },
        ]);
      });

      it('same poll twice creates nothing', async () => {
        const collectionId = newCollectionId();
        const values = [sighting('10.0.0.1'), sighting('10.0.0.2')];
        await store.applyPoll(pollInput(collectionId, 'feed-a', 1_000, values));
        const before = await store.queryObjects({
          collectionId,
          versions: [{ kind: 'all' }],
          limit: 10,
        });

        let builds = 0;
        const summary = await store.applyPoll(
          pollInput(collectionId, 'feed-a', 2_000, values, {
            buildIndicator: (s) => {
              builds++;
              return objectVersion({ id: s.indicatorId });
            },
          }),
        );

        expect(builds).toBe(0);
        expect(summary).toEqual({
          created: 0,
          refreshed: 2,
          objects: { added: 0, unchanged: 0, conflicts: [] },
        });
        const after = await store.queryObjects({
          collectionId,
          versions: [{ kind: 'all' }],
          limit: 10,
        });
        expect(after.items).toEqual(before.items);
        const entries = await store.listIndicatorEntries(collectionId);
        expect(entries.map((entry) => [entry.firstSeen, entry.lastSeen])).toEqual([
          [1_000, 2_000],
          [1_000, 2_000],
        ]);
      });

      it('second source shares indicator', async () => {
        const collectionId = newCollectionId();
        await store.applyPoll(pollInput(collectionId, 'feed-b', 1_000, [sighting('10.0.0.9')]));
        let builds = 0;
        const summary = await store.applyPoll(
          pollInput(collectionId, 'feed-a', 3_000, [sighting('10.0.0.9')], {
            buildIndicator: (s) => {
              builds++;
              return objectVersion({ id: s.indicatorId });
            },
          }),
        );

        expect(builds).toBe(0);
        expect(summary.created).toBe(0);
        expect(summary.refreshed).toBe(1);
        expect(await store.listIndicatorEntries(collectionId)).toEqual([
          {
            valueType: 'ipv4',
            value: '10.0.0.9',
            indicatorId: 'indicator--ipv4-10.0.0.9',
            firstSeen: 1_000,
            lastSeen: 3_000,
            sources: ['feed-a', 'feed-b'],
          },
        ]);
      });

      it('indicator stored by putObjects counts', async () => {
        const collectionId = newCollectionId();
        const value = sighting('10.1.1.1');
        await store.putObjects(collectionId, [objectVersion({ id: value.indicatorId })]);
        const summary = await store.applyPoll(
          pollInput(collectionId, 'feed-a', 1_000, [value], {
            buildIndicator: () => {
              throw new Error('buildIndicator must not be called for a stored indicator');
            },
          }),
        );

        expect(summary.created).toBe(0);
        expect(summary.refreshed).toBe(1);
      });

      it('duplicate value counted once', async () => {
        const collectionId = newCollectionId();
        const summary = await store.applyPoll(
          pollInput(collectionId, 'feed-a', 1_000, [sighting('10.0.0.1'), sighting('10.0.0.1')]),
        );

        expect(summary.created).toBe(1);
        expect(summary.refreshed).toBe(0);
        expect(await store.listIndicatorEntries(collectionId)).toHaveLength(1);
      });

      it('extra objects and state stored', async () => {
        const collectionId = newCollectionId();
        const identity = objectVersion({ id: 'identity--hub' });
        const state: SourceState = {
          collectionId,
          sourceId: 'feed-a',
          etag: '"v1"',
          lastModified: 'Mon, 01 Jan 2024 00:00:00 GMT',
          lastSuccessAt: 5_000,
          lastValidCount: 1,
          lastReport: { valid: 1, invalid: 0, notes: ['ok'] },
        };
        const summary = await store.applyPoll(
          pollInput(collectionId, 'feed-a', 5_000, [sighting('10.0.0.1')], {
            extraObjects: [identity],
            state,
          }),
        );

        expect(summary.objects.added).toBe(2);
        expect(await store.getSourceState(collectionId, 'feed-a')).toEqual(state);
        const page = await store.queryObjects({ collectionId, ids: [identity.id], limit: 10 });
        expect(page.items.map((item) => item.json)).toEqual([identity.json]);

        const again = await store.applyPoll(
          pollInput(collectionId, 'feed-a', 6_000, [sighting('10.0.0.1')], {
            extraObjects: [identity],
            state,
          }),
        );
        expect(again.objects).toEqual({ added: 0, unchanged: 1, conflicts: [] });
      });

      it('empty poll writes state', async () => {
        const collectionId = newCollectionId();
        const summary = await store.applyPoll(pollInput(collectionId, 'feed-a', 7_000, []));

        expect(summary).toEqual({
          created: 0,
          refreshed: 0,
          objects: { added: 0, unchanged: 0, conflicts: [] },
        });
        expect(await store.getSourceState(collectionId, 'feed-a')).toEqual({
          collectionId,
          sourceId: 'feed-a',
          lastSuccessAt: 7_000,
          lastValidCount: 0,
        });
      });

      const atomic = capabilities.atomicPoll ?? true;
      (atomic ? it : it.skip)('failure midway changes nothing', async () => {
        const collectionId = newCollectionId();
        const firstState: SourceState = {
          collectionId,
          sourceId: 'feed-a',
          etag: '"v1"',
          lastSuccessAt: 1_000,
          lastValidCount: 1,
        };
        await store.applyPoll(
          pollInput(collectionId, 'feed-a', 1_000, [sighting('10.0.0.1')], { state: firstState }),
        );
        const objectsBefore = await store.queryObjects({
          collectionId,
          versions: [{ kind: 'all' }],
          limit: 100,
        });
        const entriesBefore = await store.listIndicatorEntries(collectionId);

        let builds = 0;
        const failing = pollInput(
          collectionId,
          'feed-a',
          2_000,
          [sighting('10.0.0.1'), sighting('10.0.0.2'), sighting('10.0.0.3'), sighting('10.0.0.4')],
          {
            buildIndicator: (s) => {
              builds++;
              if (builds === 2) throw new Error('pattern builder failed');
              return objectVersion({ id: s.indicatorId });
            },
            extraObjects: [objectVersion({ id: 'identity--extra' })],
            state: { ...firstState, etag: '"v2"', lastSuccessAt: 2_000, lastValidCount: 4 },
          },
        );

        await expect(store.applyPoll(failing)).rejects.toThrow('pattern builder failed');
        expect(builds).toBe(2);
        expect(await store.listIndicatorEntries(collectionId)).toEqual(entriesBefore);
        const objectsAfter = await store.queryObjects({
          collectionId,
          versions: [{ kind: 'all' }],
          limit: 100,
        });
        expect(objectsAfter.items).toEqual(objectsBefore.items);
        expect(await store.getSourceState(collectionId, 'feed-a')).toEqual(firstState);
      });

      (atomic ? it : it.skip)('failure on first poll leaves nothing', async () => {
        const collectionId = newCollectionId();
        const failing = pollInput(
          collectionId,
          'feed-a',
          1_000,
          [sighting('10.0.0.1'), sighting('10.0.0.2')],
          {
            buildIndicator: (s) => {
              if (s.value === '10.0.0.2') throw new Error('pattern builder failed');
              return objectVersion({ id: s.indicatorId });
            },
          },
        );

        await expect(store.applyPoll(failing)).rejects.toThrow('pattern builder failed');
        expect(await store.listIndicatorEntries(collectionId)).toEqual([]);
        expect(await store.countObjects(collectionId)).toBe(0);
        expect(await store.getSourceState(collectionId, 'feed-a')).toBeUndefined();
      });
    });

    describe('listIndicatorEntries', () => {
      it('filters by value type', async () => {
        const collectionId = newCollectionId();
        await store.applyPoll(
          pollInput(collectionId, 'feed-a', 1_000, [
            sighting('b.example', 'domain'),
            sighting('10.0.0.2'),
            sighting('a.example', 'domain'),
            sighting('http://x.example/', 'url'),
          ]),
        );

        const domains = await store.listIndicatorEntries(collectionId, ['domain']);
        expect(domains.map((entry) => entry.value)).toEqual(['a.example', 'b.example']);
        const two = await store.listIndicatorEntries(collectionId, ['url', 'ipv4']);
        expect(two.map((entry) => `${entry.valueType}:${entry.value}`)).toEqual([
          'ipv4:10.0.0.2',
          'url:http://x.example/',
        ]);
        expect(await store.listIndicatorEntries(collectionId, [])).toEqual([]);
      });

      it('orders by type then value', async () => {
        const collectionId = newCollectionId();
        await store.applyPoll(
          pollInput(collectionId, 'feed-a', 1_000, [
            sighting('10.0.0.3'),
            sighting('z.example', 'domain'),
            sighting('10.0.0.1'),
          ]),
        );
        const entries = await store.listIndicatorEntries(collectionId);
        expect(entries.map((entry) => `${entry.valueType}:${entry.value}`)).toEqual([
          'domain:z.example',
          'ipv4:10.0.0.1',
          'ipv4:10.0.0.3',
        ]);
      });

      it('unknown collection', async () => {
        expect(await store.listIndicatorEntries(newCollectionId())).toEqual([]);
      });
    });

    describe('source state', () => {
      it('round trip and replace', async () => {
        const collectionId = newCollectionId();
        const full: SourceState = {
          collectionId,
          sourceId: 'feed-a',
          etag: 'W/"x"',
          lastModified: 'Tue, 02 Jan 2024 00:00:00 GMT',
          lastSuccessAt: 1_700_000_000_000_000,
          lastValidCount: 12,
          lastReport: { status: 'ok', counts: { valid: 12 }, warnings: [] },
          cursor: { addedAfter: '2024-01-02T00:00:00.123456Z', pages: 3 },
        };
        await store.putSourceState(full);
        expect(await store.getSourceState(collectionId, 'feed-a')).toEqual(full);

        const partial: SourceState = {
          collectionId,
          sourceId: 'feed-a',
          lastReport: { status: 'failed' },
        };
        await store.putSourceState(partial);
        expect(await store.getSourceState(collectionId, 'feed-a')).toEqual(partial);
      });

      it('unknown source', async () => {
        expect(await store.getSourceState(newCollectionId(), 'feed-a')).toBeUndefined();
      });
    });

    describe('views', () => {
      it('round trip', async () => {
        const stored = view({ body: Buffer.from([0, 1, 2, 255, 254, 10]) });
        await store.putView(stored);
        const read = await store.getView(stored.collectionId, stored.name);

        expect(read).toBeDefined();
        expect(read?.body.equals(stored.body)).toBe(true);
        expect({ ...read, body: undefined, data: undefined }).toEqual({
          ...stored,
          body: undefined,
          data: undefined,
        });
        expect(read?.data.length).toBe(0);
        expect(await store.getViewEtag(stored.collectionId, stored.name)).toBe(stored.etag);
        const data = await store.getViewData(stored.collectionId, stored.name);
        expect(data?.etag).toBe(stored.etag);
        expect(data?.dataEtag).toBe(stored.dataEtag);
        expect(data?.data.equals(stored.data)).toBe(true);
        expect(
          await store.getViewData(stored.collectionId, stored.name, { withoutData: true }),
        ).toEqual({ etag: stored.etag, dataEtag: stored.dataEtag, data: Buffer.alloc(0) });
        expect(await store.getViewLog(stored.collectionId, stored.name)).toEqual({
          etag: stored.etag,
          renderedAt: stored.renderedAt,
          log: stored.log,
        });
      });

      it('large parts', async () => {
        // Larger than one MongoDB document may hold, so the adapter must split it.
        const body = Buffer.alloc(17 * 1024 * 1024, 'a');
        body.write('end\n', body.length - 4);
        const data = Buffer.alloc(9 * 1024 * 1024 + 3, 'b');
        const stored = view({ body, data });
        await store.putView(stored);
        const read = await store.getView(stored.collectionId, stored.name);
        expect(read?.body.equals(body)).toBe(true);
        expect((await store.getViewData(stored.collectionId, stored.name))?.data.equals(data)).toBe(
          true,
        );

        // A smaller render replaces it whole.
        await store.putView(view({ collectionId: stored.collectionId, etag: '"small"' }));
        const small = await store.getView(stored.collectionId, stored.name);
        expect(small?.body.toString()).toBe('10.0.0.1\n10.0.0.2\n');
        expect((await store.getViewData(stored.collectionId, stored.name))?.data.toString()).toBe(
          'ipv4\t10.0.0.1\nipv4\t10.0.0.2\n',
        );
      });

      it('replace', async () => {
        const first = view();
        await store.putView(first);
        const second = view({
          collectionId: first.collectionId,
          etag: '"def"',
          body: Buffer.from('10.0.0.3\n'),
          entryCount: 1,
          renderedAt: first.renderedAt + 1,
        });
        await store.putView(second);

        const read = await store.getView(first.collectionId, first.name);
        expect(read?.etag).toBe('"def"');
        expect(read?.body.toString()).toBe('10.0.0.3\n');
        expect(read?.entryCount).toBe(1);
        expect(read?.renderedAt).toBe(second.renderedAt);
      });

      it('unknown view', async () => {
        expect(await store.getView(newCollectionId(), 'edl')).toBeUndefined();
        expect(await store.getViewEtag(newCollectionId(), 'edl')).toBeUndefined();
        expect(await store.getViewData(newCollectionId(), 'edl')).toBeUndefined();
        expect(await store.getViewLog(newCollectionId(), 'edl')).toBeUndefined();
      });
    });

    describe('secrets', () => {
      it('created once', async () => {
        const name = `cursor-key-${randomUUID()}`;
        let calls = 0;
        const create = () => {
          calls++;
          return `secret-${calls}`;
        };

        expect(await store.getOrCreateSecret(name, create)).toBe('secret-1');
        expect(await store.getOrCreateSecret(name, create)).toBe('secret-1');
        expect(calls).toBe(1);
      });
    });

    describe('TAXII additions', () => {
      const spec = (id: string, second: number, specVersion: string) =>
        objectVersion({ id, version: versionKey(second), specVersion });

      it('access round trip', async () => {
        const record = collectionRecord({
          access: { public: false, read: ['alice', '*'], write: ['bob'] },
        });
        await store.upsertCollection(record);

        expect(await store.getCollection(record.id)).toEqual(record);
        const plain = collectionRecord();
        await store.upsertCollection(plain);
        expect((await store.getCollection(plain.id))?.access).toBeUndefined();
      });

      it('latest spec version only', async () => {
        const collectionId = newCollectionId();
        const mixed = 'indicator--00000000-0000-4000-8000-0000000000a1';
        const old = 'indicator--00000000-0000-4000-8000-0000000000a2';
        await store.putObjects(collectionId, [
          spec(mixed, 1, '2.0'),
          spec(mixed, 2, '2.1'),
          spec(mixed, 3, '2.0'),
          spec(old, 1, '2.0'),
        ]);

        const last = await store.queryObjects({ collectionId, limit: 10, latestSpecVersion: true });
        const all = await store.queryObjects({
          collectionId,
          limit: 10,
          latestSpecVersion: true,
          versions: [{ kind: 'all' }],
        });

        expect(versionsOf(last.items)).toEqual([
          `${mixed}@${versionKey(2)}`,
          `${old}@${versionKey(1)}`,
        ]);
        expect(versionsOf(all.items)).toEqual([
          `${mixed}@${versionKey(2)}`,
          `${old}@${versionKey(1)}`,
        ]);
      });

      it('delete selected versions', async () => {
        const collectionId = newCollectionId();
        const id = 'indicator--00000000-0000-4000-8000-0000000000b1';
        const other = objectVersion();
        await store.putObjects(collectionId, [
          spec(id, 1, '2.1'),
          spec(id, 2, '2.1'),
          spec(id, 3, '2.1'),
          other,
        ]);

        const none = await store.deleteObjectVersions({
          collectionId,
          id,
          versions: [{ kind: 'at', version: versionKey(9) }],
        });
        const first = await store.deleteObjectVersions({
          collectionId,
          id,
          versions: [{ kind: 'first' }],
        });

        expect(none).toBe(0);
        expect(first).toBe(1);
        const left = await readAll(store, {
          collectionId,
          ids: [id],
          versions: [{ kind: 'all' }],
          limit: 10,
        });
        expect(left.map((item) => item.version)).toEqual([versionKey(2), versionKey(3)]);
        const newFirst = await store.queryObjects({
          collectionId,
          ids: [id],
          versions: [{ kind: 'first' }],
          limit: 10,
        });
        expect(newFirst.items.map((item) => item.version)).toEqual([versionKey(2)]);
      });

      it('delete all versions and last', async () => {
        const collectionId = newCollectionId();
        const id = 'indicator--00000000-0000-4000-8000-0000000000b2';
        const other = objectVersion();
        await store.putObjects(collectionId, [spec(id, 1, '2.1'), spec(id, 2, '2.1'), other]);

        const removedLast = await store.deleteObjectVersions({
          collectionId,
          id,
          versions: [{ kind: 'last' }],
        });
        const lastNow = await store.queryObjects({ collectionId, ids: [id], limit: 10 });
        const removedAll = await store.deleteObjectVersions({ collectionId, id });

        expect(removedLast).toBe(1);
        expect(lastNow.items.map((item) => item.version)).toEqual([versionKey(1)]);
        expect(removedAll).toBe(1);
        expect(await store.countObjects(collectionId)).toBe(1);
      });

      it('date_added not reused after delete', async () => {
        const collectionId = newCollectionId();
        const first = objectVersion();
        await store.putObjects(collectionId, [first]);
        const before = (await store.queryObjects({ collectionId, limit: 10 })).items[0];
        await store.deleteObjectVersions({ collectionId, id: first.id });

        await store.putObjects(collectionId, [objectVersion()]);

        const after = (await store.queryObjects({ collectionId, limit: 10 })).items[0];
        expect(after?.dateAdded).toBeGreaterThan(before?.dateAdded as number);
      });

      it('status round trip and purge', async () => {
        const old = {
          id: randomUUID(),
          collectionId: newCollectionId(),
          principal: 'alice',
          requestTimestamp: 1_000,
          status: 'complete' as const,
          totalCount: 2,
          successes: [{ id: 'indicator--x', version: '2024-01-01T00:00:00.000000Z' }],
          failures: [{ id: 'indicator--y', version: '', message: 'invalid' }],
          pendings: [],
        };
        const fresh = { ...old, id: randomUUID(), requestTimestamp: 5_000 };
        await store.putStatus(old);
        await store.putStatus(fresh);

        expect(await store.getStatus(old.id)).toEqual(old);
        expect(await store.purgeStatuses(2_000)).toBeGreaterThanOrEqual(1);
        expect(await store.getStatus(old.id)).toBeUndefined();
        expect(await store.getStatus(fresh.id)).toEqual(fresh);
        expect(await store.getStatus(randomUUID())).toBeUndefined();
      });
    });

    describe('sighting life cycle', () => {
      /** Records every change and builds a version whose key grows with each change. */
      function recorder(): {
        changes: IndicatorChange[];
        build: (change: IndicatorChange) => ObjectVersionInput;
      } {
        const changes: IndicatorChange[] = [];
        return {
          changes,
          build: (change) => {
            changes.push(change);
            return objectVersion({ id: change.indicatorId, version: versionKey(changes.length) });
          },
        };
      }

      function poll(
        collectionId: string,
        sourceId: string,
        seenAt: number,
        values: string[],
        build: (change: IndicatorChange) => ObjectVersionInput,
        withdrawAfter?: number,
      ): Promise<PollResultSummary> {
        return store.applyPoll(
          pollInput(
            collectionId,
            sourceId,
            seenAt,
            values.map((v) => sighting(v)),
            {
              buildVersion: build,
              missing: withdrawAfter === undefined ? undefined : { withdrawAfter },
            },
          ),
        );
      }

      async function activeValues(collectionId: string): Promise<string[]> {
        return (await store.listIndicatorEntries(collectionId)).map((entry) => entry.value);
      }

      describe('unchanged poll', () => {
        function unchanged(
          collectionId: string,
          seenAt: number,
          since: number,
          build: (change: IndicatorChange) => ObjectVersionInput,
          withdrawAfter: number,
        ): Promise<PollResultSummary | undefined> {
          return store.applyUnchangedPoll({
            ...pollInput(collectionId, 'feed-a', seenAt, [], {
              buildVersion: build,
              missing: { withdrawAfter },
            }),
            since,
          });
        }

        async function lastSeen(collectionId: string): Promise<Record<string, number>> {
          const entries = await store.listIndicatorEntries(collectionId);
          return Object.fromEntries(entries.map((entry) => [entry.value, entry.lastSeen]));
        }

        it('refreshes what the previous poll listed', async () => {
          const collectionId = newCollectionId();
          const { changes, build } = recorder();
          await poll(collectionId, 'feed-a', 1_000, ['10.0.0.1', '10.0.0.2'], build, 1);

          const summary = await unchanged(collectionId, 2_000, 1_000, build, 1);

          expect(summary?.refreshed).toBe(2);
          expect(summary?.created).toBe(0);
          expect(summary?.withdrawn).toBe(0);
          expect(await lastSeen(collectionId)).toEqual({ '10.0.0.1': 2_000, '10.0.0.2': 2_000 });
          expect(changes.map((change) => change.kind)).toEqual(['created', 'created']);
          expect((await store.getSourceState(collectionId, 'feed-a'))?.lastSuccessAt).toBe(2_000);
        });

        it('keeps counting misses of values no longer listed', async () => {
          const collectionId = newCollectionId();
          const { changes, build } = recorder();
          await poll(collectionId, 'feed-a', 1_000, ['10.0.0.1', '10.0.0.2'], build, 3);
          // 10.0.0.2 is missed once; the next lists are the same as this one.
          await poll(collectionId, 'feed-a', 2_000, ['10.0.0.1'], build, 3);

          const third = await unchanged(collectionId, 3_000, 2_000, build, 3);
          expect(third?.refreshed).toBe(1);
          expect(third?.missed).toBe(1);
          expect(await lastSeen(collectionId)).toEqual({ '10.0.0.1': 3_000, '10.0.0.2': 1_000 });

          const fourth = await unchanged(collectionId, 4_000, 3_000, build, 3);
          expect(fourth?.withdrawn).toBe(1);
          expect(await activeValues(collectionId)).toEqual(['10.0.0.1']);
          expect(changes.at(-1)?.kind).toBe('withdrawn');
        });

        it('declines after an expiry', async () => {
          const collectionId = newCollectionId();
          const { build } = recorder();
          await poll(collectionId, 'feed-a', 1_000, ['10.0.0.1', '10.0.0.2'], build, 1);
          await store.expireSightings({
            collectionId,
            now: 1_500,
            rules: [{ sourceId: 'feed-a', basis: 'first-seen', maxAgeMicros: 100 }],
            buildVersion: build,
          });

          const summary = await unchanged(collectionId, 2_000, 1_000, build, 1);

          expect(summary).toBeUndefined();
          expect(await activeValues(collectionId)).toEqual([]);
          expect((await store.getSourceState(collectionId, 'feed-a'))?.lastSuccessAt).toBe(1_000);
        });

        it('leaves other sources alone', async () => {
          const collectionId = newCollectionId();
          const { build } = recorder();
          await poll(collectionId, 'feed-a', 1_000, ['10.0.0.1'], build, 1);
          await poll(collectionId, 'feed-b', 1_000, ['10.0.0.9'], build, 1);

          await unchanged(collectionId, 2_000, 1_000, build, 1);

          expect(await lastSeen(collectionId)).toEqual({ '10.0.0.1': 2_000, '10.0.0.9': 1_000 });
        });
      });

      it('created change carries the sighting', async () => {
        const collectionId = newCollectionId();
        const { changes, build } = recorder();
        const summary = await poll(collectionId, 'feed-a', 1_000, ['10.0.0.1'], build, 1);

        expect(summary.created).toBe(1);
        expect(changes).toHaveLength(1);
        expect(changes[0]).toMatchObject({
          kind: 'created',
          value: '10.0.0.1',
          at: 1_000,
          sightings: [{ sourceId: 'feed-a', firstSeen: 1_000, lastSeen: 1_000, creator: true }],
        });
        expect(changes[0]?.firstVersion).toBeUndefined();
      });

      it('missing value withdrawn after threshold', async () => {
        const collectionId = newCollectionId();
        const { changes, build } = recorder();
        await poll(collectionId, 'feed-a', 1_000, ['10.0.0.1', '10.0.0.2'], build, 2);

        const second = await poll(collectionId, 'feed-a', 2_000, ['10.0.0.1'], build, 2);
        expect(second.missed).toBe(1);
        expect(second.withdrawn).toBe(0);
        expect(await activeValues(collectionId)).toEqual(['10.0.0.1', '10.0.0.2']);

        const third = await poll(collectionId, 'feed-a', 3_000, ['10.0.0.1'], build, 2);
        expect(third.withdrawn).toBe(1);
        expect(await activeValues(collectionId)).toEqual(['10.0.0.1']);
        const withdrawn = changes.at(-1);
        expect(withdrawn).toMatchObject({ kind: 'withdrawn', value: '10.0.0.2', at: 3_000 });
        expect(withdrawn?.firstVersion).toBe(versionKey(2));
        expect(withdrawn?.lastVersion).toBe(versionKey(2));
        expect(await store.listSightings(collectionId, 'ipv4', '10.0.0.2')).toEqual([
          {
            sourceId: 'feed-a',
            indicatorId: 'indicator--ipv4-10.0.0.2',
            firstSeen: 1_000,
            lastSeen: 1_000,
            missed: 2,
            creator: true,
            withdrawnAt: 3_000,
            withdrawalReason: 'missing',
          },
        ]);
      });

      it('seen again resets misses', async () => {
        const collectionId = newCollectionId();
        const { build } = recorder();
        await poll(collectionId, 'feed-a', 1_000, ['10.0.0.1'], build, 2);
        await poll(collectionId, 'feed-a', 2_000, [], build, 2);
        await poll(collectionId, 'feed-a', 3_000, ['10.0.0.1'], build, 2);
        const fourth = await poll(collectionId, 'feed-a', 4_000, [], build, 2);

        expect(fourth.withdrawn).toBe(0);
        expect(await activeValues(collectionId)).toEqual(['10.0.0.1']);
      });

      it('without missing nothing withdrawn', async () => {
        const collectionId = newCollectionId();
        const { build } = recorder();
        await poll(collectionId, 'feed-a', 1_000, ['10.0.0.1', '10.0.0.2'], build);
        const second = await poll(collectionId, 'feed-a', 2_000, ['10.0.0.1'], build);

        expect(second.withdrawn).toBe(0);
        expect(await activeValues(collectionId)).toEqual(['10.0.0.1', '10.0.0.2']);
      });

      it('returning value reactivated', async () => {
        const collectionId = newCollectionId();
        const { changes, build } = recorder();
        await poll(collectionId, 'feed-a', 1_000, ['10.0.0.1'], build, 1);
        await poll(collectionId, 'feed-a', 2_000, ['10.0.0.9'], build, 1);
        const third = await poll(collectionId, 'feed-a', 3_000, ['10.0.0.1', '10.0.0.9'], build, 1);

        expect(third.reactivated).toBe(1);
        expect(third.created).toBe(0);
        const change = changes.at(-1);
        expect(change).toMatchObject({ kind: 'reactivated', value: '10.0.0.1', at: 3_000 });
        expect(change?.sightings).toMatchObject([{ sourceId: 'feed-a', firstSeen: 3_000 }]);
        expect(change?.sightings[0]?.withdrawnAt).toBeUndefined();
        expect(await activeValues(collectionId)).toEqual(['10.0.0.1', '10.0.0.9']);
      });

      it('second source merges', async () => {
        const collectionId = newCollectionId();
        const { changes, build } = recorder();
        await poll(collectionId, 'feed-a', 1_000, ['10.0.0.1'], build, 1);
        const second = await poll(collectionId, 'feed-b', 2_000, ['10.0.0.1'], build, 1);

        expect(second.merged).toBe(1);
        expect(second.created).toBe(0);
        expect(changes.at(-1)?.kind).toBe('merged');
        expect(changes.at(-1)?.sightings.map((s) => s.sourceId)).toEqual(['feed-a', 'feed-b']);
        expect(changes.at(-1)?.sightings.map((s) => s.creator)).toEqual([true, false]);
        const [entry] = await store.listIndicatorEntries(collectionId);
        expect(entry?.sources).toEqual(['feed-a', 'feed-b']);
        expect(entry?.firstSeen).toBe(1_000);
        expect(entry?.lastSeen).toBe(2_000);
      });

      it('one source leaving merges', async () => {
        const collectionId = newCollectionId();
        const { changes, build } = recorder();
        await poll(collectionId, 'feed-a', 1_000, ['10.0.0.1', '10.0.0.2'], build, 1);
        await poll(collectionId, 'feed-b', 2_000, ['10.0.0.1'], build, 1);
        const third = await poll(collectionId, 'feed-b', 3_000, ['10.0.0.2'], build, 1);

        expect(third.merged).toBe(2);
        expect(third.withdrawn).toBe(0);
        expect(changes.at(-1)).toMatchObject({ kind: 'merged', value: '10.0.0.1', at: 3_000 });
        const entries = await store.listIndicatorEntries(collectionId);
        expect(entries.map((e) => [e.value, e.sources])).toEqual([
          ['10.0.0.1', ['feed-a']],
          ['10.0.0.2', ['feed-a', 'feed-b']],
        ]);
      });

      it('other source keeps its values', async () => {
        const collectionId = newCollectionId();
        const { build } = recorder();
        await poll(collectionId, 'feed-a', 1_000, ['10.0.0.1'], build, 1);
        await poll(collectionId, 'feed-b', 2_000, ['10.0.0.2'], build, 1);
        const third = await poll(collectionId, 'feed-b', 3_000, ['10.0.0.3'], build, 1);

        expect(third.withdrawn).toBe(1);
        expect(await activeValues(collectionId)).toEqual(['10.0.0.1', '10.0.0.3']);
      });

      it('expire by last seen', async () => {
        const collectionId = newCollectionId();
        const { changes, build } = recorder();
        await poll(collectionId, 'feed-a', 1_000, ['10.0.0.1', '10.0.0.2'], build, 1);
        await poll(collectionId, 'feed-a', 5_000, ['10.0.0.2'], build);
        const rules = [{ sourceId: 'feed-a', basis: 'last-seen' as const, maxAgeMicros: 3_000 }];

        const first = await store.expireSightings({
          collectionId,
          now: 6_000,
          rules,
          buildVersion: build,
        });
        expect(first).toMatchObject({ sightings: 1, expired: 1, merged: 0 });
        expect(changes.at(-1)).toMatchObject({ kind: 'expired', value: '10.0.0.1', at: 6_000 });
        expect(await activeValues(collectionId)).toEqual(['10.0.0.2']);
        const sightings = await store.listSightings(collectionId, 'ipv4', '10.0.0.1');
        expect(sightings[0]?.withdrawalReason).toBe('expired');

        const again = await store.expireSightings({
          collectionId,
          now: 6_000,
          rules,
          buildVersion: build,
        });
        expect(again).toMatchObject({ sightings: 0, expired: 0, merged: 0 });
      });

      it('expire by first seen and type', async () => {
        const collectionId = newCollectionId();
        const { build } = recorder();
        await store.applyPoll(
          pollInput(
            collectionId,
            'feed-a',
            1_000,
            [sighting('10.0.0.1'), sighting('evil.example', 'domain')],
            {
              buildVersion: build,
            },
          ),
        );
        await poll(collectionId, 'feed-a', 5_000, ['10.0.0.1'], build);
        const rules = [
          {
            sourceId: 'feed-a',
            valueTypes: ['ipv4'],
            basis: 'first-seen' as const,
            maxAgeMicros: 2_000,
          },
        ];

        const summary = await store.expireSightings({
          collectionId,
          now: 5_000,
          rules,
          buildVersion: build,
        });
        expect(summary.expired).toBe(1);
        expect(await activeValues(collectionId)).toEqual(['evil.example']);
      });

      it('listSightings unknown value', async () => {
        expect(await store.listSightings(newCollectionId(), 'ipv4', '10.0.0.1')).toEqual([]);
      });

      describe('analyst removal', () => {
        const successorId = (revokedId: string) => `${revokedId}-next`;

        function remove(
          collectionId: string,
          sourceId: string,
          value: string,
          at: number,
          build: (change: IndicatorChange) => ObjectVersionInput,
        ) {
          return store.removeSighting({
            collectionId,
            sourceId,
            valueType: 'ipv4',
            value,
            at,
            buildVersion: build,
            successorId,
          });
        }

        async function versionIds(collectionId: string): Promise<string[]> {
          const items = await readAll(store, { collectionId, limit: 100 });
          return items.map((item) => `${item.id}@${item.version}`);
        }

        it('revokes the last active sighting', async () => {
          const collectionId = newCollectionId();
          const { changes, build } = recorder();
          await poll(collectionId, 'manual', 1_000, ['10.0.0.1', '10.0.0.2'], build, 1);
          const first = sighting('10.0.0.1').indicatorId;

          const result = await remove(collectionId, 'manual', '10.0.0.1', 2_000, build);

          expect(result.outcome).toBe('revoked');
          expect(result.revocation).toEqual({
            indicatorId: first,
            revokedAt: 2_000,
            successorId: `${first}-next`,
          });
          expect(result.objects.added).toBe(1);
          expect(changes.at(-1)).toMatchObject({
            kind: 'revoked',
            indicatorId: first,
            at: 2_000,
            firstVersion: versionKey(1),
            lastVersion: versionKey(1),
          });
          expect(await activeValues(collectionId)).toEqual(['10.0.0.2']);
          const sightings = await store.listSightings(collectionId, 'ipv4', '10.0.0.1');
          expect(sightings).toEqual([
            expect.objectContaining({
              sourceId: 'manual',
              indicatorId: `${first}-next`,
              creator: false,
              withdrawnAt: 2_000,
              withdrawalReason: 'removed',
            }),
          ]);
          expect(await store.listRevocations(collectionId, 'ipv4', '10.0.0.1')).toEqual([
            result.revocation,
          ]);
          const inactive = await store.listInactiveIndicators(collectionId);
          expect(inactive).toEqual([
            expect.objectContaining({ value: '10.0.0.1', indicatorId: first, reason: 'removed' }),
          ]);
        });

        it('merges while another source lists it', async () => {
          const collectionId = newCollectionId();
          const { changes, build } = recorder();
          await poll(collectionId, 'feed-a', 1_000, ['10.0.0.1'], build, 1);
          await poll(collectionId, 'manual', 1_000, ['10.0.0.1'], build, 1);

          const result = await remove(collectionId, 'manual', '10.0.0.1', 2_000, build);

          expect(result.outcome).toBe('merged');
          expect(result.revocation).toBeUndefined();
          expect(changes.at(-1)?.kind).toBe('merged');
          expect(await activeValues(collectionId)).toEqual(['10.0.0.1']);
          expect(await store.listRevocations(collectionId, 'ipv4', '10.0.0.1')).toEqual([]);
          // The other source's later miss withdraws it under the same id.
          await poll(collectionId, 'feed-a', 3_000, [], build, 1);
          expect(changes.at(-1)).toMatchObject({
            kind: 'withdrawn',
            indicatorId: sighting('10.0.0.1').indicatorId,
          });
        });

        it('revokes an already withdrawn value', async () => {
          const collectionId = newCollectionId();
          const { changes, build } = recorder();
          await poll(collectionId, 'feed-a', 1_000, ['10.0.0.1'], build, 1);
          await poll(collectionId, 'manual', 1_000, ['10.0.0.1'], build, 1);
          await poll(collectionId, 'manual', 2_000, [], build, 1);
          await poll(collectionId, 'feed-a', 2_000, [], build, 1);
          expect(changes.at(-1)?.kind).toBe('withdrawn');

          const result = await remove(collectionId, 'manual', '10.0.0.1', 3_000, build);

          expect(result.outcome).toBe('revoked');
          const sightings = await store.listSightings(collectionId, 'ipv4', '10.0.0.1');
          expect(sightings.map((s) => [s.sourceId, s.indicatorId, s.withdrawalReason])).toEqual([
            ['feed-a', `${sighting('10.0.0.1').indicatorId}-next`, 'missing'],
            ['manual', `${sighting('10.0.0.1').indicatorId}-next`, 'removed'],
          ]);
          // The end of validity stays the withdrawal's, before the removal.
          const inactive = await store.listInactiveIndicators(collectionId);
          expect(inactive[0]).toMatchObject({
            reason: 'removed',
            withdrawnAt: 2_000,
            indicatorId: sighting('10.0.0.1').indicatorId,
          });
          expect(changes.at(-1)?.sightings.map((s) => s.withdrawnAt)).toEqual([2_000, 2_000]);
        });

        it('value back, then withdrawn', async () => {
          const collectionId = newCollectionId();
          const { build } = recorder();
          await poll(collectionId, 'manual', 1_000, ['10.0.0.1'], build, 1);
          await remove(collectionId, 'manual', '10.0.0.1', 2_000, build);
          await poll(collectionId, 'feed-a', 3_000, ['10.0.0.1'], build, 1);

          await poll(collectionId, 'feed-a', 4_000, [], build, 1);

          const inactive = await store.listInactiveIndicators(collectionId);
          expect(inactive).toEqual([
            expect.objectContaining({
              indicatorId: `${sighting('10.0.0.1').indicatorId}-next`,
              reason: 'missing',
              withdrawnAt: 4_000,
              sources: ['feed-a'],
            }),
          ]);
        });

        it('returns under the successor id', async () => {
          const collectionId = newCollectionId();
          const { changes, build } = recorder();
          await poll(collectionId, 'manual', 1_000, ['10.0.0.1'], build, 1);
          await poll(collectionId, 'feed-a', 1_000, ['10.0.0.9'], build, 1);
          await remove(collectionId, 'manual', '10.0.0.1', 2_000, build);
          const first = sighting('10.0.0.1').indicatorId;
          const before = await versionIds(collectionId);

          // The caller gives the first id; the store stages the successor.
          const back = await poll(
            collectionId,
            'feed-a',
            3_000,
            ['10.0.0.1', '10.0.0.9'],
            build,
            1,
          );

          expect(back.created).toBe(1);
          expect(back.reactivated).toBe(0);
          expect(changes.at(-1)).toMatchObject({
            kind: 'created',
            indicatorId: `${first}-next`,
            sightings: expect.arrayContaining([
              expect.objectContaining({ sourceId: 'feed-a', creator: true }),
            ]) as unknown,
          });
          expect(changes.at(-1)?.firstVersion).toBeUndefined();
          const entries = await store.listIndicatorEntries(collectionId);
          expect(entries.map((e) => [e.value, e.indicatorId])).toEqual([
            ['10.0.0.1', `${first}-next`],
            ['10.0.0.9', sighting('10.0.0.9').indicatorId],
          ]);
          const after = await versionIds(collectionId);
          expect(after.filter((v) => v.startsWith(`${first}@`))).toEqual(
            before.filter((v) => v.startsWith(`${first}@`)),
          );

          // A second removal revokes the successor; a third listing takes the next one.
          await poll(collectionId, 'feed-a', 4_000, ['10.0.0.9'], build, 1);
          const again = await remove(collectionId, 'feed-a', '10.0.0.1', 5_000, build);
          expect(again.revocation?.indicatorId).toBe(`${first}-next`);
          await poll(collectionId, 'manual', 6_000, ['10.0.0.1'], build, 1);
          expect(changes.at(-1)).toMatchObject({
            kind: 'created',
            indicatorId: `${first}-next-next`,
          });
          const revocations = await store.listRevocations(collectionId, 'ipv4', '10.0.0.1');
          expect(revocations.map((r) => r.indicatorId)).toEqual([first, `${first}-next`]);
        });

        it('does nothing without a sighting', async () => {
          const collectionId = newCollectionId();
          const { changes, build } = recorder();
          await poll(collectionId, 'feed-a', 1_000, ['10.0.0.1'], build, 1);

          const result = await remove(collectionId, 'manual', '10.0.0.1', 2_000, build);

          expect(result.outcome).toBe('unknown');
          expect(changes).toHaveLength(1);
          expect(await activeValues(collectionId)).toEqual(['10.0.0.1']);
        });

        it('revokes nothing twice', async () => {
          const collectionId = newCollectionId();
          const { changes, build } = recorder();
          await poll(collectionId, 'manual', 1_000, ['10.0.0.1'], build, 1);
          await remove(collectionId, 'manual', '10.0.0.1', 2_000, build);

          // The successor has no version yet, so there is nothing to revoke.
          const repeat = await remove(collectionId, 'manual', '10.0.0.1', 3_000, build);

          expect(repeat.outcome).toBe('unchanged');
          expect(changes.map((change) => change.kind)).toEqual(['created', 'revoked']);
          expect(await store.listRevocations(collectionId, 'ipv4', '10.0.0.1')).toHaveLength(1);
        });

        it('deleteCollection keeps revocations', async () => {
          const collectionId = newCollectionId();
          const { build } = recorder();
          await poll(collectionId, 'manual', 1_000, ['10.0.0.1'], build, 1);
          await remove(collectionId, 'manual', '10.0.0.1', 2_000, build);

          await store.deleteCollection(collectionId);

          expect(await store.listRevocations(collectionId, 'ipv4', '10.0.0.1')).toHaveLength(1);
          // A collection created again with the id does not publish the revoked id again.
          const { changes, build: rebuild } = recorder();
          await poll(collectionId, 'manual', 3_000, ['10.0.0.1'], rebuild, 1);
          expect(changes[0]?.indicatorId).toBe(`${sighting('10.0.0.1').indicatorId}-next`);
        });
      });
    });

    describe('second instance', () => {
      const skipUnlessShared = () => fixture.openAnother === undefined;

      it('sees the same data', async () => {
        if (skipUnlessShared()) return;
        const other = await (fixture.openAnother as () => Promise<Store>)();
        await other.init();
        const collectionId = newCollectionId();
        const object = objectVersion();
        await store.putObjects(collectionId, [object]);

        const page = await other.queryObjects({ collectionId, limit: 10 });
        expect(page.items.map((item) => item.json)).toEqual([object.json]);
        const name = `shared-${randomUUID()}`;
        expect(await store.getOrCreateSecret(name, () => 'one')).toBe('one');
        expect(await other.getOrCreateSecret(name, () => 'two')).toBe('one');
      });

      it('concurrent writers', async () => {
        if (skipUnlessShared()) return;
        const other = await (fixture.openAnother as () => Promise<Store>)();
        await other.init();
        const collectionId = newCollectionId();
        const batches = Array.from({ length: 20 }, () =>
          Array.from({ length: 25 }, () => objectVersion()),
        );
        const shared = objectVersion();

        const results = await Promise.all(
          batches.map((batch, i) =>
            (i % 2 === 0 ? store : other).putObjects(collectionId, [...batch, shared]),
          ),
        );

        expect(results.reduce((sum, result) => sum + result.added, 0)).toBe(20 * 25 + 1);
        expect(results.reduce((sum, result) => sum + result.unchanged, 0)).toBe(19);
        const items = await readAll(store, { collectionId, limit: 100 });
        expect(items).toHaveLength(20 * 25 + 1);
        const dates = items.map((item) => item.dateAdded);
        expect(new Set(dates).size).toBe(dates.length);
        for (let i = 1; i < dates.length; i++) {
          expect(dates[i]).toBeGreaterThan(dates[i - 1] as number);
        }
      });
    });

    describe('inactive indicators', () => {
      it('lists values without an active sighting', async () => {
        const collectionId = newCollectionId();
        let version = 0;
        const build = (change: IndicatorChange) =>
          objectVersion({ id: change.indicatorId, version: versionKey((version += 1)) });
        const both = [
          sighting('10.0.0.1'),
          sighting('10.0.0.2'),
          sighting('example.org', 'domain'),
        ];
        await store.applyPoll(
          pollInput(collectionId, 'feed-a', 1_000, both, { buildVersion: build }),
        );
        await store.applyPoll(
          pollInput(collectionId, 'feed-b', 1_000, [sighting('10.0.0.2')], { buildVersion: build }),
        );
        // feed-a drops everything but the domain: 10.0.0.1 is now inactive, 10.0.0.2 still has feed-b.
        await store.applyPoll(
          pollInput(collectionId, 'feed-a', 2_000, [sighting('example.org', 'domain')], {
            buildVersion: build,
            missing: { withdrawAfter: 1 },
          }),
        );

        const inactive = await store.listInactiveIndicators(collectionId);
        expect(inactive).toEqual([
          {
            valueType: 'ipv4',
            value: '10.0.0.1',
            indicatorId: 'indicator--ipv4-10.0.0.1',
            firstSeen: 1_000,
            lastSeen: 1_000,
            withdrawnAt: 2_000,
            reason: 'missing',
            sources: ['feed-a'],
          },
        ]);
        expect(await store.listInactiveIndicators(collectionId, ['domain'])).toEqual([]);
        expect(await store.listInactiveIndicators(newCollectionId())).toEqual([]);
      });
    });

    describe('sighting attributes', () => {
      function attributed(value: string, attributes: SightingAttributes): SightingInput {
        return { ...sighting(value), attributes };
      }

      /** Builds a version per change with a growing version key, and records the change kinds. */
      function versionBuilder(): {
        kinds: string[];
        build: (change: IndicatorChange) => ObjectVersionInput;
      } {
        const kinds: string[] = [];
        return {
          kinds,
          build: (change) => {
            kinds.push(change.kind);
            return objectVersion({ id: change.indicatorId, version: versionKey(kinds.length) });
          },
        };
      }

      async function ownAttributes(
        collectionId: string,
        sourceId: string,
        value: string,
      ): Promise<SightingAttributes | undefined> {
        const records = await store.listSightings(collectionId, 'ipv4', value);
        return records.find((record) => record.sourceId === sourceId)?.attributes;
      }

      it('stored normalized', async () => {
        const collectionId = newCollectionId();
        await store.applyPoll(
          pollInput(collectionId, 'feed-a', 1_000, [
            attributed('10.0.0.1', {
              confidence: 80,
              tlp: 'amber',
              labels: ['c2', 'botnet', 'c2'],
              ports: [8080, 443],
              malwareFamilies: ['Mirai'],
              description: 'seen in a spam run',
              firstSeen: 500,
              lastSeen: 900,
            }),
            sighting('10.0.0.2'),
          ]),
        );

        expect(await ownAttributes(collectionId, 'feed-a', '10.0.0.1')).toEqual({
          confidence: 80,
          tlp: 'amber',
          labels: ['botnet', 'c2'],
          ports: [443, 8080],
          malwareFamilies: ['Mirai'],
          description: 'seen in a spam run',
          firstSeen: 500,
          lastSeen: 900,
        });
        expect(await ownAttributes(collectionId, 'feed-a', '10.0.0.2')).toBeUndefined();
        const entries = await store.listIndicatorEntries(collectionId);
        expect(entries[0]?.attributes).toEqual({
          confidenceBySource: { 'feed-a': 80 },
          tlp: 'amber',
          labels: ['botnet', 'c2'],
          ports: [443, 8080],
          malwareFamilies: ['Mirai'],
          description: 'seen in a spam run',
          firstSeen: 500,
          lastSeen: 900,
        });
        expect(entries[1]?.attributes).toBeUndefined();
      });

      it('replaced by the next poll', async () => {
        const collectionId = newCollectionId();
        const { kinds, build } = versionBuilder();
        const pollWith = (seenAt: number, sightings: SightingInput[]) =>
          store.applyPoll(
            pollInput(collectionId, 'feed-a', seenAt, sightings, { buildVersion: build }),
          );

        await pollWith(1_000, [attributed('10.0.0.1', { confidence: 40, labels: ['scanner'] })]);
        const same = await pollWith(2_000, [
          attributed('10.0.0.1', { labels: ['scanner'], confidence: 40 }),
        ]);
        expect(same.merged).toBe(0);
        expect(kinds).toEqual(['created']);

        const changed = await pollWith(3_000, [attributed('10.0.0.1', { confidence: 90 })]);
        expect(changed.refreshed).toBe(1);
        expect(changed.merged).toBe(1);
        expect(kinds).toEqual(['created', 'merged']);
        expect(await ownAttributes(collectionId, 'feed-a', '10.0.0.1')).toEqual({ confidence: 90 });

        await pollWith(4_000, [sighting('10.0.0.1')]);
        expect(await ownAttributes(collectionId, 'feed-a', '10.0.0.1')).toBeUndefined();
        expect(kinds).toEqual(['created', 'merged', 'merged']);
        const entries = await store.listIndicatorEntries(collectionId);
        expect(entries[0]?.attributes).toBeUndefined();
        expect(entries[0]?.lastSeen).toBe(4_000);
      });

      it('change carries attributes', async () => {
        const collectionId = newCollectionId();
        const changes: IndicatorChange[] = [];
        await store.applyPoll(
          pollInput(collectionId, 'feed-a', 1_000, [attributed('10.0.0.1', { tlp: 'red' })], {
            buildVersion: (change) => {
              changes.push(change);
              return objectVersion({ id: change.indicatorId, version: versionKey(1) });
            },
          }),
        );

        expect(changes[0]?.sightings[0]?.attributes).toEqual({ tlp: 'red' });
      });

      it('merged across two sources', async () => {
        const collectionId = newCollectionId();
        await store.applyPoll(
          pollInput(collectionId, 'feed-a', 1_000, [
            attributed('10.0.0.1', {
              confidence: 30,
              tlp: 'green',
              labels: ['scanner'],
              ports: [22],
              description: 'from feed a',
              firstSeen: 100,
              lastSeen: 200,
            }),
          ]),
        );
        await store.applyPoll(
          pollInput(collectionId, 'feed-b', 2_000, [
            attributed('10.0.0.1', {
              confidence: 70,
              tlp: 'amber',
              labels: ['bruteforce', 'scanner'],
              ports: [23],
              malwareFamilies: ['Mirai'],
              description: 'from feed b',
              firstSeen: 50,
              lastSeen: 150,
            }),
          ]),
        );
        await store.applyPoll(pollInput(collectionId, 'feed-c', 3_000, [sighting('10.0.0.1')]));

        const [entry] = await store.listIndicatorEntries(collectionId);
        expect(entry?.sources).toEqual(['feed-a', 'feed-b', 'feed-c']);
        expect(entry?.attributes).toEqual({
          confidenceBySource: { 'feed-a': 30, 'feed-b': 70 },
          tlp: 'amber',
          labels: ['bruteforce', 'scanner'],
          ports: [22, 23],
          malwareFamilies: ['Mirai'],
          description: 'from feed b',
          firstSeen: 50,
          lastSeen: 200,
        });
      });

      it('withdrawn sighting leaves the merge', async () => {
        const collectionId = newCollectionId();
        const { build } = versionBuilder();
        await store.applyPoll(
          pollInput(collectionId, 'feed-a', 1_000, [attributed('10.0.0.1', { tlp: 'red' })], {
            buildVersion: build,
          }),
        );
        await store.applyPoll(
          pollInput(collectionId, 'feed-b', 1_000, [attributed('10.0.0.1', { tlp: 'green' })], {
            buildVersion: build,
          }),
        );
        await store.applyPoll(
          pollInput(collectionId, 'feed-a', 2_000, [sighting('10.0.0.2')], {
            buildVersion: build,
            missing: { withdrawAfter: 1 },
          }),
        );

        const entries = await store.listIndicatorEntries(collectionId);
        expect(entries.find((entry) => entry.value === '10.0.0.1')?.attributes).toEqual({
          tlp: 'green',
        });
      });

      it('unchanged poll keeps them', async () => {
        const collectionId = newCollectionId();
        const { build } = versionBuilder();
        await store.applyPoll(
          pollInput(
            collectionId,
            'feed-a',
            1_000,
            [attributed('10.0.0.1', { confidence: 60, ports: [25] })],
            { buildVersion: build, missing: { withdrawAfter: 1 } },
          ),
        );

        const summary = await store.applyUnchangedPoll({
          ...pollInput(collectionId, 'feed-a', 2_000, [], {
            buildVersion: build,
            missing: { withdrawAfter: 1 },
          }),
          since: 1_000,
        });

        expect(summary?.refreshed).toBe(1);
        expect(await ownAttributes(collectionId, 'feed-a', '10.0.0.1')).toEqual({
          confidence: 60,
          ports: [25],
        });
        const [entry] = await store.listIndicatorEntries(collectionId);
        expect(entry?.lastSeen).toBe(2_000);
        expect(entry?.attributes?.ports).toEqual([25]);
      });

      it('invalid confidence rejected', async () => {
        const collectionId = newCollectionId();
        const failing = pollInput(collectionId, 'feed-a', 1_000, [
          attributed('10.0.0.1', { confidence: 101 }),
        ]);

        await expect(store.applyPoll(failing)).rejects.toThrow('invalid sighting confidence 101');
      });
    });

    describe('records', () => {
      /** Returns the error a promise rejects with, or undefined when it resolves. */
      async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
        return promise.then(
          () => undefined,
          (error: unknown) => error,
        );
      }

      it('create, update, delete', async () => {
        const id = `principal-${randomUUID()}`;
        const created = await store.putRecord(
          'principal',
          id,
          { name: 'alice', roles: ['analyst'] },
          { at: 1_000, expectedRevision: 'absent' },
        );
        expect(created).toEqual({
          kind: 'principal',
          id,
          revision: 1,
          createdAt: 1_000,
          updatedAt: 1_000,
          body: { name: 'alice', roles: ['analyst'] },
        });
        expect(await store.getRecord('principal', id)).toEqual(created);

        const updated = await store.putRecord(
          'principal',
          id,
          { name: 'alice', roles: ['admin'] },
          { at: 2_000, expectedRevision: 1 },
        );
        expect(updated.revision).toBe(2);
        expect(updated.createdAt).toBe(1_000);
        expect(updated.updatedAt).toBe(2_000);
        expect(await store.getRecord('principal', id)).toEqual(updated);

        const replaced = await store.putRecord('principal', id, { name: 'bob' }, { at: 3_000 });
        expect(replaced.revision).toBe(3);
        expect((await store.getRecord('principal', id))?.body).toEqual({ name: 'bob' });

        expect(await store.deleteRecord('principal', id, 3)).toBe(true);
        expect(await store.getRecord('principal', id)).toBeUndefined();
        expect(await store.deleteRecord('principal', id)).toBe(false);
      });

      it('unconditional put creates', async () => {
        const id = `principal-${randomUUID()}`;
        const created = await store.putRecord('principal', id, { n: 1 }, { at: 5 });
        expect(created.revision).toBe(1);
        expect(created.createdAt).toBe(5);
      });

      it('kinds are separate', async () => {
        const id = `shared-${randomUUID()}`;
        await store.putRecord('principal', id, { kind: 'principal' }, { at: 1 });
        await store.putRecord('api-key', id, { kind: 'api-key' }, { at: 1 });

        expect((await store.getRecord('principal', id))?.body).toEqual({ kind: 'principal' });
        expect((await store.getRecord('api-key', id))?.body).toEqual({ kind: 'api-key' });
        expect(await store.getRecord('collection', id)).toBeUndefined();
        expect(await store.deleteRecord('api-key', id)).toBe(true);
        expect((await store.getRecord('principal', id))?.body).toEqual({ kind: 'principal' });
      });

      it('stale revision rejected', async () => {
        const id = `collection-${randomUUID()}`;
        await store.putRecord(
          'collection',
          id,
          { title: 'v1' },
          { at: 1, expectedRevision: 'absent' },
        );
        const current = await store.putRecord(
          'collection',
          id,
          { title: 'v2' },
          { at: 2, expectedRevision: 1 },
        );

        const error = await rejectionOf(
          store.putRecord('collection', id, { title: 'stale' }, { at: 3, expectedRevision: 1 }),
        );
        expect(error).toBeInstanceOf(RecordConflictError);
        expect((error as RecordConflictError).currentRevision).toBe(2);
        expect(await store.getRecord('collection', id)).toEqual(current);

        const deleteError = await rejectionOf(store.deleteRecord('collection', id, 1));
        expect(deleteError).toBeInstanceOf(RecordConflictError);
        expect((deleteError as RecordConflictError).currentRevision).toBe(2);
        expect(await store.getRecord('collection', id)).toEqual(current);
      });

      it('absent on existing id rejected', async () => {
        const id = `api-key-${randomUUID()}`;
        const first = await store.putRecord(
          'api-key',
          id,
          { hash: 'one' },
          { at: 1, expectedRevision: 'absent' },
        );

        const error = await rejectionOf(
          store.putRecord('api-key', id, { hash: 'two' }, { at: 2, expectedRevision: 'absent' }),
        );
        expect(error).toBeInstanceOf(RecordConflictError);
        expect((error as RecordConflictError).currentRevision).toBe(1);
        expect(await store.getRecord('api-key', id)).toEqual(first);
      });

      it('revision on missing record rejected', async () => {
        const id = `principal-${randomUUID()}`;

        const error = await rejectionOf(
          store.putRecord('principal', id, { name: 'x' }, { at: 1, expectedRevision: 1 }),
        );
        expect(error).toBeInstanceOf(RecordConflictError);
        expect((error as RecordConflictError).currentRevision).toBeUndefined();
        expect(await store.getRecord('principal', id)).toBeUndefined();

        const deleteError = await rejectionOf(store.deleteRecord('principal', id, 1));
        expect(deleteError).toBeInstanceOf(RecordConflictError);
      });

      it('recreated after delete', async () => {
        const id = `principal-${randomUUID()}`;
        await store.putRecord('principal', id, { v: 1 }, { at: 1 });
        await store.putRecord('principal', id, { v: 2 }, { at: 2 });
        await store.deleteRecord('principal', id);

        const again = await store.putRecord(
          'principal',
          id,
          { v: 3 },
          { at: 10, expectedRevision: 'absent' },
        );
        expect(again.revision).toBe(1);
        expect(again.createdAt).toBe(10);
        expect(await store.getRecord('principal', id)).toEqual(again);
      });

      it('invalid input rejected', async () => {
        const id = `principal-${randomUUID()}`;
        await expect(store.putRecord('principal', '', {}, { at: 1 })).rejects.toThrow(
          'Invalid principal id ""',
        );
        await expect(
          store.putRecord('principal', id, {}, { at: 1, expectedRevision: 0 }),
        ).rejects.toThrow('Invalid expected revision 0');
        await expect(store.putRecord('principal', id, {}, { at: 1.5 })).rejects.toThrow(
          'Invalid record time 1.5',
        );
        await expect(
          store.putRecord('principal', id, [] as unknown as Record<string, unknown>, { at: 1 }),
        ).rejects.toThrow(StoreError);
        await expect(store.listRecords('principal', { limit: 0 })).rejects.toThrow(
          'Invalid page limit 0',
        );
        expect(await store.getRecord('principal', id)).toBeUndefined();
      });

      it('concurrent writers, one wins', async () => {
        if (fixture.openAnother === undefined) return;
        const other = await fixture.openAnother();
        await other.init();
        const id = `collection-${randomUUID()}`;

        const creates = await Promise.allSettled([
          store.putRecord('collection', id, { by: 'first' }, { at: 1, expectedRevision: 'absent' }),
          other.putRecord(
            'collection',
            id,
            { by: 'second' },
            { at: 1, expectedRevision: 'absent' },
          ),
        ]);
        expect(creates.filter((result) => result.status === 'fulfilled')).toHaveLength(1);
        const createLoser = creates.find((result) => result.status === 'rejected');
        expect(createLoser?.reason).toBeInstanceOf(RecordConflictError);

        for (let revision = 1; revision <= 10; revision++) {
          const results = await Promise.allSettled([
            store.putRecord(
              'collection',
              id,
              { by: 'first', revision },
              { at: revision, expectedRevision: revision },
            ),
            other.putRecord(
              'collection',
              id,
              { by: 'second', revision },
              { at: revision, expectedRevision: revision },
            ),
          ]);
          const winners = results.filter((result) => result.status === 'fulfilled');
          const losers = results.filter((result) => result.status === 'rejected');
          expect(winners).toHaveLength(1);
          expect(losers).toHaveLength(1);
          expect(losers[0]?.reason).toBeInstanceOf(RecordConflictError);
          expect((losers[0]?.reason as RecordConflictError).currentRevision).toBe(revision + 1);

          const stored = await store.getRecord('collection', id);
          expect(stored?.revision).toBe(revision + 1);
          expect(stored).toEqual(winners[0]?.value);
        }
      });

      it('concurrent unconditional writers', async () => {
        if (fixture.openAnother === undefined) return;
        const other = await fixture.openAnother();
        await other.init();
        const id = `principal-${randomUUID()}`;

        const written = await Promise.all(
          Array.from({ length: 10 }, (_, i) =>
            (i % 2 === 0 ? store : other).putRecord('principal', id, { i }, { at: i + 1 }),
          ),
        );

        const revisions = written.map((record) => record.revision).sort((a, b) => a - b);
        expect(revisions).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        const stored = await store.getRecord('principal', id);
        expect(stored?.revision).toBe(10);
        expect(stored).toEqual(written.find((record) => record.revision === 10));
      });

      it('prefix listing and paging', async () => {
        const collectionId = newCollectionId();
        const otherCollectionId = newCollectionId();
        const keys = ['a', 'b', 'c', 'd', 'e'];
        for (const key of keys) {
          await store.putRecord('manual-entry', `${collectionId}/${key}`, { key }, { at: 1 });
        }
        await store.putRecord('manual-entry', `${collectionId}/gone`, { key: 'gone' }, { at: 1 });
        await store.deleteRecord('manual-entry', `${collectionId}/gone`);
        await store.putRecord('manual-entry', `${collectionId}x`, { key: 'no slash' }, { at: 1 });
        await store.putRecord(
          'manual-entry',
          `${otherCollectionId}/a`,
          { key: 'other' },
          { at: 1 },
        );
        await store.putRecord('principal', `${collectionId}/a`, { key: 'principal' }, { at: 1 });

        const prefix = `${collectionId}/`;
        const first = await store.listRecords('manual-entry', { prefix, limit: 2 });
        expect(first.items.map((record) => record.id)).toEqual([`${prefix}a`, `${prefix}b`]);
        expect(first.more).toBe(true);
        expect(first.items[0]?.body).toEqual({ key: 'a' });

        const second = await store.listRecords('manual-entry', {
          prefix,
          after: `${prefix}b`,
          limit: 2,
        });
        expect(second.items.map((record) => record.id)).toEqual([`${prefix}c`, `${prefix}d`]);
        expect(second.more).toBe(true);

        const last = await store.listRecords('manual-entry', {
          prefix,
          after: `${prefix}d`,
          limit: 2,
        });
        expect(last.items.map((record) => record.id)).toEqual([`${prefix}e`]);
        expect(last.more).toBe(false);

        const exact = await store.listRecords('manual-entry', { prefix, limit: 5 });
        expect(exact.items).toHaveLength(5);
        expect(exact.more).toBe(false);
      });

      it('listing without prefix', async () => {
        const marker = randomUUID();
        const ids = [`${marker}-2`, `${marker}-1`, `${marker}-3`];
        for (const id of ids) await store.putRecord('api-key', id, { id }, { at: 1 });

        const page = await store.listRecords('api-key', { after: `${marker}-1`, limit: 1000 });
        const listed = page.items.map((record) => record.id);
        expect(listed.slice(0, 2)).toEqual([`${marker}-2`, `${marker}-3`]);
        expect(listed).not.toContain(`${marker}-1`);
        expect([...listed].sort()).toEqual(listed);
      });

      it('unusual bodies round trip', async () => {
        let nested: Record<string, unknown> = { leaf: 'bottom' };
        for (let depth = 0; depth < 60; depth++) nested = { [`level.${depth}`]: nested, depth };
        const body: Record<string, unknown> = {
          'dotted.key': 1,
          $dollar: { $set: { 'a.b': true } },
          '': 'empty key',
          ключ: 'значение',
          '🔑': '🧪 emoji',
          'line\nbreak\u0000nul': 'control',
          numbers: [0, -1, 1.5, 9007199254740991, 1e-7],
          nothing: null,
          nested,
        };
        const id = `collection-${randomUUID()}`;
        await store.putRecord('collection', id, body, { at: 1 });

        const stored = await store.getRecord('collection', id);
        expect(stored?.body).toEqual(body);
        expect(JSON.stringify(stored?.body)).toBe(JSON.stringify(body));
        const listed = await store.listRecords('collection', { prefix: id, limit: 1 });
        expect(JSON.stringify(listed.items[0]?.body)).toBe(JSON.stringify(body));
      });

      it('unicode prefix', async () => {
        const prefix = `${randomUUID()}/ключ-🔑`;
        await store.putRecord('manual-entry', `${prefix}/1`, {}, { at: 1 });
        await store.putRecord('manual-entry', `${prefix}\u{10FFFF}`, {}, { at: 1 });
        await store.putRecord('manual-entry', `${prefix.slice(0, -2)}🔒`, {}, { at: 1 });

        const page = await store.listRecords('manual-entry', { prefix, limit: 10 });
        expect(page.items.map((record) => record.id)).toEqual([
          `${prefix}/1`,
          `${prefix}\u{10FFFF}`,
        ]);
      });

      it('deleteRecords by prefix', async () => {
        const collectionId = newCollectionId();
        const prefix = `${collectionId}/`;
        for (const key of ['a', 'b', 'c']) {
          await store.putRecord('manual-entry', `${prefix}${key}`, { key }, { at: 1 });
        }
        await store.putRecord('manual-entry', `${prefix}old`, {}, { at: 1 });
        await store.deleteRecord('manual-entry', `${prefix}old`);
        await store.putRecord('manual-entry', `${collectionId}-kept`, {}, { at: 1 });
        await store.putRecord('principal', `${prefix}a`, {}, { at: 1 });

        expect(await store.deleteRecords('manual-entry', prefix)).toBe(3);

        expect((await store.listRecords('manual-entry', { prefix, limit: 10 })).items).toEqual([]);
        expect(await store.getRecord('manual-entry', `${collectionId}-kept`)).toBeDefined();
        expect(await store.getRecord('principal', `${prefix}a`)).toBeDefined();
        expect(await store.deleteRecords('manual-entry', prefix)).toBe(0);

        const again = await store.putRecord(
          'manual-entry',
          `${prefix}a`,
          { key: 'again' },
          { at: 2, expectedRevision: 'absent' },
        );
        expect(again.revision).toBe(1);
      });
    });

    describe('audit', () => {
      function auditEntry(overrides: Partial<AuditInput> = {}): AuditInput {
        return {
          at: 1_000,
          actor: `actor-${randomUUID()}`,
          action: 'collection.update',
          targetKind: 'collection',
          targetId: randomUUID(),
          ...overrides,
        };
      }

      it('fields round trip', async () => {
        const full = auditEntry({
          collectionId: newCollectionId(),
          ip: '127.0.0.1',
          details: { 'title.old': 'A', $new: { ключ: ['🔑'] } },
        });
        const minimal = auditEntry();

        const appended = await store.appendAudit(full);
        expect(appended).toEqual({ ...full, seq: appended.seq });
        const listed = await store.listAudit({ actor: full.actor, limit: 10 });
        expect(listed.items).toEqual([{ ...full, seq: appended.seq }]);
        expect(listed.more).toBe(false);

        const bare = await store.appendAudit(minimal);
        const bareListed = await store.listAudit({ actor: minimal.actor, limit: 10 });
        expect(bareListed.items).toStrictEqual([{ ...minimal, seq: bare.seq }]);
      });

      it('seq increases across stores', async () => {
        const other = fixture.openAnother === undefined ? store : await fixture.openAnother();
        await other.init();
        const actor = `actor-${randomUUID()}`;

        const seqs: number[] = [];
        for (let i = 0; i < 20; i++) {
          const writer = i % 2 === 0 ? store : other;
          seqs.push((await writer.appendAudit(auditEntry({ actor, at: i }))).seq);
        }
        for (let i = 1; i < seqs.length; i++) {
          expect(seqs[i]).toBeGreaterThan(seqs[i - 1] as number);
        }

        const concurrent = await Promise.all(
          Array.from({ length: 20 }, (_, i) =>
            (i % 2 === 0 ? store : other).appendAudit(auditEntry({ actor, at: 100 + i })),
          ),
        );
        const concurrentSeqs = concurrent.map((record) => record.seq);
        expect(new Set(concurrentSeqs).size).toBe(20);
        expect(Math.min(...concurrentSeqs)).toBeGreaterThan(seqs.at(-1) as number);

        const listed = await store.listAudit({ actor, limit: 100 });
        const listedSeqs = listed.items.map((record) => record.seq);
        expect(listedSeqs).toHaveLength(40);
        expect(listedSeqs).toEqual([...seqs, ...concurrentSeqs].sort((a, b) => b - a));
      });

      it('filters', async () => {
        const actor = `actor-${randomUUID()}`;
        const collectionId = newCollectionId();
        const keyId = randomUUID();
        const entries = [
          auditEntry({
            actor,
            at: 1_000,
            action: 'collection.create',
            targetId: collectionId,
            collectionId,
          }),
          auditEntry({
            actor,
            at: 2_000,
            action: 'collection.update',
            targetId: collectionId,
            collectionId,
          }),
          auditEntry({
            actor,
            at: 3_000,
            action: 'source.run',
            targetKind: 'source',
            targetId: `${collectionId}/feed`,
            collectionId,
          }),
          auditEntry({
            actor,
            at: 4_000,
            action: 'api-key.revoke',
            targetKind: 'api-key',
            targetId: keyId,
          }),
          auditEntry({ actor, at: 5_000, action: 'collectionx.create', targetId: randomUUID() }),
          auditEntry({
            actor: `${actor}-other`,
            at: 2_500,
            action: 'collection.delete',
            targetId: collectionId,
            collectionId,
          }),
        ];
        const seqOf = new Map<AuditInput, number>();
        for (const entry of entries) seqOf.set(entry, (await store.appendAudit(entry)).seq);
        const expectSeqs = async (query: Omit<AuditQuery, 'limit'>, expected: AuditInput[]) => {
          const page = await store.listAudit({ ...query, limit: 100 });
          expect(page.items.map((record) => record.seq)).toEqual(
            expected.map((entry) => seqOf.get(entry)).reverse(),
          );
        };
        const [create, update, run, revoke, lookalike, otherActor] = entries as [
          AuditInput,
          AuditInput,
          AuditInput,
          AuditInput,
          AuditInput,
          AuditInput,
        ];

        await expectSeqs({ actor }, [create, update, run, revoke, lookalike]);
        await expectSeqs({ actor, action: 'collection.create' }, [create]);
        await expectSeqs({ actor, action: 'collection.' }, [create, update]);
        await expectSeqs({ action: 'collection.', collectionId }, [create, update, otherActor]);
        await expectSeqs({ actor, action: 'collection' }, []);
        await expectSeqs({ targetKind: 'api-key', targetId: keyId }, [revoke]);
        await expectSeqs({ targetKind: 'collection', targetId: collectionId }, [
          create,
          update,
          otherActor,
        ]);
        await expectSeqs({ collectionId }, [create, update, run, otherActor]);
        await expectSeqs({ actor, since: 2_000 }, [update, run, revoke, lookalike]);
        await expectSeqs({ actor, until: 3_000 }, [create, update]);
        await expectSeqs({ actor, since: 2_000, until: 4_000 }, [update, run]);
        await expectSeqs({ collectionId, since: 2_000, until: 3_000 }, [update, otherActor]);
      });

      it('pages newest first', async () => {
        const actor = `actor-${randomUUID()}`;
        const seqs: number[] = [];
        for (let i = 0; i < 7; i++) {
          seqs.push((await store.appendAudit(auditEntry({ actor, at: i }))).seq);
        }
        const newestFirst = [...seqs].reverse();

        const first = await store.listAudit({ actor, limit: 3 });
        expect(first.items.map((record) => record.seq)).toEqual(newestFirst.slice(0, 3));
        expect(first.more).toBe(true);

        const second = await store.listAudit({
          actor,
          limit: 3,
          beforeSeq: first.items.at(-1)?.seq,
        });
        expect(second.items.map((record) => record.seq)).toEqual(newestFirst.slice(3, 6));
        expect(second.more).toBe(true);

        const third = await store.listAudit({
          actor,
          limit: 3,
          beforeSeq: second.items.at(-1)?.seq,
        });
        expect(third.items.map((record) => record.seq)).toEqual(newestFirst.slice(6));
        expect(third.more).toBe(false);

        const exact = await store.listAudit({ actor, limit: 7 });
        expect(exact.items).toHaveLength(7);
        expect(exact.more).toBe(false);
      });

      it('invalid limit rejected', async () => {
        await expect(store.listAudit({ limit: 0 })).rejects.toThrow('Invalid page limit 0');
      });

      // Last in this block: the purge removes every older entry, whatever its actor.
      it('purge removes older entries only', async () => {
        const actor = `actor-${randomUUID()}`;
        const base = 9_000_000;
        for (const at of [base, base + 1, base + 2, base + 3]) {
          await store.appendAudit(auditEntry({ actor, at }));
        }

        const purged = await store.purgeAudit(base + 2);
        expect(purged).toBeGreaterThanOrEqual(2);

        const left = await store.listAudit({ actor, limit: 10 });
        expect(left.items.map((record) => record.at)).toEqual([base + 3, base + 2]);
        expect(await store.purgeAudit(base + 2)).toBe(0);
      });
    });

    describe('deleteCollection', () => {
      /** Stores one of everything that belongs to a collection. */
      async function populate(collectionId: string): Promise<void> {
        await store.upsertCollection(collectionRecord({ id: collectionId }));
        await store.putObjects(collectionId, [objectVersion()]);
        await store.applyPoll(
          pollInput(collectionId, 'feed', 1_000, [
            sighting('10.0.0.1'),
            sighting('evil.example', 'domain'),
          ]),
        );
        await store.putSourceState({ collectionId, sourceId: 'other-feed', etag: '"e"' });
        await store.putView(view({ collectionId, name: 'edl-ipv4' }));
        // Larger than the 4 MiB that a MongoDB view head keeps inline, so that it goes to chunks.
        await store.putView(
          view({ collectionId, name: 'bundle', body: Buffer.alloc(5 * 1024 * 1024, 'x') }),
        );
        await store.putStatus({
          id: `${collectionId}-status`,
          collectionId,
          principal: 'alice',
          requestTimestamp: 1_000,
          status: 'complete',
          totalCount: 0,
          successes: [],
          failures: [],
          pendings: [],
        });
        await store.putRecord(
          'manual-entry',
          `${collectionId}/1`,
          { value: '10.0.0.9' },
          { at: 1 },
        );
        await store.putRecord(
          'manual-entry',
          `${collectionId}/2`,
          { value: '10.0.0.8' },
          { at: 1 },
        );
        await store.putRecord('collection', collectionId, { title: 'kept' }, { at: 1 });
      }

      /** Returns a summary of what is stored for a collection, through the port only. */
      async function contents(collectionId: string): Promise<Record<string, unknown>> {
        return {
          collection: (await store.getCollection(collectionId))?.id,
          objects: await store.countObjects(collectionId),
          page: (await store.queryObjects({ collectionId, limit: 10 })).items.length,
          entries: (await store.listIndicatorEntries(collectionId)).map((entry) => entry.value),
          sightings: (await store.listSightings(collectionId, 'ipv4', '10.0.0.1')).length,
          feedState: (await store.getSourceState(collectionId, 'feed'))?.sourceId,
          otherState: (await store.getSourceState(collectionId, 'other-feed'))?.etag,
          edl: (await store.getView(collectionId, 'edl-ipv4'))?.etag,
          edlData: (await store.getViewData(collectionId, 'edl-ipv4'))?.dataEtag,
          bundle: (await store.getView(collectionId, 'bundle'))?.body.length,
          status: (await store.getStatus(`${collectionId}-status`))?.id,
          manual: (
            await store.listRecords('manual-entry', { prefix: `${collectionId}/`, limit: 10 })
          ).items.map((record) => record.id),
        };
      }

      it('removes only that collection', async () => {
        const doomed = newCollectionId();
        const kept = newCollectionId();
        await populate(doomed);
        await populate(kept);
        const keptBefore = await contents(kept);
        expect(keptBefore).toEqual({
          collection: kept,
          objects: 3,
          page: 3,
          entries: ['evil.example', '10.0.0.1'],
          sightings: 1,
          feedState: 'feed',
          otherState: '"e"',
          edl: '"abc"',
          edlData: '"data-abc"',
          bundle: 5 * 1024 * 1024,
          status: `${kept}-status`,
          manual: [`${kept}/1`, `${kept}/2`],
        });

        await store.deleteCollection(doomed);

        expect(await contents(doomed)).toEqual({
          collection: undefined,
          objects: 0,
          page: 0,
          entries: [],
          sightings: 0,
          feedState: undefined,
          otherState: undefined,
          edl: undefined,
          edlData: undefined,
          bundle: undefined,
          status: undefined,
          manual: [],
        });
        expect(await contents(kept)).toEqual(keptBefore);
        // The collection record is the caller's to delete.
        expect((await store.getRecord('collection', doomed))?.body).toEqual({ title: 'kept' });
      });

      it('second call harmless', async () => {
        const doomed = newCollectionId();
        const kept = newCollectionId();
        await populate(doomed);
        await populate(kept);
        const keptBefore = await contents(kept);
        await store.deleteCollection(doomed);
        const afterFirst = await contents(doomed);

        await expect(store.deleteCollection(doomed)).resolves.toBeUndefined();

        expect(await contents(doomed)).toEqual(afterFirst);
        expect(await contents(kept)).toEqual(keptBefore);
        await expect(store.deleteCollection(newCollectionId())).resolves.toBeUndefined();
      });

      it('collection usable again', async () => {
        const collectionId = newCollectionId();
        await populate(collectionId);
        const before = (await store.queryObjects({ collectionId, limit: 10 })).items;
        await store.deleteCollection(collectionId);

        await store.upsertCollection(collectionRecord({ id: collectionId }));
        await store.putObjects(collectionId, [objectVersion()]);
        await store.putView(view({ collectionId, name: 'bundle', etag: '"new"' }));

        const after = (await store.queryObjects({ collectionId, limit: 10 })).items;
        expect(after).toHaveLength(1);
        expect(after[0]?.dateAdded).toBeGreaterThan(
          Math.max(...before.map((item) => item.dateAdded)),
        );
        expect((await store.getView(collectionId, 'bundle'))?.body.toString()).toBe(
          '10.0.0.1\n10.0.0.2\n',
        );
      });
    });

    describe('large and repeated listings', () => {
      function values(prefix: string, from: number, to: number): SightingInput[] {
        const list: SightingInput[] = [];
        for (let i = from; i < to; i++) list.push(sighting(`${prefix}.${i >> 8}.${i & 255}`));
        return list;
      }

      // More values than the SQLite adapter reads per page (500), in every
      // path: new values, refreshed ones, withdrawals and reactivations.
      it('polls beyond one page', async () => {
        const size = capabilities.largePollValues ?? 510;
        const collectionId = newCollectionId();
        const kinds: string[] = [];
        const build = (change: IndicatorChange) => {
          kinds.push(change.kind);
          return objectVersion({ id: change.indicatorId, version: versionKey(kinds.length % 60) });
        };
        const pollWith = (seenAt: number, sightings: SightingInput[]) =>
          store.applyPoll(
            pollInput(collectionId, 'feed-a', seenAt, sightings, {
              buildVersion: build,
              missing: { withdrawAfter: 1 },
            }),
          );

        const first = await pollWith(1_000, values('10.1', 0, size));
        expect(first.created).toBe(size);
        expect(first.objects.added).toBe(size);

        const second = await pollWith(2_000, [...values('10.1', 0, 5), ...values('10.2', 0, 5)]);
        expect(second.refreshed).toBe(5);
        expect(second.created).toBe(5);
        expect(second.withdrawn).toBe(size - 5);

        const third = await pollWith(3_000, values('10.1', 0, size));
        expect(third.reactivated).toBe(size - 5);
        expect(third.refreshed).toBe(5);
        expect(third.withdrawn).toBe(5);
        expect(third.created).toBe(0);
        const entries = await store.listIndicatorEntries(collectionId);
        expect(entries).toHaveLength(size);
        expect(entries.every((entry) => entry.value.startsWith('10.1.'))).toBe(true);
      });

      it('value listed twice keeps the first attributes', async () => {
        const collectionId = newCollectionId();
        const summary = await store.applyPoll(
          pollInput(collectionId, 'feed-a', 1_000, [
            { ...sighting('10.0.0.1'), attributes: { confidence: 10 } },
            { ...sighting('10.0.0.1'), attributes: { confidence: 20 } },
          ]),
        );

        expect(summary.created).toBe(1);
        const records = await store.listSightings(collectionId, 'ipv4', '10.0.0.1');
        // The first listing wins, as the list parsers keep a repeated value's first row.
        expect(records.map((record) => record.attributes)).toEqual([{ confidence: 10 }]);
      });

      it('withdrawn value without indicator created again', async () => {
        const collectionId = newCollectionId();
        const missing = { missing: { withdrawAfter: 1 } };
        await store.applyPoll(
          pollInput(collectionId, 'feed-a', 1_000, [sighting('10.0.0.1'), sighting('10.0.0.2')]),
        );
        await store.applyPoll(
          pollInput(collectionId, 'feed-a', 2_000, [sighting('10.0.0.2')], missing),
        );
        await store.deleteObjectVersions({ collectionId, id: 'indicator--ipv4-10.0.0.1' });

        const again = await store.applyPoll(
          pollInput(collectionId, 'feed-a', 3_000, [sighting('10.0.0.1'), sighting('10.0.0.2')]),
        );

        expect(again.created).toBe(1);
        expect(again.refreshed).toBe(1);
        expect(await store.countObjects(collectionId)).toBe(2);
        const records = await store.listSightings(collectionId, 'ipv4', '10.0.0.1');
        expect(records).toHaveLength(1);
        expect(records[0]?.withdrawnAt).toBeUndefined();
        expect(records[0]?.lastSeen).toBe(3_000);
      });
    });
  });
}
