import { jest } from '@jest/globals';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../../src/app/config.js';
import { startHub, type Hub } from '../../src/app/hub.js';
import { createLogger } from '../../src/app/logger.js';
import { FeedServer } from '../helpers/feed-server.js';
import { requireMongoInCi, testStores } from '../helpers/stores.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/feeds/', import.meta.url));
const FEODO = readFileSync(join(FIXTURES, 'abusech-feodotracker/ipblocklist.csv'), 'utf8');
const RW_DOMAINS_FULL = readFileSync(
  join(FIXTURES, 'abusech-ransomwaretracker/RW_DOMBL.txt'),
  'utf8',
);
const RW_URLS_FULL = readFileSync(join(FIXTURES, 'abusech-ransomwaretracker/RW_URLBL.txt'), 'utf8');

/** The first `count` lines of a list, header comments included. */
const head = (text: string, count: number) => `${text.split('\n').slice(0, count).join('\n')}\n`;

const IP_COLLECTION = '3b0f64b8-5d3c-4c55-9a43-7e9c1c0e2a11';
const RW_COLLECTION = '9f2d1c7e-0a6b-4e8f-8d3a-5b4c3d2e1f00';
const TAXII_ACCEPT = 'application/taxii+json;version=2.1';

// Counted here without the hub's parser: the data rows of the Feodo CSV, and
// the non-comment lines of the Ransomware Tracker lists.
const FEODO_IPS = new Set(
  [...FEODO.matchAll(/^"[^"]*","(\d{1,3}(?:\.\d{1,3}){3})"/gm)].map((m) => m[1]!),
);
const listLines = (text: string) =>
  text.split('\n').filter((line) => line.trim() !== '' && !line.startsWith('#'));

interface Envelope {
  more?: boolean;
  next?: string;
  objects?: { type: string; id: string; pattern?: string }[];
}

async function getJson<T>(url: string): Promise<{ status: number; body: T; headers: Headers }> {
  const response = await fetch(url, { headers: { accept: TAXII_ACCEPT } });
  return { status: response.status, body: (await response.json()) as T, headers: response.headers };
}

async function getText(
  url: string,
): Promise<{ status: number; text: string; etag: string | null }> {
  const response = await fetch(url);
  return {
    status: response.status,
    text: await response.text(),
    etag: response.headers.get('etag'),
  };
}

/** Pages through a collection's objects with small pages, following `next`. */
async function allObjects(
  hub: Hub,
  collectionId: string,
): Promise<NonNullable<Envelope['objects']>> {
  const objects: NonNullable<Envelope['objects']> = [];
  let url = `${hub.url}/taxii2/hub/collections/${collectionId}/objects/?limit=10`;
  for (let page = 0; page < 10_000; page++) {
    const { status, body } = await getJson<Envelope>(url);
    expect(status).toBe(200);
    objects.push(...(body.objects ?? []));
    if (!body.more) return objects;
    expect(body.next).toBeDefined();
    url = `${hub.url}/taxii2/hub/collections/${collectionId}/objects/?limit=10&next=${encodeURIComponent(body.next!)}`;
  }
  throw new Error('paging did not end');
}

function patternValues(objects: NonNullable<Envelope['objects']>): string[] {
  return objects
    .filter((o) => o.type === 'indicator')
    .map(
      (o) =>
        /^\[[a-z0-9-]+:value = '(.*)'\]$/.exec(o.pattern ?? '')?.[1] ?? `unparsed ${o.pattern}`,
    );
}

async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 15_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await probe();
    if (value !== undefined) return value;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

requireMongoInCi();

// FerretDB, the MongoDB-wire server of CI, is much slower than SQLite here.
jest.setTimeout(120_000);

describe.each(testStores())('hub end to end on $name', (testStore) => {
  const feeds = new FeedServer();
  let dir: string;
  let hub: Hub;
  const storeEnv = testStore.env();
  // NOTE: FerretDB 1.24 with its SQLite handler uses an index only for _id
  // lookups and scans whole collections otherwise, so the MongoDB run polls the
  // first 400 lines of each Ransomware Tracker list rather than all of them.
  const RW_DOMAINS = testStore.name === 'mongodb' ? head(RW_DOMAINS_FULL, 400) : RW_DOMAINS_FULL;
  const RW_URLS = testStore.name === 'mongodb' ? head(RW_URLS_FULL, 400) : RW_URLS_FULL;

  const start = async () => {
    const config = loadConfig({
      ...storeEnv,
      FEEDHUB_PORT: '0',
      FEEDHUB_DATA_DIR: join(dir, 'data'),
      FEEDHUB_COLLECTIONS_DIR: join(dir, 'collections'),
      FEEDHUB_LOG_LEVEL: 'silent',
    });
    return startHub(config, createLogger('silent'), {
      processEveryMs: 100,
      lockLifetimeMs: 2000,
      viewDebounceMs: 50,
    });
  };

  beforeAll(async () => {
    await feeds.start();
    feeds.set('/feodo.csv', { kind: 'body', body: FEODO });
    feeds.set('/rw-domains.txt', { kind: 'body', body: RW_DOMAINS, etag: false });
    feeds.set('/rw-urls.txt', { kind: 'body', body: RW_URLS });

    dir = mkdtempSync(join(tmpdir(), 'feedhub-hub-'));
    mkdirSync(join(dir, 'collections'));
    writeFileSync(
      join(dir, 'collections', 'ip.yaml'),
      `id: ${IP_COLLECTION}
alias: feodo
title: Feodo Tracker
sources:
  - id: feodo
    kind: text-list
    url: ${feeds.url('/feodo.csv')}
    extract: '^"[^"]*","([0-9][^"]*)"'
    valueType: ipv4
    interval: 1h
    timeout: 2s
views:
  - name: ip
    kind: edl-ip
`,
    );
    writeFileSync(
      join(dir, 'collections', 'rw.yaml'),
      `id: ${RW_COLLECTION}
alias: rw
title: Ransomware Tracker
sources:
  - id: domains
    kind: text-list
    url: ${feeds.url('/rw-domains.txt')}
    valueType: domain
    interval: 1h
  - id: urls
    kind: text-list
    url: ${feeds.url('/rw-urls.txt')}
    valueType: url
    interval: 1h
`,
    );
    hub = await start();
  });

  afterAll(async () => {
    await hub?.stop();
    await feeds.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const manifestCount = async (collectionId: string) => {
    let count = 0;
    let url = `${hub.url}/taxii2/hub/collections/${collectionId}/manifest/?limit=1000`;
    for (;;) {
      const { body } = await getJson<Envelope>(url);
      count += body.objects?.length ?? 0;
      if (!body.more) return count;
      url = `${hub.url}/taxii2/hub/collections/${collectionId}/manifest/?limit=1000&next=${encodeURIComponent(body.next!)}`;
    }
  };

  it('publishes one indicator per valid Feodo entry after the first scheduled poll', async () => {
    expect(FEODO_IPS.size).toBe(28);
    // The first poll runs as a job right after the start; an identity and a marking come with it.
    await waitFor('the first Feodo poll', async () =>
      (await manifestCount(IP_COLLECTION)) >= FEODO_IPS.size + 2 ? true : undefined,
    );

    const objects = await allObjects(hub, IP_COLLECTION);
    const values = patternValues(objects);
    expect(values).toHaveLength(FEODO_IPS.size);
    expect(new Set(values)).toEqual(FEODO_IPS);
    expect(objects.filter((o) => o.type === 'identity')).toHaveLength(1);
    expect(objects.filter((o) => o.type === 'marking-definition')).toHaveLength(1);
    expect(new Set(objects.map((o) => o.id)).size).toBe(objects.length);
  });

  it('serves the same IPs as an EDL with an ETag and 304', async () => {
    // Views render shortly after a scheduled poll (debounced).
    const edl = await waitFor('the Feodo EDL render', async () => {
      const response = await getText(`${hub.url}/feeds/feodo/ip`);
      return response.status === 200 && response.text !== '' ? response : undefined;
    });
    expect(edl.status).toBe(200);
    const lines = edl.text.split('\n').filter((line) => line !== '');
    expect(lines).toHaveLength(FEODO_IPS.size);
    expect(new Set(lines)).toEqual(FEODO_IPS);
    expect(edl.etag).toMatch(/^"[^"]+"$/);

    const again = await fetch(`${hub.url}/feeds/feodo/ip`, {
      headers: { 'if-none-match': edl.etag! },
    });
    expect(again.status).toBe(304);
  });

  it('publishes domain and URL lists with one entry per line of the snapshot', async () => {
    const domains = listLines(RW_DOMAINS);
    const urls = listLines(RW_URLS);
    // Views are rendered after each poll is stored, so wait for the views themselves.
    const edlLines = async (view: string) =>
      (await getText(`${hub.url}/feeds/rw/${view}`)).text.split('\n').filter(Boolean).length;
    await waitFor(
      'the Ransomware Tracker views',
      async () =>
        // On MongoDB a poll's writes become visible batch by batch, so a render
        // may run in the middle of one; the views settle with the next render.
        (await edlLines('domain')) === new Set(domains.map((d) => d.toLowerCase())).size &&
        (await edlLines('url')) === urls.length
          ? true
          : undefined,
      60_000,
    );

    const domainEdl = (await getText(`${hub.url}/feeds/rw/domain`)).text
      .split('\n')
      .filter(Boolean);
    expect(domainEdl).toHaveLength(new Set(domains.map((d) => d.toLowerCase())).size);
    expect(new Set(domainEdl)).toEqual(new Set(domains.map((d) => d.toLowerCase())));

    const urlEdl = (await getText(`${hub.url}/feeds/rw/url`)).text.split('\n').filter(Boolean);
    expect(urlEdl).toHaveLength(urls.length);
    // PAN-OS form: no scheme.
    expect(urlEdl).toContain('00005ik.rcomhost.com/7fg3g');
  });

  it('adds nothing when the same data is polled again', async () => {
    const before = await manifestCount(IP_COLLECTION);
    const conditional = await hub.pollNow!(IP_COLLECTION, 'feodo');
    expect(conditional?.outcome).toBe('not-modified');

    // Without an ETag the body is parsed again and every value is only refreshed.
    const rwBefore = await manifestCount(RW_COLLECTION);
    const full = await hub.pollNow!(RW_COLLECTION, 'domains');
    expect(full?.outcome).toBe('applied');
    expect(full?.created).toBe(0);
    expect(full?.refreshed).toBe(listLines(RW_DOMAINS).length);

    expect(await manifestCount(IP_COLLECTION)).toBe(before);
    expect(await manifestCount(RW_COLLECTION)).toBe(rwBefore);
  });

  it('serialises polls of one source', async () => {
    const before = await manifestCount(RW_COLLECTION);
    // Without an ETag both polls fetch the list; the delay makes the fetches overlap unless serialised.
    feeds.set('/rw-domains.txt', { kind: 'body', body: RW_DOMAINS, etag: false, delayMs: 300 });
    const reports = await Promise.all([
      hub.pollNow!(RW_COLLECTION, 'domains'),
      hub.pollNow!(RW_COLLECTION, 'domains'),
    ]);
    feeds.set('/rw-domains.txt', { kind: 'body', body: RW_DOMAINS, etag: false });

    expect(feeds.maxInFlight('/rw-domains.txt')).toBe(1);
    expect(reports.map((report) => report?.outcome)).toEqual(['applied', 'applied']);
    expect(reports.map((report) => report?.created)).toEqual([0, 0]);
    expect(await manifestCount(RW_COLLECTION)).toBe(before);
  });

  describe.each([
    ['a 500', { kind: 'status', status: 500, body: 'Internal Server Error' } as const, /500/],
    ['a timeout', { kind: 'hang' } as const, /timed out|timeout/i],
    [
      'an HTML page',
      {
        kind: 'body',
        body: '<!DOCTYPE html>\n<html><body>Please log in</body></html>\n',
        contentType: 'text/html',
      } as const,
      /html/i,
    ],
    ['an empty body', { kind: 'body', body: '' } as const, /no valid|empty/i],
    [
      'a body of mostly unmatched lines',
      {
        kind: 'body',
        body: 'not an address\n'.repeat(50) + '"2024-01-01 00:00:00","203.0.113.9","443"\n',
      } as const,
      /unmatched/i,
    ],
    [
      'a body of mostly invalid values',
      {
        kind: 'body',
        body:
          '"2024-01-01 00:00:00","999.1.1.1","443"\n'.repeat(50) +
          '"2024-01-01 00:00:00","203.0.113.9","443"\n',
      } as const,
      /invalid/i,
    ],
  ])('a poll that gets %s', (_name, behaviour, reason) => {
    it('changes nothing and reports why', async () => {
      const edlBefore = await getText(`${hub.url}/feeds/feodo/ip`);
      const countBefore = await manifestCount(IP_COLLECTION);

      feeds.set('/feodo.csv', behaviour);
      const report = await hub.pollNow!(IP_COLLECTION, 'feodo');
      feeds.set('/feodo.csv', { kind: 'body', body: FEODO });

      expect(report?.outcome).toBe('failed');
      expect(report?.error).toMatch(reason);
      expect(await manifestCount(IP_COLLECTION)).toBe(countBefore);
      const edlAfter = await getText(`${hub.url}/feeds/feodo/ip`);
      expect(edlAfter.etag).toBe(edlBefore.etag);
      expect(edlAfter.text).toBe(edlBefore.text);
    });
  });

  it('adds a new value from a changed feed as one new indicator', async () => {
    const before = await manifestCount(IP_COLLECTION);
    feeds.set('/feodo.csv', {
      kind: 'body',
      body: `${FEODO}\n"2024-04-05 00:00:00","45.155.205.77","443","online","2024-04-05","Pikabot"\n`,
    });
    const report = await hub.pollNow!(IP_COLLECTION, 'feodo');
    expect(report?.outcome).toBe('applied');
    expect(report?.created).toBe(1);
    expect(await manifestCount(IP_COLLECTION)).toBe(before + 1);
    expect((await getText(`${hub.url}/feeds/feodo/ip`)).text.split('\n')).toContain(
      '45.155.205.77',
    );
  });

  it('keeps objects, views and jobs across a restart', async () => {
    const count = await manifestCount(IP_COLLECTION);
    const edl = await getText(`${hub.url}/feeds/feodo/ip`);
    await hub.stop();

    hub = await start();
    expect(await manifestCount(IP_COLLECTION)).toBe(count);
    const after = await getText(`${hub.url}/feeds/feodo/ip`);
    expect(after.etag).toBe(edl.etag);
    const report = await hub.pollNow!(IP_COLLECTION, 'feodo');
    expect(report?.outcome).toBe('not-modified');
    expect(await manifestCount(IP_COLLECTION)).toBe(count);
  });

  // A long synchronous step (a large poll's write transaction) delays the
  // timers of both ends. A client may then reuse its pooled connection just
  // as the server's idle timer closes it, which with Node's 5 s default reset
  // requests under load, so the server keeps idle connections longer.
  it('keeps idle connections for 65 s', async () => {
    const response = await fetch(`${hub.url}/healthz`);
    expect(response.headers.get('keep-alive')).toBe('timeout=65');
    expect(await response.text()).toContain('ok');
  });
});
