import { randomBytes } from 'node:crypto';

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
