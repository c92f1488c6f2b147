export * from './port.js';
export {
  createSqliteStore,
  SqliteJobBackend,
  SqliteStore,
  type SqliteStoreOptions,
} from './sqlite/index.js';
