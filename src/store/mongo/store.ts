import { MongoClient, MongoError, type Collection, type Db, type Filter } from 'mongodb';

import {
  StoreError,
  type AdminRecord,
  type AuditInput,
  type AuditQuery,
  type AuditRecord,
  type CollectionRecord,
  type ExpireInput,
  type ExpireSummary,
  type IndicatorEntry,
  type JoinedObjectPage,
  type ObjectDeletion,
  type ObjectPage,
  type ObjectQuery,
  type ObjectVersionInput,
  type PollResultInput,
  type StreamedPollInput,
  type PollResultSummary,
  type PutObjectsResult,
  type PutRecordOptions,
  type RecordKind,
  type RecordPage,
  type RemoveSightingInput,
  type RemoveSightingResult,
  type RenderedView,
  type Revocation,
  type SightingRecord,
  type SourceState,
  type StatusRecord,
  type Store,
  type InactiveIndicator,
} from '../port.js';
import { groupInactive, type WithdrawnSightingRow } from '../inactive.js';
import { isDuplicateKey, ObjectCollection } from './objects.js';
import { PollCollections } from './poll.js';
import { MongoPollStage } from './poll-stage.js';
import { RecordCollections } from './records.js';
import { ViewCollections } from './views.js';
import {
  COLLECTIONS,
  createIndexes,
  type CollectionDoc,
  type SecretDoc,
  type SightingDoc,
  type StatusDoc,
} from './schema.js';

export interface MongoStoreOptions {
  /** Connection string, `mongodb://` or `mongodb+srv://`. */
  uri: string;
  /**
   * Database name. Defaults to the path of `uri`
   * (`mongodb://host/feedhub` selects `feedhub`), and to `feedhub` when the
   * URI has none.
   */
  dbName?: string;
}

/** Database used when neither the URI path nor `dbName` names one. */
export const DEFAULT_DATABASE = 'feedhub';

/** Returns a store on the MongoDB database; it connects on `init()`. */
export function createMongoStore(options: MongoStoreOptions): MongoStore {
  return new MongoStore(options);
}

/**
 * The production store on MongoDB 6+ or a MongoDB-compatible server. It uses
 * no transactions and no change streams: every write is idempotent, and a
 * multi-step write (`putObjects`, `applyPoll`) that stops midway is completed
 * by repeating it. Several processes may share one database.
 */
export class MongoStore implements Store {
  readonly dbName: string;
  private readonly client: MongoClient;
  private readonly db: Db;
  private readonly objects: ObjectCollection;
  private readonly poll: PollCollections;
  private readonly collections: Collection<CollectionDoc>;
  private readonly views: ViewCollections;
  private readonly secrets: Collection<SecretDoc>;
  private readonly statuses: Collection<StatusDoc>;
  private readonly records: RecordCollections;
  private initialised = false;
  private closed = false;

  constructor(options: MongoStoreOptions) {
    this.dbName = options.dbName ?? databaseFromUri(options.uri) ?? DEFAULT_DATABASE;
    try {
      // ignoreUndefined: optional fields that are undefined are left out of
      // documents instead of being stored as null.
      this.client = new MongoClient(options.uri, { ignoreUndefined: true, appName: 'feedhub' });
    } catch (error) {
      // The driver's message does not repeat the URI, so no password leaks.
      throw new StoreError(
        `Invalid MongoDB URI: ${messageOf(error)}; expected mongodb://host[:port]/database`,
        { cause: error },
      );
    }
    this.db = this.client.db(this.dbName);
    this.objects = new ObjectCollection(this.db);
    this.poll = new PollCollections(this.db, this.objects);
    this.collections = this.db.collection<CollectionDoc>(COLLECTIONS.collections);
    this.views = new ViewCollections(this.db);
    this.secrets = this.db.collection<SecretDoc>(COLLECTIONS.secrets);
    this.statuses = this.db.collection<StatusDoc>(COLLECTIONS.statuses);
    this.records = new RecordCollections(this.db);
  }

  /**
   * Returns the connected client and database, for the Agenda job backend
   * that shares the connection. Nothing outside `src/store` and `src/jobs`
   * may use them.
   */
  connection(): { client: MongoClient; db: Db } {
    this.assertOpen();
    return { client: this.client, db: this.db };
  }

  async init(): Promise<void> {
    await this.guard('init', async () => {
      await this.client.connect();
      await createIndexes(this.db);
      await MongoPollStage.dropStale(this.db);
    });
    this.initialised = true;
  }

