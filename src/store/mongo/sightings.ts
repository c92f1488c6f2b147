import type { AnyBulkWriteOperation, Collection, Db, Filter } from 'mongodb';

import { decodeAttributes, mergeAttributes, type AttributedSighting } from '../attributes.js';
import type { IndicatorEntry, SightingRecord } from '../port.js';
import { chunks, duplicateKeyIndexes } from './objects.js';
import { COLLECTIONS, compositeKey, type SightingDoc } from './schema.js';

/** Values per `$in` list and operations per bulk write. */
const BATCH = 1000;

/** A value of a collection: its type and canonical text. */
export interface ValueRef {
  valueType: string;
  value: string;
}

/** The sightings of one value in a collection, by source id. */
export type ValueSightings = Map<string, SightingDoc>;

/** Key of a value in maps, unique per (type, value). */
export function valueKey(ref: ValueRef): string {
  return compositeKey(ref.valueType, ref.value);
}

/** `_id` of the sighting of a value by a source. */
export function sightingId(collectionId: string, sourceId: string, ref: ValueRef): string {
  return compositeKey(collectionId, sourceId, ref.valueType, ref.value);
}

/** The `sightings` collection: reads and writes; the life-cycle rules are in `poll.ts`. */
export class SightingCollection {
  private readonly sightings: Collection<SightingDoc>;

  constructor(db: Db) {
    this.sightings = db.collection<SightingDoc>(COLLECTIONS.sightings);
  }

  /**
   * Reads sightings by `_id`. FerretDB 1.24's SQLite handler pushes down only
   * a single `_id` equality, so there each `$in` batch is one collection scan.
   */
  async readByIds(ids: readonly string[]): Promise<Map<string, SightingDoc>> {
    const found = new Map<string, SightingDoc>();
    for (const chunk of chunks(ids, BATCH)) {
      for (const doc of await this.sightings.find({ _id: { $in: chunk } }).toArray()) {
        found.set(doc._id, doc);
      }
    }
    return found;
  }

  /** Returns whether a sighting of the source was withdrawn after `since`. */
  async withdrawnAfter(collectionId: string, sourceId: string, since: number): Promise<boolean> {
    const doc = await this.sightings.findOne(
      { collection_id: collectionId, source_id: sourceId, withdrawn_at: { $gt: since } },
      { projection: { _id: 1 } },
    );
    return doc !== null;
  }

  /**
   * Moves `last_seen` to `seenAt` on the active sightings of the source that
   * have no miss, and returns how many match.
   */
  async refreshListed(collectionId: string, sourceId: string, seenAt: number): Promise<number> {
    const result = await this.sightings.updateMany(
      { collection_id: collectionId, source_id: sourceId, withdrawn_at: null, missed: 0 },
      { $max: { last_seen: seenAt } },
    );
    return result.matchedCount;
  }

  /** Reads every sighting, of any source, of the given values. */
  async readValues(
    collectionId: string,
    refs: readonly ValueRef[],
  ): Promise<Map<string, ValueSightings>> {
    const byType = new Map<string, Set<string>>();
    for (const ref of refs) {
      const values = byType.get(ref.valueType);
      if (values === undefined) byType.set(ref.valueType, new Set([ref.value]));
      else values.add(ref.value);
    }

    const found = new Map<string, ValueSightings>();
    for (const [valueType, values] of byType) {
      for (const chunk of chunks([...values], BATCH)) {
        const docs = await this.sightings
          .find({ collection_id: collectionId, value_type: valueType, value: { $in: chunk } })
          .toArray();
        for (const doc of docs) {
          const key = valueKey({ valueType: doc.value_type, value: doc.value });
          const bySource = found.get(key);
          if (bySource === undefined) found.set(key, new Map([[doc.source_id, doc]]));
          else bySource.set(doc.source_id, doc);
        }
      }
    }
    return found;
  }

  /**
   * Returns the active sightings of one source that match `condition`,
   * ordered by value type then value.
   */
  async activeOfSource(
    collectionId: string,
    sourceId: string,
    condition: Filter<SightingDoc>,
  ): Promise<SightingDoc[]> {
    return this.sightings
      .find({ collection_id: collectionId, source_id: sourceId, withdrawn_at: null, ...condition })
      .sort({ value_type: 1, value: 1 })
      .toArray();
  }

  async listRecords(collectionId: string, ref: ValueRef): Promise<SightingRecord[]> {
    const docs = await this.sightings
      .find({ collection_id: collectionId, value_type: ref.valueType, value: ref.value })
      .sort({ source_id: 1 })
      .toArray();
    return docs.map(toSightingRecord);
  }

