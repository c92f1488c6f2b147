import {
  MongoBulkWriteError,
  MongoServerError,
  type AnyBulkWriteOperation,
  type Collection,
  type Db,
  type WriteError,
} from 'mongodb';

import {
  StoreError,
  type JoinedObjectPage,
  type ObjectDeletion,
  type ObjectPage,
  type ObjectQuery,
  type ObjectVersionInput,
  type PutObjectsResult,
  type StoredObject,
} from '../port.js';
import { linkUpdates, noLinks, pageFilter, type LinkedVersion } from './links.js';
import { COLLECTIONS, type ClockDoc, type ObjectDoc } from './schema.js';

const DUPLICATE_KEY = 11000;

/** The fields of a stored version that `put` reads back. */
type StoredVersion = LinkedVersion & Pick<ObjectDoc, 'json'>;

/** Maximum number of values in one `$in` list or operations in one bulk write. */
const BATCH = 1000;

/** Insert rounds per `put` before date_added collisions are reported as a failure. */
const MAX_DATE_ROUNDS = 20;

/** Current wall-clock time in integer microseconds since the Unix epoch. */
export function nowMicros(): number {
  return Math.floor((performance.timeOrigin + performance.now()) * 1000);
}

/**
 * The `objects` collection: one document per stored object version, with the
 * JSON text as a string so that it comes back byte for byte.
 *
 * Version selectors read links that every version keeps about the other
 * versions of its object (`links.ts`).
 *
 * `date_added` comes from a per-collection clock document (`reserveDates`),
 * and the unique index on (collection_id, date_added) is the final arbiter:
 * a version whose date collides with another writer's gets a new date.
 *
 * NOTE: without transactions, dates do not become visible in date order.
 * When two processes write to one collection at once, a reader can see
 * date_added 110 before 100 appears, so a client polling with `added_after`
 * can miss the object at 100. One writer per collection avoids this.
 */
export class ObjectCollection {
  private readonly objects: Collection<ObjectDoc>;
  private readonly clocks: Collection<ClockDoc>;

  constructor(db: Db) {
    this.objects = db.collection<ObjectDoc>(COLLECTIONS.objects);
    this.clocks = db.collection<ClockDoc>(COLLECTIONS.clocks);
  }

  /**
   * Stores the versions that are new, each with the next `date_added` of the
   * collection, in input order. Safe to repeat: a version already stored is
   * counted as unchanged (same JSON text) or as a conflict (different text,
   * and the stored text stays). A version that had to take a new date after
   * a collision comes after the rest of its call.
   */
  async put(
    collectionId: string,
    inputs: readonly ObjectVersionInput[],
  ): Promise<PutObjectsResult> {
    const result: PutObjectsResult = { added: 0, unchanged: 0, conflicts: [] };
    if (inputs.length === 0) return result;

    // Input indexes still to insert. A round leaves in it only the versions
    // whose date_added collided with another writer's.
    let pending = inputs.map((_, i) => i);
    for (let round = 1; ; round++) {
      const first = await this.reserveDates(collectionId, pending.length, round > 1);
      const docs = pending.map((index, i) => toDoc(collectionId, inputs[index], first + i));
      const failed = (await this.insertNew(docs)).map((i) => pending[i] as number);
      result.added += pending.length - failed.length;

      // One read serves classifying and linking. Linking runs even when
      // nothing was inserted: an earlier call that stopped after its insert
      // left the links of its versions incomplete, and a repeat completes them.
      const stored = await this.readVersions(collectionId, uniqueIds(inputs));
      pending = classifyDuplicates(inputs, failed, stored, result);
      if (pending.length === 0) {
        await this.linkVersions(stored);
        return result;
      }
      if (round === MAX_DATE_ROUNDS) {
        throw new StoreError(
          `Storing ${pending.length} object versions in collection ${collectionId} failed: ` +
            `their date_added collided with other writers ${round} times; retry the request`,
        );
      }
    }
  }

  async query(query: ObjectQuery): Promise<ObjectPage> {
    const after = query.after;
    // date_added is unique in a collection, so at most one document sits at
    // after.dateAdded; fetch one extra to make up for dropping it below.
    const fetch = query.limit + 1 + (after === undefined ? 0 : 1);
    const projection: Record<string, 1> = {
      collection_id: 1,
      id: 1,
      type: 1,
      version: 1,
      spec_version: 1,
      date_added: 1,
    };
    if (query.withoutBody !== true) projection.json = 1;

    const docs = await this.objects
      .find(pageFilter(query), { projection: { _id: 0, ...projection } })
      .sort({ date_added: 1 })
      .limit(fetch)
      .toArray();

    const items: StoredObject[] = [];
    for (const doc of docs) {
      if (after !== undefined && !isAfter(doc, after)) continue;
      items.push({
        collectionId: doc.collection_id,
        id: doc.id,
        type: doc.type,
        version: doc.version,
        specVersion: doc.spec_version,
        dateAdded: doc.date_added,
        json: doc.json ?? '',
      });
    }
    const more = items.length > query.limit;
    if (more) items.length = query.limit;
    return { items, more };
  }

