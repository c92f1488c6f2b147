/**
 * MineMeld-compatible query parameters of a feed, such as
 * `/feeds/{alias}/{view}?v=csv&f=indicator&f=confidence|Score`, and the
 * rendering of an EDL view with them.
 *
 * | parameter | values | effect | applies to |
 * | --- | --- | --- | --- |
 * | `v` | `json`, `json-seq`, `csv`, `mwg`, `panosurl`, `bluecoat` | output format; absent: the view's own list | every view |
 * | `s` | integer, 0 or more | skips that many entries | every format |
 * | `n` | integer, 1 or more | lists at most that many entries | every format |
 * | `d` | empty or `1`; `0` for ascending | reverses the entry order before `s` and `n` | every format |
 * | `tr` | `0`, `1` | `1` writes IPv4 ranges as their CIDRs | IP list, `json`, `json-seq`, `csv`, `mwg` |
 * | `sum` | `0`, `1` | `1` collapses the IP list to its fewest CIDRs | IP list |
 * | `f` | `field` or `field\|Column`, repeatable | attributes and their names | `json`, `json-seq`, `csv` |
 * | `h` | `0`, `1` (default) | CSV header row | `csv` |
 * | `ubom` | `0` (default), `1` | UTF-8 byte order mark before the CSV | `csv` |
 * | `t` | `string` (default), `ip` | McAfee Web Gateway list type | `mwg` |
 * | `sp` | `0`, `1` | `1` strips ports instead of dropping the entry | URL list, `panosurl` |
 * | `di` | `0`, `1` | `1` drops entries with invalid wildcard tokens instead of rewriting them | URL list, `panosurl` |
 * | `nsl` | `0`, `1` | `1` writes no trailing slash after a host-only entry | URL list, `panosurl` |
 * | `cd` | category name | Blue Coat category; default: the view name | `bluecoat` |
 *
 * Absent list options take the view's defaults (`EdlDefaults`). `h` sets the
 * CSV header row only: the `mwg` list always starts with its `type=` line,
 * because the gateway needs it to read the list.
 *
 * The parser rejects unknown parameters, a second value of any parameter
 * but `f`, and a parameter that has no effect on the output format (`h`
 * without `v=csv`, say), so a mistyped feed URL fails instead of silently
 * serving another list. The exceptions are `_` and `cb`, which clients
 * add to defeat caches: they are ignored whatever their value.
 *
 * `d`, `s` and `n` choose which entries are listed, in the order the caller
 * passes them. The IP, domain and URL lists then sort their lines, so there
 * `d` changes which entries appear but not their order.
 */
import type { BuildLog, FormatOutput, ViewEntry } from '../model.js';

import { CSV_FIELDS, renderCsv, type CsvColumn, type CsvField } from './csv.js';
import {
  expandIpv4Ranges,
  joinLines,
  renderDomainEdl,
  renderIpEdl,
  type DomainEdlOptions,
  type IpEdlOptions,
} from './edl.js';
import {
  BLUECOAT_CATEGORY_PATTERN,
  MWG_LIST_TYPES,
  renderBluecoat,
  renderJson,
  renderJsonSeq,
  renderMwg,
  type MwgListType,
} from './minemeld.js';
import { renderPanosUrlEdl, type PanosUrlOptions } from './panos-url.js';

export type FeedFormat = 'json' | 'json-seq' | 'csv' | 'mwg' | 'panosurl' | 'bluecoat';
export const FEED_FORMATS: readonly FeedFormat[] = [
  'json',
  'json-seq',
  'csv',
  'mwg',
  'panosurl',
  'bluecoat',
];

/** Kinds of the views that take feed parameters. */
export type EdlViewKind = 'edl-ip' | 'edl-domain' | 'edl-url';

/** A parsed feed query. An optional field is undefined when its parameter is absent. */
export interface FeedQuery {
  format?: FeedFormat;
  /** `s`: entries skipped. */
  offset: number;
  /** `n`: maximum entries listed. */
  limit?: number;
  /** `d`: reverse the entry order before `offset` and `limit`. */
  descending: boolean;
  /** `tr` */
  rangesToCidrs?: boolean;
  /** `sum` */
  collapse?: boolean;
  /** `f`, in the order given. */
  columns?: CsvColumn[];
  /** `h` */
  csvHeader?: boolean;
  /** `ubom` */
  bom?: boolean;
  /** `t` */
  mwgType?: MwgListType;
  /** `sp` */
  stripPort?: boolean;
  /** `di` */
  dropInvalidWildcards?: boolean;
  /** `nsl`: true when `nsl=1`. */
  noTrailingSlash?: boolean;
  /** `cd` */
  category?: string;
  /** Names of the parameters given, without the ignored ones. */
  parameters: string[];
}

