/**
 * Adding the objects of one envelope to a collection: each object is
 * checked on its own, the valid ones are stored, and every object gets
 * exactly one entry in the status, so the counts always add up.
 */
import type { ObjectVersionInput, StatusDetail, Store } from '../store/index.js';
import { checkObject, type AcceptedObject } from './object-validation.js';
import { taxiiTimestamp } from './routes/common.js';

export interface AddOutcome {
  successes: StatusDetail[];
  failures: StatusDetail[];
}

const CONFLICT =
  'another object with this id and version is already stored, and it stays; to change the object, add a new version with a later modified';
const DUPLICATE_CONFLICT =
  'this request contains this id and version twice with different content; only the first is stored';

/** One envelope entry on its way through the steps, in envelope order. */
type Entry = { failure: StatusDetail } | { object: AcceptedObject; duplicateOf?: AcceptedObject };

function versionKeyOf(object: AcceptedObject): string {
  return JSON.stringify([object.input.id, object.input.version]);
}

/**
 * Stores the valid objects of `objects` in a collection and reports each
 * object as a success or a failure. A version that is already stored with
 * the same content is a success that adds nothing.
 */
export async function addObjects(
  store: Store,
  collectionId: string,
  objects: readonly unknown[],
): Promise<AddOutcome> {
  const entries: Entry[] = [];
  const firstByKey = new Map<string, AcceptedObject>();
  const toStore: ObjectVersionInput[] = [];
  const checks = objects.map((value) => checkObject(value));
  const revokedAt = await revocationVersions(
    store,
    collectionId,
    checks.flatMap((check) => (check.ok ? [check.object.input] : [])),
  );
  for (const check of checks) {
    if (!check.ok) {
      entries.push({ failure: check.failure });
      continue;
    }
    const { input, versionText } = check.object;
    const revoked = revokedAt.get(input.id);
    if (revoked !== undefined && input.version > revoked) {
      entries.push({
        failure: {
          id: input.id,
          version: versionText,
          message: `the object was revoked in its version ${revoked}, and STIX allows no later version; add the change as an object with a new id`,
        },
      });
      continue;
    }
    const key = versionKeyOf(check.object);
    const first = firstByKey.get(key);
    if (first !== undefined) {
      entries.push({ object: check.object, duplicateOf: first });
      continue;
    }
    firstByKey.set(key, check.object);
    toStore.push(check.object.input);
    entries.push({ object: check.object });
  }

  const result = await store.putObjects(collectionId, toStore);
  const conflicts = new Set(result.conflicts.map((c) => JSON.stringify([c.id, c.version])));
  const undated = await datesOfUndatedObjects(store, collectionId, toStore);

  const outcome: AddOutcome = { successes: [], failures: [] };
  for (const entry of entries) {
    if ('failure' in entry) {
      outcome.failures.push(entry.failure);
      continue;
    }
    const { input, versionText } = entry.object;
    const detail = { id: input.id, version: versionText || (undated.get(input.id) ?? '') };
    if (entry.duplicateOf !== undefined && entry.duplicateOf.input.json !== input.json) {
      outcome.failures.push({ ...detail, message: DUPLICATE_CONFLICT });
    } else if (conflicts.has(versionKeyOf(entry.object))) {
      outcome.failures.push({ ...detail, message: CONFLICT });
    } else {
      outcome.successes.push(detail);
    }
  }
  return outcome;
}

/**
 * Returns, by object id, the smallest version key at which an object of
 * `inputs` is revoked, in the collection or in `inputs` themselves.
 */
async function revocationVersions(
  store: Store,
  collectionId: string,
  inputs: readonly ObjectVersionInput[],
): Promise<Map<string, string>> {
  const revokedAt = new Map<string, string>();
  const note = (id: string, version: string, json: string) => {
    // Parsed only when the text names the property at all.
    if (!json.includes('"revoked"')) return;
    if ((JSON.parse(json) as { revoked?: unknown }).revoked !== true) return;
    const known = revokedAt.get(id);
    if (known === undefined || version < known) revokedAt.set(id, version);
  };
  const ids = [...new Set(inputs.map((input) => input.id))];
  if (ids.length === 0) return revokedAt;
  const page = await store.queryObjects({
    collectionId,
    ids,
    versions: [{ kind: 'last' }],
    limit: ids.length,
  });
  for (const item of page.items) note(item.id, item.version, item.json);
  for (const input of inputs) note(input.id, input.version, input.json);
  return revokedAt;
}

/**
 * Returns the `date_added` of objects without `modified` and `created`
 * (mostly SCOs), which is the version TAXII shows for them.
 */
async function datesOfUndatedObjects(
  store: Store,
  collectionId: string,
  inputs: readonly ObjectVersionInput[],
): Promise<Map<string, string>> {
  const ids = inputs.filter((input) => input.version === '').map((input) => input.id);
  const dates = new Map<string, string>();
  if (ids.length === 0) return dates;
  const page = await store.queryObjects({
    collectionId,
    ids,
    versions: [{ kind: 'all' }],
    limit: ids.length * 2,
    withoutBody: true,
  });
  for (const item of page.items) {
    if (item.version === '') dates.set(item.id, taxiiTimestamp(item.dateAdded));
  }
  return dates;
}
