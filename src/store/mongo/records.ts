/**
 * Administration records, the audit log and the removal of a collection on
 * MongoDB, without transactions. Conditional writes are decided by inserts
 * that fail on a duplicate `_id` (see `RecordDoc`), because that is atomic on
 * MongoDB and on FerretDB 1.24 alike.
 */
import type { Collection, Db, Filter } from 'mongodb';

import {
  RecordConflictError,
  StoreError,
  type AdminRecord,
  type AuditInput,
  type AuditQuery,
  type AuditRecord,
  type PutRecordOptions,
  type RecordKind,
  type RecordPage,
} from '../port.js';
import { chunks, duplicateKeyIndexes, isDuplicateKey, nowMicros } from './objects.js';
import {
  COLLECTIONS,
  compositeKey,
  type AuditDoc,
  type CounterDoc,
  type RecordDoc,
} from './schema.js';

/** Attempts at one record write. A writer that loses to other writers this many times fails. */
const MAX_WRITE_ATTEMPTS = 20;

/** Name of the counter document that hands out audit seq values. */
const AUDIT_COUNTER = 'audit_seq';

/** Maximum number of operations in one bulk write. */
const BATCH = 1000;

/**
 * How long a superseded write of a record is kept, in microseconds of the
 * store's clock. Its `seq` stays taken meanwhile, so a writer that read the
 * write before it fails on the duplicate `_id` if it inserts within this time.
 * NOTE: a writer whose insert lands later than that after its read can store
 * a write below the newest one, which then is lost although it was reported
 * as stored. Ten minutes is far beyond any request timeout.
 */
const SUPERSEDED_KEEP_MICROS = 10 * 60 * 1_000_000;

/** A record write without its body, as deletes read it. */
type RecordHead = Omit<RecordDoc, 'body'>;

const HEAD_PROJECTION = { body: 0 } as const;

export class RecordCollections {
  private readonly records: Collection<RecordDoc>;
  private readonly audit: Collection<AuditDoc>;
  private readonly counters: Collection<CounterDoc>;

  constructor(private readonly db: Db) {
    this.records = db.collection<RecordDoc>(COLLECTIONS.records);
    this.audit = db.collection<AuditDoc>(COLLECTIONS.audit);
    this.counters = db.collection<CounterDoc>(COLLECTIONS.counters);
  }

  /**
   * Stores a new write of the record after checking `expectedRevision`
   * against the newest write. Of concurrent writers that read the same
   * newest write, only one inserts the next `seq`. The others read again, so
   * a conditional writer then fails the check, and an unconditional one
   * writes after the winner.
   */
  async put(
    kind: RecordKind,
    id: string,
    body: Record<string, unknown>,
    options: PutRecordOptions,
  ): Promise<AdminRecord> {
    checkRecordId(kind, id);
    checkMicros('record time', options.at);
    const expected = options.expectedRevision;
    if (typeof expected === 'number') checkRevision(expected);
    const json = bodyText(kind, id, body);

    for (let attempt = 1; ; attempt++) {
      const newest = await this.newest(kind, id);
      const live = newest?.deleted === false ? newest : undefined;
      if (expected === 'absent' && live !== undefined) {
        throw new RecordConflictError(kind, id, live.revision);
      }
      if (typeof expected === 'number' && live?.revision !== expected) {
        throw new RecordConflictError(kind, id, live?.revision);
      }

      const seq = (newest?.seq ?? 0) + 1;
      const doc: RecordDoc = {
        _id: recordKey(kind, id, seq),
        kind,
        id,
        seq,
        stored_at: nowMicros(),
        revision: live === undefined ? 1 : live.revision + 1,
        deleted: false,
        created_at: live?.created_at ?? options.at,
        updated_at: options.at,
        body: json,
      };
      if (await this.commitWrite(doc)) return toRecord(doc);
      if (attempt === MAX_WRITE_ATTEMPTS) throw contended(kind, id, attempt);
    }
  }

  async get(kind: RecordKind, id: string): Promise<AdminRecord | undefined> {
    const newest = await this.records.findOne({ kind, id }, { sort: { seq: -1 } });
    return newest === null || newest.deleted ? undefined : toRecord(newest);
  }

