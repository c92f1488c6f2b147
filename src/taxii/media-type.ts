/**
 * Media types of the TAXII 2.1 API and content negotiation on `Accept`
 * (RFC 9110, section 12.5.1).
 */

export const TAXII_MEDIA_TYPE = 'application/taxii+json;version=2.1';
export const STIX_MEDIA_TYPE = 'application/stix+json;version=2.1';

/** One member of an `Accept` header. Type, subtype and parameter names are lower-cased. */
export interface MediaRange {
  type: string;
  subtype: string;
  params: Map<string, string>;
  /** Weight between 0 and 1, from the `q` parameter (default 1). */
  q: number;
}

// token = 1*tchar (RFC 9110, section 5.6.2).
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// weight = OWS ";" OWS "q=" qvalue; qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )
const QVALUE = /^(?:0(?:\.\d{0,3})?|1(?:\.0{0,3})?)$/;

/**
 * Parses an `Accept` header into media ranges. A member that breaks the
 * grammar is skipped, so one bad member does not void the others.
 */
export function parseAccept(header: string): MediaRange[] {
  const ranges: MediaRange[] = [];
  for (const member of splitOutsideQuotes(header, ',')) {
    const range = parseMediaRange(member);
    if (range !== undefined) {
      ranges.push(range);
    }
  }
  return ranges;
}

function parseMediaRange(member: string): MediaRange | undefined {
  const [typePart = '', ...paramParts] = splitOutsideQuotes(member, ';');
  const slash = typePart.trim().split('/');
  if (slash.length !== 2) {
    return undefined;
  }
  const type = slash[0]!.toLowerCase();
  const subtype = slash[1]!.toLowerCase();
  if (!TOKEN.test(type) || !TOKEN.test(subtype) || (type === '*' && subtype !== '*')) {
    return undefined;
  }

  const params = new Map<string, string>();
  let q = 1;
  for (const part of paramParts) {
    const trimmed = part.trim();
    if (trimmed === '') {
      continue;
    }
    const eq = trimmed.indexOf('=');
    if (eq <= 0) {
      return undefined;
    }
    const name = trimmed.slice(0, eq).trim().toLowerCase();
    let value = trimmed.slice(eq + 1).trim();
    if (!TOKEN.test(name)) {
      return undefined;
    }
    if (value.startsWith('"') && value.endsWith('"') && value.length >= 2) {
      value = value.slice(1, -1).replace(/\\(.)/g, '$1');
    } else if (!TOKEN.test(value)) {
      return undefined;
    }
    if (name === 'q') {
      if (!QVALUE.test(value)) {
        return undefined;
      }
      q = Number(value);
      continue;
    }
    params.set(name, value);
  }
  return { type, subtype, params, q };
}

function splitOutsideQuotes(text: string, separator: string): string[] {
  const parts: string[] = [];
  let start = 0;
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const char = text[i];
    if (char === '\\' && quoted) {
      i++;
    } else if (char === '"') {
      quoted = !quoted;
    } else if (char === separator && !quoted) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(text.slice(start));
  return parts.filter((part) => part.trim() !== '');
}

// How specifically a range names the TAXII 2.1 response type, or -1 when it
// does not cover it. Higher wins, as RFC 9110 gives the most specific range
// precedence.
//
// The hub always responds with `application/taxii+json;version=2.1` and
// serves it to a client that accepts any of:
// - `application/taxii+json;version=2.1` (the exact type),
// - `application/taxii+json` without a version, because the TAXII 2.1
//   specification lets the server pick its newest version, which is 2.1,
// - `application/*` and `*/*`,
// - `application/json`, because a TAXII body is JSON and generic HTTP clients
//   send it. It ranks like `application/*`.
//
// Parameters other than `version` are ignored (`charset` has no meaning for
// JSON). A `version` other than 2.1 does not cover the response.
function specificity(range: MediaRange): number {
  if (range.type === '*') {
    return 0;
  }
  if (range.type !== 'application') {
    return -1;
  }
  if (range.subtype === '*' || range.subtype === 'json') {
    return 1;
  }
  if (range.subtype !== 'taxii+json') {
    return -1;
  }
  const version = range.params.get('version');
  if (version === undefined) {
    return 2;
  }
  return version === '2.1' ? 3 : -1;
}

/**
 * Returns whether a client with this `Accept` header accepts the TAXII 2.1
 * media type. An absent or blank header, or one without a single valid
 * member, accepts anything (RFC 9110: a server may disregard a header it
 * cannot parse). A matching range with `q=0` rejects.
 */
export function acceptsTaxii(header: string | undefined): boolean {
  if (header === undefined || header.trim() === '') {
    return true;
  }
  const ranges = parseAccept(header);
  if (ranges.length === 0) {
    return true;
  }
  let best: MediaRange | undefined;
  let bestSpecificity = -1;
  for (const range of ranges) {
    const rank = specificity(range);
    if (
      rank > bestSpecificity ||
      (rank === bestSpecificity && best !== undefined && range.q > best.q)
    ) {
      best = range;
      bestSpecificity = rank;
    }
  }
  return best !== undefined && best.q > 0;
}

/**
 * Parses a `Content-Type` header (RFC 9110, section 8.3: a media type with
 * parameters). Returns undefined for a header that breaks the grammar.
 */
export function parseContentType(header: string): MediaRange | undefined {
  const range = parseMediaRange(header);
  if (range === undefined || range.type === '*' || range.subtype === '*') return undefined;
  return range;
}

/**
 * Returns whether a request body of this `Content-Type` is a TAXII 2.1
 * envelope: `application/taxii+json` with `version=2.1` or without a version.
 * `application/stix+json` is not: it names a STIX bundle, and the add-objects
 * endpoint takes only envelopes.
 */
export function isTaxiiContentType(header: string | undefined): boolean {
  const range = header === undefined ? undefined : parseContentType(header);
  if (range === undefined || range.type !== 'application' || range.subtype !== 'taxii+json') {
    return false;
  }
  const version = range.params.get('version');
  return version === undefined || version === '2.1';
}
