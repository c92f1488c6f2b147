import { canonicalDomain } from './domain.js';
import {
  canonicalIpv4,
  canonicalIpv4Cidr,
  canonicalIpv4Range,
  canonicalIpv6,
  canonicalIpv6Cidr,
} from './ip.js';
import { canonicalUrl, hasUrlScheme } from './url.js';
import { invalid, ok, type CanonicalResult, type ValueType } from './value-types.js';

const HASH_LENGTHS = { md5: 32, sha1: 40, sha256: 64 } as const;
const HEX = /^[0-9a-fA-F]+$/;

function canonicalHash(type: 'md5' | 'sha1' | 'sha256', text: string): CanonicalResult {
  const length = HASH_LENGTHS[type];
  if (!HEX.test(text) || text.length !== length) {
    return invalid(`invalid ${type} "${text}": expected ${length} hexadecimal digits`);
  }
  return ok(type, text.toLowerCase());
}

/**
 * Canonicalizes `raw` (surrounding whitespace ignored) as a value of `type`.
 * The result type can be narrower than requested: a `/32` CIDR is an `ipv4`,
 * an IPv4-mapped IPv6 address is an `ipv4`, and a range that is exactly one
 * CIDR is an `ipv4-cidr`.
 */
export function canonicalize(type: ValueType, raw: string): CanonicalResult {
  const text = raw.trim();
  if (text === '') return invalid(`empty ${type} value`);
  switch (type) {
    case 'ipv4':
      return canonicalIpv4(text);
    case 'ipv6':
      return canonicalIpv6(text);
    case 'ipv4-cidr':
      return text.includes('/') ? canonicalIpv4Cidr(text) : canonicalIpv4(text);
    case 'ipv6-cidr':
      return text.includes('/') ? canonicalIpv6Cidr(text) : canonicalIpv6(text);
    case 'ipv4-range':
      return text.includes('-') ? canonicalIpv4Range(text) : canonicalIpv4Cidr(text);
    case 'domain':
      return canonicalDomain(text);
    case 'url':
      return canonicalUrl(text);
    case 'md5':
    case 'sha1':
    case 'sha256':
      return canonicalHash(type, text);
  }
}

/** Guesses the value type of `raw` from its shape, then canonicalizes it as that type. */
export function detectAndCanonicalize(raw: string): CanonicalResult {
  const text = raw.trim();
  if (text === '') return invalid('empty value');
  return canonicalize(detectValueType(text), text);
}

/**
 * Guesses the value type of a trimmed value. Hex strings of 32, 40 or 64
 * digits are hashes. A value with a scheme, or with a path after something
 * other than an IP address, is a URL. Digits and dots are IPv4 even when
 * invalid, so `256.1.1.1` is reported as a bad address, not as a bad domain.
 */
export function detectValueType(text: string): ValueType {
  if (hasUrlScheme(text)) return 'url';
  if (HEX.test(text)) {
    if (text.length === HASH_LENGTHS.md5) return 'md5';
    if (text.length === HASH_LENGTHS.sha1) return 'sha1';
    if (text.length === HASH_LENGTHS.sha256) return 'sha256';
  }
  if (/^[0-9.]+\s*-\s*[0-9.]+$/.test(text)) return 'ipv4-range';

  const slash = text.indexOf('/');
  if (slash >= 0) {
    const head = text.slice(0, slash);
    if (/^[0-9.]+$/.test(head)) return 'ipv4-cidr';
    if (looksLikeIpv6(head)) return 'ipv6-cidr';
    return 'url';
  }
  if (looksLikeIpv6(text)) return 'ipv6';
  if (text.includes(':')) return 'url';
  if (/^[0-9.]+$/.test(text)) return 'ipv4';
  return 'domain';
}

function looksLikeIpv6(text: string): boolean {
  return /^[0-9a-fA-F:.]+(?:%.*)?$/.test(text) && text.split(':').length > 2;
}
