import { createHash, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';

import { pino } from 'pino';
import { request } from 'undici';

import type {
  CollectionRecord,
  ObjectVersionInput,
  SightingInput,
  Store,
} from '../../src/store/index.js';
import { DEFAULT_SCREEN_SETTINGS, Screen } from '../../src/processing/index.js';
import { createSqliteStore } from '../../src/store/sqlite/index.js';
import {
  createViewHandler,
  renderCollectionViews,
  viewSpec,
  type RenderContext,
  type ViewSpec,
} from '../../src/views/index.js';

let dir: string;
let store: Store;
let server: Server;
let baseUrl: string;
let collection: CollectionRecord;
let pending: CollectionRecord;

const views: ViewSpec[] = [
  viewSpec('ips.txt', 'edl-ip'),
  viewSpec('domains.txt', 'edl-domain'),
  viewSpec('urls.txt', 'edl-url'),
];

/** Builds the render context of a collection: one source with default attributes. */
function renderContext(target: CollectionRecord): RenderContext {
  const source = {
    id: 'test-source',
    name: 'Test source',
    confidence: 80,
    weight: 1,
    tlp: 'clear' as const,
    indicatorTypes: ['malicious-activity'],
    labels: [],
  };
  return {
    store,
    collection: target,
    versions: {
      collectionId: target.id,
      sources: new Map([[source.id, source]]),
      fallback: source,
      confidenceRule: 'max',
    },
    collectionTlp: 'clear',
  };
}

function buildCollection(overrides: Partial<CollectionRecord> = {}): CollectionRecord {
  return {
    id: randomUUID(),
    alias: `c-${randomUUID().slice(0, 8)}`,
    title: 'Views collection',
    canRead: true,
    canWrite: false,
    mediaTypes: ['application/stix+json;version=2.1'],
    ...overrides,
  };
}

function buildIndicator(sighting: SightingInput): ObjectVersionInput {
  const json = JSON.stringify({
    type: 'indicator',
    spec_version: '2.1',
    id: sighting.indicatorId,
    created: '2024-01-01T00:00:00.000Z',
    modified: '2024-01-01T00:00:00.000Z',
    pattern: `[x:value = '${sighting.value}']`,
    pattern_type: 'stix',
    valid_from: '2024-01-01T00:00:00Z',
  });
  return {
    id: sighting.indicatorId,
    type: 'indicator',
    version: '2024-01-01T00:00:00.000000Z',
    specVersion: '2.1',
    json,
  };
}

async function poll(target: CollectionRecord, values: [string, string][]): Promise<void> {
  await store.applyPoll({
    collectionId: target.id,
    sourceId: 'test-source',
    seenAt: Date.now() * 1000,
    sightings: values.map(([valueType, value]) => ({
      valueType,
      value,
      indicatorId: `indicator--${randomUUID()}`,
    })),
    buildIndicator,
    extraObjects: [],
    state: { collectionId: target.id, sourceId: 'test-source' },
  });
}

// Given out of order on purpose.
const ipEntries: [string, string][] = [
  ['ipv6', '2001:db8::10'],
  ['ipv4', '192.168.1.1'],
  ['ipv4-cidr', '10.0.0.0/8'],
  ['ipv6-cidr', '2001:db8::/32'],
  ['ipv4', '9.9.9.9'],
  ['ipv4-range', '10.0.0.5-10.0.0.9'],
  ['ipv4', '10.0.0.1'],
  ['ipv6', '::1'],
  ['ipv4', '100.64.0.1'],
];
const expectedIps = [
  '9.9.9.9',
  '10.0.0.0/8',
  '10.0.0.1',
  '10.0.0.5-10.0.0.9',
  '100.64.0.1',
  '192.168.1.1',
  '::1',
  '2001:db8::/32',
  '2001:db8::10',
];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'feedhub-views-'));
  store = createSqliteStore({ file: join(dir, 'hub.sqlite') });
  await store.init();

  collection = buildCollection();
  pending = buildCollection();
  await store.upsertCollection(collection);
  await store.upsertCollection(pending);

  const domains: [string, string][] = [
    ['domain', 'zeta.example'],
    ['domain', 'alpha.example'],
  ];
  const urls: [string, string][] = [
    ['url', 'http://b.example/path'],
    ['url', 'http://a.example/'],
  ];
  // Enough URLs that the body is worth compressing.
  for (let i = 0; i < 200; i++) {
    urls.push(['url', `http://bulk${String(i).padStart(3, '0')}.example/some/long/path/segment`]);
  }
  await poll(collection, [...ipEntries, ...domains, ...urls, ['sha256', 'a'.repeat(64)]]);
  await renderCollectionViews(renderContext(collection), views);

  const handler = createViewHandler({
    store,
    logger: pino({ level: 'silent' }),
    viewSpecs: (target) => (target.id === pending.id ? [viewSpec('later.txt', 'edl-ip')] : views),
    retryAfterSeconds: 7,
  });
  server = createServer((req, res) => {
    if (!handler.handle(req, res)) {
      res.writeHead(418);
      res.end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

function feedUrl(viewName: string, alias = collection.alias): string {
  return `${baseUrl}/feeds/${alias}/${viewName}`;
}

describe('renderCollectionViews', () => {
  test('IP list order and content', async () => {
    const view = await store.getView(collection.id, 'ips.txt');

    expect(view!.body.toString('utf8')).toBe(`${expectedIps.join('\n')}\n`);
    expect(view!.entryCount).toBe(expectedIps.length);
    expect(view!.contentType).toBe('text/plain; charset=utf-8');
  });

  test('domain list content', async () => {
    const view = await store.getView(collection.id, 'domains.txt');

    expect(view!.body.toString('utf8')).toBe('alpha.example\nzeta.example\n');
  });

  test('URL list content', async () => {
    const view = await store.getView(collection.id, 'urls.txt');
    const lines = view!.body.toString('utf8').split('\n');

    expect(lines.slice(0, 2)).toEqual(['a.example/', 'b.example/path']);
    expect(lines).toHaveLength(203);
    expect(lines[202]).toBe('');
    expect(lines.some((line) => line.includes('a'.repeat(64)))).toBe(false);
  });

  test('etag is quoted sha256 base64url', async () => {
    const view = await store.getView(collection.id, 'domains.txt');

    const digest = createHash('sha256').update(view!.body).digest('base64url');
    expect(view!.etag).toBe(`"${digest}"`);
  });

  test('empty view has empty body', async () => {
    const target = buildCollection();
    await store.upsertCollection(target);

    await renderCollectionViews(renderContext(target), [viewSpec('ips.txt', 'edl-ip')]);

    const view = await store.getView(target.id, 'ips.txt');
    expect(view!.body.length).toBe(0);
    expect(view!.entryCount).toBe(0);
  });

  test('failed render keeps the previous one', async () => {
    const target = buildCollection();
    await store.upsertCollection(target);
    await poll(target, [['ipv4', '11.0.0.1']]);
    const good = viewSpec('waf.json', 'aws-waf', { options: { name: 'blocklist' } });
    await renderCollectionViews(renderContext(target), [good]);
    const before = await store.getView(target.id, 'waf.json');

    await poll(target, [['ipv4', '11.0.0.2']]);
    // AWS WAF refuses this set name, so the render fails.
    const bad = viewSpec('waf.json', 'aws-waf', { options: { name: 'no spaces allowed' } });
    const { results, failures } = await renderCollectionViews(renderContext(target), [bad]);

    expect(results).toHaveLength(0);
    expect(failures).toHaveLength(1);
    expect(String(failures[0]!.error)).toContain('no spaces allowed');
    const after = await store.getView(target.id, 'waf.json');
    expect(after!.etag).toBe(before!.etag);
    expect(after!.body.toString('utf8')).toContain('11.0.0.1/32');
    expect(after!.body.toString('utf8')).not.toContain('11.0.0.2');
  });

  test('build log follows counts when the list stays', async () => {
    const target = buildCollection();
    await store.upsertCollection(target);
    await poll(target, [['ipv4', '11.0.0.1']]);
    const context = { ...renderContext(target), screen: new Screen(DEFAULT_SCREEN_SETTINGS) };
    await renderCollectionViews(context, [viewSpec('ips', 'edl-ip')]);
    const before = await store.getViewLog(target.id, 'ips');

    // Stored without the poll's screening; the render refuses it, so the list stays.
    await poll(target, [['ipv4-cidr', '0.0.0.0/0']]);
    await renderCollectionViews(context, [viewSpec('ips', 'edl-ip')]);

    const after = await store.getViewLog(target.id, 'ips');
    expect(after!.etag).toBe(before!.etag);
    const report = JSON.parse(after!.log) as { candidates: number; entries: number };
    expect(report.candidates).toBe(2);
    expect(report.entries).toBe(1);
  });

  test('rerender picks up new values', async () => {
    const target = buildCollection();
    await store.upsertCollection(target);
    await poll(target, [['domain', 'one.example']]);
    await renderCollectionViews(renderContext(target), [viewSpec('d', 'edl-domain')]);
    const before = await store.getViewEtag(target.id, 'd');

    await poll(target, [['domain', 'two.example']]);
    await renderCollectionViews(renderContext(target), [viewSpec('d', 'edl-domain')]);

    const after = await store.getView(target.id, 'd');
    expect(after!.etag).not.toBe(before);
    expect(after!.body.toString('utf8')).toBe('one.example\ntwo.example\n');
  });
});

describe('view routes', () => {
  test('GET serves body with headers', async () => {
    const response = await request(feedUrl('domains.txt'));
    const body = await response.body.text();
    const stored = await store.getView(collection.id, 'domains.txt');

    expect(response.statusCode).toBe(200);
    expect(body).toBe('alpha.example\nzeta.example\n');
    expect(response.headers['content-type']).toBe('text/plain; charset=utf-8');
    expect(response.headers['etag']).toBe(stored!.etag);
    expect(response.headers['content-length']).toBe(String(Buffer.byteLength(body)));
    expect(response.headers['cache-control']).toBe('no-cache');
  });

  test('HEAD sends headers only', async () => {
    const response = await request(feedUrl('ips.txt'), { method: 'HEAD' });
    const body = await response.body.text();
    const stored = await store.getView(collection.id, 'ips.txt');

    expect(response.statusCode).toBe(200);
    expect(body).toBe('');
    expect(response.headers['etag']).toBe(stored!.etag);
    expect(response.headers['content-length']).toBe(String(stored!.body.length));
  });

  test('If-None-Match matching is 304', async () => {
    const etag = (await store.getViewEtag(collection.id, 'domains.txt'))!;

    const exact = await request(feedUrl('domains.txt'), { headers: { 'if-none-match': etag } });
    const inList = await request(feedUrl('domains.txt'), {
      headers: { 'if-none-match': `"other", W/${etag}` },
    });
    const star = await request(feedUrl('domains.txt'), { headers: { 'if-none-match': '*' } });

    for (const response of [exact, inList, star]) {
      expect(response.statusCode).toBe(304);
      expect(await response.body.text()).toBe('');
      expect(response.headers['etag']).toBe(etag);
    }
  });

  test('If-None-Match other tags is 200', async () => {
    const response = await request(feedUrl('domains.txt'), {
      headers: { 'if-none-match': '"other", W/"another"' },
    });
    const malformed = await request(feedUrl('domains.txt'), {
      headers: { 'if-none-match': 'not-a-tag' },
    });

    expect(response.statusCode).toBe(200);
    expect(await response.body.text()).toBe('alpha.example\nzeta.example\n');
    expect(malformed.statusCode).toBe(200);
    await malformed.body.dump();
  });

  test('gzip when accepted', async () => {
    const stored = await store.getView(collection.id, 'urls.txt');

    const response = await request(feedUrl('urls.txt'), {
      headers: { 'accept-encoding': 'gzip, deflate' },
    });
    const compressed = Buffer.from(await response.body.arrayBuffer());

    expect(response.statusCode).toBe(200);
    expect(response.headers['content-encoding']).toBe('gzip');
    expect(response.headers['vary']).toBe('Accept-Encoding');
    expect(response.headers['etag']).toBe(`W/${stored!.etag}`);
    expect(response.headers['content-length']).toBe(String(compressed.length));
    expect(gunzipSync(compressed).equals(stored!.body)).toBe(true);
  });

  test('gzip etag revalidates to 304', async () => {
    const first = await request(feedUrl('urls.txt'), { headers: { 'accept-encoding': 'gzip' } });
    await first.body.dump();

    const second = await request(feedUrl('urls.txt'), {
      headers: { 'accept-encoding': 'gzip', 'if-none-match': String(first.headers['etag']) },
    });

    expect(second.statusCode).toBe(304);
    await second.body.dump();
  });

  test('no gzip when refused', async () => {
    const refused = await request(feedUrl('urls.txt'), {
      headers: { 'accept-encoding': 'gzip;q=0, br' },
    });
    const absent = await request(feedUrl('urls.txt'));

    expect(refused.headers['content-encoding']).toBeUndefined();
    expect(absent.headers['content-encoding']).toBeUndefined();
    await refused.body.dump();
    await absent.body.dump();
  });

  test('unknown alias is 404 naming it', async () => {
    const response = await request(feedUrl('ips.txt', 'no-such-alias'));

    expect(response.statusCode).toBe(404);
    expect(response.headers['content-type']).toBe('text/plain; charset=utf-8');
    expect(await response.body.text()).toContain('no-such-alias');
  });

  test('unknown view is 404 naming it', async () => {
    const response = await request(feedUrl('missing.txt'));

    expect(response.statusCode).toBe(404);
    const body = await response.body.text();
    expect(body).toContain('missing.txt');
    expect(body).toContain(collection.alias);
  });

  test('view not rendered yet is 503', async () => {
    const response = await request(feedUrl('later.txt', pending.alias));

    expect(response.statusCode).toBe(503);
    expect(response.headers['retry-after']).toBe('7');
    await response.body.dump();
  });
});