  async list(
    kind: RecordKind,
    query: { prefix?: string; after?: string; limit: number },
  ): Promise<RecordPage> {
    const idRange: { $gte?: string; $lt?: string; $gt?: string } = {};
    if (query.prefix !== undefined && query.prefix !== '') {
      idRange.$gte = query.prefix;
      const upper = prefixUpperBound(query.prefix);
      if (upper !== undefined) idRange.$lt = upper;
    }
    if (query.after !== undefined) idRange.$gt = query.after;
    const filter: Filter<RecordDoc> = { kind };
    if (Object.keys(idRange).length > 0) filter.id = idRange;

    // Writes of one id come newest first. So a record whose older writes are
    // not pruned yet appears once, and a deleted one not at all.
    const items: AdminRecord[] = [];
    let previousId: string | undefined;
    const cursor = this.records.find(filter).sort({ id: 1, seq: -1 });
    for await (const doc of cursor) {
      if (doc.id === previousId) continue;
      previousId = doc.id;
      if (doc.deleted) continue;
      items.push(toRecord(doc));
      if (items.length > query.limit) break;
    }
    await cursor.close();

    const more = items.length > query.limit;
    if (more) items.length = query.limit;
    return { items, more };
  }

  /** Stores a tombstone as the newest write. Concurrent writers are decided as in `put`. */
  async delete(kind: RecordKind, id: string, expectedRevision?: number): Promise<boolean> {
    if (expectedRevision !== undefined) checkRevision(expectedRevision);
    for (let attempt = 1; ; attempt++) {
      const newest = await this.records.findOne(
        { kind, id },
        { sort: { seq: -1 }, projection: HEAD_PROJECTION },
      );
      const live = newest?.deleted === false ? newest : undefined;
      if (expectedRevision !== undefined && live?.revision !== expectedRevision) {
        throw new RecordConflictError(kind, id, live?.revision);
      }
      if (live === undefined) return false;

      const tombstone = tombstoneAfter(live);
      if (await this.commitWrite(tombstone)) return true;
      if (attempt === MAX_WRITE_ATTEMPTS) throw contended(kind, id, attempt);
    }
  }

  /**
   * Deletes the records of a kind whose id starts with `prefix`. It inserts
   * the tombstones in batches, and takes the single-record path for ids that
   * another writer changed in between.
   */
  async deleteByPrefix(kind: RecordKind, prefix: string): Promise<number> {
    const filter: Filter<RecordDoc> = { kind };
    if (prefix !== '') filter.id = prefixFilter(prefix);
    const heads = await this.records
      .find(filter, { projection: HEAD_PROJECTION })
      .sort({ id: 1, seq: -1 })
      .toArray();

    const tombstones: RecordDoc[] = [];
    let previousId: string | undefined;
    for (const head of heads) {
      if (head.id === previousId) continue;
      previousId = head.id;
      if (!head.deleted) tombstones.push(tombstoneAfter(head));
    }

    let deleted = 0;
    for (const batch of chunks(tombstones, BATCH)) {
      const duplicates = new Set(await this.insertTombstones(batch));
      const inserted = batch.filter((_, index) => !duplicates.has(index));
      deleted += inserted.length;
      if (inserted.length > 0) {
        await this.records.bulkWrite(
          inserted.map((doc) => ({ deleteMany: { filter: prunable(doc) } })),
          { ordered: false },
        );
      }

      for (const index of duplicates) {
        if (await this.delete(kind, (batch[index] as RecordDoc).id)) deleted++;
      }
    }
    return deleted;
  }

  /**
   * Appends an audit entry under the next seq of the counter. The unique
   * `_id` rejects a seq that another writer took, and the retry first moves
   * the counter past the newest stored entry. On MongoDB `$inc` is atomic, so
   * that happens only when the counter was lost. FerretDB 1.24 runs `$inc` as
   * a read, then a write, so there concurrent writers can get the same value.
   */
  async append(entry: AuditInput): Promise<AuditRecord> {
    checkMicros('audit time', entry.at);
    const doc: AuditDoc = {
      _id: 0,
      at: entry.at,
      actor: entry.actor,
      action: entry.action,
      target_kind: entry.targetKind,
      target_id: entry.targetId,
    };
    if (entry.collectionId !== undefined) doc.collection_id = entry.collectionId;
    if (entry.ip !== undefined) doc.ip = entry.ip;
    if (entry.details !== undefined) doc.details = JSON.stringify(entry.details);

    for (let attempt = 1; ; attempt++) {
      try {
        doc._id = await this.nextAuditSeq(attempt > 1);
        await this.audit.insertOne(doc);
        return toAudit(doc);
      } catch (error) {
        if (!isDuplicateKey(error)) throw error;
        if (attempt === MAX_WRITE_ATTEMPTS) {
          throw new StoreError(
            `Appending an audit entry failed: its seq collided with other writers ` +
              `${attempt} times; retry the request`,
          );
        }
      }
    }
  }

  async purgeAudit(before: number): Promise<number> {
    checkMicros('audit purge time', before);
    const result = await this.audit.deleteMany({ at: { $lt: before } });
    return result.deletedCount;
  }

