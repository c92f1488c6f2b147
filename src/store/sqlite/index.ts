export { SqliteJobBackend, SqliteJobRepository } from './agenda-repository.js';
export { createSqliteStore, SqliteStore, type SqliteStoreOptions } from './store.js';