  /** Reads the page of `query` with its JSON texts joined. */
  async queryJoined(query: ObjectQuery): Promise<JoinedObjectPage> {
    const page = await this.query({ ...query, withoutBody: false });
    const result: JoinedObjectPage = {
      joined: Buffer.from(page.items.map((item) => item.json).join(',')),
      count: page.items.length,
      more: page.more,
    };
    const first = page.items[0];
    const last = page.items[page.items.length - 1];
    if (first !== undefined && last !== undefined) {
      result.firstDateAdded = first.dateAdded;
      result.last = { dateAdded: last.dateAdded, id: last.id, version: last.version };
    }
    return result;
  }

  async count(collectionId: string): Promise<number> {
    return this.objects.countDocuments({ collection_id: collectionId });
  }

  /**
   * Deletes the versions of one object that `deletion` selects and returns
   * how many were deleted. The clock keeps its value, so their dates are not
   * handed out again.
   */
  async deleteVersions(deletion: ObjectDeletion): Promise<number> {
    const { collectionId, id } = deletion;
    const query: ObjectQuery = {
      collectionId,
      ids: [id],
      versions: deletion.versions ?? [{ kind: 'all' }],
      limit: 1,
    };
    if (deletion.specVersions !== undefined) query.specVersions = deletion.specVersions;
    if (deletion.latestSpecVersion === true) query.latestSpecVersion = true;

    const targets = await this.objects
      .find(pageFilter(query), { projection: { _id: 1 } })
      .toArray();
    if (targets.length === 0) return 0;
    const { deletedCount } = await this.objects.deleteMany({
      _id: { $in: targets.map((target) => target._id) },
    });

    // Links of the remaining versions may now name a deleted one, so they
    // are recomputed, then grown from a second read in case a writer added
    // a version between the first read and the recompute.
    // NOTE: a writer that read the versions before this deletion can still
    // add links to a deleted version afterwards. Those links stay until the
    // next write of the object.
    await this.linkVersions(await this.readVersions(collectionId, [id]), 'replace');
    await this.linkVersions(await this.readVersions(collectionId, [id]), 'grow');
    return deletedCount;
  }

  /** Returns the smallest and greatest stored version key of each of `ids` that has any. */
  async versionRanges(
    collectionId: string,
    ids: readonly string[],
  ): Promise<Map<string, { first: string; last: string }>> {
    const ranges = new Map<string, { first: string; last: string }>();
    for (const chunk of chunks(ids, BATCH)) {
      const docs = await this.objects
        .find(
          { collection_id: collectionId, id: { $in: chunk } },
          { projection: { _id: 0, id: 1, version: 1 } },
        )
        .toArray();
      for (const { id, version } of docs) {
        const range = ranges.get(id);
        if (range === undefined) {
          ranges.set(id, { first: version, last: version });
          continue;
        }
        if (version < range.first) range.first = version;
        if (version > range.last) range.last = version;
      }
    }
    return ranges;
  }

  /** Returns which of `ids` have at least one stored version in the collection. */
  async existingIds(collectionId: string, ids: readonly string[]): Promise<Set<string>> {
    const found = new Set<string>();
    for (const chunk of chunks(ids, BATCH)) {
      const docs = await this.objects
        .find(
          { collection_id: collectionId, id: { $in: chunk } },
          { projection: { _id: 0, id: 1 } },
        )
        .toArray();
      for (const doc of docs) found.add(doc.id);
    }
    return found;
  }

  /**
   * Reserves `count` consecutive `date_added` values and returns the first.
   * The range starts at the current time unless earlier ranges already
   * reached past it, so values only grow even if the clock steps back.
   *
   * On MongoDB both updates are atomic, so concurrent writers get disjoint
   * ranges. FerretDB 1.24 with SQLite runs `$max` and `$inc` as a read then
   * a write, so two writers can get the same range or move the clock back.
   * The unique index then rejects the second insert, and the retry
   * (`afterCollision`) first moves the clock past the newest stored date.
   */
  private async reserveDates(
    collectionId: string,
    count: number,
    afterCollision: boolean,
  ): Promise<number> {
    let floor = nowMicros() - 1;
    if (afterCollision) {
      const newest = await this.objects
        .find({ collection_id: collectionId }, { projection: { _id: 0, date_added: 1 } })
        .sort({ date_added: -1 })
        .limit(1)
        .next();
      floor = Math.max(floor, newest?.date_added ?? 0);
    }

    try {
      await this.clocks.updateOne(
        { _id: collectionId },
        { $max: { last: floor } },
        { upsert: true },
      );
    } catch (error) {
      // Two first writers of a collection can both try the upsert; the loser
      // finds the document on a plain update.
      if (!isDuplicateKey(error)) throw error;
      await this.clocks.updateOne({ _id: collectionId }, { $max: { last: floor } });
    }

    const clock = await this.clocks.findOneAndUpdate(
      { _id: collectionId },
      { $inc: { last: count } },
      { returnDocument: 'after' },
    );
    if (clock === null) {
      throw new StoreError(
        `Date clock of collection ${collectionId} vanished while reserving dates`,
      );
    }
    return clock.last - count + 1;
  }