/** A query parameter that is unknown, repeated, invalid or of no effect. Maps to HTTP 400. */
export class FeedQueryError extends Error {
  readonly status = 400;

  constructor(
    readonly parameter: string,
    message: string,
  ) {
    super(message);
    this.name = 'FeedQueryError';
  }
}

/** Per-view defaults of the list options, as the collection YAML sets them. */
export interface EdlDefaults {
  ranges: IpEdlOptions['ranges'];
  collapse: boolean;
  wildcard: DomainEdlOptions['wildcard'];
  port: PanosUrlOptions['port'];
  trailingSlash: boolean;
  invalidWildcards: PanosUrlOptions['invalidWildcards'];
}

/**
 * Defaults of a view that sets none. Ranges stay ranges, which PAN-OS IP
 * lists accept, and domains are written as the sources list them. The URL
 * list is MineMeld's `panosurl`: entries with a port are dropped and invalid
 * wildcard tokens rewritten. It adds the trailing slash that PAN-OS 10.2
 * appends anyway.
 */
export const DEFAULT_EDL_OPTIONS: Readonly<EdlDefaults> = Object.freeze({
  ranges: 'keep',
  collapse: false,
  wildcard: 'exact',
  port: 'drop',
  trailingSlash: true,
  invalidWildcards: 'rewrite',
});

/** A view as `renderFeed` needs it. */
export interface FeedView {
  kind: EdlViewKind;
  /** The view name, which is the default Blue Coat category. */
  name: string;
  defaults: EdlDefaults;
}

/** The output format that `v` and the view kind select. `ip` and `domain` are the views' own lists. */
type ResolvedFormat = FeedFormat | 'ip' | 'domain';

const OWN_FORMATS: Readonly<Record<EdlViewKind, ResolvedFormat>> = {
  'edl-ip': 'ip',
  'edl-domain': 'domain',
  'edl-url': 'panosurl',
};

const IGNORED_PARAMETERS: ReadonlySet<string> = new Set(['_', 'cb']);

/** The formats each option parameter applies to. `v`, `s`, `n` and `d` apply to all. */
const APPLIES_TO: Readonly<Record<string, readonly ResolvedFormat[]>> = {
  tr: ['ip', 'json', 'json-seq', 'csv', 'mwg'],
  sum: ['ip'],
  f: ['json', 'json-seq', 'csv'],
  h: ['csv'],
  ubom: ['csv'],
  t: ['mwg'],
  sp: ['panosurl'],
  di: ['panosurl'],
  nsl: ['panosurl'],
  cd: ['bluecoat'],
};

const KNOWN_PARAMETERS: readonly string[] = ['v', 's', 'n', 'd', ...Object.keys(APPLIES_TO)];

/** Maximum number of `f` columns, which bounds the work per entry. */
export const MAX_FEED_COLUMNS = 32;
/** Maximum length of a column name in `f`. */
const MAX_COLUMN_NAME_LENGTH = 64;
const CONTROL_CHARACTERS = /\p{Cc}/u;
const NON_NEGATIVE_INTEGER = /^(?:0|[1-9][0-9]*)$/;

function invalidValue(parameter: string, value: string, expected: string): FeedQueryError {
  return new FeedQueryError(
    parameter,
    `invalid value ${JSON.stringify(value)} for query parameter "${parameter}": expected ${expected}`,
  );
}

function parseFlag(parameter: string, value: string): boolean {
  if (value === '1') return true;
  if (value === '0') return false;
  throw invalidValue(parameter, value, '0 or 1');
}

function parseInteger(parameter: string, value: string, min: 0 | 1): number {
  const number = Number(value);
  if (!NON_NEGATIVE_INTEGER.test(value) || !Number.isSafeInteger(number) || number < min) {
    throw invalidValue(parameter, value, `an integer of ${min} or more, in decimal digits`);
  }
  return number;
}

function parseChoice<T extends string>(parameter: string, value: string, choices: readonly T[]): T {
  if ((choices as readonly string[]).includes(value)) return value as T;
  throw invalidValue(parameter, value, `one of ${choices.join(', ')}`);
}

