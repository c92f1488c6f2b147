import { domainToASCII } from 'node:url';

import { invalid, ok, type CanonicalResult } from './value-types.js';

/** RFC 1035 section 2.3.1 "LDH" label: letters, digits, hyphens; no hyphen at either end. */
const LDH_LABEL = /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/;
/** LDH plus `_`, which DNS allows (RFC 2181 section 11) and browsers resolve in URL hosts. */
const LDH_UNDERSCORE_LABEL = /^[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?$/;
const MAX_NAME_LENGTH = 253;
const MAX_LABEL_LENGTH = 63;
const NON_ASCII = /[^\x20-\x7e]/;
const WHITESPACE_OR_CONTROL = /[\s\p{Cc}]/u;

/**
 * Canonicalizes a domain name: lower case, one trailing dot removed, and IDNs
 * converted to punycode (UTS 46 via `domainToASCII`). The result must have
 * at least two LDH labels of 1-63 characters, at most 253 characters in all,
 * and a TLD that is not all digits, so an IP address is never a domain.
 * Wildcards (`*.example.com`) are rejected because no derived view can
 * express them yet. `allowUnderscore` admits `_` in labels, for URL hosts.
 */
export function canonicalDomain(
  text: string,
  options: { allowUnderscore?: boolean } = {},
): CanonicalResult {
  if (text.startsWith('*.')) {
    return invalid(`invalid domain "${text}": wildcards are not supported; list the domain itself`);
  }
  if (WHITESPACE_OR_CONTROL.test(text)) {
    return invalid(`invalid domain "${text}": contains whitespace or control characters`);
  }

  let name = text.endsWith('.') ? text.slice(0, -1) : text;
  name = name.toLowerCase();
  if (name === '') return invalid(`invalid domain "${text}": empty name`);
  if (NON_ASCII.test(name) || name.split('.').some((label) => label.startsWith('xn--'))) {
    // domainToASCII returns '' for names that UTS 46 rejects, including bad punycode.
    const ascii = domainToASCII(name);
    if (ascii === '')
      return invalid(`invalid domain "${text}": not a valid internationalized name`);
    name = ascii;
  }

  return checkLdhName(name, text, options.allowUnderscore ? LDH_UNDERSCORE_LABEL : LDH_LABEL);
}

function checkLdhName(name: string, original: string, labelPattern: RegExp): CanonicalResult {
  if (name.length > MAX_NAME_LENGTH) {
    return invalid(`invalid domain "${original}": longer than ${MAX_NAME_LENGTH} characters`);
  }
  const labels = name.split('.');
  if (labels.length < 2) {
    return invalid(`invalid domain "${original}": needs at least two labels, e.g. example.com`);
  }
  for (const label of labels) {
    if (label.length === 0) return invalid(`invalid domain "${original}": empty label`);
    if (label.length > MAX_LABEL_LENGTH) {
      return invalid(
        `invalid domain "${original}": label "${label}" is longer than ${MAX_LABEL_LENGTH} characters`,
      );
    }
    if (!labelPattern.test(label)) {
      return invalid(
        `invalid domain "${original}": label "${label}" may contain only letters, digits and inner hyphens`,
      );
    }
  }
  if (/^[0-9]+$/.test(labels[labels.length - 1] ?? '')) {
    return invalid(`invalid domain "${original}": the top-level label is all digits`);
  }
  return ok('domain', name);
}
