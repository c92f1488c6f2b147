import { randomUUID } from 'node:crypto';

import { MongoServerError, type Collection, type Db } from 'mongodb';

import { decodeAttributes, encodeAttributes } from '../attributes.js';
import type { SightingInput, StreamedCounts } from '../port.js';
import { duplicateKeyIndexes } from './objects.js';
import { valueKey } from './sightings.js';

/** Names of staging collections start with this, then the creation time in milliseconds. */
const STAGE_PREFIX = 'poll_stage_';
/** A staging collection older than this belongs to a process that stopped mid-poll. */
const STALE_AFTER_MS = 24 * 60 * 60 * 1000;
/** MongoDB's code for a command on a collection that does not exist. */
const NAMESPACE_NOT_FOUND = 26;

/** A staged value; `_id` is its `valueKey`, so a value listed again is not staged twice. */
interface StagedDoc {
  _id: string;
  value_type: string;
  value: string;
  indicator_id: string;
  /** As `encodeAttributes` returns them; absent when none. */
  attributes?: string;
}

/**
 * The staging collection of one streamed poll. The batches of the poll go
 * to a collection of their own as they arrive, so the process never keeps
 * the whole list in memory. The poll reads them back in batches once its
 * stream has ended. Dropping the collection discards the poll, and nothing
 * else was written by then.
 */
export class MongoPollStage {
  private constructor(private readonly staged: Collection<StagedDoc>) {}

  /** Returns a new, empty stage with a name no other poll uses. */
  static create(db: Db, nowMs = Date.now()): MongoPollStage {
    const name = `${STAGE_PREFIX}${nowMs}_${randomUUID().replace(/-/g, '')}`;
    return new MongoPollStage(db.collection<StagedDoc>(name));
  }

  /**
   * Drops the staging collections that a process left behind when it
   * stopped mid-poll; returns their names.
   */
  static async dropStale(db: Db, nowMs = Date.now()): Promise<string[]> {
    const collections = await db.listCollections({}, { nameOnly: true }).toArray();
    const dropped: string[] = [];
    for (const { name } of collections) {
      if (!name.startsWith(STAGE_PREFIX)) continue;
      const createdMs = Number.parseInt(name.slice(STAGE_PREFIX.length), 10);
      if (!Number.isFinite(createdMs) || createdMs > nowMs - STALE_AFTER_MS) continue;
      await dropCollection(db.collection(name));
      dropped.push(name);
    }
    return dropped;
  }

  get name(): string {
    return this.staged.collectionName;
  }

  /**
   * Stages every batch and returns the counts that `complete` takes. The
   * first listing of a value is kept: within a batch by order, across
   * batches because a later insert of the same `_id` fails.
   */
  async load(batches: AsyncIterable<readonly SightingInput[]>): Promise<StreamedCounts> {
    let listed = 0;
    let distinct = 0;
    for await (const batch of batches) {
      listed += batch.length;
      const docs = new Map<string, StagedDoc>();
      for (const sighting of batch) {
        const key = valueKey(sighting);
        if (!docs.has(key)) docs.set(key, toStagedDoc(key, sighting));
      }
      distinct += await this.insertFirst([...docs.values()]);
    }
    return { listed, distinct };
  }

  /** Yields the staged values in batches of at most `size`, in no particular order. */
  async *read(size: number): AsyncGenerator<SightingInput[]> {
    let batch: SightingInput[] = [];
    for await (const doc of this.staged.find({}, { batchSize: size })) {
      batch.push(toSighting(doc));
      if (batch.length === size) {
        yield batch;
        batch = [];
      }
    }
    if (batch.length > 0) yield batch;
  }

  async drop(): Promise<void> {
    await dropCollection(this.staged);
  }

  /** Inserts the documents whose `_id` is not staged yet; returns how many were inserted. */
  private async insertFirst(docs: StagedDoc[]): Promise<number> {
    if (docs.length === 0) return 0;
    try {
      await this.staged.insertMany(docs, { ordered: false });
      return docs.length;
    } catch (error) {
      const duplicates = duplicateKeyIndexes(error);
      if (duplicates === undefined) throw error;
      return docs.length - duplicates.length;
    }
  }
}

function toStagedDoc(key: string, sighting: SightingInput): StagedDoc {
  const doc: StagedDoc = {
    _id: key,
    value_type: sighting.valueType,
    value: sighting.value,
    indicator_id: sighting.indicatorId,
  };
  const attributes = encodeAttributes(sighting.attributes);
  if (attributes !== null) doc.attributes = attributes;
  return doc;
}

function toSighting(doc: StagedDoc): SightingInput {
  const sighting: SightingInput = {
    valueType: doc.value_type,
    value: doc.value,
    indicatorId: doc.indicator_id,
  };
  const attributes = decodeAttributes(doc.attributes);
  if (attributes !== undefined) sighting.attributes = attributes;
  return sighting;
}

/** Drops a collection; one that does not exist counts as dropped. */
async function dropCollection(
  collection: Collection<never> | Collection<StagedDoc>,
): Promise<void> {
  try {
    await collection.drop();
  } catch (error) {
    if (error instanceof MongoServerError && error.code === NAMESPACE_NOT_FOUND) return;
    throw error;
  }
}
