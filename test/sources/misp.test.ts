import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';

import { createLogger } from '../../src/app/logger.js';
import type { ReadContext, ReadResult, SourceSettings } from '../../src/sources/kinds.js';
import { SourceRejectedError } from '../../src/sources/kinds.js';
import {
  MISP_CURSOR_KEY,
  mapAttribute,
  mispFeedKind,
  readMispFeed,
  type MispSettings,
  type MispStats,
} from '../../src/sources/misp.js';
import type { SourceState } from '../../src/store/index.js';
import { FeedServer } from '../helpers/feed-server.js';

const FIXTURES = new URL('../fixtures/misp/', import.meta.url);
const CROWDSEC_EVENTS = [
  'd177856e-6e46-44ee-8eb5-83ef1c7452c7',
  '6a10e5d8-f1cd-42b0-8240-a4650efd83d6',
  '8f09de10-6867-45c6-814d-3d91a33d3af7',
] as const;
const ESET_EVENT = '47b9e2de-7283-4fd3-bf41-dcf9f19d8c62';

type DataResult = Extract<ReadResult, { kind: 'data' }>;

let server: FeedServer;

beforeEach(async () => {
  server = await new FeedServer().start();
});

afterEach(async () => {
  await server.stop();
});

function fixture(path: string): Buffer {
  return readFileSync(new URL(path, FIXTURES));
}

function serveJson(path: string, body: string | Buffer, etag = true): void {
  server.set(path, { kind: 'body', body, contentType: 'application/json', etag });
}

/** Serves the CrowdSec fixture feed, `hashes.csv` included, under `/crowdsec/`. */
function serveCrowdsec(etag = true): void {
  serveJson('/crowdsec/manifest.json', fixture('crowdsec/manifest.json'), etag);
  for (const uuid of CROWDSEC_EVENTS) {
    serveJson(`/crowdsec/${uuid}.json`, fixture(`crowdsec/${uuid}.json`));
  }
  serveCsv('/crowdsec/hashes.csv', fixture('crowdsec/hashes.csv'), etag);
}

function serveCsv(path: string, body: string | Buffer, etag = true): void {
  server.set(path, { kind: 'body', body, contentType: 'text/csv', etag });
}

function context(
  path: string,
  previous?: SourceState,
  misp?: Partial<MispSettings>,
  unchangedDigest?: string,
): ReadContext {
  const source: SourceSettings & { misp?: Partial<MispSettings> } = {
    id: 'misp',
    name: 'MISP feed',
    kind: 'misp-feed',
    url: server.url(path),
    valueType: 'auto',
    timeoutMs: 5000,
    maxBytes: 10_000_000,
    misp,
  };
  return {
    source,
    previous,
    userAgent: 'feedhub-test',
    logger: createLogger('silent'),
    unchangedDigest,
  };
}

function asData(result: ReadResult): DataResult {
  if (result.kind !== 'data') throw new Error(`expected data, got ${result.kind}`);
  return result;
}

function mispStats(result: DataResult): MispStats {
  return result.stats as unknown as MispStats;
}

/** Builds the source state that the poll stores after `result`. */
function stateAfter(result: DataResult): SourceState {
  return {
    collectionId: 'c',
    sourceId: 'misp',
    etag: result.etag,
    lastModified: result.lastModified,
    cursor: result.cursor,
  };
}

function values(result: DataResult): string[] {
  return result.entries.map((entry) => `${entry.type} ${entry.value}`).sort();
}

/** Paths requested other than the manifest and `hashes.csv`. */
function eventPaths(): string[] {
  return server.requests
    .map((request) => request.path)
    .filter((p) => !p.endsWith('/manifest.json') && !p.endsWith('/hashes.csv'));
}

interface TestAttribute {
  type: string;
  value: string;
  to_ids?: boolean;
  deleted?: boolean;
  Tag?: { name: string }[];
}

function event(
  uuid: string,
  attributes: TestAttribute[],
  extra: Record<string, unknown> = {},
): string {
  return JSON.stringify({
    Event: {
      uuid,
      info: 'test event',
      Attribute: attributes.map((a) => ({ to_ids: true, deleted: false, ...a })),
      ...extra,
    },
  });
}

function manifest(events: Record<string, string>): string {
  const listing: Record<string, unknown> = {};
  for (const [uuid, timestamp] of Object.entries(events)) listing[uuid] = { timestamp, info: 'x' };
  return JSON.stringify(listing);
}

const EVENT_A = '11111111-1111-4111-8111-111111111111';
const EVENT_B = '22222222-2222-4222-8222-222222222222';

