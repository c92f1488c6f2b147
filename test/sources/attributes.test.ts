/**
 * Sighting attributes from sources to hub indicators: a CSV source with
 * attribute columns and a MISP feed with TLP tags, labels, `|port`
 * attributes and comments, polled into a real store.
 */
import { randomUUID } from 'node:crypto';

import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { pino } from 'pino';

import { DEFAULT_SCREEN_SETTINGS } from '../../src/processing/index.js';
import { CollectionProcessing, NO_AGING } from '../../src/processing/policy.js';
import { pollSource, type PollSource } from '../../src/sources/index.js';
import { tlpMarking } from '../../src/stix/index.js';
import { FeedServer } from '../helpers/feed-server.js';
import { requireMongoInCi, storeOpeners, type OpenedTestStore } from '../helpers/stores.js';

// FerretDB, the MongoDB-wire server of CI, scans whole collections.
jest.setTimeout(60_000);

const stores = storeOpeners('feedhub-attributes-');
requireMongoInCi();

const EVENT = '33333333-3333-4333-8333-333333333333';

describe.each(stores)('sighting attributes on $name', ({ open }) => {
  const feeds = new FeedServer();
  let opened: OpenedTestStore;
  let clock = 1_800_000_000_000_000;
  const logger = pino({ level: 'silent' });

  function processing(collectionId: string, source: PollSource): CollectionProcessing {
    return new CollectionProcessing({
      collectionId,
      screen: DEFAULT_SCREEN_SETTINGS,
      withdrawal: { missesBeforeWithdrawal: 1, maxDrop: 0.9 },
      confidenceRule: 'max',
      sources: [
        {
          id: source.id,
          name: source.name,
          confidence: source.confidence,
          weight: 1,
          tlp: source.tlp,
          indicatorTypes: source.indicatorTypes,
          labels: source.labels,
          aging: NO_AGING,
        },
      ],
    });
  }

  async function poll(collectionId: string, source: PollSource) {
    clock += 60_000_000;
    const now = clock;
    const report = await pollSource(
      {
        store: opened.store,
        logger,
        userAgent: 'test',
        nowMicros: () => now,
        processing: processing(collectionId, source),
      },
      collectionId,
      source,
    );
    expect(report.error).toBeUndefined();
    return report;
  }

  /** Returns the latest version of every indicator in the collection, by its `name` (the value). */
  async function indicators(collectionId: string): Promise<Map<string, Record<string, unknown>>> {
    const page = await opened.store.queryObjects({
      collectionId,
      types: ['indicator'],
      limit: 100,
    });
    const byName = new Map<string, Record<string, unknown>>();
    for (const item of page.items) {
      const object = JSON.parse(item.json) as Record<string, unknown>;
      byName.set(object.name as string, object);
    }
    return byName;
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

  describe('csv source', () => {
    function csvSource(): PollSource {
      return {
        id: 'threatfox',
        name: 'ThreatFox',
        kind: 'csv',
        url: feeds.url('/iocs.csv'),
        valueType: 'auto',
        timeoutMs: 5000,
        maxBytes: 1 << 20,
        confidence: 50,
        tlp: 'clear',
        indicatorTypes: ['malicious-activity'],
        labels: ['threatfox'],
        csv: {
          delimiter: ',',
          comment: '#',
          header: true,
          columns: [{ column: 'ioc', valueType: 'auto' }],
          skip: [],
          attributes: [
            { column: 'first_seen_utc', kind: 'firstSeen' },
            { column: 'port', kind: 'port' },
            { column: 'malware', kind: 'malwareFamily' },
            { column: 'tags', kind: 'tags' },
            { column: 'reference', kind: 'description' },
            { column: 'confidence_level', kind: 'confidence' },
          ],
        },
      };
    }

    it('attribute columns reach the indicator', async () => {
      feeds.set('/iocs.csv', {
        kind: 'body',
        etag: false,
        body: [
          'first_seen_utc,ioc,port,malware,tags,reference,confidence_level',
          '2024-05-01 10:00:00,11.1.1.1,443,Cobalt Strike,"c2,beacon",seen beaconing,90',
          '2024-05-02 10:00:00,11.1.1.2,,,,,',
        ].join('\n'),
      });
      const collectionId = randomUUID();

      const report = await poll(collectionId, csvSource());

      expect(report.created).toBe(2);
      const byName = await indicators(collectionId);
      const attributed = byName.get('11.1.1.1');
      expect(attributed?.confidence).toBe(90);
      expect(attributed?.labels).toEqual(['beacon', 'c2', 'threatfox']);
      expect(attributed?.description).toBe('seen beaconing');
      const plain = byName.get('11.1.1.2');
      expect(plain?.confidence).toBe(50);
      expect(plain?.labels).toEqual(['threatfox']);
      expect(plain?.description).toBeUndefined();

      const entries = await opened.store.listIndicatorEntries(collectionId);
      expect(entries[0]?.attributes).toEqual({
        confidenceBySource: { threatfox: 90 },
        labels: ['beacon', 'c2'],
        ports: [443],
        malwareFamilies: ['Cobalt Strike'],
        description: 'seen beaconing',
        firstSeen: Date.UTC(2024, 4, 1, 10) * 1000,
      });
    });

    it('changed attribute makes a new version', async () => {
      const body = (confidence: number) =>
        `first_seen_utc,ioc,port,malware,tags,reference,confidence_level\n,11.1.2.1,,,,,${confidence}\n`;
      feeds.set('/iocs.csv', { kind: 'body', etag: false, body: body(40) });
      const collectionId = randomUUID();
      await poll(collectionId, csvSource());

      const same = await poll(collectionId, csvSource());
      expect(same.merged).toBe(0);
      feeds.set('/iocs.csv', { kind: 'body', etag: false, body: body(70) });
      const changed = await poll(collectionId, csvSource());

      expect(changed.merged).toBe(1);
      expect(changed.objectsAdded).toBe(1);
      expect((await indicators(collectionId)).get('11.1.2.1')?.confidence).toBe(70);
    });
  });

  describe('misp feed', () => {
    function mispSource(): PollSource {
      return {
        id: 'misp',
        name: 'MISP',
        kind: 'misp-feed',
        url: feeds.url('/misp/'),
        valueType: 'auto',
        timeoutMs: 5000,
        maxBytes: 1 << 20,
        confidence: 60,
        tlp: 'green',
        indicatorTypes: ['malicious-activity'],
        labels: [],
      };
    }

    it('tlp tag and tags on the indicator', async () => {
      feeds.set('/misp/manifest.json', {
        kind: 'body',
        contentType: 'application/json',
        body: JSON.stringify({ [EVENT]: { timestamp: '1700000000', info: 'x' } }),
      });
      feeds.set(`/misp/${EVENT}.json`, {
        kind: 'body',
        contentType: 'application/json',
        body: JSON.stringify({
          Event: {
            uuid: EVENT,
            info: 'phishing kit',
            Tag: [{ name: 'tlp:amber' }, { name: 'misp-galaxy:threat-actor="TA505"' }],
            Attribute: [
              {
                type: 'ip-dst|port',
                value: '11.2.2.2|8443',
                to_ids: true,
                comment: 'panel behind the kit',
                Tag: [{ name: 'phishing' }],
              },
              { type: 'domain', value: 'kit.example.org', to_ids: true },
            ],
          },
        }),
      });
      const collectionId = randomUUID();

      await poll(collectionId, mispSource());

      const amber = tlpMarking('amber');
      const byName = await indicators(collectionId);
      const address = byName.get('11.2.2.2');
      expect(address?.object_marking_refs).toEqual([amber.id]);
      expect(address?.labels).toEqual(['misp-galaxy:threat-actor="TA505"', 'phishing']);
      expect(address?.description).toBe('panel behind the kit');
      expect(byName.get('kit.example.org')?.object_marking_refs).toEqual([amber.id]);
      const markings = await opened.store.queryObjects({
        collectionId,
        ids: [amber.id],
        limit: 10,
      });
      expect(markings.items).toHaveLength(1);

      const entries = await opened.store.listIndicatorEntries(collectionId, ['ipv4']);
      expect(entries[0]?.attributes?.ports).toEqual([8443]);
      expect(entries[0]?.attributes?.tlp).toBe('amber');
    });
  });
});
