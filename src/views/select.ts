/**
 * From a collection's active values to the entries of one view: merged
 * source attributes, the view's filter, its maximum and its order.
 */
import type { ValueType } from '../processing/index.js';
import {
  mergeProfiles,
  profileOf,
  withAttributes,
  type SourceProfile,
  type VersionContext,
} from '../processing/versions.js';
import type { IndicatorAttributes, IndicatorEntry } from '../store/index.js';
import type { ViewEntry, ViewTlp } from './model.js';
import type { ViewFilter, ViewOrder, ViewSpec } from './spec.js';

const TLP_RANK: Record<ViewTlp, number> = {
  clear: 0,
  green: 1,
  amber: 2,
  'amber+strict': 3,
  red: 4,
};

type SharedAttributes = Pick<
  ViewEntry,
  'confidence' | 'sources' | 'labels' | 'indicatorTypes' | 'tlp'
>;

/**
 * Turns stored entries into view entries. Attributes that depend only on
 * the set of sources, and on the confidence, TLP and labels that the
 * sightings gave, are computed once per distinct combination, so a million
 * values from three sources without sighting attributes cost three merges.
 */
export function toViewEntries(
  entries: readonly IndicatorEntry[],
  context: VersionContext,
  collectionTlp: ViewTlp,
): ViewEntry[] {
  const byKey = new Map<string, SharedAttributes>();
  const result: ViewEntry[] = new Array(entries.length);
  for (let i = 0; i < entries.length; i += 1) {
    const entry = entries[i]!;
    const attributes = entry.attributes;
    let key = entry.sources.join('\n');
    if (attributes !== undefined) {
      key += `\n${JSON.stringify([attributes.confidenceBySource, attributes.tlp, attributes.labels])}`;
    }
    let shared = byKey.get(key);
    if (shared === undefined) {
      shared = sharedAttributes(entry.sources, attributes, context, collectionTlp);
      byKey.set(key, shared);
    }
    const viewEntry: ViewEntry = {
      type: entry.valueType as ValueType,
      value: entry.value,
      indicatorId: entry.indicatorId,
      firstSeen: entry.firstSeen,
      lastSeen: entry.lastSeen,
      ...shared,
    };
    if (attributes !== undefined) addOwnAttributes(viewEntry, attributes);
    result[i] = viewEntry;
  }
  return result;
}

/**
 * Merges the profiles of a value's sources, each with the confidence its
 * sighting gave, and adds the sightings' TLP and labels, as hub indicator
 * versions do.
 */
function sharedAttributes(
  sourceIds: readonly string[],
  attributes: IndicatorAttributes | undefined,
  context: VersionContext,
  collectionTlp: ViewTlp,
): SharedAttributes {
  const profiles: SourceProfile[] = sourceIds.map((id) =>
    withAttributes(profileOf(id, context), {
      confidence: attributes?.confidenceBySource?.[id],
    }),
  );
  const merged = mergeProfiles(profiles, context.confidenceRule);
  let tlp: ViewTlp = merged.tlp === 'white' ? 'clear' : merged.tlp;
  if (attributes?.tlp !== undefined && TLP_RANK[attributes.tlp] > TLP_RANK[tlp]) {
    tlp = attributes.tlp;
  }
  const labels =
    attributes?.labels === undefined
      ? merged.labels
      : [...new Set([...merged.labels, ...attributes.labels])].sort();
  return {
    confidence: merged.confidence,
    sources: profiles.map((profile) => profile.name).sort(),
    labels,
    indicatorTypes: merged.indicatorTypes,
    tlp: TLP_RANK[collectionTlp] > TLP_RANK[tlp] ? collectionTlp : tlp,
  };
}

/** Copies the attributes that only this value has: ports, families, description and reported times. */
function addOwnAttributes(entry: ViewEntry, attributes: IndicatorAttributes): void {
  if (attributes.ports !== undefined) entry.ports = attributes.ports;
  if (attributes.malwareFamilies !== undefined) entry.malwareFamilies = attributes.malwareFamilies;
  if (attributes.description !== undefined) entry.description = attributes.description;
  if (attributes.firstSeen !== undefined) entry.reportedFirstSeen = attributes.firstSeen;
  if (attributes.lastSeen !== undefined) entry.reportedLastSeen = attributes.lastSeen;
}

