/**
 * Property test of rendering: whatever values reach the store, no view
 * lists a value that the collection's screen refuses or allows, and every
 * EDL line is a canonical value. Values are drawn from a seeded generator,
 * so a failure repeats.
 */
import { randomUUID } from 'node:crypto';

import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';

import {
  DEFAULT_SCREEN_SETTINGS,
  detectAndCanonicalize,
  Screen,
  type ValueType,
} from '../../src/processing/index.js';
import type { CollectionRecord, SightingInput, Store } from '../../src/store/index.js';
import { requireMongoInCi, storeOpeners } from '../helpers/stores.js';
import {
  renderView,
  VIEW_KIND_NAMES,
  viewSpec,
  type RenderContext,
} from '../../src/views/index.js';

/** Mulberry32: a small seeded generator, enough to pick test values. */
function generator(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

const SEED = 20261204;
const random = generator(SEED);
const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
const octet = (): number => Math.floor(random() * 256);

/** Values a feed may list, including ones the guards refuse and the allow-list covers. */
function randomValue(): string {
  switch (Math.floor(random() * 9)) {
    case 0:
      return `${octet()}.${octet()}.${octet()}.${octet()}`;
    case 1:
      // Bogons and private space, which the built-in allow-list covers.
      return `${pick(['10.1', '192.168', '127.0', '100.64', '169.254'])}.${octet()}.${octet()}`;
    case 2:
      return `${octet()}.${octet()}.0.0/${pick([0, 4, 8, 12, 16, 24, 30])}`;
    case 3:
      return `${octet()}.${octet()}.${octet()}.1-${octet()}.${octet()}.${octet()}.9`;
    case 4:
      return pick(['8.8.8.8', '1.1.1.1', '9.9.9.9', '2001:4860:4860::8888', '::/0', '0.0.0.0/0']);
    case 5:
      return `${pick(['2001:db8', '2a00:1450', '2606:4700', 'fe80'])}::${octet().toString(16)}/${pick([16, 32, 48, 64, 128])}`;
    case 6:
      return pick(['google.com', 'microsoft.com', 'co.uk', 'com', 'github.io', 'example.com']);
    case 7:
      return `host${Math.floor(random() * 1e6)}.${pick(['evil.test', 'bad.example.net', 'co.uk', 'xn--80ak6aa92e.com'])}`;
    default:
      return `http${pick(['', 's'])}://${pick(['evil.example.net', '8.8.8.8', 'www.google.com', 'a.b.test'])}${pick(['', ':8080', ':443'])}/${pick(['', 'p', 'x*y', 'a/b?c=1'])}`;
  }
}

// FerretDB, the MongoDB-wire server of CI, scans whole collections.
jest.setTimeout(120_000);

const screen = new Screen(DEFAULT_SCREEN_SETTINGS);

/** The same values for every store: canonical, each once. */
const sightings: SightingInput[] = [];
{
  const seen = new Set<string>();
  for (let i = 0; i < 1500; i++) {
    const parsed = detectAndCanonicalize(randomValue());
    if (!parsed.ok || seen.has(parsed.value)) continue;
    seen.add(parsed.value);
    sightings.push({
      valueType: parsed.type,
      value: parsed.value,
      indicatorId: `indicator--${randomUUID()}`,
    });
  }
}

const stores = storeOpeners('feedhub-views-property-');

describe.each(stores)('views of random values on $name (seed ' + String(SEED) + ')', ({ open }) => {
  let store: Store;
  let cleanup: () => Promise<void>;
  let collection: CollectionRecord;

  beforeAll(async () => {
    ({ store, cleanup } = await open());
    await store.init();
    collection = {
      id: randomUUID(),
      alias: 'property',
      title: 'Property test',
      canRead: true,
      canWrite: false,
      mediaTypes: ['application/stix+json;version=2.1'],
    };
    await store.upsertCollection(collection);
    // Stored as they are, without the poll's screening, as if a rule changed later.
    await store.applyPoll({
      collectionId: collection.id,
      sourceId: 'random',
      seenAt: Date.now() * 1000,
      sightings,
      buildIndicator: (sighting) => ({
        id: sighting.indicatorId,
        type: 'indicator',
        version: '2024-01-01T00:00:00.000000Z',
        specVersion: '2.1',
        json: JSON.stringify({ type: 'indicator', id: sighting.indicatorId }),
      }),
      extraObjects: [],
      state: { collectionId: collection.id, sourceId: 'random' },
    });
  });

  afterAll(async () => {
    await cleanup?.();
  });

  function context(): RenderContext {
    const source = {
      id: 'random',
      name: 'Random',
      confidence: 70,
      weight: 1,
      tlp: 'clear' as const,
      indicatorTypes: ['malicious-activity'],
      labels: [],
    };
    return {
      store,
      collection,
      versions: {
        collectionId: collection.id,
        sources: new Map([[source.id, source]]),
        fallback: source,
        confidenceRule: 'max',
      },
      collectionTlp: 'clear',
      screen,
    };
  }

  it('EDL lines pass the screen', async () => {
    for (const kind of ['edl-ip', 'edl-domain'] as const) {
      const result = await renderView(context(), viewSpec(kind, kind));
      const lines = result.view.body
        .toString('utf8')
        .split('\n')
        .filter((line) => line !== '');
      expect(lines.length).toBeGreaterThan(0);
      // Collected first: one expect per line makes the test slow without saying more.
      const notCanonical: string[] = [];
      const screened: string[] = [];
      for (const line of lines) {
        const name = kind === 'edl-domain' && line.startsWith('*.') ? line.slice(2) : line;
        const parsed = detectAndCanonicalize(name);
        if (!parsed.ok || parsed.value !== name) notCanonical.push(line);
        else if (screen.judge(parsed.type, parsed.value).kind !== 'keep') screened.push(line);
      }
      expect(notCanonical).toEqual([]);
      expect(screened).toEqual([]);
    }
  });

  it('no kind lists a screened value', async () => {
    const stored = await store.listIndicatorEntries(collection.id);
    const screened = stored.filter(
      (entry) => screen.judge(entry.valueType as ValueType, entry.value).kind !== 'keep',
    );
    expect(screened.length).toBeGreaterThan(0);
    for (const kind of VIEW_KIND_NAMES) {
      const result = await renderView(context(), viewSpec(kind, kind));
      const words = new Set(result.view.body.toString('utf8').split(/[\s,;"'[\]{}|=]+/));
      // A split range is listed by its remainders, never whole.
      const listed = screened.filter((entry) => words.has(entry.value)).map((entry) => entry.value);
      expect([kind, listed]).toEqual([kind, []]);
    }
  });
});

requireMongoInCi();