  async listAudit(query: AuditQuery): Promise<{ items: AuditRecord[]; more: boolean }> {
    const filter: Filter<AuditDoc> = {};
    if (query.actor !== undefined) filter.actor = query.actor;
    if (query.targetKind !== undefined) filter.target_kind = query.targetKind;
    if (query.targetId !== undefined) filter.target_id = query.targetId;
    if (query.collectionId !== undefined) filter.collection_id = query.collectionId;
    if (query.action !== undefined) {
      filter.action = query.action.endsWith('.') ? prefixFilter(query.action) : query.action;
    }
    if (query.since !== undefined || query.until !== undefined) {
      const at: { $gte?: number; $lt?: number } = {};
      if (query.since !== undefined) at.$gte = query.since;
      if (query.until !== undefined) at.$lt = query.until;
      filter.at = at;
    }
    if (query.beforeSeq !== undefined) filter._id = { $lt: query.beforeSeq };

    const docs = await this.audit
      .find(filter)
      .sort({ _id: -1 })
      .limit(query.limit + 1)
      .toArray();
    const more = docs.length > query.limit;
    if (more) docs.length = query.limit;
    return { items: docs.map(toAudit), more };
  }

  /**
   * Deletes everything stored for a collection, its document last, so that
   * a repeat after a crash still finds the collection. The `date_added`
   * clock stays, so a collection created again with the same id never hands
   * out a date_added that a client has already seen.
   */
  async deleteCollection(collectionId: string): Promise<void> {
    const byCollection = { collection_id: collectionId };
    await this.db.collection(COLLECTIONS.objects).deleteMany(byCollection);
    await this.db.collection(COLLECTIONS.sightings).deleteMany(byCollection);
    // The revocations stay, as the date_added clock does: a collection
    // created again with this id never publishes an id a client saw revoked.
    await this.db.collection(COLLECTIONS.sourceStates).deleteMany(byCollection);
    await this.db.collection(COLLECTIONS.views).deleteMany(byCollection);
    // Chunks name their view by `compositeKey(collectionId, name)`, so the
    // chunks of every view of the collection, orphans included, share a prefix.
    const viewKeyPrefix = `${compositeKey(collectionId).slice(0, -1)},`;
    await this.db
      .collection(COLLECTIONS.viewChunks)
      .deleteMany({ view: prefixFilter(viewKeyPrefix) });
    await this.db.collection(COLLECTIONS.statuses).deleteMany(byCollection);
    // NOTE: tombstones go too, so a manual-entry write that read its record
    // before this delete and inserts after it stores the record again.
    await this.records.deleteMany({
      kind: 'manual-entry',
      id: prefixFilter(`${collectionId}/`),
    });
    await this.db
      .collection<{ _id: string }>(COLLECTIONS.collections)
      .deleteOne({ _id: collectionId });
  }

  private async newest(kind: RecordKind, id: string): Promise<RecordDoc | null> {
    return this.records.findOne({ kind, id }, { sort: { seq: -1 } });
  }

  /**
   * Inserts a write and prunes older ones. Returns false when another writer
   * already took its `seq`.
   */
  private async commitWrite(doc: RecordDoc): Promise<boolean> {
    try {
      await this.records.insertOne(doc);
    } catch (error) {
      if (isDuplicateKey(error)) return false;
      throw error;
    }
    await this.records.deleteMany(prunable(doc));
    return true;
  }

  /** Inserts tombstones and returns the batch indexes whose `seq` another writer took. */
  private async insertTombstones(batch: RecordDoc[]): Promise<number[]> {
    try {
      await this.records.insertMany(batch, { ordered: false });
      return [];
    } catch (error) {
      const duplicates = duplicateKeyIndexes(error);
      if (duplicates === undefined) throw error;
      return duplicates;
    }
  }

  private async nextAuditSeq(afterCollision: boolean): Promise<number> {
    if (afterCollision) {
      const newest = await this.audit
        .find({}, { projection: { _id: 1 } })
        .sort({ _id: -1 })
        .limit(1)
        .next();
      const floor = newest?._id ?? 0;
      try {
        await this.counters.updateOne(
          { _id: AUDIT_COUNTER },
          { $max: { last: floor } },
          { upsert: true },
        );
      } catch (error) {
        // Two first writers can both try the upsert, and the loser then updates.
        if (!isDuplicateKey(error)) throw error;
        await this.counters.updateOne({ _id: AUDIT_COUNTER }, { $max: { last: floor } });
      }
    }

    // A duplicate key from two first upserts reaches `append`, which retries.
    const counter = await this.counters.findOneAndUpdate(
      { _id: AUDIT_COUNTER },
      { $inc: { last: 1 } },
      { upsert: true, returnDocument: 'after' },
    );
    if (counter === null) throw new StoreError('Audit seq counter vanished while appending');
    return counter.last;
  }
}

