import type { Binary, Db, IndexDescription } from 'mongodb';

import type { CollectionAccess, RecordKind, WithdrawalReason } from '../port.js';

/**
 * Documents of the MongoDB store. Times are integer microseconds since the
 * Unix epoch, stored as BSON doubles: the driver writes a JS integer above
 * 2^31 as a double, a double represents every integer below 2^53 exactly, and
 * doubles compare numerically with the small int32 values a test may use.
 */

export interface CollectionDoc {
  /** TAXII collection id. */
  _id: string;
  alias: string;
  title: string;
  description?: string;
  can_read: boolean;
  can_write: boolean;
  media_types: string[];
  access?: CollectionAccess;
}

/** The last `date_added` handed out in a collection; it only moves forward. */
export interface ClockDoc {
  /** Collection id. */
  _id: string;
  last: number;
}

/** Facts a version keeps about the other versions of its object (see `links.ts`). */
export interface VersionLinks {
  /** The `spec_version` of every version with a greater version key, as a set. */
  newer_specs: string[];
  /** The same for smaller version keys. */
  older_specs: string[];
  /** Whether a version with a greater version key has the same `spec_version`. */
  newer_same_spec: boolean;
  /** Whether a version with a smaller version key has the same `spec_version`. */
  older_same_spec: boolean;
  /** Whether some version has a higher `spec_version` (compared as text). */
  higher_spec: boolean;
}

export interface ObjectDoc extends VersionLinks {
  collection_id: string;
  id: string;
  version: string;
  type: string;
  spec_version: string;
  date_added: number;
  /** The object's JSON text exactly as received. */
  json: string;
}

export interface SightingDoc {
  /** `compositeKey(collectionId, sourceId, valueType, value)`, unique per source and value. */
  _id: string;
  collection_id: string;
  source_id: string;
  value_type: string;
  value: string;
  indicator_id: string;
  first_seen: number;
  last_seen: number;
  /** Consecutive complete polls of the source that did not list the value. */
  missed: number;
  /** `seenAt` of the poll that last counted a miss, so a repeat of that poll counts none. */
  missed_at?: number;
  /** True for the sighting that made the hub create the indicator. */
  creator: boolean;
  /** Micros at which the sighting stopped counting; null while it is active. */
  withdrawn_at: number | null;
  withdrawal_reason?: WithdrawalReason;
  /** What the source said about the value, as the JSON text of `encodeAttributes`; absent when nothing. */
  attributes?: string;
}

/** A hub indicator revoked because an analyst removed its value (see `Store.removeSighting`). */
export interface RevocationDoc {
  /** `compositeKey(collectionId, indicatorId)`. */
  _id: string;
  collection_id: string;
  /** The revoked id. */
  indicator_id: string;
  value_type: string;
  value: string;
  revoked_at: number;
  /** The id the value's sightings took; the value's current id unless it is revoked too. */
  successor_id: string;
}

export interface SourceStateDoc {
  /** `compositeKey(collectionId, sourceId)`. */
  _id: string;
  collection_id: string;
  source_id: string;
  etag?: string;
  last_modified?: string;
  last_success_at?: number;
  last_valid_count?: number;
  /** The report as JSON text, so that any key (with `.` or `$`) is kept. */
  last_report?: string;
  /** The resume point as JSON text, for the same reason. */
  cursor?: string;
}

/** A TAXII status resource. */
export interface StatusDoc {
  /** Status id. */
  _id: string;
  collection_id: string;
  request_timestamp: number;
  /** The whole `StatusRecord` as JSON text. */
  body: string;
}

/**
 * The head of a stored view. A part (body or data) up to `VIEW_INLINE_BYTES`
 * is kept in the head; a larger one is split into `ViewChunkDoc`s written
 * before the head, so that replacing the head switches readers to the new
 * render at once. The previous render's chunks stay until the next render,
 * so a reader that read the old head can still read its chunks.
 */
export interface ViewDoc {
  /** `compositeKey(collectionId, name)`. */
  _id: string;
  collection_id: string;
  name: string;
  content_type: string;
  etag: string;
  /** Random id of this render; names its chunks. */
  render_id: string;
  /** Render id of the previous render, whose chunks are kept. */
  previous_render_id?: string;
  /** The body when inline; absent when it is in `body_chunks` chunks. */
  body?: Binary;
  body_chunks: number;
  data?: Binary;
  data_chunks: number;
  data_etag: string;
  log: string;
  rendered_at: number;
  entry_count: number;
}

/** One chunk of a view part too large for the head document. */
export interface ViewChunkDoc {
  /** `compositeKey(viewKey, renderId, part, String(seq))`. */
  _id: string;
  /** The `_id` of the view head. */
  view: string;
  render_id: string;
  part: 'body' | 'data';
  seq: number;
  bytes: Binary;
}

/** Largest part kept in the view head, and the size of chunks; far below the 16 MiB document limit. */
export const VIEW_INLINE_BYTES = 4 * 1024 * 1024;

export interface SecretDoc {
  /** Secret name. */
  _id: string;
  value: string;
}

