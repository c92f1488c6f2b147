import { join } from 'node:path';
import type { AgendaBackend } from 'agenda';
import type { Logger } from 'pino';
import { createMongoJobBackend } from '../jobs/index.js';
import {
  createMongoStore,
  createSqliteStore,
  databaseFromUri,
  type Store,
} from '../store/index.js';
import type { Settings } from './config.js';

/** The store chosen by the settings, and the Agenda backend that keeps jobs beside it. */
export interface OpenedStore {
  store: Store;
  jobBackend(): AgendaBackend;
  kind: 'sqlite' | 'mongodb';
}

/** File name of the embedded store inside the data directory. */
export const SQLITE_FILE = 'feedhub.sqlite';

/** Opens MongoDB when `MONGODB_URI` is set, else the SQLite file in the data directory. */
export async function openStore(settings: Settings, logger: Logger): Promise<OpenedStore> {
  if (settings.mongodbUri) {
    const dbName = databaseFromUri(settings.mongodbUri) ?? settings.mongodbDatabase;
    const store = createMongoStore({ uri: settings.mongodbUri, dbName });
    logger.info({ database: dbName }, 'using MongoDB');
    return { store, jobBackend: () => createMongoJobBackend(store), kind: 'mongodb' };
  }
  const file = join(settings.dataDir, SQLITE_FILE);
  const store = createSqliteStore({
    file,
    onWarning: (message) => logger.warn({ file }, message),
  });
  logger.info({ file }, 'using the embedded SQLite store');
  return { store, jobBackend: () => store.jobBackend(), kind: 'sqlite' };
}
