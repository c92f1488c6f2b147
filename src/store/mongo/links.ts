import type { AnyBulkWriteOperation, Filter, WithId } from 'mongodb';

import type { ObjectQuery, VersionSelector } from '../port.js';
import type { ObjectDoc, VersionLinks } from './schema.js';

/**
 * Version links: what each stored version records about the other versions
 * of its object, so that `first`, `last` and `latestSpecVersion` are plain
 * field filters. MongoDB could compute them with `$lookup` or
 * `$setWindowFields`, but FerretDB 1.24 has neither.
 *
 * While versions are only added, links only grow: arrays gain entries and
 * flags turn from false to true. So writers that add versions of one object
 * at once can each add what they see, and none undoes another's work.
 */

/** The fields of a stored version that linking reads. */
export type LinkedVersion = Pick<
  WithId<ObjectDoc>,
  '_id' | 'id' | 'version' | 'spec_version' | keyof VersionLinks
>;

/** Links of a version that has no other versions. */
export function noLinks(): VersionLinks {
  return {
    newer_specs: [],
    older_specs: [],
    newer_same_spec: false,
    older_same_spec: false,
    higher_spec: false,
  };
}

/** Computes the links of `doc` from every stored version of its object. */
function linksOf(doc: LinkedVersion, versions: readonly LinkedVersion[]): VersionLinks {
  const links = noLinks();
  const newer = new Set<string>();
  const older = new Set<string>();
  for (const other of versions) {
    if (other.spec_version > doc.spec_version) links.higher_spec = true;
    if (other.version > doc.version) {
      newer.add(other.spec_version);
      if (other.spec_version === doc.spec_version) links.newer_same_spec = true;
    }
    if (other.version < doc.version) {
      older.add(other.spec_version);
      if (other.spec_version === doc.spec_version) links.older_same_spec = true;
    }
  }
  links.newer_specs = [...newer].sort();
  links.older_specs = [...older].sort();
  return links;
}

/**
 * Returns the updates that bring the links of `versions` (all stored versions
 * of one object) up to date. `grow` adds what is missing and removes nothing,
 * as an insert needs. `replace` sets each link to its computed value, as a
 * deletion needs.
 */
export function linkUpdates(
  versions: readonly LinkedVersion[],
  mode: 'grow' | 'replace',
): AnyBulkWriteOperation<ObjectDoc>[] {
  const updates: AnyBulkWriteOperation<ObjectDoc>[] = [];
  for (const doc of versions) {
    const computed = linksOf(doc, versions);
    const update = mode === 'grow' ? growUpdate(doc, computed) : replaceUpdate(doc, computed);
    if (update !== undefined) {
      updates.push({ updateOne: { filter: { _id: doc._id }, update } });
    }
  }
  return updates;
}

function growUpdate(
  doc: LinkedVersion,
  computed: VersionLinks,
): Record<string, unknown> | undefined {
  const addToSet: Record<string, { $each: string[] }> = {};
  const set: Record<string, true> = {};
  for (const field of ['newer_specs', 'older_specs'] as const) {
    const missing = computed[field].filter((spec) => !doc[field].includes(spec));
    if (missing.length > 0) addToSet[field] = { $each: missing };
  }
  for (const field of ['newer_same_spec', 'older_same_spec', 'higher_spec'] as const) {
    if (computed[field] && !doc[field]) set[field] = true;
  }

  const update: Record<string, unknown> = {};
  if (Object.keys(addToSet).length > 0) update.$addToSet = addToSet;
  if (Object.keys(set).length > 0) update.$set = set;
  return Object.keys(update).length > 0 ? update : undefined;
}

function replaceUpdate(
  doc: LinkedVersion,
  computed: VersionLinks,
): Record<string, unknown> | undefined {
  const same =
    sameSet(doc.newer_specs, computed.newer_specs) &&
    sameSet(doc.older_specs, computed.older_specs) &&
    doc.newer_same_spec === computed.newer_same_spec &&
    doc.older_same_spec === computed.older_same_spec &&
    doc.higher_spec === computed.higher_spec;
  return same ? undefined : { $set: computed };
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((item) => b.includes(item));
}

/**
 * Builds the filter of a page query; the SQLite adapter's query is the
 * reference. `first` and `last` pick among the versions that match the spec
 * version filters: a version is the last one when no newer version matches.
 *
 * NOTE: the types filter is not applied to the other versions, unlike the
 * SQLite adapter. A STIX id starts with its object's type, so every version
 * of an id has the same type and the results are the same for valid STIX.
 */
export function pageFilter(query: ObjectQuery): Filter<ObjectDoc> {
  const filter: Filter<ObjectDoc> = { collection_id: query.collectionId };

  const dateAdded: { $gt?: number; $gte?: number } = {};
  if (query.addedAfter !== undefined) dateAdded.$gt = query.addedAfter;
  if (query.after !== undefined) dateAdded.$gte = query.after.dateAdded;
  if (Object.keys(dateAdded).length > 0) filter.date_added = dateAdded;

  if (query.ids !== undefined) filter.id = { $in: query.ids };
  if (query.types !== undefined) filter.type = { $in: query.types };
  if (query.specVersions !== undefined) filter.spec_version = { $in: query.specVersions };
  const latestSpec = query.latestSpecVersion === true;
  if (latestSpec) filter.higher_spec = false;

  const selectors: VersionSelector[] =
    query.versions !== undefined && query.versions.length > 0 ? query.versions : [{ kind: 'last' }];
  if (selectors.some((selector) => selector.kind === 'all')) return filter;

  const specs = query.specVersions;
  const noOther = (direction: 'newer' | 'older'): Filter<ObjectDoc> => {
    // In the highest spec version, the other versions that count are those
    // of the same spec version (the spec filter, if any, already matched it).
    if (latestSpec) return { [`${direction}_same_spec`]: false };
    const field = `${direction}_specs`;
    return specs === undefined ? { [field]: { $size: 0 } } : { [field]: { $nin: specs } };
  };
  const terms: Filter<ObjectDoc>[] = [];
  if (selectors.some((selector) => selector.kind === 'last')) terms.push(noOther('newer'));
  if (selectors.some((selector) => selector.kind === 'first')) terms.push(noOther('older'));
  const atVersions = selectors.flatMap((selector) =>
    selector.kind === 'at' ? [selector.version] : [],
  );
  if (atVersions.length > 0) terms.push({ version: { $in: atVersions } });

  if (terms.length === 1) return { ...filter, ...terms[0] };
  return { ...filter, $or: terms };
}
