import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { Worker } from 'node:worker_threads';
import { createRequire } from 'node:module';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from '@jest/globals';
import Database from 'better-sqlite3';

import { createSqliteStore, StoreError, type Store } from '../../src/store/index.js';
import { VersionFlag } from '../../src/store/sqlite/objects.js';
import { MIGRATIONS } from '../../src/store/sqlite/schema.js';
import { runStoreContract } from './contract.js';

const directory = mkdtempSync(join(tmpdir(), 'feedhub-sqlite-'));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

runStoreContract('sqlite', async () => {
  const file = join(directory, 'contract.db');
  const opened: Store[] = [];
  const open = async () => {
    const store = createSqliteStore({ file });
    opened.push(store);
    return store;
  };
  return {
    store: await open(),
    openAnother: open,
    async cleanup() {
      for (const store of opened) await store.close();
    },
  };
});

describe('sqlite store', () => {
  it('close is idempotent', async () => {
    const store = createSqliteStore({ file: join(directory, 'close.db') });
    await store.init();
    await store.close();
    await store.close();

    await expect(store.ping(100)).rejects.toThrow(StoreError);
    await expect(store.countObjects('c')).rejects.toThrow(/closed/);
  });

  it('use before init', async () => {
    const store = createSqliteStore({ file: join(directory, 'uninitialised.db') });
    await expect(store.countObjects('c')).rejects.toThrow(/init\(\)/);
    await store.close();
  });

  it('newer schema rejected', async () => {
    const file = join(directory, 'newer.db');
    const raw = new Database(file);
    raw.pragma(`user_version = ${MIGRATIONS.length + 1}`);
    raw.close();
    const store = createSqliteStore({ file });

    const failure = store.init();
    await expect(failure).rejects.toThrow(StoreError);
    await expect(failure).rejects.toThrow(
      `${file} has schema version ${MIGRATIONS.length + 1}, but this build knows versions up to ${MIGRATIONS.length}`,
    );
    await store.close();
  });

  it('data survives reopen', async () => {
    const file = join(directory, 'reopen.db');
    const first = createSqliteStore({ file });
    await first.init();
    await first.putObjects('c', [
      { id: 'indicator--1', type: 'indicator', version: '', specVersion: '2.1', json: '{}' },
    ]);
    await first.close();

    const second = createSqliteStore({ file });
    await second.init();
    expect(await second.countObjects('c')).toBe(1);
    await second.close();
  });

  it('migration sets version flags', async () => {
    const file = join(directory, 'flags-migration.db');
    const raw = new Database(file);
    for (const migration of MIGRATIONS.slice(0, 8)) raw.exec(migration);
    raw.pragma('user_version = 8');
    const insert = raw.prepare(
      `INSERT INTO objects (collection_id, id, version, type, spec_version, date_added, json)
       VALUES (?, ?, ?, 'indicator', ?, ?, '{}')`,
    );
    const id = 'indicator--00000000-0000-4000-8000-0000000000e1';
    insert.run('c', id, '2024-01-01T00:00:03.000000Z', '2.0', 1);
    insert.run('c', id, '2024-01-01T00:00:01.000000Z', '2.1', 2);
    insert.run('c', id, '2024-01-01T00:00:02.000000Z', '2.1', 3);
    // The same id in another collection is another object.
    insert.run('d', id, '2024-01-01T00:00:01.000000Z', '2.1', 1);
    raw.close();

    const store = createSqliteStore({ file });
    await store.init();
    const flags = store
      .connection()
      .prepare('SELECT collection_id, version, flags FROM objects ORDER BY collection_id, version')
      .raw(true)
      .all();
    await store.close();

    const only =
      VersionFlag.last |
      VersionFlag.first |
      VersionFlag.latestSpec |
      VersionFlag.lastOfLatestSpec |
      VersionFlag.firstOfLatestSpec;
    expect(flags).toEqual([
      [
        'c',
        '2024-01-01T00:00:01.000000Z',
        VersionFlag.first | VersionFlag.latestSpec | VersionFlag.firstOfLatestSpec,
      ],
      ['c', '2024-01-01T00:00:02.000000Z', VersionFlag.latestSpec | VersionFlag.lastOfLatestSpec],
      ['c', '2024-01-01T00:00:03.000000Z', VersionFlag.last],
      ['d', '2024-01-01T00:00:01.000000Z', only],
    ]);
  });

  it('type not id prefix rejected', async () => {
    const store = createSqliteStore({ file: join(directory, 'type-prefix.db') });
    await store.init();
    const good = {
      id: 'indicator--1',
      type: 'indicator',
      version: '',
      specVersion: '2.1',
      json: '{}',
    };
    const bad = {
      id: 'indicator--2',
      type: 'malware',
      version: '',
      specVersion: '2.1',
      json: '{}',
    };

    const failure = store.putObjects('c', [good, bad]);

    await expect(failure).rejects.toThrow(StoreError);
    await expect(failure).rejects.toThrow('Object indicator--2 has type "malware"');
    expect(await store.countObjects('c')).toBe(0);
    await store.close();
  });

  it('wal mode and pragmas', async () => {
    const store = createSqliteStore({ file: join(directory, 'pragmas.db') });
    await store.init();
    const db = store.connection();

    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('foreign_keys', { simple: true })).toBe(1);
    expect(db.pragma('synchronous', { simple: true })).toBe(1);
    expect(db.pragma('busy_timeout', { simple: true })).toBe(5000);
    expect(db.pragma('journal_size_limit', { simple: true })).toBe(64 * 1024 * 1024);
    expect(db.pragma('user_version', { simple: true })).toBe(MIGRATIONS.length);
    await store.close();
  });

  it('objects have three indexes', async () => {
    const store = createSqliteStore({ file: join(directory, 'indexes.db') });
    await store.init();
    const names = store
      .connection()
      .prepare(
        "SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'objects' ORDER BY name",
      )
      .pluck()
      .all();
    // The two UNIQUE constraints and the page index. objects_spec was dropped.
    expect(names).toEqual([
      'objects_page',
      'sqlite_autoindex_objects_1',
      'sqlite_autoindex_objects_2',
    ]);
    await store.close();
  });
});

