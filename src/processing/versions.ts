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
  patternFor,
  tlpMarking,
  TLP_LEVELS,
  type TlpLevel,
} from '../stix/index.js';
// The pure attribute module, not the store index, which would load the database drivers.
import { mergeAttributes } from '../store/attributes.js';
import type {
  IndicatorChange,
  ObjectVersionInput,
  SightingAttributes,
  SightingRecord,
} from '../store/index.js';
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
 * - `created` is the value: its sources, their confidence and labels, with
 *   each sighting's attributes in place of the source's settings (see
 *   `withAttributes`), and the description of the merged attributes;
 * - `merged` and `reactivated` restate it with the active sources;
 * - `withdrawn` and `expired` keep the last sources and set `valid_until`
 *   to the new `modified`, the moment of withdrawal. `revoked` sets
 *   `revoked: true`, and `valid_until` to the moment the value became
 *   inactive, which may be before the revocation.
 * `created` stays the first version's; `modified` is the change time, moved
 * one millisecond past the last stored version when needed, because
 * timestamps have millisecond precision and each version needs its own.
 * Provenance is one external reference per source.
 */
export function buildHubVersion(
  change: IndicatorChange,
  context: VersionContext,
): ObjectVersionInput {
  return fromCreatedTemplate(change, context) ?? buildVersionObject(change, context);
}

/** Builds a version of `buildHubVersion` field by field. */
function buildVersionObject(change: IndicatorChange, context: VersionContext): ObjectVersionInput {
  const active = change.sightings.filter((sighting) => sighting.withdrawnAt === undefined);
  const revoked = change.kind === 'revoked';
  const inactive = revoked || change.kind === 'withdrawn' || change.kind === 'expired';
  // A withdrawn value keeps the sources that listed it last.
  const basis = active.length > 0 ? active : lastWithdrawn(change.sightings);
  const profiles = basis.map((sighting) => profileOf(sighting.sourceId, context));
  const attributed = basis.map((sighting, i) => withAttributes(profiles[i]!, sighting.attributes));

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
  const merged = mergeProfiles(attributed, context.confidenceRule);
  const description = mergeAttributes(basis)?.description;

  const version = buildIndicator({
    collectionId: context.collectionId,
    id: change.indicatorId,
    identityId: identityId(context.collectionId, creator),
    type: change.valueType as ValueType,
    value: change.value,
    description,
    confidence: merged.confidence,
    tlpMarkingId: tlpMarking(merged.tlp).id,
    indicatorTypes: merged.indicatorTypes,
    labels: merged.labels,
    createdMicros: createdMillis * MICROS_PER_MILLI,
    modifiedMicros: modifiedMillis * MICROS_PER_MILLI,
    validFromMicros: createdMillis * MICROS_PER_MILLI,
    validUntilMicros: inactive
      ? (revoked ? endOfValidity(change, createdMillis, modifiedMillis) : modifiedMillis) *
        MICROS_PER_MILLI
      : undefined,
    revoked,
  });
  return withExternalReferences(version, profiles);
}

/**
 * The `created` version of a value first listed by one source without
 * attributes: everything but the id, the name (the value) and the pattern
 * is the same for every such value of a poll. `head`, `middle`, `tail` and
 * `end` are the JSON text around those three, so that a version costs three
 * concatenations instead of a merge, an object and its serialisation.
 */
interface CreatedTemplate {
  head: string;
  middle: string;
  tail: string;
  end: string;
  version: string;
}

/**
 * Templates per context, by source, creator flag, value type and time; null
 * where the first value's JSON could not be split.
 */
const createdTemplates = new WeakMap<VersionContext, Map<string, CreatedTemplate | null>>();
/** Templates kept per context; a poll uses one per source and value type. */
const MAX_TEMPLATES = 64;

/**
 * Builds a `created` version from a template, making the template from the
 * first such value; undefined when the change does not qualify.
 */
