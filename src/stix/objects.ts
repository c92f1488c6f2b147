import { type ValueType } from '../processing/index.js';
import type { ObjectVersionInput } from '../store/index.js';
import { StixError } from './errors.js';
import { identityId, indicatorId } from './ids.js';
import { patternFor } from './pattern.js';
import { formatTimestamp, versionKey } from './timestamp.js';

const STIX_ID_PATTERN =
  /^([a-z0-9][a-z0-9-]*[a-z0-9])--[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * `created` and `modified` of every hub-authored identity. A fixed instant
 * makes the identity body depend only on its inputs, so each poll rebuilds
 * byte-identical JSON and stores no new version.
 * NOTE: renaming a source therefore changes nothing stored: the store keeps
 * the first body of an (id, modified) pair.
 */
export const IDENTITY_TIMESTAMP = '2020-01-01T00:00:00.000Z';

/**
 * Derives the storage fields of one STIX object from its JSON text, which is
 * kept exactly as given. The version key is `modified`, else `created`, else
 * empty (SCOs and marking definitions may have neither).
 */
export function toStoredVersion(json: string): ObjectVersionInput {
  let object: unknown;
  try {
    object = JSON.parse(json);
  } catch (error) {
    throw new StixError(`invalid STIX object: not JSON (${(error as Error).message})`);
  }
  if (typeof object !== 'object' || object === null || Array.isArray(object)) {
    throw new StixError('invalid STIX object: expected a JSON object');
  }
  const fields = object as Record<string, unknown>;

  const { id, type } = fields;
  if (typeof type !== 'string' || typeof id !== 'string') {
    throw new StixError('invalid STIX object: "type" and "id" must be strings');
  }
  const idMatch = STIX_ID_PATTERN.exec(id);
  if (!idMatch || idMatch[1] !== type) {
    throw new StixError(`invalid STIX id "${id}": expected ${type}--<UUID> in lower case`);
  }

  return {
    id,
    type,
    version: versionOf(fields, id),
    specVersion: typeof fields.spec_version === 'string' ? fields.spec_version : '2.1',
    json,
  };
}

function versionOf(fields: Record<string, unknown>, id: string): string {
  for (const property of ['modified', 'created'] as const) {
    const value = fields[property];
    if (value === undefined) continue;
    if (typeof value !== 'string') {
      throw new StixError(`invalid STIX object ${id}: "${property}" must be a timestamp string`);
    }
    try {
      return versionKey(value);
    } catch (error) {
      throw new StixError(`invalid STIX object ${id}: "${property}": ${(error as Error).message}`);
    }
  }
  return '';
}

export interface IdentityInput {
  collectionId: string;
  sourceId: string;
  /** Display name of the source, e.g. `abuse.ch Feodo Tracker`. */
  name: string;
  /** STIX identity class; a feed operator is an `organization` (the default), an automated feed a `system`. */
  identityClass?: 'organization' | 'system';
}

/** Builds the identity that authors a source's indicators; the JSON depends only on the input. */
export function buildIdentity(input: IdentityInput): ObjectVersionInput {
  const json = JSON.stringify({
    type: 'identity',
    spec_version: '2.1',
    id: identityId(input.collectionId, input.sourceId),
    created: IDENTITY_TIMESTAMP,
    modified: IDENTITY_TIMESTAMP,
    name: input.name,
    identity_class: input.identityClass ?? 'organization',
  });
  return toStoredVersion(json);
}

export interface IndicatorInput {
  collectionId: string;
  /**
   * The indicator id; by default the one `indicatorId` derives from the
   * collection and the pattern. A value revoked before has another one.
   */
  id?: string;
  /** Id of the identity in `created_by_ref`. */
  identityId: string;
  /** Canonical value type and value, as produced by `canonicalize`. */
  type: ValueType;
  value: string;
  /** STIX confidence, an integer 0-100. */
  confidence: number;
  tlpMarkingId: string;
  /** Open vocabulary `indicator-type-ov`, e.g. `malicious-activity`; omitted from the JSON when empty. */
  indicatorTypes: string[];
  /** Omitted from the JSON when empty. */
  labels?: string[];
  /** Defaults to the value. */
  name?: string;
  description?: string;
  createdMicros: number;
  /** Defaults to `createdMicros`; a later version of the indicator passes its own time. */
  modifiedMicros?: number;
  validFromMicros: number;
  validUntilMicros?: number;
  revoked?: boolean;
}

/**
 * Builds a hub indicator with a deterministic id per collection and pattern.
 * Timestamps have millisecond precision. The JSON is compact with a fixed
 * key order, so the same input always gives the same text.
 */
export function buildIndicator(input: IndicatorInput): ObjectVersionInput {
  if (!Number.isInteger(input.confidence) || input.confidence < 0 || input.confidence > 100) {
    throw new StixError(`invalid confidence ${input.confidence}: expected an integer 0-100`);
  }
  if (input.modifiedMicros !== undefined && input.modifiedMicros < input.createdMicros) {
    throw new StixError('invalid indicator: modified must not be earlier than created');
  }
  if (input.validUntilMicros !== undefined && input.validUntilMicros <= input.validFromMicros) {
    throw new StixError('invalid indicator: valid_until must be later than valid_from');
  }

  const pattern = patternFor(input.type, input.value);
  const labels = input.labels ?? [];
  const object: Record<string, unknown> = {
    type: 'indicator',
    spec_version: '2.1',
    id: input.id ?? indicatorId(input.collectionId, pattern),
    created_by_ref: input.identityId,
    created: formatTimestamp(input.createdMicros),
    modified: formatTimestamp(input.modifiedMicros ?? input.createdMicros),
    name: input.name ?? input.value,
  };
  if (input.description !== undefined) object.description = input.description;
  if (input.indicatorTypes.length > 0) object.indicator_types = input.indicatorTypes;
  Object.assign(object, {
    pattern,
    pattern_type: 'stix',
    pattern_version: '2.1',
    valid_from: formatTimestamp(input.validFromMicros),
  });
  if (input.validUntilMicros !== undefined)
    object.valid_until = formatTimestamp(input.validUntilMicros);
  object.confidence = input.confidence;
  if (labels.length > 0) object.labels = labels;
  if (input.revoked) object.revoked = true;
  object.object_marking_refs = [input.tlpMarkingId];

  // The fields are known here, so the JSON is not parsed again as
  // `toStoredVersion` would; `modified` has three fractional digits.
  const modified = object.modified as string;
  return {
    id: object.id as string,
    type: 'indicator',
    version: `${modified.slice(0, 23)}000Z`,
    specVersion: '2.1',
    json: JSON.stringify(object),
  };
}
