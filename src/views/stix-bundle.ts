/**
 * The STIX 2.1 bundle export of a view: the current version of each listed
 * value's hub indicator, with the identities and marking definitions they
 * refer to, as stored (byte for byte).
 */
import { createHash } from 'node:crypto';

import type { Store } from '../store/index.js';
import type { FormatOutput, ViewEntry } from './model.js';

const BATCH = 500;
const STIX_MEDIA_TYPE = 'application/stix+json;version=2.1';

/** Returns the latest stored JSON of each id, in the order of `ids`; ids not stored are skipped. */
async function latestObjects(
  store: Store,
  collectionId: string,
  ids: readonly string[],
): Promise<string[]> {
  const byId = new Map<string, string>();
  for (let start = 0; start < ids.length; start += BATCH) {
    const batch = ids.slice(start, start + BATCH);
    let after;
    for (;;) {
      const page = await store.queryObjects({
        collectionId,
        ids: batch,
        versions: [{ kind: 'last' }],
        latestSpecVersion: true,
        limit: BATCH,
        ...(after === undefined ? {} : { after }),
      });
      for (const item of page.items) byId.set(item.id, item.json);
      const last = page.items.at(-1);
      if (!page.more || last === undefined) break;
      after = { dateAdded: last.dateAdded, id: last.id, version: last.version };
    }
  }
  return ids.flatMap((id) => {
    const json = byId.get(id);
    return json === undefined ? [] : [json];
  });
}

/** Collects `created_by_ref` and `object_marking_refs` of the objects, sorted. */
function referencedIds(objects: readonly string[]): string[] {
  const refs = new Set<string>();
  for (const json of objects) {
    const object = JSON.parse(json) as { created_by_ref?: string; object_marking_refs?: string[] };
    if (object.created_by_ref !== undefined) refs.add(object.created_by_ref);
    for (const ref of object.object_marking_refs ?? []) refs.add(ref);
  }
  return [...refs].sort();
}

export async function renderStixBundle(
  store: Store,
  collectionId: string,
  entries: readonly ViewEntry[],
): Promise<FormatOutput> {
  const indicators = await latestObjects(
    store,
    collectionId,
    entries.map((entry) => entry.indicatorId),
  );
  const referenced = await latestObjects(store, collectionId, referencedIds(indicators));
  const objects = [...referenced, ...indicators];
  // The bundle id is derived from the content, so the same objects give the same body and tag.
  const digest = createHash('sha256');
  for (const json of objects) digest.update(json).update('\n');
  const hex = digest.digest('hex');
  const id = `bundle--${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-${((parseInt(hex[16]!, 16) & 0x3) | 0x8).toString(16)}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
  return {
    body: `{"type":"bundle","id":"${id}","objects":[${objects.join(',')}]}\n`,
    contentType: STIX_MEDIA_TYPE,
  };
}
