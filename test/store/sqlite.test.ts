import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { Worker } from 'node:worker_threads';
import { createRequire } from 'node:module';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from '@jest/globals';
import Database from 'better-sqlite3';

import { createSqliteStore, StoreError, type Store } from '../../src/store/index.js';
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

  it('wal mode and pragmas', async () => {
    const store = createSqliteStore({ file: join(directory, 'pragmas.db') });
    await store.init();
    const db = store.connection();

    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('foreign_keys', { simple: true })).toBe(1);
    expect(db.pragma('synchronous', { simple: true })).toBe(1);
    expect(db.pragma('busy_timeout', { simple: true })).toBe(5000);
    expect(db.pragma('user_version', { simple: true })).toBe(MIGRATIONS.length);
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

  const plan = async (query: Parameters<typeof store.explainObjectQuery>[0]) => {
    await store.init();
    return store.explainObjectQuery(query).join('\n');
  };

  it('last uses indexes', async () => {
    const text = await plan({ collectionId: 'c', limit: 1000 });
    // Either index that starts with (collection_id, date_added) walks the page in order.
    expect(text).toMatch(/SEARCH o USING (COVERING )?INDEX \w+ \(collection_id=\?\)/);
    expect(text).toMatch(/CORRELATED SCALAR SUBQUERY|EXISTS/);
    expect(text).toMatch(
      /USING COVERING INDEX sqlite_autoindex_objects_1 \(collection_id=\? AND id=\? AND version>\?\)/,
    );
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
    const text = await plan({
      collectionId: 'c',
      versions: [{ kind: 'all' }],
      withoutBody: true,
      limit: 1000,
    });
    expect(text).toMatch(/USING COVERING INDEX objects_page/);
  });
});