/**
 * One write of an administration record. Every write (deletes included)
 * inserts a document with the next `seq` of its record instead of updating
 * one in place, and the unique `_id` decides between concurrent writers.
 * An update filtered on the revision would not: FerretDB 1.24 runs it as a
 * read, then a write by `_id`, so two writers could both succeed. The document
 * with the highest `seq` is the record. Older ones are deleted by later
 * writes once they have been stored for a while (see `records.ts`), because
 * a writer that read the one before must still find its `seq` taken.
 */
export interface RecordDoc {
  /** `compositeKey(kind, id, String(seq))`. */
  _id: string;
  kind: RecordKind;
  id: string;
  /** 1 for the first write of this id, one more for each later write or delete. */
  seq: number;
  /** Micros of the store's clock when this write was made, which decides when it may be pruned. */
  stored_at: number;
  /** Revision of the record. A tombstone keeps that of the deleted record. */
  revision: number;
  /**
   * True for a tombstone: the record was deleted. The newest write is never
   * pruned, so a writer that read the record before the delete cannot store
   * it again.
   */
  deleted: boolean;
  created_at: number;
  updated_at: number;
  /** The body as JSON text, so that any key (with `.` or `$`) is kept. Absent in a tombstone. */
  body?: string;
}

export interface AuditDoc {
  _id: number;
  at: number;
  actor: string;
  action: string;
  target_kind: string;
  target_id: string;
  collection_id?: string;
  ip?: string;
  /** The details as JSON text, for the same reason as `RecordDoc.body`. */
  details?: string;
}

/** A counter that hands out numbers, e.g. audit seq values. It only moves forward. */
export interface CounterDoc {
  /** Counter name. */
  _id: string;
  last: number;
}

/** Names of the MongoDB collections of the store. */
export const COLLECTIONS = {
  collections: 'collections',
  clocks: 'collection_clocks',
  objects: 'objects',
  sightings: 'sightings',
  revocations: 'revocations',
  sourceStates: 'source_states',
  views: 'views',
  viewChunks: 'view_chunks',
  secrets: 'secrets',
  statuses: 'taxii_statuses',
  records: 'records',
  audit: 'audit',
  counters: 'counters',
} as const;

/** Builds a composite `_id`; JSON text keeps the parts apart whatever they contain. */
export function compositeKey(...parts: string[]): string {
  return JSON.stringify(parts);
}

/** Indexes per collection: one for every query the store runs. */
const INDEXES: Record<string, IndexDescription[]> = {
  [COLLECTIONS.collections]: [{ key: { alias: 1 }, name: 'alias_unique', unique: true }],
  [COLLECTIONS.objects]: [
    // Pages in date_added order; unique so that a page position is one object.
    {
      key: { collection_id: 1, date_added: 1 },
      name: 'collection_date_added_unique',
      unique: true,
    },
    // One body per (id, version); also serves ids filters, linking and counting.
    {
      key: { collection_id: 1, id: 1, version: 1 },
      name: 'collection_id_version_unique',
      unique: true,
    },
  ],
  // Upserts find a sighting by its _id, which is built from (collection,
  // source, value type, value) and so is unique per source and value.
  [COLLECTIONS.sightings]: [
    // listIndicatorEntries (ordered by type then value) and every read of
    // the sightings of given values.
    { key: { collection_id: 1, value_type: 1, value: 1 }, name: 'collection_value' },
    // Sightings a poll missed, and sightings an aging rule expires.
    { key: { collection_id: 1, source_id: 1, last_seen: 1 }, name: 'source_last_seen' },
    { key: { collection_id: 1, source_id: 1, first_seen: 1 }, name: 'source_first_seen' },
  ],
  // Every poll reads those of its collection; a lookup reads those of a value.
  [COLLECTIONS.revocations]: [
    { key: { collection_id: 1, value_type: 1, value: 1 }, name: 'collection_value' },
  ],
  // The chunks of one part of one render, in order, and the cleanup of old renders.
  [COLLECTIONS.viewChunks]: [
    { key: { view: 1, render_id: 1, part: 1, seq: 1 }, name: 'view_render_part_seq' },
  ],
  // purgeStatuses deletes by age.
  [COLLECTIONS.statuses]: [{ key: { request_timestamp: 1 }, name: 'request_timestamp' }],
  // The newest write of a record, and listing by id (with a prefix range).
  [COLLECTIONS.records]: [{ key: { kind: 1, id: 1, seq: -1 }, name: 'kind_id_seq' }],
  // Each audit filter together with the newest-first order (_id is the seq).
  [COLLECTIONS.audit]: [
    { key: { actor: 1, _id: -1 }, name: 'actor_seq' },
    { key: { action: 1, _id: -1 }, name: 'action_seq' },
    { key: { target_kind: 1, target_id: 1, _id: -1 }, name: 'target_seq' },
    { key: { collection_id: 1, _id: -1 }, name: 'collection_seq' },
    { key: { at: -1 }, name: 'at' },
  ],
};

/** Creates every index; creating an index that exists with the same options does nothing. */
export async function createIndexes(db: Db): Promise<void> {
  for (const [name, indexes] of Object.entries(INDEXES)) {
    // One command per index: FerretDB 1.24.2 panics and drops the connection
    // when one createIndexes command names two or more existing indexes.
    for (const index of indexes) {
      await db.collection(name).createIndexes([index]);
    }
  }
}
