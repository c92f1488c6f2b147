import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import type { Store } from '../../src/store/index.js';
import { createMongoStore, type MongoStore } from '../../src/store/mongo/index.js';
import { createSqliteStore } from '../../src/store/sqlite/index.js';

/** A store the hub can run on in a test, as the environment settings that select it. */
export interface TestStore {
  name: 'sqlite' | 'mongodb';
  /** Settings to merge into the hub's environment; each call names a fresh MongoDB database. */
  env(): Record<string, string>;
}

/**
 * Lists the stores that end-to-end tests run on: always the embedded SQLite
 * store, and MongoDB when MONGODB_URI names a server (FerretDB on loopback in CI).
 */
export function testStores(): TestStore[] {
  const stores: TestStore[] = [{ name: 'sqlite', env: () => ({}) }];
  const uri = process.env.MONGODB_URI;
  if (uri) {
    stores.push({
      name: 'mongodb',
      env: () => ({
        MONGODB_URI: uri,
        FEEDHUB_MONGODB_DATABASE: `feedhub_test_${randomBytes(6).toString('hex')}`,
      }),
    });
  }
  return stores;
}

/**
 * Fails the run in CI when MONGODB_URI is missing, so the MongoDB half of the
 * end-to-end tests is never skipped there without notice.
 */
export function requireMongoInCi(): void {
  if (process.env.CI && !process.env.MONGODB_URI) {
    it('runs on MongoDB in CI', () => {
      throw new Error(
        'MONGODB_URI is required in CI: start FerretDB with `.ci/ferretdb.sh start DIR` and export the URI it prints',
      );
    });
  }
}

/** A store opened directly, for tests below the hub, and how to remove it. */
export interface OpenedTestStore {
  store: Store;
  cleanup: () => Promise<void>;
}

/**
 * Lists openers of fresh stores, for tests that use the storage port
 * directly: a temporary SQLite file always, and a database with a random
 * name on MONGODB_URI when it is set (dropped by `cleanup`).
 */
export function storeOpeners(
  prefix: string,
): { name: 'sqlite' | 'mongodb'; open: () => Promise<OpenedTestStore> }[] {
  const openers: { name: 'sqlite' | 'mongodb'; open: () => Promise<OpenedTestStore> }[] = [
    {
      name: 'sqlite',
      open: async () => {
        const dir = mkdtempSync(join(tmpdir(), prefix));
        const store = createSqliteStore({ file: join(dir, 'hub.sqlite') });
        return {
          store,
          cleanup: async () => {
            await store.close();
            rmSync(dir, { recursive: true, force: true });
          },
        };
      },
    },
  ];
  const uri = process.env.MONGODB_URI;
  if (uri) {
    openers.push({
      name: 'mongodb',
      open: async () => {
        const store: MongoStore = createMongoStore({
          uri,
          dbName: `feedhub_test_${randomBytes(6).toString('hex')}`,
        });
        return {
          store,
          cleanup: async () => {
            await store.connection().db.dropDatabase();
            await store.close();
          },
        };
      },
    });
  }
  return openers;
}