/** Parses `f` values: `field` or `field|Column name`, each column name used once. */
function parseColumns(values: string[]): CsvColumn[] {
  if (values.length > MAX_FEED_COLUMNS) {
    throw new FeedQueryError(
      'f',
      `query parameter "f" is given ${values.length} times: at most ${MAX_FEED_COLUMNS} columns are allowed`,
    );
  }
  const columns: CsvColumn[] = [];
  const headers = new Set<string>();
  for (const value of values) {
    const bar = value.indexOf('|');
    const fieldText = bar < 0 ? value : value.slice(0, bar);
    const header = bar < 0 ? value : value.slice(bar + 1);
    const field = parseChoice<CsvField>('f', fieldText, CSV_FIELDS);
    if (
      header === '' ||
      header.length > MAX_COLUMN_NAME_LENGTH ||
      CONTROL_CHARACTERS.test(header)
    ) {
      throw invalidValue(
        'f',
        value,
        `field|Column with a column name of 1-${MAX_COLUMN_NAME_LENGTH} characters and no control characters`,
      );
    }
    if (headers.has(header)) {
      throw invalidValue('f', value, `a column name not used by another "f" value`);
    }
    headers.add(header);
    columns.push({ field, header });
  }
  return columns;
}

/** Applies one single-valued parameter to `query`. */
function parseSingle(query: FeedQuery, name: string, value: string): void {
  switch (name) {
    case 'v':
      query.format = parseChoice('v', value, FEED_FORMATS);
      return;
    case 's':
      query.offset = parseInteger('s', value, 0);
      return;
    case 'n':
      query.limit = parseInteger('n', value, 1);
      return;
    case 'd':
      if (value !== '' && value !== '1' && value !== '0') {
        throw invalidValue('d', value, 'no value or 1 for descending order, or 0 for ascending');
      }
      query.descending = value !== '0';
      return;
    case 'tr':
      query.rangesToCidrs = parseFlag(name, value);
      return;
    case 'sum':
      query.collapse = parseFlag(name, value);
      return;
    case 'h':
      query.csvHeader = parseFlag(name, value);
      return;
    case 'ubom':
      query.bom = parseFlag(name, value);
      return;
    case 't':
      query.mwgType = parseChoice('t', value, MWG_LIST_TYPES);
      return;
    case 'sp':
      query.stripPort = parseFlag(name, value);
      return;
    case 'di':
      query.dropInvalidWildcards = parseFlag(name, value);
      return;
    case 'nsl':
      query.noTrailingSlash = parseFlag(name, value);
      return;
    case 'cd':
      if (!BLUECOAT_CATEGORY_PATTERN.test(value)) {
        throw invalidValue('cd', value, '1-64 letters, digits, "_", "." or "-"');
      }
      query.category = value;
      return;
  }
}

/**
 * Parses the query parameters of a feed request. Throws `FeedQueryError`
 * for an unknown, repeated or invalid parameter. Whether each one applies to
 * the output format depends on the view, so `renderFeed` checks that.
 */
export function parseFeedQuery(params: URLSearchParams): FeedQuery {
  const query: FeedQuery = { offset: 0, descending: false, parameters: [] };
  for (const name of new Set(params.keys())) {
    if (IGNORED_PARAMETERS.has(name)) continue;
    if (!KNOWN_PARAMETERS.includes(name)) {
      throw new FeedQueryError(
        name,
        `unknown query parameter ${JSON.stringify(name)}: accepted parameters are ${KNOWN_PARAMETERS.join(', ')}`,
      );
    }
    const values = params.getAll(name);
    query.parameters.push(name);
    if (name === 'f') {
      query.columns = parseColumns(values);
      continue;
    }
    if (values.length > 1) {
      throw new FeedQueryError(
        name,
        `query parameter "${name}" is given ${values.length} times: give it once`,
      );
    }
    parseSingle(query, name, values[0] ?? '');
  }
  return query;
}

function describeFormat(format: ResolvedFormat): string {
  if (format === 'ip') return 'the IP list';
  if (format === 'domain') return 'the domain list';
  return `v=${format}`;
}

/**
 * Returns the output format of `query` on a view of `kind`, and throws
 * `FeedQueryError` when a parameter has no effect on that format.
 */
export function resolveFeedFormat(query: FeedQuery, kind: EdlViewKind): ResolvedFormat {
  const format = query.format ?? OWN_FORMATS[kind];
  for (const name of query.parameters) {
    const formats = APPLIES_TO[name];
    if (formats === undefined || formats.includes(format)) continue;
    const accepted = formats.map((item) =>
      item === 'panosurl' ? 'the URL list or v=panosurl' : describeFormat(item),
    );
    throw new FeedQueryError(
      name,
      `query parameter "${name}" has no effect on ${describeFormat(format)} of this ${kind} view, because it applies only to ${accepted.join(', ')}. Remove it.`,
    );
  }
  return format;
}

