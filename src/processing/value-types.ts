/** Canonical value types of indicator values that the hub ingests and publishes. */
export type ValueType =
  | 'ipv4'
  | 'ipv6'
  | 'ipv4-cidr'
  | 'ipv6-cidr'
  | 'ipv4-range'
  | 'domain'
  | 'url'
  | 'md5'
  | 'sha1'
  | 'sha256';

export const VALUE_TYPES: readonly ValueType[] = [
  'ipv4',
  'ipv6',
  'ipv4-cidr',
  'ipv6-cidr',
  'ipv4-range',
  'domain',
  'url',
  'md5',
  'sha1',
  'sha256',
];

/**
 * Outcome of canonicalization. `type` may differ from the requested type:
 * `10.0.0.1/32` becomes `ipv4`, a range that is one CIDR becomes `ipv4-cidr`.
 */
export type CanonicalResult =
  { ok: true; type: ValueType; value: string } | { ok: false; reason: string };

export type StixObservableType = 'ipv4-addr' | 'ipv6-addr' | 'domain-name' | 'url' | 'file';

export function isValueType(text: string): text is ValueType {
  return (VALUE_TYPES as readonly string[]).includes(text);
}

/** Maps a value type to the STIX cyber-observable type that its patterns compare. */
export function valueTypeToStixType(type: ValueType): StixObservableType {
  switch (type) {
    case 'ipv4':
    case 'ipv4-cidr':
    case 'ipv4-range':
      return 'ipv4-addr';
    case 'ipv6':
    case 'ipv6-cidr':
      return 'ipv6-addr';
    case 'domain':
      return 'domain-name';
    case 'url':
      return 'url';
    case 'md5':
    case 'sha1':
    case 'sha256':
      return 'file';
  }
}

export function ok(type: ValueType, value: string): CanonicalResult {
  return { ok: true, type, value };
}

export function invalid(reason: string): CanonicalResult {
  return { ok: false, reason };
}