function fromCreatedTemplate(
  change: IndicatorChange,
  context: VersionContext,
): ObjectVersionInput | undefined {
  const [only] = change.sightings;
  if (change.kind !== 'created' || change.sightings.length !== 1 || only === undefined) {
    return undefined;
  }
  if (only.attributes !== undefined || only.withdrawnAt !== undefined) return undefined;

  let templates = createdTemplates.get(context);
  if (templates === undefined) {
    templates = new Map();
    createdTemplates.set(context, templates);
  }
  const key = `${only.sourceId}\n${only.creator}\n${change.valueType}\n${change.at}`;
  const template = templates.get(key);
  if (template === null) return undefined;
  const pattern = patternFor(change.valueType as ValueType, change.value);
  if (template !== undefined) {
    return {
      id: change.indicatorId,
      type: 'indicator',
      version: template.version,
      specVersion: '2.1',
      json:
        template.head +
        JSON.stringify(change.indicatorId) +
        template.middle +
        JSON.stringify(change.value) +
        template.tail +
        JSON.stringify(pattern) +
        template.end,
    };
  }

  const built = buildVersionObject(change, context);
  if (templates.size >= MAX_TEMPLATES) templates.clear();
  templates.set(key, splitCreated(built, change, pattern));
  return built;
}

/**
 * Splits a built version around its id, name and pattern. Returns null when
 * a part is not found exactly once in the expected order, so the template is
 * never used.
 */
function splitCreated(
  built: ObjectVersionInput,
  change: IndicatorChange,
  pattern: string,
): CreatedTemplate | null {
  const json = built.json;
  const id = `"id":${JSON.stringify(change.indicatorId)}`;
  const name = `"name":${JSON.stringify(change.value)}`;
  const patternText = `"pattern":${JSON.stringify(pattern)}`;
  const idAt = json.indexOf(id);
  const nameAt = json.indexOf(name);
  const patternAt = json.indexOf(patternText);
  const once = (text: string, at: number) => at >= 0 && json.indexOf(text, at + 1) < 0;
  if (!once(id, idAt) || !once(name, nameAt) || !once(patternText, patternAt)) return null;
  if (!(idAt < nameAt && nameAt < patternAt)) return null;
  return {
    head: json.slice(0, idAt + '"id":'.length),
    middle: json.slice(idAt + id.length, nameAt + '"name":'.length),
    tail: json.slice(nameAt + name.length, patternAt + '"pattern":'.length),
    end: json.slice(patternAt + patternText.length),
    version: built.version,
  };
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

/**
 * Returns a source's profile as it applies to one value: the sighting's
 * confidence in place of the source's, the stricter of the two TLPs, and the
 * sighting's labels added to the source's. A sighting thus never makes a
 * value more open than its source is configured.
 */
export function withAttributes(
  profile: SourceProfile,
  attributes: Pick<SightingAttributes, 'confidence' | 'tlp' | 'labels'> | undefined,
): SourceProfile {
  if (attributes === undefined) return profile;
  const { confidence, tlp, labels } = attributes;
  if (confidence === undefined && tlp === undefined && labels === undefined) return profile;
  return {
    ...profile,
    confidence: confidence ?? profile.confidence,
    tlp: tlp !== undefined && TLP_ORDER[tlp] > TLP_ORDER[profile.tlp] ? tlp : profile.tlp,
    labels: labels === undefined ? profile.labels : union([profile.labels, labels]),
  };
}

/** Returns the profile of a source id, or the fallback named after the id for a source no longer configured. */
export function profileOf(sourceId: string, context: VersionContext): SourceProfile {
  return context.sources.get(sourceId) ?? { ...context.fallback, id: sourceId, name: sourceId };
}

/**
 * Returns the millisecond at which a revoked value stopped being valid: the
 * withdrawal that left it without an active sighting, which is earlier than
 * the revocation when the value was withdrawn or expired before. It stays
 * after `created`, as STIX requires of `valid_until`, and not after `modified`.
 */
function endOfValidity(change: IndicatorChange, createdMillis: number, modifiedMillis: number) {
  const withdrawn = Math.max(...change.sightings.map((sighting) => sighting.withdrawnAt ?? 0));
  const withdrawnMillis = Math.floor(withdrawn / MICROS_PER_MILLI);
  return Math.min(modifiedMillis, Math.max(createdMillis + 1, withdrawnMillis));
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
