/**
 * The sighting attributes that a STIX 2.1 indicator carries:
 * `confidence`, `labels`, `description`, and the TLP of its
 * `object_marking_refs` (the predefined TLP 1.0 and 2.0 marking definitions).
 */
import type { ValueType } from '../processing/index.js';
import { tlpMarkingById } from '../stix/index.js';
// The pure attribute module, not the store index, which would load the database drivers.
import { ATTRIBUTE_TLP_RANK } from '../store/attributes.js';
import type { AttributeTlp, SightingAttributes } from '../store/index.js';
import type { SourceEntry } from './kinds.js';

/** Returns the attributes of an indicator object, or undefined when it carries none of them. */
export function stixIndicatorAttributes(
  indicator: Record<string, unknown>,
): SightingAttributes | undefined {
  const attributes: SightingAttributes = {};
  const { confidence, labels, description } = indicator;
  if (typeof confidence === 'number' && Number.isInteger(confidence)) {
    if (confidence >= 0 && confidence <= 100) attributes.confidence = confidence;
  }
  if (Array.isArray(labels)) {
    const texts = labels.filter((label): label is string => typeof label === 'string');
    if (texts.length > 0) attributes.labels = texts;
  }
  if (typeof description === 'string' && description.trim() !== '') {
    attributes.description = description;
  }
  const tlp = markingTlp(indicator.object_marking_refs);
  if (tlp !== undefined) attributes.tlp = tlp;
  return Object.keys(attributes).length === 0 ? undefined : attributes;
}

/** Returns the most restrictive TLP among marking references; TLP 1.0 `white` is `clear`. */
function markingTlp(refs: unknown): AttributeTlp | undefined {
  if (!Array.isArray(refs)) return undefined;
  let strictest: AttributeTlp | undefined;
  for (const ref of refs) {
    if (typeof ref !== 'string') continue;
    const marking = tlpMarkingById(ref);
    if (marking === undefined) continue;
    const level: AttributeTlp = marking.level === 'white' ? 'clear' : marking.level;
    if (strictest === undefined || ATTRIBUTE_TLP_RANK[level] > ATTRIBUTE_TLP_RANK[strictest]) {
      strictest = level;
    }
  }
  return strictest;
}

/** Returns the values of an indicator's pattern, each with the indicator's attributes. */
export function withIndicatorAttributes(
  values: readonly { type: ValueType; value: string }[],
  indicator: Record<string, unknown>,
): SourceEntry[] {
  const attributes = stixIndicatorAttributes(indicator);
  if (attributes === undefined) return values.map(({ type, value }) => ({ type, value }));
  return values.map(({ type, value }) => ({ type, value, attributes }));
}
