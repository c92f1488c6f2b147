export * from './port.js';
export {
  createSqliteStore,
  SqliteJobBackend,
  SqliteStore,
  type SqliteStoreOptions,
} from './sqlite/index.js';
export {
  createMongoStore,
  databaseFromUri,
  MongoStore,
  type MongoStoreOptions,
} from './mongo/index.js';
