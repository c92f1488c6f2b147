export * from './port.js';
export {
  ATTRIBUTE_TLP_RANK,
  mergeAttributes,
  normalizeAttributes,
  type AttributedSighting,
} from './attributes.js';
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