describe('misp-feed read', () => {
  test('crowdsec fixture counts', async () => {
    serveCrowdsec();
    const read = await readMispFeed(context('/crowdsec/'));
    const result = asData(read.result);
    const stats = mispStats(result);

    expect(result.entries).toHaveLength(508);
    expect(result.entries.every((entry) => entry.type === 'ipv4')).toBe(true);
    expect(result.stats.valid).toBe(508);
    expect(result.stats.invalid).toBe(0);
    expect(result.stats.duplicates).toBe(356);
    expect(result.complete).toBe(true);
    expect(stats.eventsListed).toBe(3);
    expect(stats.eventsFetched).toBe(3);
    expect(stats.eventsUnchanged).toBe(0);
    expect(stats.eventsFailed).toBe(0);
    expect(stats.attributesRead).toBe(864);
    expect(stats.attributesNotIds).toBe(0);
    expect(stats.attributesUnsupported).toBe(0);
    expect(eventPaths().sort()).toEqual(CROWDSEC_EVENTS.map((u) => `/crowdsec/${u}.json`).sort());
  });

  test('crowdsec annotations', async () => {
    serveCrowdsec();
    const read = await readMispFeed(context('/crowdsec/'));

    expect(read.annotations).toHaveLength(508);
    const first = read.annotations.find((a) => a.value === '4.204.200.32');
    expect(first?.tlp).toBeUndefined();
    expect(first?.labels).toContain('crowdsec-feed');
    expect(first?.labels).toContain('source:crowdsec');
    expect(first?.events).toContain('d177856e-6e46-44ee-8eb5-83ef1c7452c7');
    expect(read.annotations.every((a) => a.tlp === undefined)).toBe(true);
  });

  test('second poll manifest not modified', async () => {
    serveCrowdsec();
    const first = asData(await mispFeedKind.read(context('/crowdsec/')));
    server.requests.length = 0;

    const second = await mispFeedKind.read(context('/crowdsec/', stateAfter(first)));

    expect(second.kind).toBe('not-modified');
    expect(server.requests.map((r) => r.path)).toEqual([
      '/crowdsec/manifest.json',
      '/crowdsec/hashes.csv',
    ]);
    expect(server.requests[0]?.ifNoneMatch).toBe(first.etag);
    expect(server.requests[1]?.ifNoneMatch).toMatch(/^"/);
  });

  test('second poll unchanged events', async () => {
    serveCrowdsec(false);
    const first = asData(await mispFeedKind.read(context('/crowdsec/')));
    server.requests.length = 0;

    const second = asData(await mispFeedKind.read(context('/crowdsec/', stateAfter(first))));

    expect(server.requests.map((r) => r.path)).toEqual([
      '/crowdsec/manifest.json',
      '/crowdsec/hashes.csv',
    ]);
    expect(values(second)).toEqual(values(first));
    expect(mispStats(second).eventsUnchanged).toBe(3);
    expect(mispStats(second).eventsFetched).toBe(0);
    expect(mispStats(second).attributesRead).toBe(0);
    expect(second.complete).toBe(true);
  });

  test('unchanged digest shortcut', async () => {
    serveCrowdsec(false);
    const first = asData(await mispFeedKind.read(context('/crowdsec/')));

    const second = await mispFeedKind.read(
      context('/crowdsec/', stateAfter(first), undefined, first.bodyDigest),
    );

    expect(second.kind).toBe('unchanged');
    if (second.kind !== 'unchanged') return;
    expect(second.bodyDigest).toBe(first.bodyDigest);
    expect(values(asData(await second.parse()))).toEqual(values(first));
  });

  test('event changed', async () => {
    serveJson('/feed/manifest.json', manifest({ [EVENT_A]: '100', [EVENT_B]: '100' }));
    serveJson(`/feed/${EVENT_A}.json`, event(EVENT_A, [{ type: 'ip-dst', value: '192.0.2.1' }]));
    serveJson(`/feed/${EVENT_B}.json`, event(EVENT_B, [{ type: 'domain', value: 'old.example' }]));
    const first = asData(await mispFeedKind.read(context('/feed/')));

    serveJson('/feed/manifest.json', manifest({ [EVENT_A]: '100', [EVENT_B]: '200' }));
    serveJson(`/feed/${EVENT_B}.json`, event(EVENT_B, [{ type: 'domain', value: 'new.example' }]));
    server.requests.length = 0;
    const second = asData(await mispFeedKind.read(context('/feed/', stateAfter(first))));

    expect(eventPaths()).toEqual([`/feed/${EVENT_B}.json`]);
    expect(values(second)).toEqual(['domain new.example', 'ipv4 192.0.2.1']);
    expect(mispStats(second).eventsFetched).toBe(1);
    expect(mispStats(second).eventsUnchanged).toBe(1);
  });

  test('event removed', async () => {
    serveJson('/feed/manifest.json', manifest({ [EVENT_A]: '100', [EVENT_B]: '100' }));
    serveJson(`/feed/${EVENT_A}.json`, event(EVENT_A, [{ type: 'ip-dst', value: '192.0.2.1' }]));
    serveJson(`/feed/${EVENT_B}.json`, event(EVENT_B, [{ type: 'domain', value: 'gone.example' }]));
    const first = asData(await mispFeedKind.read(context('/feed/')));

    serveJson('/feed/manifest.json', manifest({ [EVENT_A]: '100' }));
    server.requests.length = 0;
    const second = asData(await mispFeedKind.read(context('/feed/', stateAfter(first))));

    expect(eventPaths()).toEqual([]);
    expect(values(second)).toEqual(['ipv4 192.0.2.1']);
    expect(second.complete).toBe(true);
    const cursor = second.cursor?.[MISP_CURSOR_KEY] as { events: Record<string, unknown> };
    expect(Object.keys(cursor.events)).toEqual([EVENT_A]);
  });

  test('manifest HTML body', async () => {
    server.set('/feed/manifest.json', {
      kind: 'body',
      body: '<!DOCTYPE html><html><body>Sign in</body></html>',
      contentType: 'text/html',
    });

    await expect(mispFeedKind.read(context('/feed/'))).rejects.toThrow(SourceRejectedError);
    await expect(mispFeedKind.read(context('/feed/'))).rejects.toThrow(/HTML page/);
  });

  test('event HTML body', async () => {
    serveJson('/feed/manifest.json', manifest({ [EVENT_A]: '100', [EVENT_B]: '100' }));
    serveJson(`/feed/${EVENT_A}.json`, event(EVENT_A, [{ type: 'ip-dst', value: '192.0.2.1' }]));
    server.set(`/feed/${EVENT_B}.json`, { kind: 'body', body: '<html>error</html>' });

    const result = asData(await mispFeedKind.read(context('/feed/')));

    expect(values(result)).toEqual(['ipv4 192.0.2.1']);
    expect(result.complete).toBe(false);
    expect(result.bodyDigest).toBeUndefined();
    expect(result.etag).toBeUndefined();
    expect(mispStats(result).eventsFailed).toBe(1);
    expect(mispStats(result).eventFailures[0]?.event).toBe(EVENT_B);
    expect(mispStats(result).eventFailures[0]?.reason).toMatch(/HTML page/);
  });

  test('truncated event keeps previous values', async () => {
    serveCrowdsec(false);
    const first = asData(await mispFeedKind.read(context('/crowdsec/')));

    const uuid = CROWDSEC_EVENTS[0];
    const listing = JSON.parse(fixture('crowdsec/manifest.json').toString()) as Record<
      string,
      { timestamp: string }
    >;
    listing[uuid]!.timestamp = '1779999999';
    serveJson('/crowdsec/manifest.json', JSON.stringify(listing), false);
    const whole = fixture(`crowdsec/${uuid}.json`);
    serveJson(`/crowdsec/${uuid}.json`, whole.subarray(0, whole.length / 2));
    const second = asData(await mispFeedKind.read(context('/crowdsec/', stateAfter(first))));

    expect(second.complete).toBe(false);
    expect(values(second)).toEqual(values(first));
    expect(mispStats(second).eventsFailed).toBe(1);
    expect(mispStats(second).eventFailures[0]?.reason).toMatch(/not valid JSON.*truncated/);
    const cursor = second.cursor?.[MISP_CURSOR_KEY] as {
      events: Record<string, { timestamp: string }>;
    };
    // The old timestamp stays, so the next poll fetches the event again.
    expect(cursor.events[uuid]?.timestamp).toBe('1779411630');
  });

  test('truncated event on first poll', async () => {
    serveCrowdsec();
    const uuid = CROWDSEC_EVENTS[1];
    const whole = fixture(`crowdsec/${uuid}.json`);
    serveJson(`/crowdsec/${uuid}.json`, whole.subarray(0, 1000));

    const result = asData(await mispFeedKind.read(context('/crowdsec/')));

    expect(result.complete).toBe(false);
    expect(mispStats(result).eventsFetched).toBe(2);
    expect(mispStats(result).eventsFailed).toBe(1);
    const cursor = result.cursor?.[MISP_CURSOR_KEY] as { events: Record<string, unknown> };
    expect(cursor.events[uuid]).toBeUndefined();
  });

  test('manifest truncated', async () => {
    const whole = fixture('crowdsec/manifest.json');
    serveJson('/crowdsec/manifest.json', whole.subarray(0, 500));

    await expect(mispFeedKind.read(context('/crowdsec/'))).rejects.toThrow(/truncated/);
  });

  test('manifest key not a UUID', async () => {
    serveJson(
      '/feed/manifest.json',
      JSON.stringify({ '../secret': { timestamp: '1' }, [EVENT_A]: { timestamp: '1' } }),
    );
    serveJson(`/feed/${EVENT_A}.json`, event(EVENT_A, [{ type: 'ip-dst', value: '192.0.2.1' }]));

    const result = asData(await mispFeedKind.read(context('/feed/')));

    expect(eventPaths()).toEqual([`/feed/${EVENT_A}.json`]);
    expect(result.complete).toBe(false);
    expect(mispStats(result).eventFailures[0]?.reason).toMatch(/not an event UUID/);
  });

  test('manifest lists no event', async () => {
    serveJson('/feed/manifest.json', '{}');

    await expect(mispFeedKind.read(context('/feed/'))).rejects.toThrow(/lists no event/);
  });

  test('event uuid mismatch', async () => {
    serveJson('/feed/manifest.json', manifest({ [EVENT_A]: '100' }));
    serveJson(`/feed/${EVENT_A}.json`, event(EVENT_B, [{ type: 'ip-dst', value: '192.0.2.1' }]));

    const result = asData(await mispFeedKind.read(context('/feed/')));

    expect(result.entries).toEqual([]);
    expect(mispStats(result).eventFailures[0]?.reason).toMatch(/contains event 2222/);
  });

  test('manifest URL given directly', async () => {
    serveJson('/feed/manifest.json', manifest({ [EVENT_A]: '100' }));
    serveJson(`/feed/${EVENT_A}.json`, event(EVENT_A, [{ type: 'ip-dst', value: '192.0.2.1' }]));

    const result = asData(await mispFeedKind.read(context('/feed/manifest.json')));

    expect(values(result)).toEqual(['ipv4 192.0.2.1']);
  });

  test('settings change discards cursor', async () => {
    serveJson('/feed/manifest.json', manifest({ [EVENT_A]: '100' }));
    serveJson(
      `/feed/${EVENT_A}.json`,
      event(EVENT_A, [
        { type: 'ip-dst', value: '192.0.2.1' },
        { type: 'ip-dst', value: '192.0.2.2', to_ids: false },
      ]),
    );
    const first = asData(await mispFeedKind.read(context('/feed/')));
    server.requests.length = 0;

    const second = asData(
      await mispFeedKind.read(context('/feed/', stateAfter(first), { toIdsOnly: false })),
    );

    expect(server.requests[0]?.ifNoneMatch).toBeUndefined();
    expect(eventPaths()).toEqual([`/feed/${EVENT_A}.json`]);
    expect(values(first)).toEqual(['ipv4 192.0.2.1']);
    expect(values(second)).toEqual(['ipv4 192.0.2.1', 'ipv4 192.0.2.2']);
  });

  test('maxEntries exceeded', async () => {
    serveCrowdsec();

    await expect(
      mispFeedKind.read(context('/crowdsec/', undefined, { maxEntries: 100 })),
    ).rejects.toThrow(/more than maxEntries 100/);
  });

  test('invalid concurrency setting', async () => {
    serveCrowdsec();

    await expect(
      mispFeedKind.read(context('/crowdsec/', undefined, { concurrency: 0 })),
    ).rejects.toThrow(/invalid misp concurrency 0; use an integer from 1 to 16/);
    expect(server.requests).toHaveLength(0);
  });

  test('eset export with toIdsOnly false', async () => {
    serveJson('/eset/manifest.json', manifest({ [ESET_EVENT]: '1606834050' }));
    serveJson(`/eset/${ESET_EVENT}.json`, fixture('eset-turla/misp-turla-crutch-event.json'));

    const read = await readMispFeed(context('/eset/', undefined, { toIdsOnly: false }));
    const result = asData(read.result);

    expect(values(result)).toEqual([
      'domain ethdns.mywire.org',
      'domain highcolumn.webredirect.org',
      'domain hotspot.accesscam.org',
      'domain theguardian.webredirect.org',
      'sha1 2fabcf0fce7f733f45e73b432f413e564b92d651',
      'sha1 778aa3a58f5c76e537b5fe287912cc53469a6078',
      'sha1 a010d5449d29a1916827fdb443e3c84c405cb2a5',
      'sha1 a4aff23b9a58b598524a71f09aa67994083a9c83',
      'url https://raw.githubusercontent.com/ksRD18pro/ksRD18/master/ntk.tmp',
    ]);
    expect(mispStats(result).attributesRead).toBe(20);
    expect(mispStats(result).attributesUnsupported).toBe(11);
    expect(read.annotations[0]?.labels).toEqual(['misp-galaxy:threat-actor="Turla Group"']);
  });

  test('eset export with toIdsOnly default', async () => {
    serveJson('/eset/manifest.json', manifest({ [ESET_EVENT]: '1606834050' }));
    serveJson(`/eset/${ESET_EVENT}.json`, fixture('eset-turla/misp-turla-crutch-event.json'));

    const result = asData(await mispFeedKind.read(context('/eset/')));

    expect(result.entries).toEqual([]);
    expect(mispStats(result).attributesNotIds).toBe(20);
  });

  test('objects, deleted and invalid attributes', async () => {
    serveJson('/feed/manifest.json', manifest({ [EVENT_A]: '100' }));
    serveJson(
      `/feed/${EVENT_A}.json`,
      event(
        EVENT_A,
        [
          { type: 'ip-src', value: '198.51.100.7', deleted: true },
          { type: 'ip-src', value: '999.1.1.1' },
          { type: 'text', value: 'note' },
        ],
        {
          Object: [
            {
              name: 'file',
              Attribute: [{ type: 'sha256', value: 'A'.repeat(64), to_ids: true }],
            },
            {
              name: 'domain-ip',
              deleted: true,
              Attribute: [{ type: 'domain', value: 'deleted.example', to_ids: true }],
            },
          ],
        },
      ),
    );

    const result = asData(await mispFeedKind.read(context('/feed/')));

    expect(values(result)).toEqual([`sha256 ${'a'.repeat(64)}`]);
    expect(result.stats.invalid).toBe(1);
    expect(result.stats.invalidExamples?.[0]?.text).toContain('999.1.1.1');
    expect(result.stats.invalidExamples?.[0]?.line).toBe(2);
    expect(mispStats(result).attributesDeleted).toBe(1);
    expect(mispStats(result).attributesUnsupported).toBe(1);
    expect(mispStats(result).attributesRead).toBe(4);
  });

  test('tlp tags keep strictest', async () => {
    serveJson('/feed/manifest.json', manifest({ [EVENT_A]: '100', [EVENT_B]: '100' }));
    serveJson(
      `/feed/${EVENT_A}.json`,
      event(
        EVENT_A,
        [
          { type: 'ip-dst', value: '192.0.2.1', Tag: [{ name: 'TLP:AMBER' }] },
          { type: 'ip-dst', value: '192.0.2.2' },
        ],
        { Tag: [{ name: 'tlp:green' }, { name: 'apt:x' }] },
      ),
    );
    serveJson(
      `/feed/${EVENT_B}.json`,
      event(EVENT_B, [{ type: 'ip-dst', value: '192.0.2.2', Tag: [{ name: 'tlp:red' }] }], {
        Tag: [{ name: 'tlp:clear' }, { name: 'tlp:ex:chr' }],
      }),
    );

    const read = await readMispFeed(context('/feed/'));
    const byValue = new Map(read.annotations.map((a) => [a.value, a]));

    expect(byValue.get('192.0.2.1')?.tlp).toBe('amber');
    expect(byValue.get('192.0.2.1')?.labels).toEqual(['apt:x']);
    expect(byValue.get('192.0.2.2')?.tlp).toBe('red');
    expect(byValue.get('192.0.2.2')?.labels).toEqual(['apt:x', 'tlp:ex:chr']);
    expect(byValue.get('192.0.2.2')?.events).toEqual([EVENT_A, EVENT_B]);
  });
});

/** Returns the `hashes.csv` line of `value` in event `uuid`, in the standard order. */
function hashLine(uuid: string, value: string): string {
  return `${createHash('md5').update(value).digest('hex')},${uuid}`;
}

function cursorEvents(result: DataResult): Record<string, { timestamp: string; hashes?: string }> {
  return (result.cursor?.[MISP_CURSOR_KEY] as { events: Record<string, { hashes?: string }> })
    .events as Record<string, { timestamp: string; hashes?: string }>;
}

/** Serves a feed of EVENT_A (192.0.2.1) and EVENT_B (example domain) with timestamps 100. */
function serveSmallFeed(): void {
  serveJson('/feed/manifest.json', manifest({ [EVENT_A]: '100', [EVENT_B]: '100' }), false);
  serveJson(`/feed/${EVENT_A}.json`, event(EVENT_A, [{ type: 'ip-dst', value: '192.0.2.1' }]));
  serveJson(`/feed/${EVENT_B}.json`, event(EVENT_B, [{ type: 'domain', value: 'b.example' }]));
}

describe('misp-feed hashes.csv', () => {
  test('crowdsec reversed columns checked', async () => {
    serveCrowdsec();

    const result = asData(await mispFeedKind.read(context('/crowdsec/')));
    const stats = mispStats(result);

    expect(result.entries).toHaveLength(508);
    expect(stats.hashesFile).toBe('read');
    expect(stats.hashesOrder).toBe('event_uuid,md5');
    expect(stats.hashesLines).toBe(864);
    expect(stats.hashesInvalidLines).toBe(0);
    expect(stats.hashesNotInEvent).toBe(0);
    expect(stats.attributesNotInHashes).toBe(0);
    expect(result.stats.bytes).toBe(4381 + 616219 + 235243 + 283571 + 60480);
  });

  test('cursor keeps digests, not hashes', async () => {
    serveCrowdsec();

    const result = asData(await mispFeedKind.read(context('/crowdsec/')));
    const events = cursorEvents(result);
    const cursorText = JSON.stringify(result.cursor);

    for (const uuid of CROWDSEC_EVENTS) expect(events[uuid]?.hashes).toMatch(/^[\w-]{22}$/);
    const someHash = fixture('crowdsec/hashes.csv').toString().split('\n')[0]!.split(',')[1]!;
    expect(cursorText).not.toContain(someHash);
  });

  test('standard order gives the same digests', async () => {
    serveCrowdsec();
    const reversed = asData(await mispFeedKind.read(context('/crowdsec/')));
    const standard = fixture('crowdsec/hashes.csv')
      .toString()
      .trim()
      .split('\n')
      .map((line) => line.split(',').reverse().join(','))
      .join('\n');
    serveCsv('/crowdsec/hashes.csv', standard);

    const second = asData(await mispFeedKind.read(context('/crowdsec/')));

    expect(mispStats(second).hashesOrder).toBe('md5,event_uuid');
    expect(mispStats(second).hashesNotInEvent).toBe(0);
    const digests = (result: DataResult) =>
      Object.values(cursorEvents(result)).map((cached) => cached.hashes);
    expect(digests(second)).toEqual(digests(reversed));
  });

  test('header, CRLF, BOM and blank lines', async () => {
    serveSmallFeed();
    serveCsv(
      '/feed/hashes.csv',
      `\uFEFFmd5,event_uuid\r\n\r\n${hashLine(EVENT_A, '192.0.2.1')}\r\n${hashLine(EVENT_B, 'b.example')}\r\n\r\n`,
    );

    const result = asData(await mispFeedKind.read(context('/feed/')));

    expect(mispStats(result).hashesFile).toBe('read');
    expect(mispStats(result).hashesLines).toBe(2);
    expect(mispStats(result).hashesInvalidLines).toBe(0);
    expect(mispStats(result).attributesNotInHashes).toBe(0);
  });

  test('malformed lines reported', async () => {
    serveSmallFeed();
    serveCsv(
      '/feed/hashes.csv',
      [
        hashLine(EVENT_A, '192.0.2.1'),
        hashLine(EVENT_B, 'b.example'),
        hashLine(EVENT_B, 'other.example'),
        `${EVENT_A};${'0'.repeat(32)}`,
      ].join('\n'),
    );

    const result = asData(await mispFeedKind.read(context('/feed/')));
    const stats = mispStats(result);

    expect(stats.hashesFile).toBe('read');
    expect(stats.hashesLines).toBe(3);
    expect(stats.hashesInvalidLines).toBe(1);
    expect(stats.hashesInvalidExamples?.[0]?.line).toBe(4);
    expect(values(result)).toEqual(['domain b.example', 'ipv4 192.0.2.1']);
  });

  test('malformed file ignored', async () => {
    serveSmallFeed();
    serveCsv('/feed/hashes.csv', 'id;value;comment\n1;2;3\n4;5;6\n');

    const result = asData(await mispFeedKind.read(context('/feed/')));
    const stats = mispStats(result);

    expect(values(result)).toEqual(['domain b.example', 'ipv4 192.0.2.1']);
    expect(result.complete).toBe(true);
    expect(stats.hashesFile).toBe('malformed');
    expect(stats.hashesProblem).toMatch(/hashes\.csv is not a MISP hashes\.csv: 2 of 2 lines/);
    expect(cursorEvents(result)[EVENT_A]?.hashes).toBeUndefined();
  });

  test('HTML hashes.csv ignored', async () => {
    serveSmallFeed();
    server.set('/feed/hashes.csv', { kind: 'body', body: '<html>login</html>' });

    const result = asData(await mispFeedKind.read(context('/feed/')));

    expect(values(result)).toEqual(['domain b.example', 'ipv4 192.0.2.1']);
    expect(mispStats(result).hashesFile).toBe('malformed');
    expect(mispStats(result).hashesProblem).toMatch(/HTML page/);
  });

  test('missing hashes.csv', async () => {
    serveSmallFeed();

    const result = asData(await mispFeedKind.read(context('/feed/')));

    expect(mispStats(result).hashesFile).toBe('absent');
    expect(mispStats(result).hashesProblem).toBeUndefined();
    expect(values(result)).toEqual(['domain b.example', 'ipv4 192.0.2.1']);
  });

  test('failed hashes.csv download', async () => {
    serveSmallFeed();
    server.set('/feed/hashes.csv', { kind: 'status', status: 500, body: 'broken' });

    const result = asData(await mispFeedKind.read(context('/feed/')));

    expect(values(result)).toEqual(['domain b.example', 'ipv4 192.0.2.1']);
    expect(result.complete).toBe(true);
    expect(mispStats(result).hashesFile).toBe('failed');
    expect(mispStats(result).hashesProblem).toMatch(/HTTP 500/);
  });

  test('hashes change, timestamp does not', async () => {
    serveSmallFeed();
    serveCsv(
      '/feed/hashes.csv',
      [hashLine(EVENT_A, '192.0.2.1'), hashLine(EVENT_B, 'b.example')].join('\n'),
    );
    const first = asData(await mispFeedKind.read(context('/feed/')));

    // The generator rewrote EVENT_B without bumping its timestamp.
    serveJson(`/feed/${EVENT_B}.json`, event(EVENT_B, [{ type: 'domain', value: 'c.example' }]));
    serveCsv(
      '/feed/hashes.csv',
      [hashLine(EVENT_A, '192.0.2.1'), hashLine(EVENT_B, 'c.example')].join('\n'),
    );
    server.requests.length = 0;
    const second = asData(await mispFeedKind.read(context('/feed/', stateAfter(first))));

    expect(eventPaths()).toEqual([`/feed/${EVENT_B}.json`]);
    expect(values(second)).toEqual(['domain c.example', 'ipv4 192.0.2.1']);
    expect(mispStats(second).eventsHashesChanged).toBe(1);
    expect(mispStats(second).eventsFetched).toBe(1);
    expect(mispStats(second).eventsUnchanged).toBe(1);
    expect(cursorEvents(second)[EVENT_B]?.hashes).not.toBe(cursorEvents(first)[EVENT_B]?.hashes);
    expect(cursorEvents(second)[EVENT_B]?.timestamp).toBe('100');
  });

  test('same hashes, no event fetched', async () => {
    serveSmallFeed();
    serveCsv(
      '/feed/hashes.csv',
      [hashLine(EVENT_A, '192.0.2.1'), hashLine(EVENT_B, 'b.example')].join('\n'),
    );
    const first = asData(await mispFeedKind.read(context('/feed/')));

    // The same set in another line order and column order.
    serveCsv(
      '/feed/hashes.csv',
      [hashLine(EVENT_B, 'b.example'), hashLine(EVENT_A, '192.0.2.1')]
        .map((line) => line.split(',').reverse().join(','))
        .join('\n'),
    );
    server.requests.length = 0;
    const second = asData(await mispFeedKind.read(context('/feed/', stateAfter(first))));

    expect(eventPaths()).toEqual([]);
    expect(mispStats(second).eventsUnchanged).toBe(2);
    expect(mispStats(second).eventsHashesChanged).toBe(0);
  });

  test('manifest 304, hashes.csv changed', async () => {
    serveJson('/feed/manifest.json', manifest({ [EVENT_A]: '100', [EVENT_B]: '100' }));
    serveJson(`/feed/${EVENT_A}.json`, event(EVENT_A, [{ type: 'ip-dst', value: '192.0.2.1' }]));
    serveJson(`/feed/${EVENT_B}.json`, event(EVENT_B, [{ type: 'domain', value: 'b.example' }]));
    serveCsv(
      '/feed/hashes.csv',
      [hashLine(EVENT_A, '192.0.2.1'), hashLine(EVENT_B, 'b.example')].join('\n'),
    );
    const first = asData(await mispFeedKind.read(context('/feed/')));

    serveJson(`/feed/${EVENT_A}.json`, event(EVENT_A, [{ type: 'ip-dst', value: '192.0.2.9' }]));
    serveCsv(
      '/feed/hashes.csv',
      [hashLine(EVENT_A, '192.0.2.9'), hashLine(EVENT_B, 'b.example')].join('\n'),
    );
    server.requests.length = 0;
    const second = asData(await mispFeedKind.read(context('/feed/', stateAfter(first))));

    expect(server.requests.map((r) => r.path)).toEqual([
      '/feed/manifest.json',
      '/feed/hashes.csv',
      '/feed/manifest.json',
      `/feed/${EVENT_A}.json`,
    ]);
    expect(server.requests[0]?.ifNoneMatch).toBe(first.etag);
    expect(server.requests[2]?.ifNoneMatch).toBeUndefined();
    expect(values(second)).toEqual(['domain b.example', 'ipv4 192.0.2.9']);
    expect(mispStats(second).eventsHashesChanged).toBe(1);
  });

  test('cross-check counts mismatches', async () => {
    serveJson('/feed/manifest.json', manifest({ [EVENT_A]: '100' }));
    serveJson(
      `/feed/${EVENT_A}.json`,
      event(EVENT_A, [
        { type: 'ip-dst', value: '192.0.2.1' },
        { type: 'ip-dst', value: '192.0.2.2' },
        { type: 'domain|ip', value: 'd.example|192.0.2.3' },
        { type: 'text', value: 'a note', to_ids: false },
      ]),
    );
    serveCsv(
      '/feed/hashes.csv',
      [
        hashLine(EVENT_A, '192.0.2.1'),
        // PyMISP lists the parts of a composite value, and attributes without to_ids.
        hashLine(EVENT_A, 'd.example'),
        hashLine(EVENT_A, '192.0.2.3'),
        hashLine(EVENT_A, 'a note'),
        hashLine(EVENT_A, '198.51.100.77'),
        hashLine(EVENT_A, '198.51.100.78'),
      ].join('\n'),
    );

    const result = asData(await mispFeedKind.read(context('/feed/')));
    const stats = mispStats(result);

    expect(values(result)).toEqual([
      'domain d.example',
      'ipv4 192.0.2.1',
      'ipv4 192.0.2.2',
      'ipv4 192.0.2.3',
    ]);
    // 192.0.2.2 is read but not listed; the two 198.51.100.x MD5s match no value.
    expect(stats.attributesNotInHashes).toBe(1);
    expect(stats.hashesNotInEvent).toBe(2);
  });

  test('event missing from hashes.csv', async () => {
    serveSmallFeed();
    serveCsv('/feed/hashes.csv', hashLine(EVENT_A, '192.0.2.1'));

    const result = asData(await mispFeedKind.read(context('/feed/')));

    expect(mispStats(result).attributesNotInHashes).toBe(1);
    expect(mispStats(result).hashesNotInEvent).toBe(0);
  });

  test('hashes.csv appearing refetches nothing', async () => {
    serveSmallFeed();
    const first = asData(await mispFeedKind.read(context('/feed/')));
    expect(cursorEvents(first)[EVENT_A]?.hashes).toBeUndefined();

    serveCsv(
      '/feed/hashes.csv',
      [hashLine(EVENT_A, '192.0.2.1'), hashLine(EVENT_B, 'b.example')].join('\n'),
    );
    server.requests.length = 0;
    const second = asData(await mispFeedKind.read(context('/feed/', stateAfter(first))));

    expect(eventPaths()).toEqual([]);
    expect(mispStats(second).eventsUnchanged).toBe(2);
    expect(cursorEvents(second)[EVENT_A]?.hashes).toMatch(/^[\w-]{22}$/);
  });

  test('crowdsec read from files', async () => {
    const local = context('/unused/');
    local.source = { ...local.source, url: new URL('crowdsec/', FIXTURES).href };

    const result = asData(await mispFeedKind.read(local));

    expect(result.entries).toHaveLength(508);
    expect(mispStats(result).hashesFile).toBe('read');
    expect(mispStats(result).hashesLines).toBe(864);
    expect(mispStats(result).attributesNotInHashes).toBe(0);
  });

  test('hashes.csv change breaks unchanged shortcut', async () => {
    serveSmallFeed();
    serveCsv('/feed/hashes.csv', hashLine(EVENT_A, '192.0.2.1'));
    const first = asData(await mispFeedKind.read(context('/feed/')));

    serveCsv('/feed/hashes.csv', `md5,event_uuid\n${hashLine(EVENT_A, '192.0.2.1')}`);
    const second = await mispFeedKind.read(
      context('/feed/', stateAfter(first), undefined, first.bodyDigest),
    );

    expect(second.kind).toBe('data');
  });
});

describe('mapAttribute', () => {
  const cases: [string, string, string[]][] = [
    ['ip-src', '203.0.113.5', ['ipv4 203.0.113.5']],
    ['ip-dst', '2001:DB8::1', ['ipv6 2001:db8::1']],
    ['ip-dst', '203.0.113.0/24', ['ipv4-cidr 203.0.113.0/24']],
    ['domain', 'Evil.Example', ['domain evil.example']],
    ['hostname', 'c2.evil.example', ['domain c2.evil.example']],
    ['url', 'http://evil.example/a', ['url http://evil.example/a']],
    ['md5', 'D41D8CD98F00B204E9800998ECF8427E', ['md5 d41d8cd98f00b204e9800998ecf8427e']],
    ['sha1', 'a'.repeat(40), [`sha1 ${'a'.repeat(40)}`]],
    ['sha256', 'b'.repeat(64), [`sha256 ${'b'.repeat(64)}`]],
    ['ip-dst|port', '203.0.113.5|443', ['ipv4 203.0.113.5']],
    ['ip-src|port', '2001:db8::2|8080', ['ipv6 2001:db8::2']],
    ['domain|ip', 'evil.example|203.0.113.9', ['domain evil.example', 'ipv4 203.0.113.9']],
    ['filename|md5', 'a|b.exe|' + 'c'.repeat(32), [`md5 ${'c'.repeat(32)}`]],
    ['filename|sha1', 'x.dll|' + 'd'.repeat(40), [`sha1 ${'d'.repeat(40)}`]],
    ['filename|sha256', 'x.dll|' + 'e'.repeat(64), [`sha256 ${'e'.repeat(64)}`]],
  ];

  test.each(cases)('%s %s', (type, raw, expected) => {
    const results = mapAttribute(type, raw) ?? [];
    const mapped = results.map((r) => (r.ok ? `${r.type} ${r.value}` : `invalid: ${r.reason}`));
    expect(mapped).toEqual(expected);
  });

  test('unsupported type', () => {
    expect(mapAttribute('filename', 'a.exe')).toBeUndefined();
  });

  test('ip-src holding a domain', () => {
    const [result] = mapAttribute('ip-src', 'evil.example') ?? [];
    expect(result?.ok).toBe(false);
  });

  test('composite without separator', () => {
    const [result] = mapAttribute('domain|ip', 'evil.example') ?? [];
    expect(result?.ok).toBe(false);
  });
});
