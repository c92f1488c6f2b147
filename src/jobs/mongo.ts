import { MongoBackend } from '@agendajs/mongo-backend';

import type { MongoStore } from '../store/index.js';

/** MongoDB collection that keeps the Agenda jobs, beside the store's collections. */
export const MONGO_JOBS_COLLECTION = 'agenda_jobs';

/**
 * Builds an Agenda backend that keeps jobs in the store's database over the
 * store's connection. Call after `store.init()`. The store owns the
 * connection, so the backend's `disconnect()` leaves it open: stop Agenda
 * before `store.close()`.
 *
 * NOTE: Agenda locks a job with `findOneAndUpdate`, which MongoDB runs
 * atomically. FerretDB 1.24 with its SQLite handler runs it as a read then a
 * write, so two worker processes can both lock the same job there. Run one
 * worker process on such a server.
 */
export function createMongoJobBackend(store: MongoStore): MongoBackend {
  const { db } = store.connection();
  return new MongoBackend({ mongo: db, collection: MONGO_JOBS_COLLECTION });
}
