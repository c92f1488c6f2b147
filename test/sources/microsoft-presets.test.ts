/**
 * The azure-service-tags and microsoft-365 presets of the json kind, and the
 * version check that spares fetching an unchanged Microsoft 365 list.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';

import { afterAll, beforeAll, describe, expect, it, jest, test } from '@jest/globals';
import { pino } from 'pino';

import { DEFAULT_SCREEN_SETTINGS } from '../../src/processing/index.js';
import { CollectionProcessing, NO_AGING } from '../../src/processing/policy.js';
import {
  judgeJson,
  parseJson,
  pollSource,
  presetExpression,
  SOURCE_KINDS,
  type JsonPresetOptions,
  type PollSource,
} from '../../src/sources/index.js';
import { LIST_VERSION_KEY } from '../../src/sources/json.js';
import type { SourceState } from '../../src/store/index.js';
import { FeedServer } from '../helpers/feed-server.js';
import { requireMongoInCi, storeOpeners, type OpenedTestStore } from '../helpers/stores.js';

jest.setTimeout(60_000);

const HANDMADE = new URL('../fixtures/handmade/', import.meta.url);
/** Real snapshots, when present; they carry no licence, so they are not committed. */
const SHARED_FEEDS = '/work/shared/fixtures/feeds/';

function handmade(name: string): Buffer {
  return readFileSync(new URL(name, HANDMADE));
}

async function presetValues(
  body: Buffer | string,
  preset: 'azure-service-tags' | 'microsoft-365',
  options: JsonPresetOptions = {},
): Promise<string[]> {
  const expression = presetExpression(preset, options);
  const { entries, stats } = await parseJson(body, { format: 'document', expression });
  expect(judgeJson(stats)).toEqual({ ok: true });
  return entries.map((entry) => entry.value);
}

describe('azure-service-tags preset', () => {
  const tags = handmade('azure-service-tags-sample.json');

  test('every prefix once', async () => {
    expect(await presetValues(tags, 'azure-service-tags')).toEqual([
      '192.0.2.0/28',
      '2001:db8:10::/64',
      '198.51.100.0/26',
      '198.51.100.64/26',
      '2001:db8:20::/48',
      '2001:db8:20:1::/64',
      '203.0.113.0/27',
    ]);
  });

  test('tag filter', async () => {
    const values = await presetValues(tags, 'azure-service-tags', {
      tag: ['AzureFrontDoor.Frontend', 'ActionGroup'],
    });
    expect(values).toEqual(['192.0.2.0/28', '2001:db8:10::/64', '203.0.113.0/27']);
  });

  test('systemService filter', async () => {
    const values = await presetValues(tags, 'azure-service-tags', {
      systemService: ['AzureStorage'],
    });
    expect(values).toEqual([
      '198.51.100.0/26',
      '198.51.100.64/26',
      '2001:db8:20::/48',
      '2001:db8:20:1::/64',
    ]);
  });

  test('region filter', async () => {
    const values = await presetValues(tags, 'azure-service-tags', {
      systemService: ['AzureStorage'],
      region: ['westeurope'],
    });
    expect(values).toEqual(['198.51.100.64/26', '2001:db8:20:1::/64']);
  });

  test('quotes in filter stay literal', async () => {
    const expression = presetExpression('azure-service-tags', { tag: ["x') || `true` || ('"] });
    const { entries } = await parseJson(tags, { format: 'document', expression });
    expect(entries).toEqual([]);

    const odd = JSON.stringify({
      values: [{ name: 'a`b', properties: { addressPrefixes: ['192.0.2.0/24'] } }],
    });
    expect(await presetValues(odd, 'azure-service-tags', { tag: ['a`b'] })).toEqual([
      '192.0.2.0/24',
    ]);
  });

  test('real ServiceTags snapshot', async () => {
    const directory = `${SHARED_FEEDS}azure-service-tags/`;
    if (!existsSync(directory)) {
      console.warn(`skipped: ${directory} not found; the snapshot is not committed (no licence)`);
      return;
    }
    for (const name of readdirSync(directory).filter((file) => file.endsWith('.json'))) {
      const document = JSON.parse(readFileSync(`${directory}${name}`, 'utf8')) as {
        values: { properties: { addressPrefixes: string[] } }[];
      };
      const distinct = new Set(document.values.flatMap((tag) => tag.properties.addressPrefixes));
      expect(
        new Set(await presetValues(readFileSync(`${directory}${name}`), 'azure-service-tags')),
      ).toEqual(distinct);
    }
  });
});

