import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';

import { loadConfig } from '../../src/app/config.js';
import { startHub, type Hub } from '../../src/app/hub.js';
import { createLogger } from '../../src/app/logger.js';
import { hashSecret } from '../../src/auth/index.js';
import { detectAndCanonicalize } from '../../src/processing/index.js';
import { VIEW_KIND_NAMES } from '../../src/views/index.js';
import { FeedServer } from '../helpers/feed-server.js';
import { startHubOnRequest } from '../helpers/hub.js';
import { requireMongoInCi, testStores } from '../helpers/stores.js';
import { parseCefLine } from './cef-parse.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/feeds/', import.meta.url));
const FEODO = readFileSync(join(FIXTURES, 'abusech-feodotracker/ipblocklist.csv'), 'utf8');
const IPSUM = readFileSync(join(FIXTURES, 'stamparm-ipsum/levels/5.txt'), 'utf8');
const RW_DOMAINS = readFileSync(join(FIXTURES, 'abusech-ransomwaretracker/RW_DOMBL.txt'), 'utf8');
const RW_URLS = readFileSync(join(FIXTURES, 'abusech-ransomwaretracker/RW_URLBL.txt'), 'utf8');

const FEODO_IPS = new Set(
  FEODO.split('\n')
    .map((line) => /^"[^"]*","([0-9.]+)"/.exec(line)?.[1])
    .filter((ip): ip is string => ip !== undefined),
);
/**
 * FerretDB, the MongoDB-wire server of CI, scans a whole collection for most
 * queries, so the MongoDB run reads the first lines of each list only.
 */
const MONGO_LINES = 300;

function firstLines(text: string, count: number): string {
  return text.split('\n').slice(0, count).join('\n');
}

/** Values that no view may ever list: guards refuse them or the allow-list covers them. */
const DANGEROUS_IPS = ['0.0.0.0/0', '10.0.0.0/8', '8.8.8.8', '192.168.1.0/24', '1.1.1.1'];
const DANGEROUS_DOMAINS = ['google.com', 'co.uk', 'com', 'mail.operator.example'];
const ALLOWED_DOMAIN = 'allowed-by-operator.example';

const COLLECTION = '0c6f2a36-7a8e-4c51-9d0e-3e1b6a5f4d21';
const PASSWORD = 'fw-team-password';
const KEY_ID = 'fw-key';
const KEY_SECRET = 'fw-key-secret-value';

/** Every view kind, plus views that exercise filters, bands, the maximum and access. */
const VIEWS_YAML = `views:
  - { name: ip, kind: edl-ip }
  - { name: ip-collapsed, kind: edl-ip, options: { collapse: true } }
  - { name: domain, kind: edl-domain, options: { wildcard: both } }
  - { name: url, kind: edl-url }
  - { name: high, kind: edl-ip, filter: { minConfidence: 75 } }
  - { name: low, kind: edl-ip, filter: { belowConfidence: 75 } }
  - { name: feodo-only, kind: edl-ip, filter: { sources: [feodo] } }
  - { name: top5, kind: edl-ip, maxEntries: 5 }
  - { name: green, kind: edl-ip, filter: { maxTlp: green } }
  - { name: indicators.csv, kind: csv, options: { columns: [indicator, "confidence|Score", sources] } }
  - { name: indicators.cef, kind: cef }
  - { name: indicators.json, kind: json }
  - { name: bundle, kind: stix-bundle }
  - { name: mwg, kind: mwg }
  - { name: bluecoat, kind: bluecoat }
  - { name: fortigate, kind: fortigate }
  - { name: checkpoint, kind: checkpoint }
  - { name: cisco, kind: cisco-si }
  - { name: waf, kind: aws-waf }
  - { name: rpz, kind: rpz, options: { zone: rpz.test } }
  - { name: basic-only, kind: edl-ip, access: { principals: [fw-team], methods: [basic] } }
  - { name: key-only, kind: edl-ip, access: { principals: ['*'], methods: [api-key] } }
  - { name: loopback-only, kind: edl-ip, access: { networks: [127.0.0.0/8, "::1"] } }
  - { name: elsewhere-only, kind: edl-ip, access: { networks: [192.0.2.0/24] } }
`;

