/**
 * Versions of hub-authored indicators. A hub indicator stands for one value
 * in one collection, whatever the number of sources: each change of its
 * sources or state becomes a new STIX version, so TAXII consumers see it.
 *
 * Import this module directly: it depends on `src/stix`, which depends on
 * the processing index, so the index does not re-export it.
 */
import {
  buildIndicator,
  identityId,
  parseTimestamp,
  tlpMarking,
  TLP_LEVELS,
  type TlpLevel,
} from '../stix/index.js';
import type { IndicatorChange, ObjectVersionInput, SightingRecord } from '../store/index.js';
import { mergeConfidence, type ConfidenceRule } from './confidence.js';
import type { ValueType } from './value-types.js';

/** What the hub knows of one source of a collection when it writes a version. */
export interface SourceProfile {
  id: string;
  name: string;
  /** STIX confidence 0-100 of the source's values. */
  confidence: number;
  /** Weight 0-1 of the source in the confidence rule. Default 1. */
  weight: number;
  tlp: TlpLevel;
  indicatorTypes: readonly string[];
  labels: readonly string[];
}

export interface VersionContext {
  collectionId: string;
  /** The configured sources of the collection by id; a sighting of a removed source falls back to `fallback`. */
  sources: ReadonlyMap<string, SourceProfile>;
  /** Used for sightings whose source is no longer configured. */
  fallback: SourceProfile;
  confidenceRule: ConfidenceRule;
}

const MICROS_PER_MILLI = 1000;

/** TLP levels from least to most restrictive; `white` is the TLP 1.0 name of `clear`. */
const TLP_ORDER: Record<TlpLevel, number> = {
  clear: 0,
  white: 0,
  green: 1,
  amber: 2,
  'amber+strict': 3,
  red: 4,
};

/**
 * Builds the indicator version that `change` calls for:
 * - `created` is the value: its sources, their confidence and labels;
 * - `merged` and `reactivated` restate it with the active sources;
 * - `withdrawn` and `expired` keep the last sources and set `valid_until`
 *   to the new `modified`, the moment of withdrawal.
 * `created` stays the first version's; `modified` is the change time, moved
 * one millisecond past the last stored version when needed, because
 * timestamps have millisecond precision and each version needs its own.
 * Provenance is one external reference per source.
 */
export function buildHubVersion(
  change: IndicatorChange,
  context: VersionContext,
): ObjectVersionInput {
  const active = change.sightings.filter((sighting) => sighting.withdrawnAt === undefined);
  const gone = change.kind === 'withdrawn' || change.kind === 'expired';
  // A withdrawn value keeps the sources that listed it last.
  const basis = active.length > 0 ? active : lastWithdrawn(change.sightings);
  const profiles = basis.map((sighting) => profileOf(sighting.sourceId, context));

  const atMillis = Math.floor(change.at / MICROS_PER_MILLI);
  const createdMillis =
    change.firstVersion === undefined
      ? atMillis
      : Math.floor(parseTimestamp(change.firstVersion) / MICROS_PER_MILLI);
  const lastMillis =
    change.lastVersion === undefined
      ? undefined
      : Math.floor(parseTimestamp(change.lastVersion) / MICROS_PER_MILLI);
  const modifiedMillis = lastMillis === undefined ? atMillis : Math.max(atMillis, lastMillis + 1);

  const creator = creatorOf(change.sightings);
  const merged = mergeProfiles(profiles, context.confidenceRule);

  const version = buildIndicator({
    collectionId: context.collectionId,
    identityId: identityId(context.collectionId, creator),
    type: change.valueType as ValueType,
    value: change.value,
    confidence: merged.confidence,
    tlpMarkingId: tlpMarking(merged.tlp).id,
    indicatorTypes: merged.indicatorTypes,
    labels: merged.labels,
    createdMicros: createdMillis * MICROS_PER_MILLI,
    modifiedMicros: modifiedMillis * MICROS_PER_MILLI,
    validFromMicros: createdMillis * MICROS_PER_MILLI,
    validUntilMicros: gone ? modifiedMillis * MICROS_PER_MILLI : undefined,
  });
  return withExternalReferences(version, profiles);
}

/** The merged attributes of the active sources of a value. */
export interface MergedProfile {
  confidence: number;
  /** The most restrictive TLP of the sources. */
  tlp: TlpLevel;
  indicatorTypes: string[];
  labels: string[];
}

/** Merges source profiles: confidence by the collection's rule, the strictest TLP, sorted unions. */
export function mergeProfiles(
  profiles: readonly SourceProfile[],
  rule: ConfidenceRule,
): MergedProfile {
  const tlp = profiles.reduce<TlpLevel>(
    (strictest, profile) =>
      TLP_ORDER[profile.tlp] > TLP_ORDER[strictest] ? profile.tlp : strictest,
    TLP_LEVELS[0] ?? 'clear',
  );
  return {
    confidence: mergeConfidence(rule, profiles),
    tlp,
    indicatorTypes: union(profiles.map((profile) => profile.indicatorTypes)),
    labels: union(profiles.map((profile) => profile.labels)),
  };
}

/** Returns the profile of a source id, or the fallback named after the id for a source no longer configured. */
export function profileOf(sourceId: string, context: VersionContext): SourceProfile {
  return context.sources.get(sourceId) ?? { ...context.fallback, id: sourceId, name: sourceId };
}

/** The sightings withdrawn last, i.e. those whose withdrawal made the value inactive. */
function lastWithdrawn(sightings: readonly SightingRecord[]): SightingRecord[] {
  const last = Math.max(...sightings.map((sighting) => sighting.withdrawnAt ?? 0));
  return sightings.filter((sighting) => sighting.withdrawnAt === last);
}

/**
 * The source whose identity authors every version. STIX forbids changing
 * `created_by_ref` between versions, so it is the sighting that created the
 * indicator, else the earliest one.
 */
function creatorOf(sightings: readonly SightingRecord[]): string {
  const marked = sightings.find((sighting) => sighting.creator);
  if (marked) return marked.sourceId;
  const earliest = [...sightings].sort((a, b) => a.firstSeen - b.firstSeen)[0];
  return earliest?.sourceId ?? '';
}

function union(lists: readonly (readonly string[])[]): string[] {
  return [...new Set(lists.flat())].sort();
}

/**
 * Adds `external_references` (one per source, sorted by source id) before
 * `object_marking_refs`, the last key that `buildIndicator` writes, so the
 * JSON keeps a fixed key order and stays byte-identical for the same input.
 */
function withExternalReferences(
  version: ObjectVersionInput,
  profiles: readonly SourceProfile[],
): ObjectVersionInput {
  if (profiles.length === 0) return version;
  const references = [...profiles]
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    .map((profile) => ({ source_name: profile.name, external_id: profile.id }));
  const marker = ',"object_marking_refs":';
  const at = version.json.lastIndexOf(marker);
  if (at < 0) throw new Error(`indicator ${version.id} has no object_marking_refs`);
  const json = `${version.json.slice(0, at)},"external_references":${JSON.stringify(references)}${version.json.slice(at)}`;
  return { ...version, json };
}
