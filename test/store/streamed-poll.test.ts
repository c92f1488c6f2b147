/**
 * Polls whose sightings arrive as a stream of batches: the store stages each
 * batch as it arrives and applies the poll at once after `complete`. A
 * stream or `complete` that fails changes nothing, and polls that overlap on
 * one store keep their values apart.
 */
import { randomUUID } from 'node:crypto';

import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';

import type {
  ObjectVersionInput,
  PollCompletion,
  SightingInput,
  SourceState,
  StreamedPollInput,
  StreamedCounts,
} from '../../src/store/index.js';
import type { MongoStore } from '../../src/store/mongo/index.js';
import { SqliteStore } from '../../src/store/sqlite/index.js';
import { storeOpeners, type OpenedTestStore } from '../helpers/stores.js';

// FerretDB, the MongoDB-wire server of CI, scans whole collections.
jest.setTimeout(60_000);

const SEEN_AT = 1_800_000_000_000_000;

function sighting(value: string, label?: string): SightingInput {
  const input: SightingInput = { valueType: 'ipv4', value, indicatorId: `indicator--${value}` };
  if (label !== undefined) input.attributes = { labels: [label] };
  return input;
}

function indicator(id: string): ObjectVersionInput {
  return {
    id,
    type: 'indicator',
    version: '2024-01-01T00:00:00.000000Z',
    specVersion: '2.1',
    json: JSON.stringify({ type: 'indicator', id, spec_version: '2.1' }),
  };
}

function state(collectionId: string, sourceId: string, validCount: number): SourceState {
  return {
    collectionId,
    sourceId,
    etag: `"${sourceId}-${validCount}"`,
    lastSuccessAt: SEEN_AT,
    lastValidCount: validCount,
  };
}

/** Yields the batches in order, awaiting `before(i)` ahead of batch i, and throws at batch `failAt`. */
async function* batchesOf(
  batches: SightingInput[][],
  options: { before?: (index: number) => Promise<void>; failAt?: number } = {},
): AsyncGenerator<SightingInput[]> {
  for (const [index, batch] of batches.entries()) {
    await options.before?.(index);
    if (index === options.failAt) throw new Error(`feed broke at batch ${index}`);
    yield batch;
  }
}

function streamedInput(
  collectionId: string,
  sourceId: string,
  sightings: AsyncIterable<SightingInput[]>,
  complete: (counts: StreamedCounts) => PollCompletion,
  seenAt = SEEN_AT,
): StreamedPollInput {
  return {
    collectionId,
    sourceId,
    seenAt,
    sightings,
    buildIndicator: (s) => indicator(s.indicatorId),
    complete,
  };
}

function completion(collectionId: string, sourceId: string, validCount: number): PollCompletion {
  return { extraObjects: [], state: state(collectionId, sourceId, validCount) };
}

function values(count: number, offset = 0): SightingInput[] {
  return Array.from({ length: count }, (_, i) =>
    sighting(`11.0.${Math.floor((offset + i) / 250)}.${(offset + i) % 250}`),
  );
}

/** A gate that keeps a stream waiting between two batches until `open` is called. */
function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((resolve) => (open = resolve));
  return { wait, open };
}