const CONTENT_TYPES: Record<string, RegExp> = {
  ip: /^text\/plain/,
  domain: /^text\/plain/,
  url: /^text\/plain/,
  'indicators.csv': /^text\/csv/,
  'indicators.cef': /^text\/plain/,
  'indicators.json': /^application\/json/,
  bundle: /^application\/stix\+json;version=2\.1/,
  mwg: /^text\/plain/,
  bluecoat: /^text\/plain/,
  fortigate: /^text\/plain/,
  checkpoint: /^text\/csv/,
  cisco: /^text\/plain/,
  waf: /^application\/json/,
  rpz: /^text\/dns/,
};

async function get(
  hub: Hub,
  path: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; text: string; headers: Headers }> {
  const response = await fetch(`${hub.url}${path}`, { headers });
  return { status: response.status, text: await response.text(), headers: response.headers };
}

async function lines(hub: Hub, view: string): Promise<string[]> {
  const response = await get(hub, `/feeds/views/${view}`);
  expect(response.status).toBe(200);
  return response.text.split('\n').filter((line) => line !== '');
}

describe.each(testStores())('views served by the hub on $name', (store) => {
  const lineCount = store.name === 'sqlite' ? Infinity : MONGO_LINES;
  const ipsum = firstLines(IPSUM, lineCount);
  const IPSUM_IPS = new Set(ipsum.split('\n').filter((line) => /^\d/.test(line)));
  const feeds = new FeedServer();
  let dir: string;
  let hub: Hub;

  beforeAll(async () => {
    await feeds.start();
    feeds.set('/feodo.csv', { kind: 'body', body: FEODO });
    feeds.set('/ipsum.txt', { kind: 'body', body: `${ipsum}\n${DANGEROUS_IPS.join('\n')}\n` });
    feeds.set('/domains.txt', {
      kind: 'body',
      body: `${firstLines(RW_DOMAINS, lineCount)}\n${[...DANGEROUS_DOMAINS, ALLOWED_DOMAIN].join('\n')}\n`,
    });
    feeds.set('/urls.txt', {
      kind: 'body',
      body: `${firstLines(RW_URLS, lineCount)}\nhttp://8.8.8.8/x\nhttps://evil.example:8443/path\n`,
    });

    dir = mkdtempSync(join(tmpdir(), 'feedhub-hub-views-'));
    mkdirSync(join(dir, 'collections'));
    writeFileSync(
      join(dir, 'principals.yaml'),
      `principals:
  - name: fw-team
    password: "${await hashSecret(PASSWORD)}"
    apiKeys:
      - id: ${KEY_ID}
        hash: "${await hashSecret(KEY_SECRET)}"
`,
    );
    writeFileSync(
      join(dir, 'collections', 'views.yaml'),
      `id: ${COLLECTION}
alias: views
title: Views test
guards:
  protected: [operator.example]
allowList:
  builtin: [bogons, public-dns, top-domains]
  entries: [${ALLOWED_DOMAIN}]
sources:
  - id: feodo
    kind: text-list
    url: ${feeds.url('/feodo.csv')}
    extract: '^"[^"]*","([0-9][^"]*)"'
    valueType: ipv4
    interval: 1h
    confidence: 90
    tlp: green
  - id: ipsum
    kind: text-list
    url: ${feeds.url('/ipsum.txt')}
    interval: 1h
    confidence: 50
    tlp: amber
  - id: domains
    kind: text-list
    url: ${feeds.url('/domains.txt')}
    valueType: domain
    interval: 1h
  - id: urls
    kind: text-list
    url: ${feeds.url('/urls.txt')}
    valueType: url
    interval: 1h
${VIEWS_YAML}`,
    );
    hub = await startHubOnRequest(dir, {
      ...store.env(),
      FEEDHUB_PRINCIPALS_FILE: join(dir, 'principals.yaml'),
    });
    for (const source of ['feodo', 'ipsum', 'domains', 'urls']) {
      await hub.pollNow!(COLLECTION, source);
    }
  }, 300_000);

  afterAll(async () => {
    await hub?.stop();
    await feeds.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('serves every kind', async () => {
    for (const [view, type] of Object.entries(CONTENT_TYPES)) {
      const response = await get(hub, `/feeds/views/${view}`);
      expect([view, response.status]).toEqual([view, 200]);
      expect([view, response.headers.get('content-type')]).toEqual([
        view,
        expect.stringMatching(type),
      ]);
      expect([view, response.text.length > 0]).toEqual([view, true]);
      // fetch requests gzip, so larger bodies carry the weak form of the tag.
      expect(response.headers.get('etag')).toMatch(/^(W\/)?"[^"]+"$/);
    }
  });

  it('lists the union of both IP sources', async () => {
    const ips = new Set(await lines(hub, 'ip'));
    for (const ip of FEODO_IPS) expect(ips.has(ip)).toBe(true);
    for (const ip of IPSUM_IPS) expect(ips.has(ip)).toBe(true);
    expect(ips.size).toBe(new Set([...FEODO_IPS, ...IPSUM_IPS]).size);
  });

  it('never lists a refused or allowed value', async () => {
    const texts = await Promise.all(
      Object.keys(CONTENT_TYPES).map(async (view) => (await get(hub, `/feeds/views/${view}`)).text),
    );
    for (const text of texts) {
      const words = new Set(text.split(/[\s,;"'[\]{}|=]+/));
      for (const value of [...DANGEROUS_IPS, ...DANGEROUS_DOMAINS, ALLOWED_DOMAIN]) {
        expect([value, words.has(value)]).toEqual([value, false]);
      }
    }
    const urls = await lines(hub, 'url');
    expect(urls.some((line) => line.startsWith('8.8.8.8'))).toBe(false);
  });

  it('writes only well-formed lines', async () => {
    for (const line of await lines(hub, 'ip')) {
      expect([line, detectAndCanonicalize(line).ok]).toEqual([line, true]);
    }
    for (const line of await lines(hub, 'domain')) {
      const name = line.startsWith('*.') ? line.slice(2) : line;
      expect([line, detectAndCanonicalize(name)]).toEqual([
        line,
        { ok: true, type: 'domain', value: name },
      ]);
    }
    for (const line of await lines(hub, 'url')) {
      expect(line).not.toMatch(/^[a-z]+:\/\//);
      expect(line.length).toBeLessThanOrEqual(255);
      expect(line).not.toMatch(/:\d+\//);
    }
    for (const line of await lines(hub, 'indicators.cef')) {
      const parsed = parseCefLine(line);
      expect(parsed.version).toBe('0');
    }
  });

  it('splits confidence bands with no gap and no overlap', async () => {
    const all = await lines(hub, 'ip');
    const high = await lines(hub, 'high');
    const low = await lines(hub, 'low');
    expect([...high, ...low].sort()).toEqual([...all].sort());
    expect(high.filter((ip) => low.includes(ip))).toEqual([]);
    // Feodo's confidence is 90 and IPsum's 50; with the max rule a value from both is high.
    for (const ip of FEODO_IPS) expect(high).toContain(ip);
  });

  it('filters by source and TLP', async () => {
    expect(new Set(await lines(hub, 'feodo-only'))).toEqual(FEODO_IPS);
    // Feodo is green and IPsum amber; a value that both list takes the stricter TLP.
    const green = new Set(await lines(hub, 'green'));
    for (const ip of green) {
      expect(FEODO_IPS.has(ip) && !IPSUM_IPS.has(ip)).toBe(true);
    }
  });

  it('keeps the highest-priority entries at the maximum', async () => {
    const top = await lines(hub, 'top5');
    expect(top).toHaveLength(5);
    for (const ip of top) expect(FEODO_IPS.has(ip)).toBe(true);
    const log = JSON.parse((await get(hub, '/feeds/views/top5/build-log')).text) as {
      cut: number;
      maxEntries: number;
      entries: number;
    };
    expect(log.maxEntries).toBe(5);
    expect(log.entries).toBe(5);
    expect(log.cut).toBe((await lines(hub, 'ip')).length - 5);
    const metrics = (await get(hub, '/metrics')).text;
    expect(metrics).toContain(
      `feedhub_view_cut_entries{collection="views",view="top5"} ${log.cut}`,
    );
  });

  it('logs URL rewrites and drops', async () => {
    const log = JSON.parse((await get(hub, '/feeds/views/url/build-log')).text) as {
      dropped: number;
      events: { action: string; value: string; reason: string }[];
    };
    expect(log.dropped).toBeGreaterThan(0);
    expect(log.events.some((event) => event.value === 'https://evil.example:8443/path')).toBe(true);
  });

  it('collapses IPs into fewer CIDRs', async () => {
    const collapsed = await lines(hub, 'ip-collapsed');
    expect(collapsed.length).toBeLessThanOrEqual((await lines(hub, 'ip')).length);
    expect(collapsed.length).toBeGreaterThan(0);
  });

  it('exports a STIX bundle of the listed indicators', async () => {
    const bundle = JSON.parse((await get(hub, '/feeds/views/bundle')).text) as {
      type: string;
      objects: { type: string }[];
    };
    const listed = (await lines(hub, 'indicators.cef')).length;
    expect(bundle.type).toBe('bundle');
    expect(bundle.objects.filter((object) => object.type === 'indicator')).toHaveLength(listed);
    expect(bundle.objects.some((object) => object.type === 'identity')).toBe(true);
    expect(bundle.objects.some((object) => object.type === 'marking-definition')).toBe(true);
  });

  describe('access', () => {
    const basic = `Basic ${Buffer.from(`fw-team:${PASSWORD}`).toString('base64')}`;

    it('Basic view', async () => {
      expect((await get(hub, '/feeds/views/basic-only')).status).toBe(401);
      expect((await get(hub, '/feeds/views/basic-only', { authorization: basic })).status).toBe(
        200,
      );
      const wrong = `Basic ${Buffer.from('fw-team:wrong').toString('base64')}`;
      expect((await get(hub, '/feeds/views/basic-only', { authorization: wrong })).status).toBe(
        401,
      );
      const key = `Bearer ${KEY_ID}.${KEY_SECRET}`;
      expect((await get(hub, '/feeds/views/basic-only', { authorization: key })).status).toBe(401);
    });

    it('API key view', async () => {
      const response = await get(hub, '/feeds/views/key-only');
      expect(response.status).toBe(401);
      expect(response.headers.get('www-authenticate')).toContain('Bearer');
      const key = `Bearer ${KEY_ID}.${KEY_SECRET}`;
      expect((await get(hub, '/feeds/views/key-only', { authorization: key })).status).toBe(200);
    });

    it('client networks', async () => {
      expect((await get(hub, '/feeds/views/loopback-only')).status).toBe(200);
      const refused = await get(hub, '/feeds/views/elsewhere-only');
      expect(refused.status).toBe(403);
      expect(refused.text).toContain('127.0.0.1');
    });
  });

  describe('MineMeld parameters', () => {
    it('CSV with fields', async () => {
      const response = await get(hub, '/feeds/views/ip?v=csv&f=indicator&f=confidence|Score');
      expect(response.status).toBe(200);
      const rows = response.text.split('\r\n').filter((row) => row !== '');
      expect(rows[0]).toBe('indicator,Score');
      expect(rows).toHaveLength((await lines(hub, 'ip')).length + 1);
    });

    it('offset and count', async () => {
      const all = await lines(hub, 'ip');
      const response = await get(hub, '/feeds/views/ip?s=2&n=3');
      const part = response.text.split('\n').filter((line) => line !== '');
      expect(part).toHaveLength(3);
      for (const ip of part) expect(all).toContain(ip);
    });

    it('unknown parameter is 400 naming it', async () => {
      const response = await get(hub, '/feeds/views/ip?bogus=1');
      expect(response.status).toBe(400);
      expect(response.text).toContain('bogus');
      const format = await get(hub, '/feeds/views/ip?v=xml');
      expect(format.status).toBe(400);
      expect(format.text).toContain('xml');
    });

    it('parameters on a kind without them are 400', async () => {
      const response = await get(hub, '/feeds/views/indicators.csv?v=json');
      expect(response.status).toBe(400);
      expect(response.text).toContain('csv');
    });

    it('variant 304', async () => {
      const first = await get(hub, '/feeds/views/url?v=panosurl&sp=1');
      expect(first.status).toBe(200);
      const etag = first.headers.get('etag')!;
      const base = await get(hub, '/feeds/views/url');
      expect(etag).not.toBe(base.headers.get('etag'));
      const again = await get(hub, '/feeds/views/url?v=panosurl&sp=1', {
        'if-none-match': etag,
      });
      expect(again.status).toBe(304);
      // Stripping ports keeps the entry that the default drops.
      expect(first.text).toContain('evil.example/path');
      expect(base.text).not.toContain('evil.example/path');
    });
  });

  it('a new poll changes the views and keeps unchanged ones', async () => {
    const domainTag = (await get(hub, '/feeds/views/domain')).headers.get('etag');
    const before = await lines(hub, 'feodo-only');
    const firstIp = before[0]!;
    feeds.set('/feodo.csv', {
      kind: 'body',
      body: FEODO.split('\n')
        .filter((line) => !line.includes(`"${firstIp}"`))
        .join('\n'),
    });
    await hub.pollNow!(COLLECTION, 'feodo');
    const after = await lines(hub, 'feodo-only');
    expect(after).not.toContain(firstIp);
    expect(after).toHaveLength(before.length - 1);
    expect((await get(hub, '/feeds/views/domain')).headers.get('etag')).toBe(domainTag);
    feeds.set('/feodo.csv', { kind: 'body', body: FEODO });
  });
});

requireMongoInCi();

describe('sample collections', () => {
  let dir: string;
  let hub: Hub;

  afterAll(async () => {
    await hub?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('serve every view kind', async () => {
    dir = mkdtempSync(join(tmpdir(), 'feedhub-samples-'));
    const config = loadConfig({
      FEEDHUB_PORT: '0',
      FEEDHUB_DATA_DIR: join(dir, 'data'),
      FEEDHUB_COLLECTIONS_DIR: fileURLToPath(new URL('../../collections/', import.meta.url)),
      FEEDHUB_LOG_LEVEL: 'silent',
    });
    hub = await startHub(config, createLogger('silent'), {
      processEveryMs: 60_000,
      viewDebounceMs: 60_000,
      pollOnRequestOnly: true,
    });
    const kinds = new Set<string>();
    const empty: string[] = [];
    for (const collection of config.collections) {
      let listed = false;
      for (const source of collection.sources) await hub.pollNow!(collection.id, source.id);
      for (const view of collection.views) {
        const response = await get(hub, `/feeds/${collection.alias}/${view.name}`);
        expect([collection.alias, view.name, response.status]).toEqual([
          collection.alias,
          view.name,
          200,
        ]);
        if (response.text.trim() !== '') {
          kinds.add(view.kind);
          listed = true;
        }
      }
      if (!listed) empty.push(collection.alias);
    }
    // Every sample collection, whatever its source kind, publishes something.
    expect(empty).toEqual([]);
    expect([...kinds].sort()).toEqual([...VIEW_KIND_NAMES].sort());
  }, 120_000);
});
