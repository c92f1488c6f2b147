/**
 * Sighting attributes in rendered views: merged over the sources of a value,
 * written to the CSV and JSON columns, and kept in the stored view data.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import type { CollectionRecord, SightingInput, Store } from '../../src/store/index.js';
import { createSqliteStore } from '../../src/store/sqlite/index.js';
import { decodeEntries } from '../../src/views/data.js';
import { renderCollectionViews, viewSpec, type RenderContext } from '../../src/views/index.js';

let dir: string;
let store: Store;
let collection: CollectionRecord;

const SOURCES = [
  {
    id: 'feed-a',
    name: 'Feed A',
    confidence: 40,
    weight: 1,
    tlp: 'green' as const,
    indicatorTypes: ['malicious-activity'],
    labels: ['feed-a'],
  },
  {
    id: 'feed-b',
    name: 'Feed B',
    confidence: 50,
    weight: 1,
    tlp: 'clear' as const,
    indicatorTypes: ['malicious-activity'],
    labels: [],
  },
];

function renderContext(): RenderContext {
  return {
    store,
    collection,
    versions: {
      collectionId: collection.id,
      sources: new Map(SOURCES.map((source) => [source.id, source])),
      fallback: SOURCES[0]!,
      confidenceRule: 'max',
    },
    collectionTlp: 'clear',
  };
}

async function poll(sourceId: string, seenAt: number, sightings: SightingInput[]): Promise<void> {
  await store.applyPoll({
    collectionId: collection.id,
    sourceId,
    seenAt,
    sightings,
    buildIndicator: (sighting) => ({
      id: sighting.indicatorId,
      type: 'indicator',
      version: '2024-01-01T00:00:00.000000Z',
      specVersion: '2.1',
      json: JSON.stringify({ type: 'indicator', id: sighting.indicatorId }),
    }),
    extraObjects: [],
    state: { collectionId: collection.id, sourceId },
  });
}

const CSV_COLUMNS = [
  'indicator',
  'confidence',
  'tlp',
  'labels',
  'ports',
  'malware_families',
  'description',
  'reported_first_seen',
];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'feedhub-view-attributes-'));
  store = createSqliteStore({ file: join(dir, 'hub.sqlite') });
  await store.init();
  collection = {
    id: randomUUID(),
    alias: 'attributes',
    title: 'Attributes',
    canRead: true,
    canWrite: false,
    mediaTypes: [],
  };
  await store.upsertCollection(collection);

  const indicator = (value: string) => `indicator--${value}`;
  await poll('feed-a', 1_000, [
    {
      valueType: 'ipv4',
      value: '11.0.0.1',
      indicatorId: indicator('11.0.0.1'),
      attributes: {
        confidence: 90,
        labels: ['c2'],
        ports: [443],
        description: 'older text',
        firstSeen: 1_709_251_200_000_000,
      },
    },
    { valueType: 'ipv4', value: '11.0.0.2', indicatorId: indicator('11.0.0.2') },
  ]);
  await poll('feed-b', 2_000, [
    {
      valueType: 'ipv4',
      value: '11.0.0.1',
      indicatorId: indicator('11.0.0.1'),
      attributes: {
        tlp: 'amber',
        ports: [8443],
        malwareFamilies: ['Pikabot'],
        description: 'newer text',
      },
    },
  ]);
  await renderCollectionViews(renderContext(), [
    viewSpec('all.csv', 'csv', { options: { columns: CSV_COLUMNS } }),
    viewSpec('all.json', 'json'),
  ]);
});

afterAll(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('views with sighting attributes', () => {
  test('csv columns merged over sources', async () => {
    const view = await store.getView(collection.id, 'all.csv');

    expect(view?.body.toString('utf8')).toBe(
      [
        CSV_COLUMNS.join(','),
        '11.0.0.1,90,amber,c2;feed-a,443;8443,Pikabot,newer text,2024-03-01T00:00:00Z',
        '11.0.0.2,40,green,feed-a,,,,',
        '',
      ].join('\r\n'),
    );
  });

  test('json lists present attributes', async () => {
    const view = await store.getView(collection.id, 'all.json');
    const { indicators } = JSON.parse(view!.body.toString('utf8')) as {
      indicators: Record<string, unknown>[];
    };

    expect(indicators[0]?.ports).toEqual([443, 8443]);
    expect(indicators[0]?.malware_families).toEqual(['Pikabot']);
    expect(indicators[0]?.description).toBe('newer text');
    expect(indicators[0]?.reported_first_seen).toBe('2024-03-01T00:00:00Z');
    expect(indicators[1]).not.toHaveProperty('ports');
  });

  test('stored data keeps them', async () => {
    const data = await store.getViewData(collection.id, 'all.csv');
    const entries = decodeEntries(data!.data);

    expect(entries[0]).toMatchObject({
      value: '11.0.0.1',
      confidence: 90,
      tlp: 'amber',
      ports: [443, 8443],
      malwareFamilies: ['Pikabot'],
      description: 'newer text',
      reportedFirstSeen: 1_709_251_200_000_000,
    });
    expect(entries[1]).not.toHaveProperty('ports');
  });
});
