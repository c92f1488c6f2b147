/**
 * The unchanged-list shortcut of polls. A body that is byte for byte the
 * previous complete poll's, with the same screen and settings, refreshes the
 * sightings that poll listed without parsing. In every other way it behaves
 * as a full poll would.
 */
import { randomUUID } from 'node:crypto';

import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { pino } from 'pino';

import { DEFAULT_SCREEN_SETTINGS } from '../../src/processing/index.js';
import { CollectionProcessing, parseAgingSpec } from '../../src/processing/policy.js';
import { pollSource, type PollSource } from '../../src/sources/index.js';
import { FeedServer } from '../helpers/feed-server.js';
import { requireMongoInCi, storeOpeners, type OpenedTestStore } from '../helpers/stores.js';

// FerretDB, the MongoDB-wire server of CI, scans whole collections.
jest.setTimeout(60_000);

// Public addresses: documentation ranges are on the built-in allow-list.
const LIST = ['11.0.0.1', '11.0.0.2', '11.0.0.3', '11.9.9.9'];

const stores = storeOpeners('feedhub-unchanged-');

describe.each(stores)('unchanged list on $name', ({ open }) => {
  const feeds = new FeedServer();
  let opened: OpenedTestStore;
  let clock = 1_800_000_000_000_000;
  const logger = pino({ level: 'silent' });

  function source(): PollSource {
    return {
      id: 'list',
      name: 'List',
      kind: 'text-list',
      url: feeds.url('/list.txt'),
      valueType: 'ipv4',
      timeoutMs: 5000,
      maxBytes: 1 << 20,
      confidence: 80,
      tlp: 'clear',
      indicatorTypes: ['malicious-activity'],
      labels: [],
    };
  }

  function processing(collectionId: string, missesBeforeWithdrawal = 1, allow: string[] = []) {
    return new CollectionProcessing({
      collectionId,
      screen: {
        ...DEFAULT_SCREEN_SETTINGS,
        allowList: { ...DEFAULT_SCREEN_SETTINGS.allowList, entries: allow },
      },
      withdrawal: { missesBeforeWithdrawal, maxDrop: 0.9 },
      confidenceRule: 'max',
      sources: [
        {
          id: 'list',
          name: 'List',
          confidence: 80,
          weight: 1,
          tlp: 'clear',
          indicatorTypes: ['malicious-activity'],
          labels: [],
          aging: { default: parseAgingSpec('first_seen+1h'), byType: {} },
        },
      ],
    });
  }

  async function poll(collectionId: string, policy: CollectionProcessing) {
    clock += 60_000_000;
    const now = clock;
    return pollSource(
      { store: opened.store, logger, userAgent: 'test', nowMicros: () => now, processing: policy },
      collectionId,
      source(),
    );
  }

  async function newCollection(): Promise<string> {
    const id = randomUUID();
    await opened.store.upsertCollection({
      id,
      alias: `c-${id.slice(0, 8)}`,
      title: 'Unchanged',
      canRead: true,
      canWrite: false,
      mediaTypes: [],
    });
    return id;
  }

  beforeAll(async () => {
    await feeds.start();
    opened = await open();
    await opened.store.init();
  });

  afterAll(async () => {
    await feeds.stop();
    await opened?.cleanup();
  });

  it('refreshes without parsing', async () => {
    feeds.set('/list.txt', { kind: 'body', etag: false, body: `${LIST.join('\n')}\n` });
    const collectionId = await newCollection();
    const policy = processing(collectionId);
    const first = await poll(collectionId, policy);
    expect(first.created).toBe(LIST.length);
    expect(first.unchangedList).toBeUndefined();

    const second = await poll(collectionId, policy);

    expect(second.outcome).toBe('applied');
    expect(second.unchangedList).toBe(true);
    expect(second.refreshed).toBe(LIST.length);
    expect(second.valid).toBe(LIST.length);
    expect(second.lines).toBeUndefined();
    const entries = await opened.store.listIndicatorEntries(collectionId);
    expect(entries.map((entry) => entry.lastSeen)).toEqual(LIST.map(() => clock));
  });

  it('changed list takes the full path', async () => {
    feeds.set('/list.txt', { kind: 'body', etag: false, body: `${LIST.join('\n')}\n` });
    const collectionId = await newCollection();
    const policy = processing(collectionId);
    await poll(collectionId, policy);
    feeds.set('/list.txt', { kind: 'body', etag: false, body: `${LIST.slice(1).join('\n')}\n` });

    const second = await poll(collectionId, policy);

    expect(second.unchangedList).toBeUndefined();
    expect(second.withdrawn).toBe(1);
    const third = await poll(collectionId, policy);
    expect(third.unchangedList).toBe(true);
    expect(third.refreshed).toBe(LIST.length - 1);
    expect(third.withdrawn).toBe(0);
  });

  it('keeps counting misses', async () => {
    feeds.set('/list.txt', { kind: 'body', etag: false, body: `${LIST.join('\n')}\n` });
    const collectionId = await newCollection();
    const policy = processing(collectionId, 3);
    await poll(collectionId, policy);
    feeds.set('/list.txt', { kind: 'body', etag: false, body: `${LIST.slice(1).join('\n')}\n` });
    expect((await poll(collectionId, policy)).missed).toBe(1);

    const third = await poll(collectionId, policy);
    expect(third.unchangedList).toBe(true);
    expect(third.missed).toBe(1);
    const fourth = await poll(collectionId, policy);
    expect(fourth.unchangedList).toBe(true);
    expect(fourth.withdrawn).toBe(1);
    const values = (await opened.store.listIndicatorEntries(collectionId)).map((e) => e.value);
    expect(values).toEqual(LIST.slice(1));
  });

  it('expired value comes back by a full poll', async () => {
    feeds.set('/list.txt', { kind: 'body', etag: false, body: `${LIST.join('\n')}\n` });
    const collectionId = await newCollection();
    const policy = processing(collectionId);
    await poll(collectionId, policy);
    // Two hours later every value has aged out (first_seen+1h).
    clock += 2 * 3_600_000_000;
    await policy.age(opened.store, clock);
    expect(await opened.store.listIndicatorEntries(collectionId)).toEqual([]);

    const again = await poll(collectionId, policy);

    expect(again.unchangedList).toBeUndefined();
    expect(again.reactivated).toBe(LIST.length);
    expect(await opened.store.listIndicatorEntries(collectionId)).toHaveLength(LIST.length);
  });

  it('changed screen takes the full path', async () => {
    feeds.set('/list.txt', { kind: 'body', etag: false, body: `${LIST.join('\n')}\n` });
    const collectionId = await newCollection();
    await poll(collectionId, processing(collectionId));

    const second = await poll(collectionId, processing(collectionId, 1, ['11.9.9.9']));

    expect(second.unchangedList).toBeUndefined();
    expect(second.allowListed).toBe(1);
    expect(second.withdrawn).toBe(1);
  });
});

requireMongoInCi();
