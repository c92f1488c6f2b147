/**
 * Manual indicator entries: the values analysts add by hand through the API
 * (MineMeld's "localDB"). Each is a `manual-entry` record with an optional
 * expiry; the collection's `manual` source polls them like a list.
 */
import type { AttributeTlp } from '../store/index.js';
import type { SourceEntry } from '../sources/kinds.js';
import type { ValueType } from '../processing/index.js';
import type { Store } from '../store/index.js';

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
