/**
 * The output formats of MineMeld feeds (`?v=` on a MineMeld output node), so
 * that devices configured for a MineMeld feed can poll the hub unchanged:
 *
 * - `json`: one array of `{"indicator": value, "value": {attributes}}`.
 * - `json-seq`: the same objects as an RFC 7464 JSON text sequence, each
 *   one as RS (U+001E), the JSON text and LF.
 * - `mwg`: a McAfee Web Gateway list, a `type=<list type>` line and then one
 *   `"value" "comment"` line per entry, with the source names as comment.
 * - `bluecoat`: a Blue Coat (Symantec ProxySG) local category,
 *   `define category <name>`, one URL or host per line, then `end`.
 */
import { PLAIN_TEXT, type BuildLog, type FormatOutput, type ViewEntry } from '../model.js';

import { formatIsoMicros, type CsvColumn, type CsvField } from './csv.js';
import { expandIpv4Ranges, joinLines } from './edl.js';
import { splitUrl } from './panos-url.js';

/** Attributes of `value` in the JSON formats, in output order, when no columns are selected. */
export const JSON_VALUE_FIELDS: readonly CsvField[] = [
  'confidence',
  'sources',
  'labels',
  'indicator_types',
  'tlp',
  'first_seen',
  'last_seen',
  'type',
  'id',
];

/** Sighting attributes that `value` gets, after `JSON_VALUE_FIELDS`, for an entry that has them. */
const JSON_ATTRIBUTE_FIELDS: readonly CsvField[] = [
  'ports',
  'malware_families',
  'description',
  'reported_first_seen',
  'reported_last_seen',
];

/** Options of the `json` and `json-seq` formats. */
export interface JsonOptions {
  /**
   * Attributes of `value`, each keyed by its `header`. Undefined writes
   * `JSON_VALUE_FIELDS`, then those sighting attributes that the entry has.
   */
  columns?: readonly CsvColumn[];
}

/** List types of the `mwg` format. */
export type MwgListType = 'string' | 'ip';
export const MWG_LIST_TYPES: readonly MwgListType[] = ['string', 'ip'];

/** Options of the `mwg` format. */
export interface MwgOptions {
  /**
   * `string` lists every entry as its value. `ip` lists IP entries only, with
   * IPv4 ranges as their CIDRs, because that list type takes addresses and
   * CIDRs but no ranges.
   */
  type: MwgListType;
}

/** Options of the `bluecoat` format. */
export interface BluecoatOptions {
  /** Name of the local category; see `BLUECOAT_CATEGORY_PATTERN`. */
  category: string;
}

/** Category names that need no quoting in a `define category` line. */
export const BLUECOAT_CATEGORY_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;

export const JSON_CONTENT_TYPE = 'application/json; charset=utf-8';
/** RFC 7464 section 4. */
export const JSON_SEQ_CONTENT_TYPE = 'application/json-seq';
const RECORD_SEPARATOR = '\u001e';

/**
 * Returns the JSON value of one attribute: lists as arrays, times as ISO 8601
 * UTC text. A sighting attribute that no source gave is an empty list or null.
 */
export function jsonAttribute(entry: ViewEntry, field: CsvField): unknown {
  switch (field) {
    case 'indicator':
      return entry.value;
    case 'type':
      return entry.type;
    case 'confidence':
      return entry.confidence;
    case 'sources':
      return entry.sources;
    case 'labels':
      return entry.labels;
    case 'indicator_types':
      return entry.indicatorTypes;
    case 'tlp':
      return entry.tlp;
    case 'first_seen':
      return formatIsoMicros(entry.firstSeen);
    case 'last_seen':
      return formatIsoMicros(entry.lastSeen);
    case 'id':
      return entry.indicatorId;
    case 'ports':
      return entry.ports ?? [];
    case 'malware_families':
      return entry.malwareFamilies ?? [];
    case 'description':
      return entry.description ?? null;
    case 'reported_first_seen':
      return entry.reportedFirstSeen === undefined
        ? null
        : formatIsoMicros(entry.reportedFirstSeen);
    case 'reported_last_seen':
      return entry.reportedLastSeen === undefined ? null : formatIsoMicros(entry.reportedLastSeen);
  }
}

/** Returns whether the entry has the sighting attribute of `field`. */
function hasAttribute(entry: ViewEntry, field: CsvField): boolean {
  const value = jsonAttribute(entry, field);
  return value !== null && !(Array.isArray(value) && value.length === 0);
}

/**
 * Returns the JSON text of `{"indicator": ..., "value": {...}}` for one
 * entry. Without `columns`, the default attributes and those sighting
 * attributes that the entry has.
 */
