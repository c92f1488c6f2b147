import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';

import { loadConfig, type Config } from '../../src/app/config.js';
import { SQLITE_FILE } from '../../src/app/store.js';
import { explainValue, findCollection } from '../../src/app/why.js';
import { createSqliteStore } from '../../src/store/index.js';
import { startHub, type Hub } from '../../src/app/hub.js';
import { createLogger } from '../../src/app/logger.js';
import { FeedServer } from '../helpers/feed-server.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/feeds/', import.meta.url));
const IPSUM = readFileSync(join(FIXTURES, 'stamparm-ipsum/levels/5.txt'), 'utf8');
const RW_DOMAINS = readFileSync(join(FIXTURES, 'abusech-ransomwaretracker/RW_DOMBL.txt'), 'utf8');
const IPSUM_IPS = IPSUM.split('\n').filter((line) => /^\d/.test(line));

const COLLECTION = '5d0c8a3e-8f0b-4b7a-9c3e-2f1d0a9b8c7d';
const TAXII_ACCEPT = 'application/taxii+json;version=2.1';

/** Values that must never reach a view, with the line that lists them. */
const DANGEROUS_IPS = ['0.0.0.0/0', '10.0.0.0/8', '8.8.8.8', '192.168.1.0/24', '203.0.113.9'];
const DANGEROUS_DOMAINS = ['google.com', 'co.uk', 'mail.operator.example'];

interface Indicator {
  id: string;
  type: string;
  modified: string;
  pattern?: string;
  valid_until?: string;
  external_references?: { source_name: string; external_id: string }[];
}

async function viewLines(hub: Hub, name: string): Promise<string[]> {
  const response = await fetch(`${hub.url}/feeds/proc/${name}`);
  expect(response.status).toBe(200);
  return (await response.text()).split('\n').filter((line) => line !== '');
}

/** Returns the objects added after `addedAfter` (a TAXII timestamp), following pages. */
async function objectsAddedAfter(hub: Hub, addedAfter?: string): Promise<Indicator[]> {
  const objects: Indicator[] = [];
  const base = `${hub.url}/taxii2/hub/collections/${COLLECTION}/objects/?limit=500&match[type]=indicator`;
  let url = addedAfter ? `${base}&added_after=${encodeURIComponent(addedAfter)}` : base;
  for (let page = 0; page < 100; page++) {
    const response = await fetch(url, { headers: { accept: TAXII_ACCEPT } });
    expect(response.status).toBe(200);
    const body = (await response.json()) as {
      objects?: Indicator[];
      more?: boolean;
      next?: string;
    };
    objects.push(...(body.objects ?? []));
    if (!body.more) return objects;
    url = `${base}${addedAfter ? `&added_after=${encodeURIComponent(addedAfter)}` : ''}&next=${encodeURIComponent(body.next!)}`;
  }
  throw new Error('paging did not end');
}

/** Returns a TAXII timestamp of now; every object the hub adds later has a later date_added. */
async function nowTimestamp(): Promise<string> {
  const now = new Date().toISOString();
  await new Promise((resolve) => setTimeout(resolve, 5));
  return now;
}