/** Returns the entries that `d`, `s` and `n` choose, in output order. */
function selectEntries(entries: readonly ViewEntry[], query: FeedQuery): readonly ViewEntry[] {
  const total = entries.length;
  const start = Math.min(query.offset, total);
  const end = query.limit === undefined ? total : Math.min(total, start + query.limit);
  if (!query.descending) {
    return start === 0 && end === total ? entries : entries.slice(start, end);
  }
  const selected: ViewEntry[] = [];
  for (let index = start; index < end; index++) {
    selected.push(entries[total - 1 - index] as ViewEntry);
  }
  return selected;
}

function pick<T>(flag: boolean | undefined, ifTrue: T, ifFalse: T, fallback: T): T {
  if (flag === undefined) return fallback;
  return flag ? ifTrue : ifFalse;
}

/** The formats that sort their own lines; `d`, `s` and `n` apply to those lines. */
const LINE_FORMATS: ReadonlySet<ResolvedFormat> = new Set(['ip', 'domain', 'panosurl']);

/** Applies `d`, then `s` and `n`, to the lines of a list body, so they select the lines a client receives. */
function selectLines(output: FormatOutput, query: FeedQuery): FormatOutput {
  if (!query.descending && query.offset === 0 && query.limit === undefined) return output;
  const lines = output.body === '' ? [] : output.body.slice(0, -1).split('\n');
  if (query.descending) lines.reverse();
  const end = query.limit === undefined ? lines.length : query.offset + query.limit;
  return { ...output, body: joinLines(lines.slice(query.offset, end)) };
}

/**
 * Renders a view with feed parameters: the format that `v` names, or the
 * view's own list with its defaults when `v` is absent, with `d`, then `s`
 * and `n`, applied to the entries in their given order or, for the IP,
 * domain and URL lists, which sort themselves, to the lines written.
 * Throws `FeedQueryError`, before any rendering, when a parameter has no
 * effect on the output format.
 */
export function renderFeed(
  entries: readonly ViewEntry[],
  view: FeedView,
  query: FeedQuery,
  log: BuildLog,
): FormatOutput {
  const format = resolveFeedFormat(query, view.kind);
  if (LINE_FORMATS.has(format)) {
    const whole = { ...query, offset: 0, limit: undefined, descending: false };
    return selectLines(renderFormat(entries, format, view, whole, log), query);
  }
  return renderFormat(selectEntries(entries, query), format, view, query, log);
}

function renderFormat(
  selected: readonly ViewEntry[],
  format: ResolvedFormat,
  view: FeedView,
  query: FeedQuery,
  log: BuildLog,
): FormatOutput {
  const defaults = view.defaults;
  const ranges = pick<IpEdlOptions['ranges']>(query.rangesToCidrs, 'cidr', 'keep', defaults.ranges);

  // `tr` applies to the attribute formats too, which list each CIDR of a range with its attributes.
  const withRanges = (): readonly ViewEntry[] =>
    ranges === 'cidr' ? expandIpv4Ranges(selected, log) : selected;

  switch (format) {
    case 'ip':
      return renderIpEdl(selected, { ranges, collapse: query.collapse ?? defaults.collapse }, log);
    case 'domain':
      return renderDomainEdl(selected, { wildcard: defaults.wildcard }, log);
    case 'panosurl':
      return renderPanosUrlEdl(
        selected,
        {
          port: pick(query.stripPort, 'strip', 'drop', defaults.port),
          trailingSlash: pick(query.noTrailingSlash, false, true, defaults.trailingSlash),
          invalidWildcards: pick(
            query.dropInvalidWildcards,
            'drop',
            'rewrite',
            defaults.invalidWildcards,
          ),
        },
        log,
      );
    case 'bluecoat':
      return renderBluecoat(selected, { category: query.category ?? view.name }, log);
    case 'json':
      return renderJson(withRanges(), { columns: query.columns }, log);
    case 'json-seq':
      return renderJsonSeq(withRanges(), { columns: query.columns }, log);
    case 'csv':
      return renderCsv(
        withRanges(),
        {
          columns: query.columns ?? [{ field: 'indicator', header: 'indicator' }],
          header: query.csvHeader ?? true,
          bom: query.bom ?? false,
        },
        log,
      );
    case 'mwg':
      return renderMwg(withRanges(), { type: query.mwgType ?? 'string' }, log);
  }
}
