/**
 * Manual indicator entries: the values analysts add by hand through the API
 * (MineMeld's "localDB"). Each is a `manual-entry` record with an optional
 * expiry; the collection's `manual` source polls them like a list.
 */
import type { AttributeTlp, RemoveSightingResult, Store } from '../store/index.js';
import type { SourceEntry } from '../sources/kinds.js';
import type { ValueType } from '../processing/index.js';
import { buildHubVersion } from '../processing/versions.js';
import { successorIndicatorId } from '../stix/index.js';
import { MANUAL_SOURCE_ID, type CollectionConfig } from './config.js';
import { processingFor } from './processing.js';

/** The body of a `manual-entry` record, whose id is `<collectionId>/<type>:<value>`. */
export interface ManualEntry {
  valueType: ValueType;
  /** Canonical value. */
  value: string;
  /** Micros; absent for an entry that stays until removed. */
  expiresAt?: number;
  confidence?: number;
  tlp?: AttributeTlp;
  labels?: string[];
  comment?: string;
  addedBy: string;
}

export function manualEntryId(collectionId: string, valueType: string, value: string): string {
  return `${collectionId}/${valueType}:${value}`;
}

/** Reads every manual entry of a collection. */
export async function listManualEntries(
  store: Store,
  collectionId: string,
): Promise<
  { id: string; revision: number; createdAt: number; updatedAt: number; entry: ManualEntry }[]
> {
  const out = [];
  let after: string | undefined;
  for (;;) {
    const page = await store.listRecords('manual-entry', {
      prefix: `${collectionId}/`,
      limit: 1000,
      ...(after === undefined ? {} : { after }),
    });
    for (const record of page.items) {
      out.push({
        id: record.id,
        revision: record.revision,
        createdAt: record.createdAt,
        updatedAt: record.updatedAt,
        entry: record.body as unknown as ManualEntry,
      });
    }
    if (!page.more || page.items.length === 0) return out;
    after = page.items[page.items.length - 1]!.id;
  }
}

/** Returns the entries in force at `now`, as the manual source reads them. */
export async function loadManualEntries(
  store: Store,
  collectionId: string,
  now: number,
): Promise<SourceEntry[]> {
  const entries: SourceEntry[] = [];
  for (const { entry } of await listManualEntries(store, collectionId)) {
    if (entry.expiresAt !== undefined && entry.expiresAt <= now) continue;
    const attributes = {
      ...(entry.confidence === undefined ? {} : { confidence: entry.confidence }),
      ...(entry.tlp === undefined ? {} : { tlp: entry.tlp }),
      ...(entry.labels === undefined || entry.labels.length === 0
        ? {}
        : { labels: [...entry.labels].sort() }),
      ...(entry.comment === undefined ? {} : { description: entry.comment }),
    };
    entries.push({
      type: entry.valueType,
      value: entry.value,
      ...(Object.keys(attributes).length === 0 ? {} : { attributes }),
    });
  }
  return entries;
}

/**
 * Withdraws the manual source's sighting of a value whose entry an analyst
 * removed. When no other source lists the value, its indicator gets a last
 * version with `revoked: true`, and a later listing brings the value back
 * under a new id. Call it after deleting the entry's record, then poll the
 * manual source so that the views follow.
 */
export async function removeManualValue(
  store: Store,
  collection: CollectionConfig,
  valueType: string,
  value: string,
  at: number,
): Promise<RemoveSightingResult> {
  const versions = processingFor(collection).versions;
  return store.removeSighting({
    collectionId: collection.id,
    sourceId: MANUAL_SOURCE_ID,
    valueType,
    value,
    at,
    buildVersion: (change) => buildHubVersion(change, versions),
    successorId: (revokedId) => successorIndicatorId(collection.id, revokedId),
  });
}