async function waitFor(what: string, probe: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (await probe()) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('hub processing end to end', () => {
  const feeds = new FeedServer();
  let dir: string;
  let hub: Hub;
  let config: Config;
  const ipFeed = `${IPSUM}${DANGEROUS_IPS.join('\n')}\n`;

  beforeAll(async () => {
    await feeds.start();
    feeds.set('/ips.txt', { kind: 'body', body: ipFeed });
    feeds.set('/domains.txt', {
      kind: 'body',
      body: `${RW_DOMAINS}\n${DANGEROUS_DOMAINS.join('\n')}\n`,
    });

    dir = mkdtempSync(join(tmpdir(), 'feedhub-processing-'));
    mkdirSync(join(dir, 'collections'));
    writeFileSync(
      join(dir, 'collections', 'proc.yaml'),
      `id: ${COLLECTION}
alias: proc
title: Processing test
guards:
  protected: [operator.example]
policy:
  maxDrop: 0.5
sources:
  - id: ipsum
    kind: text-list
    url: ${feeds.url('/ips.txt')}
    interval: 1h
    timeout: 2s
  - id: domains
    kind: text-list
    url: ${feeds.url('/domains.txt')}
    valueType: domain
    interval: 1h
    timeout: 2s
views:
  - name: ip
    kind: edl-ip
  - name: domain
    kind: edl-domain
`,
    );
    config = loadConfig({
      FEEDHUB_PORT: '0',
      FEEDHUB_DATA_DIR: join(dir, 'data'),
      FEEDHUB_COLLECTIONS_DIR: join(dir, 'collections'),
      FEEDHUB_LOG_LEVEL: 'silent',
    });
    hub = await startHub(config, createLogger('silent'), {
      processEveryMs: 100,
      lockLifetimeMs: 2000,
    });
    await waitFor('the first polls', async () => {
      const ips = await viewLines(hub, 'ip');
      const domains = await viewLines(hub, 'domain');
      return ips.length >= IPSUM_IPS.length && domains.length > 1000;
    });
  });

  afterAll(async () => {
    await hub?.stop();
    await feeds.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('dangerous values never reach views', async () => {
    const ips = await viewLines(hub, 'ip');
    const domains = await viewLines(hub, 'domain');
    for (const value of DANGEROUS_IPS) expect(ips).not.toContain(value);
    for (const value of DANGEROUS_DOMAINS) expect(domains).not.toContain(value);
    expect(ips).toHaveLength(IPSUM_IPS.length);
    expect(ips).toContain(IPSUM_IPS[0]);
  });

  it('dangerous values never become indicators', async () => {
    const patterns = (await objectsAddedAfter(hub)).map((o) => o.pattern ?? '');
    for (const value of [...DANGEROUS_IPS, ...DANGEROUS_DOMAINS]) {
      expect(patterns.some((pattern) => pattern.includes(`'${value}'`))).toBe(false);
    }
  });

  it('run report counts refusals', async () => {
    feeds.set('/ips.txt', { kind: 'body', body: `${ipFeed}# poll again\n` });
    const report = await hub.pollNow!(COLLECTION, 'ipsum');

    expect(report?.outcome).toBe('applied');
    expect(report?.refused).toEqual({ 'any-address': 1 });
    expect(report?.allowListed).toBe(4);
    expect(report?.created).toBe(0);
    expect(report?.refreshed).toBe(IPSUM_IPS.length);
    expect(report?.plausible).toBe(true);
  });

  it('domain report counts guards', async () => {
    feeds.set('/domains.txt', {
      kind: 'body',
      body: `${RW_DOMAINS}\n${DANGEROUS_DOMAINS.join('\n')}\n# again\n`,
    });
    const report = await hub.pollNow!(COLLECTION, 'domains');
    expect(report?.refused).toEqual({ 'public-suffix': 1, protected: 1 });
    expect(report?.allowListed).toBe(1);
  });

  it('metrics expose counts', async () => {
    const response = await fetch(`${hub.url}/metrics`);
    expect(response.status).toBe(200);
    const text = await response.text();
    expect(text).toMatch(
      new RegExp(
        `feedhub_refused_values_total\\{collection="${COLLECTION}",source="ipsum",rule="any-address"\\} [1-9]`,
      ),
    );
    expect(text).toMatch(
      new RegExp(
        `feedhub_last_poll_entries\\{collection="${COLLECTION}",source="ipsum",count="valid"\\} \\d+`,
      ),
    );
  });

  it('missing value withdrawn as new version', async () => {
    const gone = IPSUM_IPS[0]!;
    const before = await nowTimestamp();
    feeds.set('/ips.txt', {
      kind: 'body',
      body: ipFeed
        .split('\n')
        .filter((line) => line !== gone)
        .join('\n'),
    });
    const report = await hub.pollNow!(COLLECTION, 'ipsum');
    expect(report?.withdrawn).toBe(1);
    expect(await viewLines(hub, 'ip')).not.toContain(gone);

    const added = await objectsAddedAfter(hub, before);
    expect(added).toHaveLength(1);
    const version = added[0]!;
    expect(version.pattern).toBe(`[ipv4-addr:value = '${gone}']`);
    expect(version.valid_until).toBe(version.modified);
    expect(version.external_references).toEqual([{ source_name: 'ipsum', external_id: 'ipsum' }]);
  });

  it('returning value reactivated', async () => {
    const back = IPSUM_IPS[0]!;
    const before = await nowTimestamp();
    feeds.set('/ips.txt', { kind: 'body', body: ipFeed });
    const report = await hub.pollNow!(COLLECTION, 'ipsum');

    expect(report?.reactivated).toBe(1);
    expect(await viewLines(hub, 'ip')).toContain(back);
    const added = await objectsAddedAfter(hub, before);
    expect(added).toHaveLength(1);
    expect(added[0]?.valid_until).toBeUndefined();
  });

  it('truncated poll withdraws nothing', async () => {
    const viewBefore = await viewLines(hub, 'ip');
    const before = await nowTimestamp();
    const truncated = IPSUM_IPS.slice(0, 100).join('\n');
    feeds.set('/ips.txt', { kind: 'body', body: `${truncated}\n` });
    const report = await hub.pollNow!(COLLECTION, 'ipsum');

    expect(report?.outcome).toBe('applied');
    expect(report?.plausible).toBe(false);
    expect(report?.withdrawn).toBe(0);
    expect(await viewLines(hub, 'ip')).toEqual(viewBefore);
    expect(await objectsAddedAfter(hub, before)).toEqual([]);
  });

  it('failed poll withdraws nothing', async () => {
    const viewBefore = await viewLines(hub, 'ip');
    feeds.set('/ips.txt', { kind: 'status', status: 500 });
    const report = await hub.pollNow!(COLLECTION, 'ipsum');

    expect(report?.outcome).toBe('failed');
    expect(await viewLines(hub, 'ip')).toEqual(viewBefore);
  });

  it('why explains each state', async () => {
    const store = createSqliteStore({ file: join(dir, 'data', SQLITE_FILE) });
    await store.init();
    const collection = findCollection(config, 'proc')!;

    const listed = await explainValue(store, collection, IPSUM_IPS[2]!);
    expect(listed.state).toBe('active');
    expect(listed.sightings.map((s) => s.sourceId)).toEqual(['ipsum']);
    expect(listed.confidence).toBe(50);
    expect(listed.views).toEqual([
      { name: 'ip', listed: true },
      { name: 'domain', listed: false, reason: 'the edl-domain view lists no ipv4 values' },
    ]);

    const resolver = await explainValue(store, collection, '8.8.8.8');
    expect(resolver.state).toBe('unknown');
    expect(resolver.screen).toMatch(/allow-listed/);

    const everything = await explainValue(store, collection, '0.0.0.0/0');
    expect(everything.screen).toBe('refused by the any-address guard');
    expect(everything.views[0]).toEqual({
      name: 'ip',
      listed: false,
      reason: 'the value is unknown',
    });

    const invalid = await explainValue(store, collection, '300.1.1.1');
    expect(invalid.invalid).toMatch(/invalid IPv4/);
    await store.close();
  });
});