/** Counts of entries that the filter left out, by condition. */
export type FilterCounts = Partial<Record<keyof ViewFilter, number>>;

/**
 * Keeps the entries that pass every condition of `filter`. `sourceIds` are
 * the stored entries' source ids, index for index, because view entries
 * carry source names.
 */
export function filterEntries(
  entries: readonly ViewEntry[],
  sourceIds: readonly (readonly string[])[],
  filter: ViewFilter,
  now: number,
  counts: FilterCounts,
): ViewEntry[] {
  const types = filter.types ? new Set<string>(filter.types) : undefined;
  const sources = filter.sources ? new Set(filter.sources) : undefined;
  const labels = filter.labels ? new Set(filter.labels) : undefined;
  const indicatorTypes = filter.indicatorTypes ? new Set(filter.indicatorTypes) : undefined;
  const maxTlp = filter.maxTlp === undefined ? undefined : TLP_RANK[filter.maxTlp];
  const seenAfter =
    filter.seenWithinMicros === undefined ? undefined : now - filter.seenWithinMicros;
  const leftOut = (condition: keyof ViewFilter): false => {
    counts[condition] = (counts[condition] ?? 0) + 1;
    return false;
  };

  return entries.filter((entry, index) => {
    if (types && !types.has(entry.type)) return leftOut('types');
    if (filter.minConfidence !== undefined && entry.confidence < filter.minConfidence) {
      return leftOut('minConfidence');
    }
    if (filter.belowConfidence !== undefined && entry.confidence >= filter.belowConfidence) {
      return leftOut('belowConfidence');
    }
    if (sources && !(sourceIds[index] ?? []).some((id) => sources.has(id))) {
      return leftOut('sources');
    }
    if (labels && !entry.labels.some((label) => labels.has(label))) return leftOut('labels');
    if (indicatorTypes && !entry.indicatorTypes.some((type) => indicatorTypes.has(type))) {
      return leftOut('indicatorTypes');
    }
    if (maxTlp !== undefined && TLP_RANK[entry.tlp] > maxTlp) return leftOut('maxTlp');
    if (seenAfter !== undefined && entry.lastSeen < seenAfter) return leftOut('seenWithinMicros');
    return true;
  });
}

function compareText(a: string, b: string): number {
  if (a < b) return -1;
  return a > b ? 1 : 0;
}

/** Priority for the maximum: higher confidence first, then the most recent sighting, then value. */
function byPriority(a: ViewEntry, b: ViewEntry): number {
  return b.confidence - a.confidence || b.lastSeen - a.lastSeen || compareText(a.value, b.value);
}

/** Keeps the `max` highest-priority entries, in their original order. */
export function capEntries(
  entries: ViewEntry[],
  max: number | undefined,
): { kept: ViewEntry[]; cut: number } {
  if (max === undefined || entries.length <= max) return { kept: entries, cut: 0 };
  const keep = new Set([...entries].sort(byPriority).slice(0, max));
  return { kept: entries.filter((entry) => keep.has(entry)), cut: entries.length - max };
}

const ORDERS: Record<ViewOrder, (a: ViewEntry, b: ViewEntry) => number> = {
  // Entries come from the store by type then value; IP formats sort numerically themselves.
  value: (a, b) => compareText(a.type, b.type) || compareText(a.value, b.value),
  confidence: (a, b) => a.confidence - b.confidence || compareText(a.value, b.value),
  'last-seen': (a, b) => a.lastSeen - b.lastSeen || compareText(a.value, b.value),
  'first-seen': (a, b) => a.firstSeen - b.firstSeen || compareText(a.value, b.value),
};

/** Sorts entries in the view's order; the sort is stable and total, so a render is repeatable. */
export function orderEntries(
  entries: ViewEntry[],
  spec: Pick<ViewSpec, 'order' | 'descending'>,
): ViewEntry[] {
  const compare = ORDERS[spec.order];
  entries.sort(spec.descending ? (a, b) => compare(b, a) : compare);
  return entries;
}