describe('microsoft-365 preset', () => {
  const endpoints = handmade('microsoft-365-endpoints-sample.json');

  test('ips of every set', async () => {
    expect(await presetValues(endpoints, 'microsoft-365', { output: 'ips' })).toEqual([
      '192.0.2.0/29',
      '2001:db8:1::/48',
      '198.51.100.0/28',
      '2001:db8:2::/48',
      '203.0.113.0/28',
      '203.0.113.64/28',
    ]);
  });

  test('urls drop wildcards', async () => {
    expect(await presetValues(endpoints, 'microsoft-365', { output: 'urls' })).toEqual([
      'outlook.example.com',
      'files.example.net',
      'login.example.org',
      'telemetry.example.org',
    ]);
  });

  test('serviceArea and category', async () => {
    const values = await presetValues(endpoints, 'microsoft-365', {
      output: 'ips',
      serviceArea: ['Exchange', 'Skype'],
      category: ['Optimize'],
    });
    expect(values).toEqual(['192.0.2.0/29', '2001:db8:1::/48', '203.0.113.0/28']);
  });

  test('required filter', async () => {
    const required = await presetValues(endpoints, 'microsoft-365', {
      output: 'urls',
      required: true,
    });
    expect(required).toEqual(['outlook.example.com', 'files.example.net', 'login.example.org']);
    const optional = await presetValues(endpoints, 'microsoft-365', {
      output: 'urls',
      required: false,
    });
    expect(optional).toEqual(['telemetry.example.org']);
  });

  test('real endpoints snapshot', async () => {
    const file = `${SHARED_FEEDS}microsoft-365/endpoints-worldwide.json`;
    if (!existsSync(file)) {
      console.warn(`skipped: ${file} not found; the snapshot is not committed (no licence)`);
      return;
    }
    const ips = await presetValues(readFileSync(file), 'microsoft-365', { output: 'ips' });
    const urls = await presetValues(readFileSync(file), 'microsoft-365', { output: 'urls' });
    expect(ips.length).toBeGreaterThan(0);
    expect(urls.every((url) => !url.includes('*'))).toBe(true);
  });
});

/** Writes an endpoints document with public addresses, which the built-in allow-lists leave alone. */
function endpointsBody(ips: string[]): string {
  return JSON.stringify([
    { id: 1, serviceArea: 'Exchange', category: 'Optimize', required: true, ips },
  ]);
}

const stores = storeOpeners('feedhub-m365-');

