/**
 * Confidence: the scales that sources use, mapped to the STIX 0-100 scale as
 * the STIX 2.1 specification's appendix "Confidence Scales" does, and the
 * rules that merge the confidence of several sources into one value.
 */

export const CONFIDENCE_SCALES = [
  'none-low-med-high',
  'admiralty',
  'wep',
  'dni',
  'zero-ten',
] as const;
export type ConfidenceScale = (typeof CONFIDENCE_SCALES)[number];

/**
 * Each scale's values in lower case, with the STIX confidence they map to.
 * Admiralty credibility 6 ("truth cannot be judged") has no STIX value in
 * the appendix, so it is not accepted here.
 */
const SCALE_VALUES: Record<Exclude<ConfidenceScale, 'zero-ten'>, Record<string, number>> = {
  'none-low-med-high': { none: 0, low: 15, med: 50, medium: 50, high: 85 },
  admiralty: { '1': 90, '2': 70, '3': 50, '4': 30, '5': 10 },
  wep: {
    impossible: 0,
    'highly unlikely': 10,
    'almost certainly not': 10,
    unlikely: 30,
    'probably not': 30,
    'even chance': 50,
    likely: 70,
    probable: 70,
    'highly likely': 90,
    'almost certain': 90,
    certain: 100,
  },
  dni: {
    'almost no chance': 5,
    remote: 5,
    'very unlikely': 15,
    'highly improbable': 15,
    unlikely: 30,
    improbable: 30,
    'roughly even chance': 50,
    'roughly even odds': 50,
    likely: 70,
    probable: 70,
    'very likely': 85,
    'highly probable': 85,
    'almost certain': 95,
    'nearly certain': 95,
  },
};

/** Maps a value of `scale` to STIX confidence 0-100; throws naming the accepted values. */
export function confidenceFromScale(scale: ConfidenceScale, value: string | number): number {
  if (scale === 'zero-ten') {
    const number = Number(value);
    if (!Number.isInteger(number) || number < 0 || number > 10) {
      throw new Error(
        `invalid confidence ${JSON.stringify(value)} on the 0-10 scale: expected an integer 0 to 10`,
      );
    }
    return number * 10;
  }
  const table = SCALE_VALUES[scale];
  const mapped = table[String(value).trim().toLowerCase()];
  if (mapped === undefined) {
    throw new Error(
      `invalid confidence ${JSON.stringify(value)} on the ${scale} scale: expected one of ${Object.keys(table).join(', ')}`,
    );
  }
  return mapped;
}

/**
 * How the confidence of a value listed by several sources is computed.
 * - `max`: the highest weighted confidence.
 * - `combined`: sources as independent witnesses, 100 * (1 - product of
 *   (1 - weight * confidence / 100)), so agreement raises confidence.
 */
export type ConfidenceRule = 'max' | 'combined';

/** One source's say on a value: its confidence 0-100 and its weight 0-1. */
export interface WeightedConfidence {
  confidence: number;
  weight: number;
}

/** Merges the confidence of the sources of one value into an integer 0-100; 0 without sources. */
export function mergeConfidence(
  rule: ConfidenceRule,
  inputs: readonly WeightedConfidence[],
): number {
  if (inputs.length === 0) return 0;
  if (rule === 'max') {
    return Math.round(Math.max(...inputs.map((input) => input.weight * input.confidence)));
  }
  let doubt = 1;
  for (const input of inputs) doubt *= 1 - (input.weight * input.confidence) / 100;
  return Math.round(100 * (1 - doubt));
}