describe('sqlite checkpoints', () => {
  /** Builds a poll of `count` new IPv4 values. `inside` runs in its write transaction, once per indicator. */
  function bigPoll(collectionId: string, count: number, inside: () => void = () => {}) {
    const sightings = Array.from({ length: count }, (_, i) => ({
      valueType: 'ipv4',
      value: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
      indicatorId: `indicator--00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
    }));
    return {
      collectionId,
      sourceId: 'feed',
      seenAt: 1_000,
      sightings,
      buildIndicator: (s: { indicatorId: string }) => {
        inside();
        return {
          id: s.indicatorId,
          type: 'indicator',
          version: '2024-01-01T00:00:00.000Z',
          specVersion: '2.1',
          json: JSON.stringify({ id: s.indicatorId, padding: 'x'.repeat(400) }),
        };
      },
      extraObjects: [],
      state: { collectionId, sourceId: 'feed', lastSuccessAt: 1_000, lastValidCount: count },
    };
  }

  it('worker copies a large poll', async () => {
    const store = createSqliteStore({ file: join(directory, 'checkpoint.db') });
    await store.init();
    const db = store.connection();
    expect(db.pragma('wal_autocheckpoint', { simple: true })).toBe(1000);

    // Inside the poll's transaction the connection does not checkpoint at
    // commit: the copy of the WAL is left to the worker thread.
    const seen = new Set<unknown>();
    await store.applyPoll(
      bigPoll('c', 5_000, () => seen.add(db.pragma('wal_autocheckpoint', { simple: true }))),
    );
    expect([...seen]).toEqual([0]);

    const result = await store.checkpointsSettled();
    expect(result.failure).toBeUndefined();
    // 5,000 objects of 500 bytes fill well over the 1,000 pages at which the
    // connection would have checkpointed on its own.
    expect(result.logFrames).toBeGreaterThan(1_000);
    expect(result.checkpointedFrames).toBe(result.logFrames);
    expect(db.pragma('wal_autocheckpoint', { simple: true })).toBe(0);
    await store.close();

    const reopened = createSqliteStore({ file: join(directory, 'checkpoint.db') });
    await reopened.init();
    expect(await reopened.countObjects('c')).toBe(5_000);
    await reopened.close();
  });

  it('failed worker restores checkpoints', async () => {
    const file = join(directory, 'checkpoint-failure.db');
    const warnings: string[] = [];
    const store = createSqliteStore({ file, onWarning: (message) => warnings.push(message) });
    await store.init();
    // The worker opens the file when it starts; without the file it fails.
    rmSync(file);
    await store.applyPoll(bigPoll('c', 10));
    const result = await store.checkpointsSettled();
    expect(result.failure).toMatch(/checkpoint-failure\.db/);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/checkpoint-failure\.db.*Commits checkpoint the WAL themselves/);
    expect(store.connection().pragma('wal_autocheckpoint', { simple: true })).toBe(1000);

    // Later writes run without the worker and keep SQLite's own checkpoints.
    const seen = new Set<unknown>();
    await store.applyPoll(
      bigPoll('d', 10, () =>
        seen.add(store.connection().pragma('wal_autocheckpoint', { simple: true })),
      ),
    );
    expect([...seen]).toEqual([1000]);
    await store.close();
  });

  it('poll indicator with known id', async () => {
    const store = createSqliteStore({ file: join(directory, 'known-id.db') });
    await store.init();
    const id = 'indicator--00000000-0000-4000-8000-0000000000aa';
    const stored = {
      id,
      type: 'indicator',
      version: '2024-01-01T00:00:00.000Z',
      specVersion: '2.1',
      json: JSON.stringify({ id, v: 1 }),
    };
    await store.putObjects('c', [stored]);

    // The value is new to the collection, but the indicator built for it
    // reuses a stored id: it must be stored as a later version of that object.
    const poll = bigPoll('c', 1);
    poll.buildIndicator = () => ({
      ...stored,
      version: '2024-01-02T00:00:00.000Z',
      json: JSON.stringify({ id, v: 2 }),
    });
    const summary = await store.applyPoll(poll);
    expect(summary.objects.added).toBe(1);
    const flags = store
      .connection()
      .prepare('SELECT version, flags FROM objects WHERE id = ? ORDER BY version')
      .raw(true)
      .all(id);
    expect(flags).toEqual([
      [
        '2024-01-01T00:00:00.000Z',
        VersionFlag.first | VersionFlag.latestSpec | VersionFlag.firstOfLatestSpec,
      ],
      [
        '2024-01-02T00:00:00.000Z',
        VersionFlag.last | VersionFlag.latestSpec | VersionFlag.lastOfLatestSpec,
      ],
    ]);
    await store.close();
  });
});

describe('sqlite write lock', () => {
  it('writer waits for another connection', async () => {
    const file = join(directory, 'locked.db');
    const store = createSqliteStore({ file });
    await store.init();

    // Another thread takes the write lock, moves the collection clock far
    // ahead and commits after 300 ms, as another process would.
    const driver = createRequire(import.meta.url).resolve('better-sqlite3');
    const farAhead = 9_000_000_000_000_000;
    const worker = new Worker(
      `const { parentPort, workerData } = require('node:worker_threads');
       const Database = require(workerData.driver);
       const db = new Database(workerData.file);
       db.exec('BEGIN IMMEDIATE');
       db.prepare('INSERT OR REPLACE INTO collection_clock VALUES (?, ?)').run('c', workerData.farAhead);
       parentPort.postMessage('locked');
       Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 300);
       db.exec('COMMIT');
       db.close();`,
      { eval: true, workerData: { driver, file, farAhead } },
    );
    await new Promise((resolve) => worker.once('message', resolve));

    const startedAt = Date.now();
    const result = await store.putObjects('c', [
      { id: 'indicator--1', type: 'indicator', version: '', specVersion: '2.1', json: '{}' },
    ]);
    const waitedMs = Date.now() - startedAt;
    await new Promise((resolve) => worker.once('exit', resolve));

    expect(result.added).toBe(1);
    expect(waitedMs).toBeGreaterThan(100);
    const page = await store.queryObjects({ collectionId: 'c', limit: 1 });
    expect(page.items[0]?.dateAdded).toBe(farAhead + 1);
    await store.close();
  });
});

describe('sqlite query plans', () => {
  const store = createSqliteStore({ file: join(directory, 'plans.db') });
  afterAll(() => store.close());

  const plan = async (query: Parameters<typeof store.explainObjectQuery>[0], joined = false) => {
    await store.init();
    return store.explainObjectQuery(query, joined).join('\n');
  };

  it('last reads flags, no subquery', async () => {
    for (const latestSpecVersion of [false, true]) {
      const text = await plan({ collectionId: 'c', latestSpecVersion, limit: 1000 });
      // Either index that starts with (collection_id, date_added) walks the page in order.
      expect(text).toMatch(/SEARCH o USING (COVERING )?INDEX \w+ \(collection_id=\?\)/);
      expect(text).not.toMatch(/SUBQUERY/);
      expect(text).not.toMatch(/TEMP B-TREE/);
    }
  });

  it('last with spec filter seeks', async () => {
    const text = await plan({ collectionId: 'c', specVersions: ['2.0'], limit: 1000 });
    expect(text).toMatch(/CORRELATED SCALAR SUBQUERY|EXISTS/);
    // The other versions of the object are sought, never scanned: an object has few.
    expect(text).toMatch(/SEARCH v USING (COVERING )?INDEX \w+ \(collection_id=\? AND id=\?/);
    expect(text).not.toMatch(/TEMP B-TREE/);
  });

  it('joined page needs no sort', async () => {
    const text = await plan({ collectionId: 'c', latestSpecVersion: true, limit: 1000 }, true);
    expect(text).toMatch(/SEARCH o USING (COVERING )?INDEX \w+ \(collection_id=\?\)/);
    expect(text).not.toMatch(/SUBQUERY/);
    expect(text).not.toMatch(/TEMP B-TREE/);
  });

  it('added_after and after use range', async () => {
    const text = await plan({
      collectionId: 'c',
      addedAfter: 5,
      after: { dateAdded: 6, id: 'x', version: '' },
      limit: 1000,
    });
    expect(text).toMatch(/INDEX objects_page \(collection_id=\? AND date_added>\?\)|date_added>\?/);
    expect(text).not.toMatch(/TEMP B-TREE/);
  });

  it('manifest reads no table rows', async () => {
    const all = await plan({
      collectionId: 'c',
      versions: [{ kind: 'all' }],
      withoutBody: true,
      limit: 1000,
    });
    const last = await plan({
      collectionId: 'c',
      latestSpecVersion: true,
      withoutBody: true,
      limit: 1000,
    });
    expect(all).toMatch(/USING COVERING INDEX objects_page/);
    expect(last).toMatch(/USING COVERING INDEX objects_page/);
  });
});