  /** Inserts the documents and returns the input indexes that were already stored. */
  private async insertNew(docs: ObjectDoc[]): Promise<number[]> {
    try {
      // Unordered, so one stored version does not stop the rest of the batch.
      await this.objects.insertMany(docs, { ordered: false });
      return [];
    } catch (error) {
      const duplicates = duplicateKeyIndexes(error);
      if (duplicates === undefined) throw error;
      return duplicates;
    }
  }

  /** Reads every stored version of `ids`, grouped by id. */
  private async readVersions(
    collectionId: string,
    ids: readonly string[],
  ): Promise<Map<string, StoredVersion[]>> {
    const byId = new Map<string, StoredVersion[]>();
    for (const chunk of chunks(ids, BATCH)) {
      const docs = await this.objects
        .find(
          { collection_id: collectionId, id: { $in: chunk } },
          {
            projection: {
              id: 1,
              version: 1,
              spec_version: 1,
              json: 1,
              newer_specs: 1,
              older_specs: 1,
              newer_same_spec: 1,
              older_same_spec: 1,
              higher_spec: 1,
            },
          },
        )
        .toArray();
      for (const doc of docs) {
        const versions = byId.get(doc.id);
        if (versions === undefined) byId.set(doc.id, [doc]);
        else versions.push(doc);
      }
    }
    return byId;
  }

  /**
   * Brings the version links of every version in `byId` up to date (see
   * `links.ts`). The caller read all versions after its own insert. Of two
   * writers that insert versions of one object at once, at least one reads
   * after both inserts, so each pair of versions is linked by someone.
   */
  private async linkVersions(
    byId: Map<string, LinkedVersion[]>,
    mode: 'grow' | 'replace' = 'grow',
  ): Promise<void> {
    const updates: AnyBulkWriteOperation<ObjectDoc>[] = [];
    for (const versions of byId.values()) updates.push(...linkUpdates(versions, mode));
    for (const batch of chunks(updates, BATCH)) {
      await this.objects.bulkWrite(batch, { ordered: false });
    }
  }
}

/**
 * Counts each failed insert whose (id, version) is stored as unchanged (same
 * text) or a conflict, and returns the others: their date_added collided.
 */
function classifyDuplicates(
  inputs: readonly ObjectVersionInput[],
  failed: readonly number[],
  stored: Map<string, StoredVersion[]>,
  result: PutObjectsResult,
): number[] {
  const collided: number[] = [];
  for (const index of failed) {
    const input = inputs[index] as ObjectVersionInput;
    const match = stored.get(input.id)?.find((doc) => doc.version === input.version);
    if (match === undefined) collided.push(index);
    else if (match.json === input.json) result.unchanged++;
    else result.conflicts.push({ id: input.id, version: input.version });
  }
  return collided;
}

function toDoc(
  collectionId: string,
  input: ObjectVersionInput | undefined,
  dateAdded: number,
): ObjectDoc {
  const { id, version, type, specVersion, json } = input as ObjectVersionInput;
  return {
    collection_id: collectionId,
    id,
    version,
    type,
    spec_version: specVersion,
    date_added: dateAdded,
    json,
    ...noLinks(),
  };
}

/** Checks whether a document sorts strictly after a page position by (date_added, id, version). */
function isAfter(
  doc: Pick<ObjectDoc, 'date_added' | 'id' | 'version'>,
  position: NonNullable<ObjectQuery['after']>,
): boolean {
  if (doc.date_added !== position.dateAdded) return doc.date_added > position.dateAdded;
  if (doc.id !== position.id) return doc.id > position.id;
  return doc.version > position.version;
}

/**
 * Returns the operation indexes of an unordered bulk write that failed only
 * on duplicate keys, or undefined when any other error occurred.
 */
export function duplicateKeyIndexes(error: unknown): number[] | undefined {
  if (!(error instanceof MongoBulkWriteError) || error.err !== undefined) return undefined;
  const writeErrors: readonly WriteError[] = Array.isArray(error.writeErrors)
    ? error.writeErrors
    : [error.writeErrors as WriteError];
  if (writeErrors.length === 0) return undefined;
  if (writeErrors.some((writeError) => writeError.code !== DUPLICATE_KEY)) return undefined;
  return writeErrors.map((writeError) => writeError.index);
}

export function isDuplicateKey(error: unknown): boolean {
  return error instanceof MongoServerError && error.code === DUPLICATE_KEY;
}

function uniqueIds(objects: readonly ObjectVersionInput[]): string[] {
  return [...new Set(objects.map((object) => object.id))];
}

export function* chunks<T>(items: readonly T[], size: number): Generator<T[]> {
  for (let start = 0; start < items.length; start += size) {
    yield items.slice(start, start + size);
  }
}