function jsonRecord(entry: ViewEntry, columns: readonly CsvColumn[] | undefined): string {
  const value: Record<string, unknown> = {};
  if (columns === undefined) {
    for (const field of JSON_VALUE_FIELDS) value[field] = jsonAttribute(entry, field);
    for (const field of JSON_ATTRIBUTE_FIELDS) {
      if (hasAttribute(entry, field)) value[field] = jsonAttribute(entry, field);
    }
  } else {
    for (const column of columns) value[column.header] = jsonAttribute(entry, column.field);
  }
  return JSON.stringify({ indicator: entry.value, value });
}

/** Renders entries in their given order as one JSON array. No entries give `[\n]\n`. */
export function renderJson(
  entries: readonly ViewEntry[],
  options: JsonOptions,
  _log: BuildLog,
): FormatOutput {
  const records = entries.map((entry) => jsonRecord(entry, options.columns));
  const body = records.length === 0 ? '[\n]\n' : `[\n${records.join(',\n')}\n]\n`;
  return { body, contentType: JSON_CONTENT_TYPE };
}

/** Renders entries in their given order as an RFC 7464 JSON text sequence. */
export function renderJsonSeq(
  entries: readonly ViewEntry[],
  options: JsonOptions,
  _log: BuildLog,
): FormatOutput {
  const records = entries.map(
    (entry) => `${RECORD_SEPARATOR}${jsonRecord(entry, options.columns)}\n`,
  );
  return { body: records.join(''), contentType: JSON_SEQ_CONTENT_TYPE };
}

/** Quotes a McAfee Web Gateway list field. `\` and `"` get a `\` before them, CR and LF become spaces. */
function quoteMwg(text: string): string {
  return `"${text.replace(/[\\"]/g, '\\$&').replace(/[\r\n]/g, ' ')}"`;
}

const IP_TYPES: ReadonlySet<string> = new Set([
  'ipv4',
  'ipv4-cidr',
  'ipv4-range',
  'ipv6',
  'ipv6-cidr',
]);

/**
 * Renders a McAfee Web Gateway list in the given entry order. The comment of
 * each line is the entry's source names joined with `,`, as MineMeld wrote it.
 */
export function renderMwg(
  entries: readonly ViewEntry[],
  options: MwgOptions,
  log: BuildLog,
): FormatOutput {
  const listed =
    options.type === 'ip'
      ? expandIpv4Ranges(
          entries.filter((entry) => IP_TYPES.has(entry.type)),
          log,
        )
      : entries;
  const lines = [`type=${options.type}`];
  for (const entry of listed) {
    lines.push(`${quoteMwg(entry.value)} ${quoteMwg(entry.sources.join(','))}`);
  }
  return { body: joinLines(lines), contentType: PLAIN_TEXT };
}

/**
 * Returns the Blue Coat line of one entry: a URL without scheme and userinfo,
 * a domain, or a single IP address. Undefined for other types. Ports, paths
 * and queries are kept, as MineMeld kept them. Unlike MineMeld, it leaves
 * `*` and `^` alone, because the token rule behind that rewrite is PAN-OS's.
 */
function bluecoatLine(entry: ViewEntry, log: BuildLog): string | undefined {
  switch (entry.type) {
    case 'domain':
    case 'ipv4':
    case 'ipv6':
      return entry.value;
    case 'url': {
      const parts = splitUrl(entry.value);
      if (parts === undefined) {
        log.dropped(entry.value, 'not a URL of the form scheme://host/path');
        return undefined;
      }
      const port = parts.port === undefined || parts.port === '' ? '' : `:${parts.port}`;
      const line = `${parts.host}${port}${parts.rest === '' ? '/' : parts.rest}`;
      if (parts.hasUserinfo) log.rewritten(entry.value, line, 'userinfo removed');
      return line;
    }
    default:
      return undefined;
  }
}

/**
 * Renders one Blue Coat local category with the URL, domain and single IP
 * address entries in their given order. No entries still give the
 * `define category`/`end` pair, so a proxy that loads it empties the category.
 * Throws when the category name does not match `BLUECOAT_CATEGORY_PATTERN`.
 */
export function renderBluecoat(
  entries: readonly ViewEntry[],
  options: BluecoatOptions,
  log: BuildLog,
): FormatOutput {
  if (!BLUECOAT_CATEGORY_PATTERN.test(options.category)) {
    throw new Error(
      `invalid Blue Coat category name ${JSON.stringify(options.category)}: expected 1-64 letters, digits, "_", "." or "-"`,
    );
  }
  const lines = [`define category ${options.category}`];
  for (const entry of entries) {
    const line = bluecoatLine(entry, log);
    if (line !== undefined) lines.push(line);
  }
  lines.push('end');
  return { body: joinLines(lines), contentType: PLAIN_TEXT };
}