describe.each(stores)('microsoft-365 version check on $name', ({ open }) => {
  const feeds = new FeedServer();
  const logger = pino({ level: 'silent' });
  let opened: OpenedTestStore;
  let clock = 1_800_000_000_000_000;

  function source(overrides: Partial<PollSource> = {}): PollSource {
    return {
      id: 'm365',
      name: 'Microsoft 365',
      kind: 'json',
      url: feeds.url('/endpoints/worldwide'),
      valueType: 'auto',
      timeoutMs: 5000,
      maxBytes: 1 << 20,
      confidence: 80,
      tlp: 'clear',
      indicatorTypes: ['benign'],
      labels: [],
      json: {
        format: 'document',
        expression: presetExpression('microsoft-365', { output: 'ips' }),
        versionUrl: feeds.url('/version/worldwide'),
      },
      ...overrides,
    };
  }

  function processing(collectionId: string) {
    return new CollectionProcessing({
      collectionId,
      screen: DEFAULT_SCREEN_SETTINGS,
      withdrawal: { missesBeforeWithdrawal: 1, maxDrop: 0.9 },
      confidenceRule: 'max',
      sources: [
        {
          id: 'm365',
          name: 'Microsoft 365',
          confidence: 80,
          weight: 1,
          tlp: 'clear',
          indicatorTypes: ['benign'],
          labels: [],
          aging: NO_AGING,
        },
      ],
    });
  }

  async function newCollection(): Promise<string> {
    const id = randomUUID();
    await opened.store.upsertCollection({
      id,
      alias: `c-${id.slice(0, 8)}`,
      title: 'Microsoft 365',
      canRead: true,
      canWrite: false,
      mediaTypes: [],
    });
    return id;
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

  function listRequests(): number {
    return feeds.requests.filter((request) => request.path === '/endpoints/worldwide').length;
  }

  function setVersion(latest: string): void {
    feeds.set('/version/worldwide', {
      kind: 'body',
      contentType: 'application/json',
      body: JSON.stringify({ instance: 'Worldwide', latest }),
    });
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

  it('same version skips list', async () => {
    setVersion('2026110100');
    feeds.set('/endpoints/worldwide', {
      kind: 'body',
      body: endpointsBody(['11.0.0.0/24', '11.0.1.0/24']),
    });
    const collectionId = await newCollection();
    const policy = processing(collectionId);

    const first = await poll(collectionId, policy);
    expect(first.outcome).toBe('applied');
    expect(first.created).toBe(2);
    const fetched = listRequests();

    const second = await poll(collectionId, policy);
    expect(second.outcome).toBe('applied');
    expect(second.unchangedList).toBe(true);
    expect(second.refreshed).toBe(2);
    expect(listRequests()).toBe(fetched);
  });

  it('new version reads list', async () => {
    setVersion('2026110100');
    feeds.set('/endpoints/worldwide', { kind: 'body', body: endpointsBody(['11.0.0.0/24']) });
    const collectionId = await newCollection();
    const policy = processing(collectionId);
    await poll(collectionId, policy);
    const fetched = listRequests();

    setVersion('2026120100');
    feeds.set('/endpoints/worldwide', { kind: 'body', body: endpointsBody(['11.0.2.0/24']) });
    const second = await poll(collectionId, policy);

    expect(listRequests()).toBe(fetched + 1);
    expect(second.unchangedList).toBeUndefined();
    expect(second.created).toBe(1);
    expect(second.withdrawn).toBe(1);
    const state = await opened.store.getSourceState(collectionId, 'm365');
    expect((state?.cursor?.[LIST_VERSION_KEY] as { latest: string }).latest).toBe('2026120100');
  });

  it('version without latest fails', async () => {
    feeds.set('/version/worldwide', {
      kind: 'body',
      body: JSON.stringify([
        { instance: 'Worldwide', latest: '1' },
        { instance: 'China', latest: '2' },
      ]),
    });
    const collectionId = await newCollection();
    const report = await poll(collectionId, processing(collectionId));
    expect(report.outcome).toBe('failed');
    expect(report.error).toBe(
      `the version document ${feeds.url('/version/worldwide')} lists 2 instances; use the version URL of one instance, such as .../version/Worldwide`,
    );
  });

  it('allow-list same version not modified', async () => {
    setVersion('2026110100');
    const settings = source({ role: 'allow-list' });
    const json = settings.json!;
    const { createHash } = await import('node:crypto');
    const previous: SourceState = {
      collectionId: 'c',
      sourceId: 'm365',
      cursor: {
        [LIST_VERSION_KEY]: {
          latest: '2026110100',
          settings: createHash('sha256').update(JSON.stringify(json)).digest('base64url'),
        },
      },
    };
    const fetched = listRequests();
    const read = await SOURCE_KINDS.json!.read({
      source: settings,
      previous,
      userAgent: 'test',
      logger,
    });
    expect(read.kind).toBe('not-modified');
    expect(listRequests()).toBe(fetched);
  });
});

requireMongoInCi();