describe.each(storeOpeners('feedhub-streamed-poll-'))(
  'streamed poll on $name',
  ({ name, open }) => {
    let opened: OpenedTestStore;

    async function newCollection(): Promise<string> {
      const id = randomUUID();
      await opened.store.upsertCollection({
        id,
        alias: `c-${id.slice(0, 8)}`,
        title: 'Streamed',
        canRead: true,
        canWrite: true,
        mediaTypes: [],
      });
      return id;
    }

    async function listedValues(collectionId: string): Promise<string[]> {
      const entries = await opened.store.listIndicatorEntries(collectionId);
      return entries.map((entry) => entry.value).sort();
    }

    beforeAll(async () => {
      opened = await open();
      await opened.store.init();
    });

    afterAll(async () => {
      await opened?.cleanup();
    });

    it('stages batches and applies them', async () => {
      const collectionId = await newCollection();
      const batches = [values(600), values(600, 600), [sighting('11.9.9.9', 'late')]];
      // A value listed again in a later batch keeps its first listing's attributes.
      batches[2]!.push(sighting('11.0.0.0', 'again'));
      const completions: StreamedCounts[] = [];

      const summary = await opened.store.applyPoll(
        streamedInput(collectionId, 'feed', batchesOf(batches), (counts) => {
          completions.push(counts);
          return completion(collectionId, 'feed', 1201);
        }),
      );

      // 1,202 listings of 1,201 distinct values.
      expect(completions).toEqual([{ listed: 1202, distinct: 1201 }]);
      expect(summary.created).toBe(1201);
      expect(summary.objects.added).toBe(1201);
      expect((await listedValues(collectionId)).length).toBe(1201);
      const again = await opened.store.listSightings(collectionId, 'ipv4', '11.0.0.0');
      expect(again.map((s) => s.attributes)).toEqual([undefined]);
      const stored = await opened.store.getSourceState(collectionId, 'feed');
      expect(stored?.lastValidCount).toBe(1201);
    });

    it('stream failing halfway changes nothing', async () => {
      const collectionId = await newCollection();
      await opened.store.applyPoll(
        streamedInput(collectionId, 'feed', batchesOf([values(3)]), () =>
          completion(collectionId, 'feed', 3),
        ),
      );
      const objectsBefore = await opened.store.countObjects(collectionId);
      let completed = false;

      const failing = opened.store.applyPoll(
        streamedInput(
          collectionId,
          'feed',
          batchesOf([values(700, 100), values(700, 800), values(5, 2000)], { failAt: 2 }),
          () => {
            completed = true;
            return { ...completion(collectionId, 'feed', 1405), missing: { withdrawAfter: 1 } };
          },
          SEEN_AT + 1,
        ),
      );

      await expect(failing).rejects.toThrow('feed broke at batch 2');
      expect(completed).toBe(false);
      expect(await listedValues(collectionId)).toEqual(
        values(3)
          .map((s) => s.value)
          .sort(),
      );
      expect(await opened.store.countObjects(collectionId)).toBe(objectsBefore);
      expect((await opened.store.getSourceState(collectionId, 'feed'))?.lastValidCount).toBe(3);

      // The next poll stages on clean tables: nothing of the failed one comes back.
      const next = await opened.store.applyPoll(
        streamedInput(
          collectionId,
          'feed',
          batchesOf([[sighting('11.8.8.8')]]),
          () => completion(collectionId, 'feed', 1),
          SEEN_AT + 2,
        ),
      );
      expect(next.created).toBe(1);
      expect(await listedValues(collectionId)).toContain('11.8.8.8');
      expect((await listedValues(collectionId)).length).toBe(4);
    });

    it('complete that throws changes nothing', async () => {
      const collectionId = await newCollection();

      const failing = opened.store.applyPoll(
        streamedInput(collectionId, 'feed', batchesOf([values(700), values(10, 700)]), () => {
          throw new Error('the body is unusable');
        }),
      );

      await expect(failing).rejects.toThrow('the body is unusable');
      expect(await listedValues(collectionId)).toEqual([]);
      expect(await opened.store.countObjects(collectionId)).toBe(0);
      expect(await opened.store.getSourceState(collectionId, 'feed')).toBeUndefined();
    });

    it('overlapping polls keep apart', async () => {
      const collectionId = await newCollection();
      const held = gate();
      const paused = gate();

      // The first poll stages one batch, then waits while another poll and an API write run.
      const first = opened.store.applyPoll(
        streamedInput(
          collectionId,
          'first',
          batchesOf([values(600), values(10, 600)], {
            before: async (index) => {
              if (index !== 1) return;
              paused.open();
              await held.wait;
            },
          }),
          () => completion(collectionId, 'first', 610),
        ),
      );
      await paused.wait;

      if (opened.store instanceof SqliteStore) {
        // No transaction stays open on the connection between two batches.
        expect(opened.store.connection().inTransaction).toBe(false);
      }
      const second = await opened.store.applyPoll(
        streamedInput(
          collectionId,
          'second',
          batchesOf([[sighting('11.7.7.7'), sighting('11.0.0.1')]]),
          () => completion(collectionId, 'second', 2),
        ),
      );
      const added = await opened.store.putObjects(collectionId, [
        indicator('indicator--api-write'),
      ]);
      // A third poll that fails meanwhile drops only its own staged values.
      const third = opened.store.applyPoll(
        streamedInput(collectionId, 'third', batchesOf([[sighting('11.6.6.6')]]), () => {
          throw new Error('third poll rejected');
        }),
      );
      await expect(third).rejects.toThrow('third poll rejected');
      held.open();
      const firstSummary = await first;

      expect(second.created).toBe(2);
      expect(added.added).toBe(1);
      // 11.0.0.1 was created by the second poll, so the first one only refreshes it.
      expect(firstSummary.created).toBe(609);
      expect(firstSummary.refreshed).toBe(1);
      const listed = await listedValues(collectionId);
      expect(listed.length).toBe(611);
      expect(listed).toContain('11.7.7.7');
      expect(listed).not.toContain('11.6.6.6');
      const shared = await opened.store.listSightings(collectionId, 'ipv4', '11.0.0.1');
      expect(shared.map((s) => s.sourceId).sort()).toEqual(['first', 'second']);
      const onlySecond = await opened.store.listSightings(collectionId, 'ipv4', '11.7.7.7');
      expect(onlySecond.map((s) => s.sourceId)).toEqual(['second']);
      expect(await opened.store.getSourceState(collectionId, 'third')).toBeUndefined();
      expect(await opened.store.countObjects(collectionId)).toBe(612);
    });

    // The MongoDB adapter stages a streamed poll in a collection of its own.
    if (name === 'mongodb') {
      it('batches leave the process memory', async () => {
        const { db } = (opened.store as MongoStore).connection();
        const stagedNames = async () =>
          (await db.listCollections({}, { nameOnly: true }).toArray())
            .map((c) => c.name)
            .filter((name) => name.startsWith('poll_stage_'));
        const collectionId = await newCollection();
        let stagedMidway = -1;

        await opened.store.applyPoll(
          streamedInput(
            collectionId,
            'feed',
            batchesOf([values(300), values(300, 300)], {
              before: async (index) => {
                if (index !== 1) return;
                const [name] = await stagedNames();
                stagedMidway = name === undefined ? 0 : await db.collection(name).countDocuments();
              },
            }),
            () => completion(collectionId, 'feed', 600),
          ),
        );

        // The first batch was in the database before the second was read.
        expect(stagedMidway).toBe(300);
        expect(await stagedNames()).toEqual([]);
        expect((await listedValues(collectionId)).length).toBe(600);
      });

      it('init drops stale stages', async () => {
        const { db } = (opened.store as MongoStore).connection();
        const day = 24 * 60 * 60 * 1000;
        const stale = `poll_stage_${Date.now() - 2 * day}_left`;
        const recent = `poll_stage_${Date.now()}_running`;
        await db.collection(stale).insertOne({ value: '11.1.1.1' });
        await db.collection(recent).insertOne({ value: '11.1.1.2' });

        await opened.store.init();

        const names = (await db.listCollections({}, { nameOnly: true }).toArray()).map(
          (c) => c.name,
        );
        expect(names).not.toContain(stale);
        expect(names).toContain(recent);
        await db.collection(recent).drop();
      });
    }
  },
);
