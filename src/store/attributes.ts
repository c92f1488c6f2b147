/**
 * Sighting attributes in the one form that both adapters store: normalized
 * (lists sorted and unique, empty fields left out) and written as JSON text
 * with a fixed key order. Equal attributes then give equal text, so a store
 * compares them without parsing.
 */
import type { AttributeTlp, IndicatorAttributes, SightingAttributes } from './port.js';

/** TLP levels from the most open to the most restrictive. */
export const ATTRIBUTE_TLP_RANK: Readonly<Record<AttributeTlp, number>> = {
  clear: 0,
  green: 1,
  amber: 2,
  'amber+strict': 3,
  red: 4,
};

const MAX_PORT = 65535;

/**
 * Returns `attributes` with sorted, unique lists and without empty fields, or
 * undefined when nothing is left. Throws on a confidence that is not an
 * integer 0-100, a port outside 1-65535, an unknown TLP or a time that is
 * not an integer number of microseconds. A source must drop such a value
 * before it reaches the store.
 */
export function normalizeAttributes(
  attributes: SightingAttributes | undefined,
): SightingAttributes | undefined {
  if (attributes === undefined) return undefined;
  const result: SightingAttributes = {};

  const { confidence, tlp, description, firstSeen, lastSeen } = attributes;
  if (confidence !== undefined) {
    if (!Number.isInteger(confidence) || confidence < 0 || confidence > 100) {
      throw new Error(`invalid sighting confidence ${confidence}: expected an integer 0-100`);
    }
    result.confidence = confidence;
  }
  if (tlp !== undefined) {
    if (!(tlp in ATTRIBUTE_TLP_RANK)) {
      throw new Error(
        `invalid sighting TLP ${JSON.stringify(tlp)}: expected one of ${Object.keys(ATTRIBUTE_TLP_RANK).join(', ')}`,
      );
    }
    result.tlp = tlp;
  }
  const labels = uniqueText(attributes.labels);
  if (labels !== undefined) result.labels = labels;
  const ports = uniquePorts(attributes.ports);
  if (ports !== undefined) result.ports = ports;
  const families = uniqueText(attributes.malwareFamilies);
  if (families !== undefined) result.malwareFamilies = families;
  if (description !== undefined && description !== '') result.description = description;
  if (firstSeen !== undefined) result.firstSeen = checkMicros(firstSeen, 'first seen');
  if (lastSeen !== undefined) result.lastSeen = checkMicros(lastSeen, 'last seen');

  return Object.keys(result).length === 0 ? undefined : result;
}

/** Writes normalized attributes as JSON text, or null when there are none. */
export function encodeAttributes(attributes: SightingAttributes | undefined): string | null {
  const normalized = normalizeAttributes(attributes);
  return normalized === undefined ? null : JSON.stringify(normalized);
}

/** Reads attributes that `encodeAttributes` wrote; null and undefined give undefined. */
export function decodeAttributes(text: string | null | undefined): SightingAttributes | undefined {
  if (text === null || text === undefined) return undefined;
  return JSON.parse(text) as SightingAttributes;
}

/** One active sighting as `mergeAttributes` reads it. */
export interface AttributedSighting {
  sourceId: string;
  /** The hub's last sighting time, which decides whose description wins. */
  lastSeen: number;
  attributes?: SightingAttributes;
}

/**
 * Merges the attributes of the active sightings of one value as
 * `IndicatorAttributes` describes; undefined when none has attributes.
 */
export function mergeAttributes(
  sightings: readonly AttributedSighting[],
): IndicatorAttributes | undefined {
  const merged: IndicatorAttributes = {};
  const labels = new Set<string>();
  const ports = new Set<number>();
  const families = new Set<string>();
  let describedBy: AttributedSighting | undefined;
  let any = false;

  for (const sighting of sightings) {
    const attributes = sighting.attributes;
    if (attributes === undefined) continue;
    any = true;
    if (attributes.confidence !== undefined) {
      merged.confidenceBySource ??= {};
      merged.confidenceBySource[sighting.sourceId] = attributes.confidence;
    }
    if (
      attributes.tlp !== undefined &&
      (merged.tlp === undefined ||
        ATTRIBUTE_TLP_RANK[attributes.tlp] > ATTRIBUTE_TLP_RANK[merged.tlp])
    ) {
      merged.tlp = attributes.tlp;
    }
    for (const label of attributes.labels ?? []) labels.add(label);
    for (const port of attributes.ports ?? []) ports.add(port);
    for (const family of attributes.malwareFamilies ?? []) families.add(family);
    if (attributes.description !== undefined && describes(sighting, describedBy)) {
      describedBy = sighting;
    }
    if (attributes.firstSeen !== undefined) {
      merged.firstSeen = Math.min(merged.firstSeen ?? Infinity, attributes.firstSeen);
    }
    if (attributes.lastSeen !== undefined) {
      merged.lastSeen = Math.max(merged.lastSeen ?? -Infinity, attributes.lastSeen);
    }
  }
  if (!any) return undefined;

  if (labels.size > 0) merged.labels = [...labels].sort();
  if (ports.size > 0) merged.ports = [...ports].sort((a, b) => a - b);
  if (families.size > 0) merged.malwareFamilies = [...families].sort();
  const description = describedBy?.attributes?.description;
  if (description !== undefined) merged.description = description;
  return Object.keys(merged).length === 0 ? undefined : merged;
}

/** Returns whether `candidate` was seen later than `current`, or as late with a smaller source id. */
function describes(
  candidate: AttributedSighting,
  current: AttributedSighting | undefined,
): boolean {
  if (current === undefined) return true;
  if (candidate.lastSeen !== current.lastSeen) return candidate.lastSeen > current.lastSeen;
  return candidate.sourceId < current.sourceId;
}

function uniqueText(list: readonly string[] | undefined): string[] | undefined {
  if (list === undefined) return undefined;
  const unique = [...new Set(list.map((item) => item.trim()).filter((item) => item !== ''))];
  return unique.length === 0 ? undefined : unique.sort();
}

function uniquePorts(list: readonly number[] | undefined): number[] | undefined {
  if (list === undefined) return undefined;
  for (const port of list) {
    if (!Number.isInteger(port) || port < 1 || port > MAX_PORT) {
      throw new Error(`invalid sighting port ${port}: expected an integer 1-${MAX_PORT}`);
    }
  }
  const unique = [...new Set(list)];
  return unique.length === 0 ? undefined : unique.sort((a, b) => a - b);
}

function checkMicros(micros: number, name: string): number {
  if (!Number.isSafeInteger(micros)) {
    throw new Error(`invalid sighting ${name} time ${micros}: expected integer microseconds`);
  }
  return micros;
}
