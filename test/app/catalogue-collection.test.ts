/**
 * A collection built only from catalogue entries, each named with its URL
 * pointed at a local copy: a CSV blocklist, a STIX bundle, a MISP feed and
 * the Microsoft 365 ranges as an allow-list.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';

import type { Hub } from '../../src/app/hub.js';
import { FeedServer } from '../helpers/feed-server.js';
import { startHubOnRequest } from '../helpers/hub.js';
import { requireMongoInCi, testStores } from '../helpers/stores.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/', import.meta.url));
const FEODO = readFileSync(join(FIXTURES, 'feeds/abusech-feodotracker/ipblocklist.csv'), 'utf8');
const FEODO_IPS = [...FEODO.matchAll(/^"[^"]*","(\d{1,3}(?:\.\d{1,3}){3})"/gm)].map((m) => m[1]!);
const MISP_DIR = join(FIXTURES, 'misp/crowdsec');
const ATTACK = readFileSync(join(FIXTURES, 'stix/mitre-cti-stix20/pre-attack.json'), 'utf8');
const M365_ENDPOINTS = JSON.parse(
  readFileSync(join(FIXTURES, 'handmade/microsoft-365-endpoints-sample.json'), 'utf8'),
) as { ips?: string[] }[];
const M365_VERSION = readFileSync(
  join(FIXTURES, 'handmade/microsoft-365-version-sample.json'),
  'utf8',
);

/** The to_ids values of the MISP fixture's events. */
const MISP_VALUES = readdirSync(MISP_DIR)
  .filter((name) => /^[0-9a-f-]{36}\.json$/.test(name))
  .flatMap((name) => {
    const event = JSON.parse(readFileSync(join(MISP_DIR, name), 'utf8')) as {
      Event: { Attribute?: { value: string; to_ids: boolean }[] };
    };
    return (event.Event.Attribute ?? []).filter((a) => a.to_ids).map((a) => a.value);
  });

const COLLECTION = '5d6c3b2a-1f0e-4d9c-8b7a-695847362514';
// Made for the test: a Feodo address also listed as a Microsoft 365 range.
const SHARED_IP = FEODO_IPS[0]!;

describe.each(testStores())('catalogue collection on $name', (store) => {
  const feeds = new FeedServer();
  let dir: string;
  let hub: Hub;

  async function ipView(): Promise<Set<string>> {
    const response = await fetch(`${hub.url}/feeds/combined/ip`);
    expect(response.status).toBe(200);
    return new Set((await response.text()).split('\n').filter((line) => line !== ''));
  }

  beforeAll(async () => {
    await feeds.start();
    // The polls that run at start fail without retries, so the test decides the order.
    for (const path of ['/feodo.csv', '/attack.json', '/misp/manifest.json', '/m365/version']) {
      feeds.set(path, { kind: 'status', status: 404 });
    }

    dir = mkdtempSync(join(tmpdir(), 'feedhub-catalogue-collection-'));
    mkdirSync(join(dir, 'collections'));
    writeFileSync(
      join(dir, 'collections', 'combined.yaml'),
      `id: ${COLLECTION}
alias: combined
title: Catalogue entries together
sources:
  - catalog: microsoft-365-ips
    url: ${feeds.url('/m365/endpoints')}
    versionUrl: ${feeds.url('/m365/version')}
  - catalog: abusech-feodo
    url: ${feeds.url('/feodo.csv')}
  - catalog: mitre-attack-bundle
    url: ${feeds.url('/attack.json')}
  - catalog: circl-osint
    url: ${feeds.url('/misp/')}
views:
  - { name: ip, kind: edl-ip }
`,
    );
    hub = await startHubOnRequest(dir, store.env());
  }, 120_000);

  afterAll(async () => {
    await hub?.stop();
    await feeds.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('polls every entry by name', async () => {
    feeds.set('/feodo.csv', { kind: 'body', body: FEODO });
    feeds.set('/attack.json', { kind: 'body', body: ATTACK });
    for (const name of readdirSync(MISP_DIR)) {
      if (name === 'LICENSE') continue;
      feeds.set(`/misp/${name}`, { kind: 'body', body: readFileSync(join(MISP_DIR, name)) });
    }
    const endpoints = structuredClone(M365_ENDPOINTS);
    endpoints[0]!.ips = [...(endpoints[0]!.ips ?? []), `${SHARED_IP}/32`];
    feeds.set('/m365/endpoints', { kind: 'body', body: JSON.stringify(endpoints) });
    feeds.set('/m365/version', { kind: 'body', body: M365_VERSION });

    const allow = await hub.pollNow!(COLLECTION, 'microsoft-365-ips');
    expect(allow?.outcome).toBe('applied');
    expect(allow?.allowEntries).toBeGreaterThan(0);
    for (const source of ['abusech-feodo', 'mitre-attack-bundle', 'circl-osint']) {
      const report = await hub.pollNow!(COLLECTION, source);
      expect([source, report?.outcome === 'failed']).toEqual([source, false]);
    }
  }, 300_000);

  it('lists blocklist and MISP values', async () => {
    const view = await ipView();
    expect(view.has(FEODO_IPS[1]!)).toBe(true);
    expect(view.has(MISP_VALUES[0]!)).toBe(true);
    expect(view.size).toBe(new Set([...FEODO_IPS, ...MISP_VALUES]).size - 1);
  });

  it('keeps the Microsoft 365 address out', async () => {
    expect((await ipView()).has(SHARED_IP)).toBe(false);
  });

  it('publishes the ATT&CK objects', async () => {
    const response = await fetch(
      `${hub.url}/taxii2/hub/collections/${COLLECTION}/objects/?match[type]=attack-pattern&limit=1000`,
      { headers: { accept: 'application/taxii+json;version=2.1' } },
    );
    const envelope = (await response.json()) as { objects?: { type: string }[] };
    expect(envelope.objects?.length).toBe((ATTACK.match(/"type": "attack-pattern"/g) ?? []).length);
  });
});

requireMongoInCi();
