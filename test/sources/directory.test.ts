/**
 * The directory source kind: dropped files are read once, then moved to
 * processed/ or failed/, and files still being written wait.
 */
import { randomUUID } from 'node:crypto';
import {
  appendFileSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

import { afterAll, beforeAll, describe, expect, it, jest, test } from '@jest/globals';
import { pino } from 'pino';

import { ConfigError, loadConfig } from '../../src/app/config.js';
import { DEFAULT_SCREEN_SETTINGS } from '../../src/processing/index.js';
import { CollectionProcessing, NO_AGING } from '../../src/processing/policy.js';
import { READ_FILES_KEY, dropFormat } from '../../src/sources/directory.js';
import {
  pollSource,
  presetExpression,
  SOURCE_KINDS,
  SourceRejectedError,
  type PollSource,
  type ReadResult,
  type SourceSettings,
} from '../../src/sources/index.js';
import type { SourceState } from '../../src/store/index.js';
import { requireMongoInCi, storeOpeners, type OpenedTestStore } from '../helpers/stores.js';

jest.setTimeout(60_000);

const logger = pino({ level: 'silent' });
const OASIS = new URL('../fixtures/stix/oasis/', import.meta.url);
const dirs: string[] = [];

afterAll(() => dirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

function dropDirectory(): string {
  const dir = mkdtempSync(join(tmpdir(), 'feedhub-drop-'));
  dirs.push(dir);
  return dir;
}

function source(path: string, overrides: Partial<SourceSettings> = {}): SourceSettings {
  return {
    id: 'drops',
    name: 'Drops',
    kind: 'directory',
    url: `file://${path}/`,
    valueType: 'auto',
    timeoutMs: 5000,
    maxBytes: 1 << 20,
    directory: { path, snapshot: false, settleMs: 20 },
    ...overrides,
  };
}

function read(settings: SourceSettings, previous?: SourceState): Promise<ReadResult> {
  return SOURCE_KINDS.directory!.read({ source: settings, previous, userAgent: 'test', logger });
}

function data(result: ReadResult): Extract<ReadResult, { kind: 'data' }> {
  if (result.kind !== 'data') throw new Error(`expected data, got ${result.kind}`);
  return result;
}

/** Builds the state that a poll stores after applying `result`. */
function stateAfter(result: ReadResult): SourceState {
  return { collectionId: 'c', sourceId: 'drops', cursor: data(result).cursor };
}

function values(result: ReadResult): string[] {
  return data(result)
    .entries.map((entry) => entry.value)
    .sort();
}

function listing(dir: string, sub: string): string[] {
  return readdirSync(join(dir, sub)).sort();
}

describe('dropFormat', () => {
  test('by extension', () => {
    expect(dropFormat('ips.txt', undefined)).toBe('text-list');
    expect(dropFormat('block.netset', undefined)).toBe('text-list');
    expect(dropFormat('feed.CSV', undefined)).toBe('csv');
    expect(dropFormat('feed.json', undefined)).toBe('json');
    expect(dropFormat('feed.ndjson', undefined)).toBe('json-lines');
    expect(dropFormat('bundle.stix.json', undefined)).toBe('stix-bundle');
    expect(dropFormat('ips.txt.gz', undefined)).toBe('text-list');
    expect(dropFormat('data.bin', undefined)).toBeUndefined();
  });

  test('format key wins', () => {
    expect(dropFormat('data.bin', 'csv')).toBe('csv');
  });
});

describe('directory read', () => {
  test('new file read once', async () => {
    const dir = dropDirectory();
    writeFileSync(join(dir, 'ips.txt'), '11.0.0.1\n11.0.0.2\n');
    const settings = source(dir);

    const first = await read(settings);
    expect(values(first)).toEqual(['11.0.0.1', '11.0.0.2']);
    expect(data(first).complete).toBe(false);
    expect(data(first).stats.files).toBe(1);
    // The file stays until a poll has applied it.
    expect(existsSync(join(dir, 'ips.txt'))).toBe(true);

    const second = await read(settings, stateAfter(first));
    expect(second.kind).toBe('not-modified');
    expect(listing(dir, 'processed')).toEqual(['ips.txt']);
    expect(existsSync(join(dir, 'ips.txt'))).toBe(false);
  });

  test('unapplied file read again', async () => {
    const dir = dropDirectory();
    writeFileSync(join(dir, 'ips.txt'), '11.0.0.1\n');
    const settings = source(dir);
    await read(settings);
    // A failed poll keeps the previous state, which does not name the file.
    const again = await read(settings, { collectionId: 'c', sourceId: 'drops' });
    expect(values(again)).toEqual(['11.0.0.1']);
  });

  test('unusable file moved to failed', async () => {
    const dir = dropDirectory();
    writeFileSync(join(dir, 'login.txt'), '<html><body>Please log in</body></html>\n');
    const error = await read(source(dir)).then(
      () => undefined,
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(SourceRejectedError);
    expect((error as Error).message).toMatch(
      /every new file of .* failed and was moved to failed\//,
    );
    expect(listing(dir, 'failed')).toEqual(['login.txt', 'login.txt.error.txt']);
    const reason = readFileSync(join(dir, 'failed', 'login.txt.error.txt'), 'utf8');
    expect(reason).toMatch(/login\.txt: rejected the body of .*looks like an HTML page/);
  });

  test('good and bad files together', async () => {
    const dir = dropDirectory();
    writeFileSync(join(dir, 'a.txt'), '11.0.0.1\n');
    writeFileSync(join(dir, 'b.csv'), 'ip\n11.0.0.2\n');
    writeFileSync(join(dir, 'c.bin'), '11.0.0.3\n');
    const result = data(await read(source(dir)));
    expect(result.entries.map((entry) => entry.value)).toEqual(['11.0.0.1']);
    expect(result.stats.filesFailed).toBe(2);
    expect(listing(dir, 'failed')).toEqual([
      'b.csv',
      'b.csv.error.txt',
      'c.bin',
      'c.bin.error.txt',
    ]);
    expect(readFileSync(join(dir, 'failed', 'b.csv.error.txt'), 'utf8')).toMatch(
      /a CSV file needs the columns key/,
    );
    expect(readFileSync(join(dir, 'failed', 'c.bin.error.txt'), 'utf8')).toMatch(
      /the format of c\.bin is unknown/,
    );
  });

  test('CSV, JSON, STIX and gzip', async () => {
    const dir = dropDirectory();
    writeFileSync(join(dir, 'feed.csv'), 'first_seen,ip\n2024-01-01,11.0.0.1\n');
    writeFileSync(join(dir, 'feed.json'), JSON.stringify({ hosts: ['evil.example.com'] }));
    writeFileSync(join(dir, 'feed.jsonl'), '{"h":"bad.example.net"}\n');
    writeFileSync(join(dir, 'more.txt.gz'), gzipSync('11.0.0.9\n'));
    copyFileSync(new URL('indicator-for-malicious-url.json', OASIS), join(dir, 'apt.stix.json'));
    const settings = source(dir, {
      csv: {
        delimiter: ',',
        comment: '#',
        header: true,
        fields: undefined,
        columns: [{ column: 'ip', valueType: 'ipv4' }],
        skip: [],
      },
      json: { format: 'document', expression: 'hosts || h' },
    });
    const result = data(await read(settings));
    expect(result.entries.map((entry) => entry.value).sort()).toEqual([
      '11.0.0.1',
      '11.0.0.9',
      'bad.example.net',
      'evil.example.com',
      'http://x4z9arb.cn/4712/',
    ]);
    expect(result.objects.length).toBeGreaterThan(0);
    expect(result.stats.files).toBe(5);
    expect(listing(dir, 'failed')).toEqual([]);
  });

  test('file being written waits', async () => {
    const dir = dropDirectory();
    const file = join(dir, 'growing.txt');
    writeFileSync(file, '11.0.0.1\n');
    const settings = source(dir, { directory: { path: dir, snapshot: false, settleMs: 300 } });
    const writer = setTimeout(() => appendFileSync(file, '11.0.0.2\n'), 100);
    const during = await read(settings);
    clearTimeout(writer);
    expect(during.kind).toBe('not-modified');

    const after = await read(settings);
    expect(values(after)).toEqual(['11.0.0.1', '11.0.0.2']);
  });

  test('partial names ignored', async () => {
    const dir = dropDirectory();
    writeFileSync(join(dir, 'ips.txt.part'), '11.0.0.1\n');
    writeFileSync(join(dir, '.hidden.txt'), '11.0.0.2\n');
    writeFileSync(join(dir, 'ips.txt.tmp'), '11.0.0.3\n');
    expect((await read(source(dir))).kind).toBe('not-modified');
    expect(listing(dir, 'failed')).toEqual([]);
  });

  test('snapshot reads newest', async () => {
    const dir = dropDirectory();
    writeFileSync(join(dir, 'monday.txt'), '11.0.0.1\n');
    writeFileSync(join(dir, 'tuesday.txt'), '11.0.0.2\n');
    utimesSync(join(dir, 'monday.txt'), new Date('2026-01-05'), new Date('2026-01-05'));
    utimesSync(join(dir, 'tuesday.txt'), new Date('2026-01-06'), new Date('2026-01-06'));
    const settings = source(dir, { directory: { path: dir, snapshot: true, settleMs: 20 } });
    const result = data(await read(settings));
    expect(result.entries.map((entry) => entry.value)).toEqual(['11.0.0.2']);
    expect(result.complete).toBe(true);
    expect(listing(dir, 'processed')).toEqual(['monday.txt']);
  });

  test('processed name taken', async () => {
    const dir = dropDirectory();
    mkdirSync(join(dir, 'processed'));
    writeFileSync(join(dir, 'processed', 'ips.txt'), 'old\n');
    writeFileSync(join(dir, 'ips.txt'), '11.0.0.1\n');
    const settings = source(dir);
    const first = await read(settings);
    await read(settings, stateAfter(first));
    expect(listing(dir, 'processed')).toEqual(['ips-1.txt', 'ips.txt']);
    expect(readFileSync(join(dir, 'processed', 'ips-1.txt'), 'utf8')).toBe('11.0.0.1\n');
  });

  test('replaced file not moved', async () => {
    const dir = dropDirectory();
    writeFileSync(join(dir, 'ips.txt'), '11.0.0.1\n');
    const settings = source(dir);
    const first = await read(settings);
    writeFileSync(join(dir, 'ips.txt'), '11.0.0.1\n11.0.0.5\n');
    const second = await read(settings, stateAfter(first));
    expect(values(second)).toEqual(['11.0.0.1', '11.0.0.5']);
    expect(listing(dir, 'processed')).toEqual([]);
  });

  test('missing directory fails', async () => {
    const dir = join(dropDirectory(), 'gone');
    await expect(read(source(dir))).rejects.toThrow(
      `drop directory ${dir} not found; create it or fix path of the source`,
    );
    expect(existsSync(dir)).toBe(false);
  });

  test('cursor names read files', async () => {
    const dir = dropDirectory();
    writeFileSync(join(dir, 'ips.txt'), '11.0.0.1\n');
    const result = data(await read(source(dir)));
    const marks = result.cursor?.[READ_FILES_KEY] as { name: string }[];
    expect(marks.map((mark) => mark.name)).toEqual(['ips.txt']);
  });
});

describe('directory source config', () => {
  const HEAD = `id: 0f6b5d0e-8a43-4c1f-9a44-2f7c1a0b9c11
alias: sample
title: Sample
sources:
`;

  function load(sources: string, makeDrops = true) {
    const dir = dropDirectory();
    mkdirSync(join(dir, 'collections'));
    if (makeDrops) mkdirSync(join(dir, 'drops'));
    writeFileSync(join(dir, 'collections', 'a.yaml'), HEAD + sources);
    return {
      dir,
      load: () => loadConfig({ FEEDHUB_COLLECTIONS_DIR: join(dir, 'collections') }, dir),
    };
  }

  test('resolves keys', () => {
    const { dir, load: run } = load(`  - id: drops
    kind: directory
    path: ../drops
    interval: 5m
    snapshot: true
    settle: 5s
    columns: { ip: ipv4 }
    preset: microsoft-365
    output: urls
`);
    const [settings] = run().collections[0]!.sources;
    expect(settings!.kind).toBe('directory');
    expect(settings!.directory).toEqual({
      path: join(dir, 'drops'),
      snapshot: true,
      settleMs: 5000,
    });
    expect(settings!.csv?.columns).toEqual([{ column: 'ip', valueType: 'ipv4' }]);
    expect(settings!.json).toEqual({
      format: 'document',
      expression: presetExpression('microsoft-365', { output: 'urls' }),
    });
  });

  test('missing directory named', () => {
    const { dir, load: run } = load(
      `  - id: drops
    kind: directory
    path: ../drops
    interval: 5m
`,
      false,
    );
    let caught: unknown;
    try {
      run();
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as ConfigError).problems).toEqual([
      expect.stringContaining(
        `/sources/0/path: directory ${join(dir, 'drops')} not found; create it or fix path`,
      ),
    ]);
  });
});

const stores = storeOpeners('feedhub-drop-poll-');

describe.each(stores)('directory polls on $name', ({ open }) => {
  let opened: OpenedTestStore;
  let clock = 1_800_000_000_000_000;

  beforeAll(async () => {
    opened = await open();
    await opened.store.init();
  });

  afterAll(async () => {
    await opened?.cleanup();
  });

  function pollSettings(dir: string): PollSource {
    return {
      ...source(dir),
      confidence: 70,
      tlp: 'clear',
      indicatorTypes: ['malicious-activity'],
      labels: [],
    };
  }

  it('drops only add values', async () => {
    const dir = dropDirectory();
    const collectionId = randomUUID();
    await opened.store.upsertCollection({
      id: collectionId,
      alias: `d-${collectionId.slice(0, 8)}`,
      title: 'Drops',
      canRead: true,
      canWrite: false,
      mediaTypes: [],
    });
    const processing = new CollectionProcessing({
      collectionId,
      screen: DEFAULT_SCREEN_SETTINGS,
      withdrawal: { missesBeforeWithdrawal: 1, maxDrop: 0.9 },
      confidenceRule: 'max',
      sources: [
        {
          id: 'drops',
          name: 'Drops',
          confidence: 70,
          weight: 1,
          tlp: 'clear',
          indicatorTypes: ['malicious-activity'],
          labels: [],
          aging: NO_AGING,
        },
      ],
    });
    const poll = () => {
      clock += 60_000_000;
      const now = clock;
      return pollSource(
        { store: opened.store, logger, userAgent: 'test', nowMicros: () => now, processing },
        collectionId,
        pollSettings(dir),
      );
    };

    writeFileSync(join(dir, 'first.txt'), '11.0.0.1\n11.0.0.2\n');
    const first = await poll();
    expect(first.outcome).toBe('applied');
    expect(first.created).toBe(2);

    writeFileSync(join(dir, 'second.txt'), '11.0.0.3\n');
    const second = await poll();
    expect(second.created).toBe(1);
    expect(second.withdrawn).toBe(0);
    expect(listing(dir, 'processed')).toEqual(['first.txt']);

    const third = await poll();
    expect(third.outcome).toBe('not-modified');
    expect(listing(dir, 'processed')).toEqual(['first.txt', 'second.txt']);

    const active = (await opened.store.listIndicatorEntries(collectionId)).map((e) => e.value);
    expect(active.sort()).toEqual(['11.0.0.1', '11.0.0.2', '11.0.0.3']);
  });
});

requireMongoInCi();
