import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import { pino } from 'pino';

import { ConfigError, loadConfig, type SourceConfig } from '../../src/app/config.js';
import {
  CATALOGUE,
  renderCatalogueTable,
  TABLE_END,
  TABLE_START,
  type CatalogueEntry,
} from '../../src/sources/catalogue.js';
import { SOURCE_KINDS } from '../../src/sources/index.js';

const FIXTURES = new URL('../fixtures/', import.meta.url);
const DOC = new URL('../../docs/catalogue.md', import.meta.url);
const HEAD = `id: 0f6b5d0e-8a43-4c1f-9a44-2f7c1a0b9c11
alias: sample
title: Sample
sources:
`;
const ENV = {
  CROWDSEC_USERNAME: 'machine',
  CROWDSEC_PASSWORD: 'secret',
  BAMBENEK_USERNAME: 'subscriber',
  BAMBENEK_PASSWORD: 'secret',
};
const dirs: string[] = [];

afterAll(() => dirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

/** Loads one collection whose sources are `sources` (YAML list items). */
function load(sources: string): SourceConfig[] {
  const dir = mkdtempSync(join(tmpdir(), 'feedhub-catalogue-'));
  dirs.push(dir);
  mkdirSync(join(dir, 'collections'));
  writeFileSync(join(dir, 'local.txt'), '11.0.0.1\n');
  writeFileSync(join(dir, 'collections', 'a.yaml'), HEAD + sources);
  const config = loadConfig({ ...ENV, FEEDHUB_COLLECTIONS_DIR: join(dir, 'collections') }, dir);
  // The hub adds a manual source to every collection; it is not the file's.
  return config.collections[0]!.sources.filter((source) => source.kind !== 'manual');
}

function problemsOf(sources: string): string[] {
  let caught: unknown;
  try {
    load(sources);
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(ConfigError);
  return (caught as ConfigError).problems;
}

/** Writes a YAML list item that names the entry, with the keys it requires. */
function reference(entry: CatalogueEntry): string {
  const lines = [`  - catalog: ${entry.name}`];
  for (const { key } of entry.requires ?? []) {
    if (key === 'url') lines.push(`    url: https://feeds.example.org/${entry.name}`);
  }
  return `${lines.join('\n')}\n`;
}

describe('catalogue entries', () => {
  test('at least 25', () => {
    expect(CATALOGUE.length).toBeGreaterThanOrEqual(25);
  });

  test('retired feeds absent', () => {
    const urls = CATALOGUE.map((entry) => entry.source.url).join('\n');
    // ZeuS Tracker, Ransomware Tracker, AlienVault reputation, hailataxii,
    // the SSLBL IP list and Spamhaus EDROP no longer publish.
    for (const retired of [
      'zeustracker',
      'ransomwaretracker',
      'reputation.alienvault.com',
      'hailataxii',
      'sslipblacklist',
      'edrop',
    ]) {
      expect(urls).not.toContain(retired);
    }
  });

  test('well-known feeds present', () => {
    const kinds = new Map(CATALOGUE.map((entry) => [entry.name, entry.source.kind]));
    expect(kinds.get('dshield')).toBe('text-list');
    expect(kinds.get('spamhaus-drop-json')).toBe('json');
    expect(kinds.get('bambenek-c2-ips')).toBe('csv');
    expect(kinds.get('circl-osint')).toBe('misp-feed');
    expect(kinds.get('botvrij-osint')).toBe('misp-feed');
    expect(kinds.get('mitre-attack-taxii')).toBe('taxii21');
    expect(kinds.get('mitre-attack-bundle')).toBe('stix-bundle');
  });

  test('names unique and plain', () => {
    const names = CATALOGUE.map((entry) => entry.name);
    expect(new Set(names).size).toBe(names.length);
    for (const name of names) expect(name).toMatch(/^[a-z0-9][a-z0-9-]{0,62}$/);
  });

  test('URLs use https', () => {
    for (const entry of CATALOGUE) {
      expect([entry.name, new URL(entry.source.url).protocol]).toEqual([entry.name, 'https:']);
      const versionUrl = entry.source.versionUrl;
      if (typeof versionUrl === 'string') {
        expect([entry.name, new URL(versionUrl).protocol]).toEqual([entry.name, 'https:']);
      }
      expect([entry.name, new URL(entry.homepage).protocol]).toEqual([entry.name, 'https:']);
    }
  });

  test('licence notes present', () => {
    for (const entry of CATALOGUE)
      expect([entry.name, entry.licence.length > 20]).toEqual([entry.name, true]);
  });

  test('every entry resolves', () => {
    const sources = load(CATALOGUE.map(reference).join(''));
    expect(sources.map((source) => source.id)).toEqual(CATALOGUE.map((entry) => entry.name));
    for (const [index, source] of sources.entries()) {
      const entry = CATALOGUE[index]!;
      expect([entry.name, source.kind]).toEqual([entry.name, entry.source.kind]);
      expect([entry.name, new URL(source.url).protocol]).toEqual([entry.name, 'https:']);
      // Sensible: no more often than every 5 minutes, at least once a day.
      expect([
        entry.name,
        source.intervalSeconds >= 300 && source.intervalSeconds <= 86_400,
      ]).toEqual([entry.name, true]);
      expect(source.name).toBe(entry.title);
      expect(source.http?.maxRetries).toBe(3);
    }
  });

  test('required key named', () => {
    expect(problemsOf('  - catalog: azure-service-tags\n')).toEqual([
      expect.stringMatching(
        /\/sources\/0: catalogue entry azure-service-tags needs url: the current ServiceTags_Public_YYYYMMDD\.json link/,
      ),
    ]);
  });

  test('unknown entry named', () => {
    expect(problemsOf('  - catalog: no-such-feed\n')).toEqual([
      expect.stringMatching(
        /\/sources\/0\/catalog: unknown catalogue entry "no-such-feed"; use a name listed in docs\/catalogue\.md/,
      ),
    ]);
  });

  test('keys override entry', () => {
    const [source] = load(`  - catalog: ipsum
    id: ipsum-5
    url: https://raw.githubusercontent.com/stamparm/ipsum/master/levels/5.txt
    interval: 12h
    confidence: 85
    maxRetries: 1
`);
    expect(source!.id).toBe('ipsum-5');
    expect(source!.url).toBe(
      'https://raw.githubusercontent.com/stamparm/ipsum/master/levels/5.txt',
    );
    expect(source!.intervalSeconds).toBe(12 * 3600);
    expect(source!.confidence).toBe(85);
    expect(source!.valueType).toBe('ipv4');
    expect(source!.http?.maxRetries).toBe(1);
  });

  test('path replaces url', () => {
    const [source] = load(`  - catalog: spamhaus-drop
    path: ../local.txt
`);
    expect(source!.url).toMatch(/^file:\/\/.*\/local\.txt$/);
    expect(source!.valueType).toBe('ipv4-cidr');
  });

  test('expression replaces preset', () => {
    const [source] = load(`  - catalog: aws
    expression: prefixes[].ip_prefix
`);
    expect(source!.json?.expression).toBe('prefixes[].ip_prefix');
  });

  test('preset options override', () => {
    const [source] = load(`  - catalog: microsoft-365-urls
    serviceArea: [Exchange]
`);
    expect(source!.json?.expression).toContain('contains(`["Exchange"]`, serviceArea)');
    expect(source!.role).toBe('allow-list');
  });
});

describe('catalogue fixtures', () => {
  const withFixture = CATALOGUE.filter((entry) => entry.fixture !== undefined);
  const logger = pino({ level: 'silent' });

  test('some entries have one', () => {
    expect(withFixture.length).toBeGreaterThanOrEqual(10);
  });

  test.each(withFixture.map((entry) => [entry.name, entry]))(
    '%s parses its fixture',
    async (_name, entry) => {
      const [configured] = load(reference(entry));
      const fixture = new URL(entry.fixture!, FIXTURES);
      // A MISP feed is a directory with its manifest.
      const sample = statSync(fixture).isDirectory() ? new URL('manifest.json', fixture) : fixture;
      expect(readFileSync(sample).length).toBeGreaterThan(0);
      const json = configured!.json && { ...configured!.json, versionUrl: undefined };
      const result = await SOURCE_KINDS[configured!.kind]!.read({
        source: { ...configured!, url: pathToFileURL(fixture.pathname).href, json },
        userAgent: 'test',
        logger,
      });
      if (result.kind !== 'data') throw new Error(`expected data, got ${result.kind}`);
      expect(result.stats.valid).toBeGreaterThan(0);
      expect(result.stats.invalid).toBeLessThanOrEqual(result.stats.valid);
    },
  );
});

describe('docs/catalogue.md', () => {
  test('table in step with data', () => {
    const text = readFileSync(DOC, 'utf8');
    const start = text.indexOf(TABLE_START);
    const end = text.indexOf(TABLE_END);
    expect(start).toBeGreaterThanOrEqual(0);
    expect(end).toBeGreaterThan(start);
    const current = text.slice(start, end + TABLE_END.length);
    const expected = renderCatalogueTable();
    if (process.env.FEEDHUB_UPDATE_DOCS === '1' && current !== expected) {
      writeFileSync(DOC, text.slice(0, start) + expected + text.slice(end + TABLE_END.length));
      return;
    }
    // Run the tests with FEEDHUB_UPDATE_DOCS=1 to write the table after changing the catalogue.
    expect(current).toBe(expected);
  });
});
