export {
  createMongoStore,
  databaseFromUri,
  DEFAULT_DATABASE,
  MongoStore,
  type MongoStoreOptions,
} from './store.js';