  async ping(timeoutMs: number): Promise<void> {
    this.assertOpen();
    const abort = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        reject(new StoreError(`MongoDB ping timed out after ${timeoutMs} ms`));
        abort.abort();
      }, timeoutMs);
    });
    const ping = this.guard('ping', () => this.db.command({ ping: 1 }, { signal: abort.signal }));
    // The aborted ping rejects after the timeout has already been reported.
    ping.catch(() => undefined);
    try {
      await Promise.race([ping, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.client.close();
  }

  async upsertCollection(collection: CollectionRecord): Promise<void> {
    this.assertReady();
    const aliasTaken = () =>
      new StoreError(
        `Collection alias ${collection.alias} is already used by another collection; ` +
          `choose another alias for collection ${collection.id}`,
      );

    const owner = await this.guard('upsertCollection', () =>
      this.collections.findOne({ alias: collection.alias }, { projection: { _id: 1 } }),
    );
    if (owner !== null && owner._id !== collection.id) throw aliasTaken();

    const doc: CollectionDoc = {
      _id: collection.id,
      alias: collection.alias,
      title: collection.title,
      can_read: collection.canRead,
      can_write: collection.canWrite,
      media_types: collection.mediaTypes,
    };
    if (collection.description !== undefined) doc.description = collection.description;
    if (collection.access !== undefined) doc.access = collection.access;
    try {
      await this.guard('upsertCollection', () =>
        this.collections.replaceOne({ _id: collection.id }, doc, { upsert: true }),
      );
    } catch (error) {
      // Another process took the alias between the check and the write.
      if (error instanceof StoreError && isDuplicateKey(error.cause)) throw aliasTaken();
      throw error;
    }
  }

  async listCollections(): Promise<CollectionRecord[]> {
    this.assertReady();
    const docs = await this.guard('listCollections', () =>
      this.collections.find({}).sort({ _id: 1 }).toArray(),
    );
    return docs.map(toCollection);
  }

  async getCollection(id: string): Promise<CollectionRecord | undefined> {
    this.assertReady();
    const doc = await this.guard('getCollection', () => this.collections.findOne({ _id: id }));
    return doc === null ? undefined : toCollection(doc);
  }

  async getCollectionByAlias(alias: string): Promise<CollectionRecord | undefined> {
    this.assertReady();
    const doc = await this.guard('getCollectionByAlias', () => this.collections.findOne({ alias }));
    return doc === null ? undefined : toCollection(doc);
  }

  async putObjects(collectionId: string, objects: ObjectVersionInput[]): Promise<PutObjectsResult> {
    this.assertReady();
    return this.guard('putObjects', () => this.objects.put(collectionId, objects));
  }

  async queryObjects(query: ObjectQuery): Promise<ObjectPage> {
    checkLimit(query.limit);
    this.assertReady();
    return this.guard('queryObjects', () => this.objects.query(query));
  }

  async queryJoinedObjects(query: ObjectQuery): Promise<JoinedObjectPage> {
    checkLimit(query.limit);
    this.assertReady();
    return this.guard('queryJoinedObjects', () => this.objects.queryJoined(query));
  }

  async countObjects(collectionId: string): Promise<number> {
    this.assertReady();
    return this.guard('countObjects', () => this.objects.count(collectionId));
  }

  async deleteObjectVersions(deletion: ObjectDeletion): Promise<number> {
    this.assertReady();
    return this.guard('deleteObjectVersions', () => this.objects.deleteVersions(deletion));
  }

  async putStatus(status: StatusRecord): Promise<void> {
    this.assertReady();
    const doc: StatusDoc = {
      _id: status.id,
      collection_id: status.collectionId,
      request_timestamp: status.requestTimestamp,
      body: JSON.stringify(status),
    };
    await this.guard('putStatus', () =>
      this.statuses.replaceOne({ _id: doc._id }, doc, { upsert: true }),
    );
  }

  async getStatus(id: string): Promise<StatusRecord | undefined> {
    this.assertReady();
    const doc = await this.guard('getStatus', () => this.statuses.findOne({ _id: id }));
    return doc === null ? undefined : (JSON.parse(doc.body) as StatusRecord);
  }

  async purgeStatuses(requestedBefore: number): Promise<number> {
    this.assertReady();
    const result = await this.guard('purgeStatuses', () =>
      this.statuses.deleteMany({ request_timestamp: { $lt: requestedBefore } }),
    );
    return result.deletedCount;
  }

  /** Applies a poll; see `PollCollections.apply` for what a failure midway leaves. */
  async applyUnchangedPoll(
    input: PollResultInput & { since: number },
  ): Promise<PollResultSummary | undefined> {
    this.assertReady();
    return this.guard('applyUnchangedPoll', () => this.poll.applyUnchanged(input));
  }

  async applyPoll(input: PollResultInput | StreamedPollInput): Promise<PollResultSummary> {
    this.assertReady();
    return this.guard('applyPoll', () => this.poll.apply(input));
  }

  async listIndicatorEntries(
    collectionId: string,
    valueTypes?: string[],
  ): Promise<IndicatorEntry[]> {
    this.assertReady();
    return this.guard('listIndicatorEntries', () =>
      this.poll.listEntries(collectionId, valueTypes),
    );
  }

  async getSourceState(collectionId: string, sourceId: string): Promise<SourceState | undefined> {
    this.assertReady();
    return this.guard('getSourceState', () => this.poll.getState(collectionId, sourceId));
  }

  async putSourceState(state: SourceState): Promise<void> {
    this.assertReady();
    await this.guard('putSourceState', () => this.poll.putState(state));
  }

  async expireSightings(input: ExpireInput): Promise<ExpireSummary> {
    this.assertReady();
    return this.guard('expireSightings', () => this.poll.expire(input));
  }

  async listInactiveIndicators(
    collectionId: string,
    valueTypes?: string[],
  ): Promise<InactiveIndicator[]> {
    this.assertReady();
    return this.guard('listInactiveIndicators', async () => {
      const sightings = this.db.collection<SightingDoc>(COLLECTIONS.sightings);
      const filter: Filter<SightingDoc> = { collection_id: collectionId };
      if (valueTypes !== undefined) filter.value_type = { $in: valueTypes };
      // One sorted scan: a value is inactive when none of its sightings is active.
      const cursor = sightings
        .find(filter, { projection: { _id: 0, attributes: 0 } })
        .sort({ value_type: 1, value: 1 });
      // A removed value's sightings carry the successor id, which has no
      // version until a source lists the value again. Until then the
      // revoked id names its indicator, and the value is removed.
      const removed = await this.poll.removedBySuccessor(collectionId);
      const rows: WithdrawnSightingRow[] = [];
      let group: SightingDoc[] = [];
      const flush = () => {
        if (group.every((doc) => doc.withdrawn_at !== null)) {
          for (const doc of group) {
            rows.push({
              valueType: doc.value_type,
              value: doc.value,
              sourceId: doc.source_id,
              indicatorId: removed.get(doc.indicator_id) ?? doc.indicator_id,
              firstSeen: doc.first_seen,
              lastSeen: doc.last_seen,
              withdrawnAt: doc.withdrawn_at!,
              reason: removed.has(doc.indicator_id)
                ? 'removed'
                : (doc.withdrawal_reason ?? 'missing'),
            });
          }
        }
        group = [];
      };
      for await (const doc of cursor) {
        const first = group[0];
        if (
          first !== undefined &&
          (first.value_type !== doc.value_type || first.value !== doc.value)
        )
          flush();
        group.push(doc);
      }
      flush();
      return groupInactive(rows);
    });
  }

  async listSightings(
    collectionId: string,
    valueType: string,
    value: string,
  ): Promise<SightingRecord[]> {
    this.assertReady();
    return this.guard('listSightings', () =>
      this.poll.listSightings(collectionId, valueType, value),
    );
  }

  async removeSighting(input: RemoveSightingInput): Promise<RemoveSightingResult> {
    this.assertReady();
    return this.guard('removeSighting', () => this.poll.remove(input));
  }

  async listRevocations(
    collectionId: string,
    valueType: string,
    value: string,
  ): Promise<Revocation[]> {
    this.assertReady();
    return this.guard('listRevocations', () =>
      this.poll.listRevocations(collectionId, valueType, value),
    );
  }

  async getOrCreateSecret(name: string, create: () => string): Promise<string> {
    this.assertReady();
    const stored = await this.guard('getOrCreateSecret', () => this.secrets.findOne({ _id: name }));
    if (stored !== null) return stored.value;

    // Another process may store the secret between the read and the insert.
    // The insert then fails on the _id, and everyone reads the first one stored.
    const candidate = create();
    try {
      await this.guard('getOrCreateSecret', () =>
        this.secrets.insertOne({ _id: name, value: candidate }),
      );
      return candidate;
    } catch (error) {
      if (!(error instanceof StoreError && isDuplicateKey(error.cause))) throw error;
    }
    const winner = await this.guard('getOrCreateSecret', () => this.secrets.findOne({ _id: name }));
    if (winner === null) throw new StoreError(`Secret ${name} vanished after being stored`);
    return winner.value;
  }

  async putView(view: RenderedView): Promise<void> {
    this.assertReady();
    await this.guard('putView', () => this.views.put(view));
  }

  async getView(collectionId: string, name: string): Promise<RenderedView | undefined> {
    this.assertReady();
    return this.guard('getView', () => this.views.get(collectionId, name));
  }

  async getViewEtag(collectionId: string, name: string): Promise<string | undefined> {
    this.assertReady();
    return this.guard('getViewEtag', () => this.views.etag(collectionId, name));
  }

  async getViewData(
    collectionId: string,
    name: string,
    options: { withoutData?: boolean } = {},
  ): Promise<{ etag: string; dataEtag: string; data: Buffer } | undefined> {
    this.assertReady();
    return this.guard('getViewData', () =>
      this.views.data(collectionId, name, options.withoutData === true),
    );
  }

  async getViewLog(
    collectionId: string,
    name: string,
  ): Promise<{ etag: string; renderedAt: number; log: string } | undefined> {
    this.assertReady();
    return this.guard('getViewLog', () => this.views.log(collectionId, name));
  }

  async putRecord(
    kind: RecordKind,
    id: string,
    body: Record<string, unknown>,
    options: PutRecordOptions,
  ): Promise<AdminRecord> {
    this.assertReady();
    return this.guard('putRecord', () => this.records.put(kind, id, body, options));
  }

  async getRecord(kind: RecordKind, id: string): Promise<AdminRecord | undefined> {
    this.assertReady();
    return this.guard('getRecord', () => this.records.get(kind, id));
  }

  async listRecords(
    kind: RecordKind,
    query: { prefix?: string; after?: string; limit: number },
  ): Promise<RecordPage> {
    checkLimit(query.limit);
    this.assertReady();
    return this.guard('listRecords', () => this.records.list(kind, query));
  }

  async deleteRecord(kind: RecordKind, id: string, expectedRevision?: number): Promise<boolean> {
    this.assertReady();
    return this.guard('deleteRecord', () => this.records.delete(kind, id, expectedRevision));
  }

  async deleteRecords(kind: RecordKind, prefix: string): Promise<number> {
    this.assertReady();
    return this.guard('deleteRecords', () => this.records.deleteByPrefix(kind, prefix));
  }

  async appendAudit(entry: AuditInput): Promise<AuditRecord> {
    this.assertReady();
    return this.guard('appendAudit', () => this.records.append(entry));
  }

  async purgeAudit(before: number): Promise<number> {
    this.assertReady();
    return this.guard('purgeAudit', () => this.records.purgeAudit(before));
  }

  async listAudit(query: AuditQuery): Promise<{ items: AuditRecord[]; more: boolean }> {
    checkLimit(query.limit);
    this.assertReady();
    return this.guard('listAudit', () => this.records.listAudit(query));
  }

  async deleteCollection(id: string): Promise<void> {
    this.assertReady();
    await this.guard('deleteCollection', () => this.records.deleteCollection(id));
  }

  private assertOpen(): void {
    if (this.closed) throw new StoreError(`MongoDB store on database ${this.dbName} is closed`);
  }

  private assertReady(): void {
    this.assertOpen();
    if (!this.initialised) {
      throw new StoreError(
        `MongoDB store on database ${this.dbName} is used before init(); call init() first`,
      );
    }
  }

  /** Runs `work`, turning driver errors into `StoreError`; other errors pass unchanged. */
  private async guard<T>(operation: string, work: () => Promise<T>): Promise<T> {
    this.assertOpen();
    try {
      return await work();
    } catch (error) {
      if (error instanceof MongoError) {
        throw new StoreError(
          `MongoDB ${operation} on database ${this.dbName} failed: ${error.message}`,
          { cause: error },
        );
      }
      throw error;
    }
  }
}

/**
 * Returns the database named by the path of a MongoDB connection string, or
 * undefined when the path is empty. It is parsed by hand because `URL`
 * rejects the host lists (`h1,h2`) that connection strings allow. User names
 * and passwords must percent-encode `/`, so the first `/` after the scheme
 * starts the path.
 */
export function databaseFromUri(uri: string): string | undefined {
  const scheme = uri.indexOf('://');
  if (scheme === -1) return undefined;
  const rest = uri.slice(scheme + 3);
  const slash = rest.indexOf('/');
  if (slash === -1) return undefined;
  const path = rest.slice(slash + 1).split('?')[0] ?? '';
  return path === '' ? undefined : decodeURIComponent(path);
}

function toCollection(doc: CollectionDoc): CollectionRecord {
  const collection: CollectionRecord = {
    id: doc._id,
    alias: doc.alias,
    title: doc.title,
    canRead: doc.can_read,
    canWrite: doc.can_write,
    mediaTypes: doc.media_types,
  };
  if (doc.description !== undefined) collection.description = doc.description;
  if (doc.access !== undefined) collection.access = doc.access;
  return collection;
}

/** Returns the bytes of a BSON binary as a Buffer that shares its memory. */

function checkLimit(limit: number): void {
  if (!Number.isSafeInteger(limit) || limit < 1) {
    throw new StoreError(`Invalid page limit ${limit}: expected an integer of at least 1`);
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