  /**
   * Lists the active values of a collection with the sources of their active
   * sightings, ordered by value type then value in byte order (MongoDB's
   * default string order, which is also SQLite's).
   */
  async listEntries(collectionId: string, valueTypes?: string[]): Promise<IndicatorEntry[]> {
    const filter: Filter<SightingDoc> = { collection_id: collectionId, withdrawn_at: null };
    if (valueTypes !== undefined) filter.value_type = { $in: valueTypes };

    // Merged here rather than with $group: FerretDB 1.24 lacks the $min and
    // $max accumulators, and the sorted scan costs the same.
    const cursor = this.sightings
      .find(filter, { projection: { _id: 0 } })
      .sort({ value_type: 1, value: 1 });
    const entries: IndicatorEntry[] = [];
    let current: IndicatorEntry | undefined;
    // The sightings of `current` that carry attributes, merged when the value ends.
    let attributed: AttributedSighting[] = [];
    const mergeCurrent = () => {
      if (current === undefined || attributed.length === 0) return;
      const merged = mergeAttributes(attributed);
      if (merged !== undefined) current.attributes = merged;
      attributed = [];
    };
    for await (const doc of cursor) {
      if (current?.valueType === doc.value_type && current.value === doc.value) {
        if (doc.indicator_id < current.indicatorId) current.indicatorId = doc.indicator_id;
        current.firstSeen = Math.min(current.firstSeen, doc.first_seen);
        current.lastSeen = Math.max(current.lastSeen, doc.last_seen);
        current.sources.push(doc.source_id);
      } else {
        mergeCurrent();
        current = {
          valueType: doc.value_type,
          value: doc.value,
          indicatorId: doc.indicator_id,
          firstSeen: doc.first_seen,
          lastSeen: doc.last_seen,
          sources: [doc.source_id],
        };
        entries.push(current);
      }
      if (doc.attributes !== undefined) {
        attributed.push({
          sourceId: doc.source_id,
          lastSeen: doc.last_seen,
          attributes: decodeAttributes(doc.attributes),
        });
      }
    }
    mergeCurrent();
    for (const entry of entries) entry.sources.sort();
    return entries;
  }

  /**
   * Inserts sightings that the caller found missing, in one unordered
   * `insertMany` per batch. One that another writer inserted meanwhile is
   * replaced by `_id` instead, as `write` does.
   */
  async insert(docs: readonly SightingDoc[]): Promise<void> {
    for (const batch of chunks(docs, BATCH)) {
      try {
        await this.sightings.insertMany(batch, { ordered: false });
      } catch (error) {
        const failed = duplicateKeyIndexes(error);
        if (failed === undefined) throw error;
        await this.write(failed.map((index) => batch[index] as SightingDoc));
      }
    }
  }

  /**
   * Marks sightings that the caller found active as listed again at
   * `seenAt`: `last_seen` moves forward and the miss count restarts. For an
   * active sighting this equals replacing it with `listedAgain`, and a
   * repeat changes nothing.
   */
  async touch(ids: readonly string[], seenAt: number): Promise<void> {
    for (const chunk of chunks(ids, BATCH)) {
      await this.sightings.updateMany(
        { _id: { $in: chunk } },
        { $max: { last_seen: seenAt }, $set: { missed: 0 } },
      );
    }
  }

  /** Replaces (or inserts) each document by `_id`; repeating it changes nothing. */
  async write(docs: readonly SightingDoc[]): Promise<void> {
    const operations: AnyBulkWriteOperation<SightingDoc>[] = docs.map((doc) => ({
      replaceOne: { filter: { _id: doc._id }, replacement: doc, upsert: true },
    }));
    for (const batch of chunks(operations, BATCH)) {
      try {
        await this.sightings.bulkWrite(batch, { ordered: false });
      } catch (error) {
        // Two writers that upsert the same new sighting at once can both try
        // the insert; the loser gets a duplicate key. Repeating its upserts
        // finds the documents and replaces them.
        const failed = duplicateKeyIndexes(error);
        if (failed === undefined) throw error;
        await this.sightings.bulkWrite(
          failed.map((index) => batch[index] as AnyBulkWriteOperation<SightingDoc>),
          { ordered: false },
        );
      }
    }
  }
}

export function toSightingRecord(doc: SightingDoc): SightingRecord {
  const record: SightingRecord = {
    sourceId: doc.source_id,
    indicatorId: doc.indicator_id,
    firstSeen: doc.first_seen,
    lastSeen: doc.last_seen,
    missed: doc.missed,
    creator: doc.creator,
  };
  if (doc.withdrawn_at !== null) record.withdrawnAt = doc.withdrawn_at;
  if (doc.withdrawal_reason !== undefined) record.withdrawalReason = doc.withdrawal_reason;
  const attributes = decodeAttributes(doc.attributes);
  if (attributes !== undefined) record.attributes = attributes;
  return record;
}
