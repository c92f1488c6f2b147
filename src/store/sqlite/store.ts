import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

import Database from 'better-sqlite3';

import {
  isStreamedPoll,
  StoreError,
  type AdminRecord,
  type AuditInput,
  type AuditQuery,
  type AuditRecord,
  type CollectionAccess,
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
  type PollResultSummary,
  type SightingInput,
  type StreamedPollInput,
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
import { SqliteJobBackend } from './agenda-repository.js';
import { Checkpointer, type CheckpointResult } from './checkpointer.js';
import { ObjectTable } from './objects.js';
import { PollTables } from './poll.js';
import type { PollStage } from './poll-stage.js';
import { RecordTables } from './records.js';
import { migrate } from './schema.js';

export interface SqliteStoreOptions {
  /** Path of the database file; its directory is created when missing. */
  file: string;
  /** How long a statement waits for another connection's write lock, in ms. Default 5000. */
  busyTimeoutMs?: number;
  /**
   * Receives a problem that the store works around without failing a call:
   * the WAL checkpoint worker stopped, so commits checkpoint again.
   */
  onWarning?: (message: string) => void;
}

type CollectionRow = {
  id: string;
  alias: string;
  title: string;
  description: string | null;
  canRead: number;
  canWrite: number;
  mediaTypes: string;
  access: string | null;
};

type ViewRow = Omit<RenderedView, 'collectionId' | 'name' | 'data'>;

const EMPTY_BUFFER = Buffer.alloc(0);

/** WAL pages after which a commit checkpoints on the committing connection (SQLite's default). */
const AUTO_CHECKPOINT_PAGES = 1000;

/** Size in bytes to which the WAL file is cut back when it starts over. */
const WAL_SIZE_LIMIT_BYTES = 64 * 1024 * 1024;

/**
 * Opens (creating when missing) the SQLite file and returns a store on it.
 * Call `init()` before anything else to apply migrations.
 */
export function createSqliteStore(options: SqliteStoreOptions): SqliteStore {
  return new SqliteStore(options);
}

/**
 * The embedded store: everything in one SQLite file in WAL mode, shared safely
 * by several connections and processes. better-sqlite3 is synchronous, so each
 * method does its work before its promise settles. Writes run in `BEGIN
 * IMMEDIATE` transactions, so they wait (up to the busy timeout) for a writer
 * in another connection instead of failing halfway.
 */
export class SqliteStore implements Store {
  readonly file: string;
  private readonly db: Database.Database;
  /** The checkpoint worker of large writes, or undefined when the file is not in WAL mode (`:memory:`). */
  private readonly checkpointer: Checkpointer | undefined;
  private closed = false;
  /** Statements, prepared by `init()` once the schema exists. */
  private prepared: Prepared | undefined;

  constructor(options: SqliteStoreOptions) {
    this.file = options.file;
    try {
      mkdirSync(dirname(options.file), { recursive: true });
      this.db = new Database(options.file);
      this.db.pragma('journal_mode = WAL');
      this.db.pragma(`busy_timeout = ${Math.trunc(options.busyTimeoutMs ?? 5000)}`);
      this.db.pragma('foreign_keys = ON');
      this.db.pragma('synchronous = NORMAL');
      // With a 64 MiB page cache and 256 MiB of memory-mapped reads, a poll of
      // a million values ran at about 50,000 new or 200,000 known values/s.
      // Without mmap it ran at 43,000 and 165,000/s. Both were measured with
      // test/store/sqlite-speed.test.ts at SIGHTINGS = 1,000,000 on a 2-vCPU VM.
      this.db.pragma('cache_size = -65536');
      this.db.pragma('mmap_size = 268435456');
      this.db.pragma(`wal_autocheckpoint = ${AUTO_CHECKPOINT_PAGES}`);
      // A poll of a million values grows the WAL to about 1.5 GB. SQLite
      // reuses the file from its start after a checkpoint but keeps its size,
      // unless this limit has it cut back when the WAL starts over.
      this.db.pragma(`journal_size_limit = ${WAL_SIZE_LIMIT_BYTES}`);
      const mode = this.db.pragma('journal_mode', { simple: true }) as string;
      this.checkpointer =
        mode === 'wal'
          ? new Checkpointer(options.file, (reason) => {
              options.onWarning?.(
                `${reason}. Commits checkpoint the WAL themselves, which is slower, until the hub restarts`,
              );
              if (!this.closed) this.db.pragma(`wal_autocheckpoint = ${AUTO_CHECKPOINT_PAGES}`);
            })
          : undefined;
    } catch (error) {
      throw new StoreError(`Opening SQLite file ${options.file} failed: ${messageOf(error)}`, {
        cause: error,
      });
    }
  }

  /**
   * Returns the underlying connection. Nothing outside `src/store/sqlite` may
   * run SQL on it; tests read pragmas through it.
   */
  connection(): Database.Database {
    this.assertOpen();
    return this.db;
  }

  /**
   * Returns an Agenda backend that keeps jobs in this store's file. Call after
   * `init()`. The store owns the connection: stop Agenda before `close()`.
   */
  jobBackend(): SqliteJobBackend {
    this.statements();
    return new SqliteJobBackend(this.db);
  }

  async init(): Promise<void> {
    this.guard(() => {
      migrate(this.db, this.file);
      this.prepared ??= new Prepared(this.db);
    });
  }

  async ping(_timeoutMs: number): Promise<void> {
    // NOTE: a synchronous driver cannot be interrupted, so the timeout is not
    // enforced. A read in WAL mode never waits for a lock and returns at once.
    this.guard(() => this.db.prepare('SELECT 1').get());
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.checkpointer?.close();
    this.db.close();
  }

  /**
   * Resolves when the checkpoints requested after large writes have run.
   * Benchmarks wait for it between polls, and tests to see the result.
   */
  async checkpointsSettled(): Promise<{ failure?: string } & Partial<CheckpointResult>> {
    if (this.checkpointer === undefined) return {};
    await this.checkpointer.settled();
    const { last, failure } = this.checkpointer;
    return { ...last, ...(failure === undefined ? {} : { failure }) };
  }

  async upsertCollection(collection: CollectionRecord): Promise<void> {
    const p = this.statements();
    this.guard(() => p.upsertCollection.immediate(collection));
  }

  async listCollections(): Promise<CollectionRecord[]> {
    const p = this.statements();
    return this.guard(() => p.listCollections.all().map(toCollection));
  }

  async getCollection(id: string): Promise<CollectionRecord | undefined> {
    const p = this.statements();
    const row = this.guard(() => p.getCollection.get(id));
    return row === undefined ? undefined : toCollection(row);
  }

  async getCollectionByAlias(alias: string): Promise<CollectionRecord | undefined> {
    const p = this.statements();
    const row = this.guard(() => p.getCollectionByAlias.get(alias));
    return row === undefined ? undefined : toCollection(row);
  }

  async putObjects(collectionId: string, objects: ObjectVersionInput[]): Promise<PutObjectsResult> {
    const p = this.statements();
    return this.guard(() =>
      this.offloadCheckpoint(() => p.putObjects.immediate(collectionId, objects)),
    );
  }

  async queryObjects(query: ObjectQuery): Promise<ObjectPage> {
    checkLimit(query.limit);
    const p = this.statements();
    return this.guard(() => p.objects.query(query));
  }

  async queryJoinedObjects(query: ObjectQuery): Promise<JoinedObjectPage> {
    checkLimit(query.limit);
    const p = this.statements();
    return this.guard(() => p.queryJoined.deferred(query));
  }

  /**
   * Returns the SQLite query plan of a page query, one line per step; with
   * `joined`, the plan of the query of `queryJoinedObjects`.
   */
  explainObjectQuery(query: ObjectQuery, joined = false): string[] {
    checkLimit(query.limit);
    const p = this.statements();
    return this.guard(() => p.objects.explain(query, joined));
  }

  async countObjects(collectionId: string): Promise<number> {
    const p = this.statements();
    return this.guard(() => p.objects.countIn(collectionId));
  }

  async deleteObjectVersions(deletion: ObjectDeletion): Promise<number> {
    const p = this.statements();
    return this.guard(() => p.deleteVersions.immediate(deletion));
  }

  async putStatus(status: StatusRecord): Promise<void> {
    const p = this.statements();
    this.guard(() => p.putStatus.run(status.id, status.requestTimestamp, JSON.stringify(status)));
  }

  async getStatus(id: string): Promise<StatusRecord | undefined> {
    const p = this.statements();
    const row = this.guard(() => p.getStatus.get(id));
    return row === undefined ? undefined : (JSON.parse(row.body) as StatusRecord);
  }

  async purgeStatuses(requestedBefore: number): Promise<number> {
    const p = this.statements();
    return this.guard(() => p.purgeStatuses.run(requestedBefore).changes);
  }

  async applyUnchangedPoll(
    input: PollResultInput & { since: number },
  ): Promise<PollResultSummary | undefined> {
    const p = this.statements();
    return this.guard(() => this.offloadCheckpoint(() => p.applyUnchanged.immediate(input)));
  }

  /**
   * Applies a poll in one write transaction. The batches of a streamed poll
   * are staged first, each in a short transaction of its own on the temp
   * database, so the connection never keeps a transaction open across an
   * await. A throw at any point leaves the collection unchanged.
   */
  async applyPoll(input: PollResultInput | StreamedPollInput): Promise<PollResultSummary> {
    const p = this.statements();
    if (!isStreamedPoll(input)) {
      return this.guard(() => this.offloadCheckpoint(() => p.applyPoll.immediate(input)));
    }

    const stage = this.guard(() => p.poll.stages.acquire());
    try {
      this.guard(() => stage.clear());
      let listed = 0;
      for await (const batch of input.sightings) {
        this.guard(() => p.stageBatch(stage, batch));
        listed += batch.length;
      }
      const completion = await input.complete({
        listed,
        distinct: this.guard(() => stage.count()),
      });
      return this.guard(() =>
        this.offloadCheckpoint(() => p.mergeStaged.immediate({ ...input, ...completion }, stage)),
      );
    } finally {
      if (!this.closed) this.guard(() => p.poll.stages.release(stage));
    }
  }

  async listIndicatorEntries(
    collectionId: string,
    valueTypes?: string[],
  ): Promise<IndicatorEntry[]> {
    const p = this.statements();
    return this.guard(() => p.poll.listEntries(collectionId, valueTypes));
  }

  async listInactiveIndicators(
    collectionId: string,
    valueTypes?: string[],
  ): Promise<InactiveIndicator[]> {
    return this.guard(() => {
      const rows = this.db
        .prepare<[string, string | null, string], WithdrawnSightingRow>(
          // A removed value's sightings carry the successor id, which has no
          // version until a source lists the value again. Until then the
          // revoked id names its indicator, and the value is removed.
          `SELECT s.value_type AS valueType, s.value, s.source_id AS sourceId,
                  coalesce(r.indicator_id, s.indicator_id) AS indicatorId,
                  s.first_seen AS firstSeen, s.last_seen AS lastSeen, s.withdrawn_at AS withdrawnAt,
                  CASE WHEN r.indicator_id IS NULL THEN s.withdrawal_reason ELSE 'removed' END AS reason
             FROM sightings s
             LEFT JOIN revocations r
               ON r.collection_id = s.collection_id AND r.successor_id = s.indicator_id
              AND NOT EXISTS (
                SELECT 1 FROM objects o WHERE o.collection_id = s.collection_id AND o.id = s.indicator_id)
            WHERE s.collection_id = ?
              AND (? IS NULL OR s.value_type IN (SELECT value FROM json_each(?)))
              AND NOT EXISTS (
                SELECT 1 FROM sightings a
                 WHERE a.collection_id = s.collection_id AND a.value_type = s.value_type
                   AND a.value = s.value AND a.withdrawn_at IS NULL)
            ORDER BY s.value_type, s.value`,
        )
        .all(
          collectionId,
          valueTypes === undefined ? null : 'types',
          JSON.stringify(valueTypes ?? []),
        );
      return groupInactive(rows);
    });
  }

  async getSourceState(collectionId: string, sourceId: string): Promise<SourceState | undefined> {
    const p = this.statements();
    return this.guard(() => p.poll.getState(collectionId, sourceId));
  }

  async putSourceState(state: SourceState): Promise<void> {
    const p = this.statements();
    this.guard(() => p.poll.putState(state));
  }

  async getOrCreateSecret(name: string, create: () => string): Promise<string> {
    const p = this.statements();
    const stored = this.guard(() => p.getSecret.get(name));
    if (stored !== undefined) return stored.value;

    // Another process may store the secret between the read and the insert;
    // the insert then does nothing and everyone reads the first one stored.
    const candidate = create();
    return this.guard(() => {
      p.insertSecret.run(name, candidate);
      const row = p.getSecret.get(name);
      if (row === undefined) throw new StoreError(`Secret ${name} vanished after being stored`);
      return row.value;
    });
  }

  async putView(view: RenderedView): Promise<void> {
    const p = this.statements();
    this.guard(() =>
      this.offloadCheckpoint(() =>
        p.putView.run(
          view.collectionId,
          view.name,
          view.contentType,
          view.etag,
          view.body,
          view.renderedAt,
          view.entryCount,
          view.data,
          view.dataEtag,
          view.log,
        ),
      ),
    );
  }

  async getView(collectionId: string, name: string): Promise<RenderedView | undefined> {
    const p = this.statements();
    const row = this.guard(() => p.getView.get(collectionId, name));
    return row === undefined ? undefined : { collectionId, name, ...row, data: EMPTY_BUFFER };
  }

  async getViewEtag(collectionId: string, name: string): Promise<string | undefined> {
    const p = this.statements();
    return this.guard(() => p.getViewEtag.get(collectionId, name))?.etag;
  }

  async getViewData(
    collectionId: string,
    name: string,
    options: { withoutData?: boolean } = {},
  ): Promise<{ etag: string; dataEtag: string; data: Buffer } | undefined> {
    const p = this.statements();
    if (options.withoutData === true) {
      const row = this.guard(() => p.getViewDataEtag.get(collectionId, name));
      return row === undefined ? undefined : { ...row, data: EMPTY_BUFFER };
    }
    return this.guard(() => p.getViewData.get(collectionId, name));
  }

  async getViewLog(
    collectionId: string,
    name: string,
  ): Promise<{ etag: string; renderedAt: number; log: string } | undefined> {
    const p = this.statements();
    return this.guard(() => p.getViewLog.get(collectionId, name));
  }

  async expireSightings(input: ExpireInput): Promise<ExpireSummary> {
    const p = this.statements();
    return this.guard(() => this.offloadCheckpoint(() => p.expireSightings.immediate(input)));
  }

  async listSightings(
    collectionId: string,
    valueType: string,
    value: string,
  ): Promise<SightingRecord[]> {
    const p = this.statements();
    return this.guard(() => p.poll.listSightings(collectionId, valueType, value));
  }

  async removeSighting(input: RemoveSightingInput): Promise<RemoveSightingResult> {
    const p = this.statements();
    return this.guard(() => p.removeSighting.immediate(input));
  }

  async listRevocations(
    collectionId: string,
    valueType: string,
    value: string,
  ): Promise<Revocation[]> {
    const p = this.statements();
    return this.guard(() => p.poll.listRevocations(collectionId, valueType, value));
  }

  async putRecord(
    kind: RecordKind,
    id: string,
    body: Record<string, unknown>,
    options: PutRecordOptions,
  ): Promise<AdminRecord> {
    const p = this.statements();
    return this.guard(() => p.records.put.immediate(kind, id, body, options));
  }

  async getRecord(kind: RecordKind, id: string): Promise<AdminRecord | undefined> {
    const p = this.statements();
    return this.guard(() => p.records.get(kind, id));
  }

  async listRecords(
    kind: RecordKind,
    query: { prefix?: string; after?: string; limit: number },
  ): Promise<RecordPage> {
    checkLimit(query.limit);
    const p = this.statements();
    return this.guard(() => p.records.list(kind, query));
  }

  async deleteRecord(kind: RecordKind, id: string, expectedRevision?: number): Promise<boolean> {
    const p = this.statements();
    return this.guard(() => p.records.delete.immediate(kind, id, expectedRevision));
  }

  async deleteRecords(kind: RecordKind, prefix: string): Promise<number> {
    const p = this.statements();
    return this.guard(() => p.records.deleteByPrefix.immediate(kind, prefix));
  }

  async appendAudit(entry: AuditInput): Promise<AuditRecord> {
    const p = this.statements();
    return this.guard(() => p.records.appendAudit(entry));
  }

  async listAudit(query: AuditQuery): Promise<{ items: AuditRecord[]; more: boolean }> {
    checkLimit(query.limit);
    const p = this.statements();
    return this.guard(() => p.records.listAudit(query));
  }

  async purgeAudit(before: number): Promise<number> {
    const p = this.statements();
    return this.guard(() => p.records.purgeAudit(before));
  }

  async deleteCollection(id: string): Promise<void> {
    const p = this.statements();
    this.guard(() => p.records.deleteCollection.immediate(id));
  }

  private statements(): Prepared {
    this.assertOpen();
    if (this.prepared === undefined) {
      throw new StoreError(`SQLite store ${this.file} is used before init(); call init() first`);
    }
    return this.prepared;
  }

  private assertOpen(): void {
    if (this.closed) throw new StoreError(`SQLite store ${this.file} is closed`);
  }

  /**
   * Runs a write that may add many pages to the WAL with automatic
   * checkpoints off, then has the worker thread checkpoint. Until the first
   * such write, small writes keep SQLite's own checkpoint at commit, which
   * runs once the WAL holds 1,000 pages (about 4 MiB).
   */
  private offloadCheckpoint<T>(write: () => T): T {
    const checkpointer = this.checkpointer;
    if (checkpointer === undefined || !checkpointer.usable) return write();
    // Off for good: the worker checkpoints the small writes too, every second.
    this.db.pragma('wal_autocheckpoint = 0');
    try {
      return write();
    } finally {
      checkpointer.request();
    }
  }

  /** Runs `work`, turning driver errors into `StoreError`; other errors pass unchanged. */
  private guard<T>(work: () => T): T {
    this.assertOpen();
    try {
      return work();
    } catch (error) {
      if (error instanceof Database.SqliteError) {
        throw new StoreError(`SQLite operation on ${this.file} failed: ${error.message}`, {
          cause: error,
        });
      }
      throw error;
    }
  }
}

/** Prepared statements and transactions; built once per connection. */
class Prepared {
  readonly objects: ObjectTable;
  readonly poll: PollTables;
  readonly records: RecordTables;
  readonly upsertCollection: Database.Transaction<(collection: CollectionRecord) => void>;
  readonly listCollections: Database.Statement<[], CollectionRow>;
  readonly getCollection: Database.Statement<[string], CollectionRow>;
  readonly getCollectionByAlias: Database.Statement<[string], CollectionRow>;
  readonly putObjects: Database.Transaction<
    (collectionId: string, objects: ObjectVersionInput[]) => PutObjectsResult
  >;
  readonly applyPoll: Database.Transaction<(input: PollResultInput) => PollResultSummary>;
  readonly stageBatch: Database.Transaction<
    (stage: PollStage, batch: readonly SightingInput[]) => void
  >;
  readonly mergeStaged: Database.Transaction<
    (input: Omit<PollResultInput, 'sightings'>, stage: PollStage) => PollResultSummary
  >;
  readonly applyUnchanged: Database.Transaction<
    (input: PollResultInput & { since: number }) => PollResultSummary | undefined
  >;
  readonly expireSightings: Database.Transaction<(input: ExpireInput) => ExpireSummary>;
  readonly removeSighting: Database.Transaction<
    (input: RemoveSightingInput) => RemoveSightingResult
  >;
  readonly deleteVersions: Database.Transaction<(deletion: ObjectDeletion) => number>;
  readonly queryJoined: Database.Transaction<(query: ObjectQuery) => JoinedObjectPage>;
  readonly putStatus: Database.Statement<[string, number, string]>;
  readonly getStatus: Database.Statement<[string], { body: string }>;
  readonly purgeStatuses: Database.Statement<[number]>;
  readonly getSecret: Database.Statement<[string], { value: string }>;
  readonly insertSecret: Database.Statement<[string, string]>;
  readonly putView: Database.Statement<
    [string, string, string, string, Buffer, number, number, Buffer, string, string]
  >;
  readonly getView: Database.Statement<[string, string], ViewRow>;
  readonly getViewEtag: Database.Statement<[string, string], { etag: string }>;
  readonly getViewData: Database.Statement<
    [string, string],
    { etag: string; dataEtag: string; data: Buffer }
  >;
  readonly getViewDataEtag: Database.Statement<
    [string, string],
    { etag: string; dataEtag: string }
  >;
  readonly getViewLog: Database.Statement<
    [string, string],
    { etag: string; renderedAt: number; log: string }
  >;

  constructor(db: Database.Database) {
    this.objects = new ObjectTable(db);
    this.poll = new PollTables(db, this.objects);
    this.records = new RecordTables(db);

    const collectionColumns = `id, alias, title, description, can_read AS canRead,
      can_write AS canWrite, media_types AS mediaTypes, access`;
    this.listCollections = db.prepare(`SELECT ${collectionColumns} FROM collections ORDER BY id`);
    this.getCollection = db.prepare(`SELECT ${collectionColumns} FROM collections WHERE id = ?`);
    this.getCollectionByAlias = db.prepare(
      `SELECT ${collectionColumns} FROM collections WHERE alias = ?`,
    );
    const writeCollection = db.prepare<
      [string, string, string, string | null, number, number, string, string | null]
    >(
      `INSERT INTO collections
         (id, alias, title, description, can_read, can_write, media_types, access)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET alias = excluded.alias, title = excluded.title,
         description = excluded.description, can_read = excluded.can_read,
         can_write = excluded.can_write, media_types = excluded.media_types,
         access = excluded.access`,
    );
    this.upsertCollection = db.transaction((collection: CollectionRecord) => {
      const owner = this.getCollectionByAlias.get(collection.alias);
      if (owner !== undefined && owner.id !== collection.id) {
        throw new StoreError(
          `Collection alias ${collection.alias} is already used by collection ${owner.id}; ` +
            `choose another alias for collection ${collection.id}`,
        );
      }
      writeCollection.run(
        collection.id,
        collection.alias,
        collection.title,
        collection.description ?? null,
        collection.canRead ? 1 : 0,
        collection.canWrite ? 1 : 0,
        JSON.stringify(collection.mediaTypes),
        collection.access === undefined ? null : JSON.stringify(collection.access),
      );
    });

    this.putObjects = db.transaction((collectionId: string, objects: ObjectVersionInput[]) =>
      this.objects.put(collectionId, objects),
    );
    this.applyPoll = db.transaction((input: PollResultInput) => this.poll.apply(input));
    // Writes the temp database only, so it takes no lock on the data file.
    this.stageBatch = db.transaction((stage: PollStage, batch: readonly SightingInput[]) =>
      stage.add(batch),
    );
    this.mergeStaged = db.transaction(
      (input: Omit<PollResultInput, 'sightings'>, stage: PollStage) =>
        this.poll.merge(input, stage),
    );
    this.applyUnchanged = db.transaction((input: PollResultInput & { since: number }) =>
      this.poll.applyUnchanged(input),
    );
    this.expireSightings = db.transaction((input: ExpireInput) => this.poll.expire(input));
    this.removeSighting = db.transaction((input: RemoveSightingInput) => this.poll.remove(input));
    this.deleteVersions = db.transaction((deletion: ObjectDeletion) =>
      this.objects.deleteVersions(deletion),
    );
    this.queryJoined = db.transaction((query: ObjectQuery) => this.objects.queryJoined(query));

    this.putStatus = db.prepare(
      'INSERT OR REPLACE INTO taxii_statuses (id, request_timestamp, body) VALUES (?, ?, ?)',
    );
    this.getStatus = db.prepare('SELECT body FROM taxii_statuses WHERE id = ?');
    this.purgeStatuses = db.prepare('DELETE FROM taxii_statuses WHERE request_timestamp < ?');

    this.getSecret = db.prepare('SELECT value FROM secrets WHERE name = ?');
    this.insertSecret = db.prepare(
      'INSERT INTO secrets (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING',
    );

    this.putView = db.prepare(
      `INSERT OR REPLACE INTO views
         (collection_id, name, content_type, etag, body, rendered_at, entry_count, data,
          data_etag, log)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.getView = db.prepare(
      `SELECT content_type AS contentType, etag, body, rendered_at AS renderedAt,
         entry_count AS entryCount, data_etag AS dataEtag, log
       FROM views WHERE collection_id = ? AND name = ?`,
    );
    this.getViewEtag = db.prepare('SELECT etag FROM views WHERE collection_id = ? AND name = ?');
    this.getViewData = db.prepare(
      'SELECT etag, data_etag AS dataEtag, data FROM views WHERE collection_id = ? AND name = ?',
    );
    this.getViewDataEtag = db.prepare(
      'SELECT etag, data_etag AS dataEtag FROM views WHERE collection_id = ? AND name = ?',
    );
    this.getViewLog = db.prepare(
      `SELECT etag, rendered_at AS renderedAt, log
       FROM views WHERE collection_id = ? AND name = ?`,
    );
  }
}

function toCollection(row: CollectionRow): CollectionRecord {
  const collection: CollectionRecord = {
    id: row.id,
    alias: row.alias,
    title: row.title,
    canRead: row.canRead === 1,
    canWrite: row.canWrite === 1,
    mediaTypes: JSON.parse(row.mediaTypes) as string[],
  };
  if (row.description !== null) collection.description = row.description;
  if (row.access !== null) collection.access = JSON.parse(row.access) as CollectionAccess;
  return collection;
}

function checkLimit(limit: number): void {
  if (!Number.isSafeInteger(limit) || limit < 1) {
    throw new StoreError(`Invalid page limit ${limit}: expected an integer of at least 1`);
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