function recordKey(kind: RecordKind, id: string, seq: number): string {
  return compositeKey(kind, id, String(seq));
}

/**
 * Selects the writes of a record older than `doc` that were stored more than
 * `SUPERSEDED_KEEP_MICROS` before it.
 */
function prunable(doc: RecordDoc): Filter<RecordDoc> {
  return {
    kind: doc.kind,
    id: doc.id,
    seq: { $lt: doc.seq },
    stored_at: { $lt: doc.stored_at - SUPERSEDED_KEEP_MICROS },
  };
}

/** Builds the tombstone that follows `live`, the newest write of a record. */
function tombstoneAfter(live: RecordHead): RecordDoc {
  const seq = live.seq + 1;
  return {
    _id: recordKey(live.kind, live.id, seq),
    kind: live.kind,
    id: live.id,
    seq,
    stored_at: nowMicros(),
    revision: live.revision,
    deleted: true,
    created_at: live.created_at,
    updated_at: live.updated_at,
  };
}

function contended(kind: RecordKind, id: string, attempts: number): StoreError {
  return new StoreError(
    `Writing ${kind} ${JSON.stringify(id)} failed: other writers changed it first ` +
      `${attempts} times in a row; retry the request`,
  );
}

/** Selects the strings that start with `prefix` (not empty), as a range that seeks on an index. */
function prefixFilter(prefix: string): { $gte: string; $lt?: string } {
  const upper = prefixUpperBound(prefix);
  return upper === undefined ? { $gte: prefix } : { $gte: prefix, $lt: upper };
}

/**
 * Returns the smallest string that sorts after every string starting with
 * `prefix` in code point order (MongoDB compares strings by their UTF-8
 * bytes, which is the same order), or undefined when there is none.
 */
function prefixUpperBound(prefix: string): string | undefined {
  const points = Array.from(prefix);
  while (points.length > 0) {
    const last = (points.pop() as string).codePointAt(0) as number;
    if (last < 0x10ffff) {
      // Surrogate code points have no UTF-8 encoding, so the next one after U+D7FF is U+E000.
      const next = last + 1 === 0xd800 ? 0xe000 : last + 1;
      return points.join('') + String.fromCodePoint(next);
    }
  }
  return undefined;
}

function toRecord(doc: RecordDoc): AdminRecord {
  return {
    kind: doc.kind,
    id: doc.id,
    revision: doc.revision,
    createdAt: doc.created_at,
    updatedAt: doc.updated_at,
    body: JSON.parse(doc.body ?? '{}') as Record<string, unknown>,
  };
}

function toAudit(doc: AuditDoc): AuditRecord {
  const record: AuditRecord = {
    seq: doc._id,
    at: doc.at,
    actor: doc.actor,
    action: doc.action,
    targetKind: doc.target_kind,
    targetId: doc.target_id,
  };
  if (doc.collection_id !== undefined) record.collectionId = doc.collection_id;
  if (doc.ip !== undefined) record.ip = doc.ip;
  if (doc.details !== undefined)
    record.details = JSON.parse(doc.details) as Record<string, unknown>;
  return record;
}

/** Returns the JSON text of a record body, rejecting anything but a JSON object. */
function bodyText(kind: RecordKind, id: string, body: Record<string, unknown>): string {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new StoreError(`Invalid body of ${kind} ${JSON.stringify(id)}: expected a JSON object`);
  }
  try {
    return JSON.stringify(body);
  } catch (error) {
    throw new StoreError(
      `Invalid body of ${kind} ${JSON.stringify(id)}: it cannot be written as JSON ` +
        `(${error instanceof Error ? error.message : String(error)})`,
      { cause: error },
    );
  }
}

function checkRecordId(kind: RecordKind, id: string): void {
  if (typeof id !== 'string' || id === '') {
    throw new StoreError(`Invalid ${kind} id ${JSON.stringify(id)}: expected a non-empty string`);
  }
}

function checkRevision(revision: number): void {
  if (!Number.isSafeInteger(revision) || revision < 1) {
    throw new StoreError(
      `Invalid expected revision ${revision}: expected an integer of at least 1`,
    );
  }
}

function checkMicros(what: string, value: number): void {
  if (!Number.isSafeInteger(value)) {
    throw new StoreError(`Invalid ${what} ${value}: expected integer microseconds since the epoch`);
  }
}
