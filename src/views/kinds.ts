/**
 * The kinds of views: the values each lists, the options each takes in the
 * collection YAML, how each is written, and the query parameters each
 * accepts.
 */
import type { ValueType } from '../processing/index.js';
import { renderCef, type CefOptions } from './formats/cef.js';
import {
  CSV_FIELDS,
  DEFAULT_CSV_COLUMNS,
  renderCsv,
  type CsvColumn,
  type CsvField,
} from './formats/csv.js';
import {
  renderAwsWafIpSet,
  renderCheckpointCsv,
  renderCiscoSi,
  renderFortigate,
  renderRpz,
  type CheckpointCsvOptions,
  type CheckpointProduct,
  type CheckpointSeverity,
  type CiscoSiList,
  type FortigateList,
} from './formats/devices.js';
import { renderDomainEdl, renderIpEdl } from './formats/edl.js';
import { renderJsonList } from './formats/export.js';
import {
  DEFAULT_EDL_OPTIONS,
  FeedQueryError,
  parseFeedQuery,
  renderFeed,
  type EdlDefaults,
  type EdlViewKind,
  type FeedQuery,
} from './formats/feed-query.js';
import { renderBluecoat, renderMwg, type MwgListType } from './formats/minemeld.js';
import { renderPanosUrlEdl } from './formats/panos-url.js';
import { BuildLog, type FormatOutput, type ViewEntry } from './model.js';
import type { ViewKind, ViewSpec } from './spec.js';

const IP_TYPES: ValueType[] = ['ipv4', 'ipv4-cidr', 'ipv4-range', 'ipv6', 'ipv6-cidr'];
const ALL_TYPES: ValueType[] = [...IP_TYPES, 'domain', 'url', 'md5', 'sha1', 'sha256'];

/** Value types a kind can list; a view lists them all unless its filter names fewer. */
export const DEFAULT_VALUE_TYPES: Record<ViewKind, ValueType[]> = {
  'edl-ip': IP_TYPES,
  'edl-domain': ['domain'],
  'edl-url': ['url'],
  csv: ALL_TYPES,
  cef: ALL_TYPES,
  json: ALL_TYPES,
  'stix-bundle': ALL_TYPES,
  mwg: ['url', 'domain', ...IP_TYPES],
  bluecoat: ['url', 'domain'],
  fortigate: [...IP_TYPES, 'domain', 'url'],
  checkpoint: ['ipv4', 'ipv4-cidr', 'ipv4-range', 'domain', 'url', 'md5', 'sha1', 'sha256'],
  'cisco-si': [...IP_TYPES, 'domain', 'url'],
  'aws-waf': IP_TYPES,
  rpz: ['domain'],
};

const FORTIGATE_LIST_TYPES: Record<FortigateList, ValueType[]> = {
  ip: IP_TYPES,
  domain: ['domain'],
  url: ['url'],
};
const CISCO_LIST_TYPES: Record<CiscoSiList, ValueType[]> = {
  network: IP_TYPES,
  dns: ['domain'],
  url: ['url'],
};

/** Returns the value types a view lists: its filter's, else those its kind and options can express. */
export function viewValueTypes(spec: ViewSpec): ValueType[] {
  if (spec.filter.types !== undefined) return spec.filter.types;
  if (spec.kind === 'fortigate') return FORTIGATE_LIST_TYPES[fortigateList(spec.options)];
  if (spec.kind === 'cisco-si') return CISCO_LIST_TYPES[ciscoList(spec.options)];
  return DEFAULT_VALUE_TYPES[spec.kind];
}

/** The context of a format besides its entries. */
export interface FormatContext {
  /** Micros of the render; RPZ serials derive from it. */
  renderedAt: number;
  collectionAlias: string;
}

/** A view option with a bad value; the message names the option, the value and what is accepted. */
export class ViewOptionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ViewOptionError';
  }
}

/** Option names each kind accepts; any other name is an error. */
const OPTION_NAMES: Record<ViewKind, readonly string[]> = {
  'edl-ip': ['ranges', 'collapse'],
  'edl-domain': ['wildcard'],
  'edl-url': ['port', 'trailingSlash', 'invalidWildcards'],
  csv: ['columns', 'header', 'bom'],
  cef: ['vendor', 'product', 'version', 'signatureId', 'name'],
  json: [],
  'stix-bundle': [],
  mwg: ['listType'],
  bluecoat: ['category'],
  fortigate: ['list', 'wildcardSubdomains', 'maxEntries', 'maxBytes'],
  checkpoint: ['severity', 'product'],
  'cisco-si': ['list', 'comments', 'maxBytes'],
  'aws-waf': ['name', 'scope', 'ipAddressVersion', 'description', 'maxAddresses'],
  rpz: ['zone', 'ttl', 'wildcard', 'nameServer', 'hostmaster'],
};

function choice<T extends string>(
  options: Record<string, unknown>,
  name: string,
  allowed: readonly T[],
  fallback: T,
): T {
  const value = options[name];
  if (value === undefined) return fallback;
  if (typeof value === 'string' && (allowed as readonly string[]).includes(value))
    return value as T;
  throw new ViewOptionError(
    `option ${name} is ${JSON.stringify(value)}; use one of ${allowed.join(', ')}`,
  );
}

function flag(options: Record<string, unknown>, name: string, fallback: boolean): boolean {
  const value = options[name];
  if (value === undefined) return fallback;
  if (typeof value === 'boolean') return value;
  throw new ViewOptionError(`option ${name} is ${JSON.stringify(value)}; use true or false`);
}

function text(options: Record<string, unknown>, name: string): string | undefined {
  const value = options[name];
  if (value === undefined) return undefined;
  if (typeof value === 'string' && value !== '') return value;
  throw new ViewOptionError(`option ${name} is ${JSON.stringify(value)}; use a non-empty string`);
}

function count(options: Record<string, unknown>, name: string): number | undefined {
  const value = options[name];
  if (value === undefined) return undefined;
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 1) return value;
  throw new ViewOptionError(
    `option ${name} is ${JSON.stringify(value)}; use a whole number of 1 or more`,
  );
}

function fortigateList(options: Record<string, unknown>): FortigateList {
  return choice(options, 'list', ['ip', 'domain', 'url'], 'ip');
}

function ciscoList(options: Record<string, unknown>): CiscoSiList {
  return choice(options, 'list', ['network', 'dns', 'url'], 'network');
}

function edlDefaults(options: Record<string, unknown>): EdlDefaults {
  return {
    ranges: choice(options, 'ranges', ['keep', 'cidr'], DEFAULT_EDL_OPTIONS.ranges),
    collapse: flag(options, 'collapse', DEFAULT_EDL_OPTIONS.collapse),
    wildcard: choice(
      options,
      'wildcard',
      ['exact', 'wildcard', 'both'],
      DEFAULT_EDL_OPTIONS.wildcard,
    ),
    port: choice(options, 'port', ['strip', 'drop'], DEFAULT_EDL_OPTIONS.port),
    trailingSlash: flag(options, 'trailingSlash', DEFAULT_EDL_OPTIONS.trailingSlash),
    invalidWildcards: choice(
      options,
      'invalidWildcards',
      ['rewrite', 'drop'],
      DEFAULT_EDL_OPTIONS.invalidWildcards,
    ),
  };
}

/** Parses `columns: [indicator, "confidence|Score"]`. */
function csvColumns(options: Record<string, unknown>): CsvColumn[] | undefined {
  const value = options['columns'];
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || value.length === 0) {
    throw new ViewOptionError(
      `option columns is ${JSON.stringify(value)}; use a list such as [indicator, "confidence|Score"]`,
    );
  }
  return value.map((item: unknown) => {
    const [field = '', header] = typeof item === 'string' ? item.split('|', 2) : [''];
    if (!(CSV_FIELDS as readonly string[]).includes(field)) {
      throw new ViewOptionError(
        `option columns has ${JSON.stringify(item)}; columns are ${CSV_FIELDS.join(', ')}, optionally followed by |Header`,
      );
    }
    return { field: field as CsvField, header: header ?? field };
  });
}

/** Builds an AWS WAF set name from the collection alias and view name: letters, digits, `_` and `-` only. */
function awsSetName(context: FormatContext, spec: ViewSpec): string {
  return `${context.collectionAlias}-${spec.name}`.replace(/[^\w-]/g, '_').slice(0, 128);
}

/** Returns a message naming the first bad option of a view, or undefined when its options are fine. */
export function checkViewOptions(spec: ViewSpec): string | undefined {
  const allowed = OPTION_NAMES[spec.kind];
  for (const name of Object.keys(spec.options)) {
    if (!allowed.includes(name)) {
      return allowed.length === 0
        ? `a ${spec.kind} view takes no options; remove ${name}`
        : `a ${spec.kind} view has no option ${name}; its options are ${allowed.join(', ')}`;
    }
  }
  if (spec.kind === 'stix-bundle') return undefined;
  try {
    formatView(spec, [], new BuildLog(0), {
      renderedAt: Date.UTC(2024, 0, 1) * 1000,
      collectionAlias: 'check',
    });
    return undefined;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}

/** Writes the entries in the view's format. The `stix-bundle` kind is written by `stix-bundle.ts`. */
export function formatView(
  spec: ViewSpec,
  entries: readonly ViewEntry[],
  log: BuildLog,
  context: FormatContext,
): FormatOutput {
  const options = spec.options;
  switch (spec.kind) {
    case 'edl-ip': {
      const defaults = edlDefaults(options);
      return renderIpEdl(entries, { ranges: defaults.ranges, collapse: defaults.collapse }, log);
    }
    case 'edl-domain':
      return renderDomainEdl(entries, { wildcard: edlDefaults(options).wildcard }, log);
    case 'edl-url': {
      const defaults = edlDefaults(options);
      return renderPanosUrlEdl(
        entries,
        {
          port: defaults.port,
          trailingSlash: defaults.trailingSlash,
          invalidWildcards: defaults.invalidWildcards,
        },
        log,
      );
    }
    case 'csv':
      return renderCsv(
        entries,
        {
          columns: csvColumns(options) ?? [...DEFAULT_CSV_COLUMNS],
          header: flag(options, 'header', true),
          bom: flag(options, 'bom', false),
        },
        log,
      );
    case 'cef': {
      const cef: CefOptions = {};
      for (const name of ['vendor', 'product', 'version', 'signatureId', 'name'] as const) {
        const value = text(options, name);
        if (value !== undefined) cef[name] = value;
      }
      return renderCef(entries, cef, log);
    }
    case 'json':
      return renderJsonList(entries, log);
    case 'stix-bundle':
      throw new Error('stix-bundle views are written from stored objects by renderStixBundle');
    case 'mwg':
      return renderMwg(
        entries,
        { type: choice<MwgListType>(options, 'listType', ['string', 'ip'], 'string') },
        log,
      );
    case 'bluecoat':
      return renderBluecoat(entries, { category: text(options, 'category') ?? spec.name }, log);
    case 'fortigate':
      return renderFortigate(
        entries,
        {
          list: fortigateList(options),
          wildcardSubdomains: flag(options, 'wildcardSubdomains', false),
          ...optional('maxEntries', count(options, 'maxEntries')),
          ...optional('maxBytes', count(options, 'maxBytes')),
        },
        log,
      );
    case 'checkpoint': {
      const checkpoint: CheckpointCsvOptions = {};
      if (options['severity'] !== undefined) {
        checkpoint.severity = choice<CheckpointSeverity>(
          options,
          'severity',
          ['low', 'medium', 'high', 'critical'],
          'low',
        );
      }
      if (options['product'] !== undefined) {
        checkpoint.product = choice<CheckpointProduct>(options, 'product', ['AV', 'AB'], 'AB');
      }
      return renderCheckpointCsv(entries, checkpoint, log);
    }
    case 'cisco-si': {
      const comments = options['comments'];
      if (
        comments !== undefined &&
        (!Array.isArray(comments) || comments.some((c) => typeof c !== 'string'))
      ) {
        throw new ViewOptionError(
          `option comments is ${JSON.stringify(comments)}; use a list of strings`,
        );
      }
      return renderCiscoSi(
        entries,
        {
          list: ciscoList(options),
          ...optional('comments', comments as string[] | undefined),
          ...optional('maxBytes', count(options, 'maxBytes')),
        },
        log,
      );
    }
    case 'aws-waf':
      return renderAwsWafIpSet(
        entries,
        {
          name: text(options, 'name') ?? awsSetName(context, spec),
          scope: choice(options, 'scope', ['REGIONAL', 'CLOUDFRONT'], 'REGIONAL'),
          ipAddressVersion: choice(options, 'ipAddressVersion', ['IPV4', 'IPV6'], 'IPV4'),
          ...optional('description', text(options, 'description')),
          ...optional('maxAddresses', count(options, 'maxAddresses')),
        },
        log,
      );
    case 'rpz':
      return renderRpz(
        entries,
        {
          zone: text(options, 'zone') ?? `${spec.name}.${context.collectionAlias}.rpz`,
          // Seconds since the epoch: grows with every render and fits the 32-bit serial until 2106.
          serial: Math.floor(context.renderedAt / 1_000_000),
          ...optional('ttl', count(options, 'ttl')),
          wildcard: flag(options, 'wildcard', true),
          ...optional('nameServer', text(options, 'nameServer')),
          ...optional('hostmaster', text(options, 'hostmaster')),
        },
        log,
      );
  }
}

function optional<K extends string, V>(name: K, value: V | undefined): Partial<Record<K, V>> {
  return value === undefined ? {} : ({ [name]: value } as Record<K, V>);
}

/** A request's query parameters, checked; `key` is their canonical text, part of the variant's tag. */
export interface ViewQuery {
  key: string;
  feed: FeedQuery;
}

/** A query parameter that the view does not accept; the message names it and the accepted values. */
export class ViewQueryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ViewQueryError';
  }
}

function isEdlKind(kind: ViewKind): kind is EdlViewKind {
  return kind === 'edl-ip' || kind === 'edl-domain' || kind === 'edl-url';
}

/**
 * Parses the MineMeld-compatible parameters of an EDL view request. Other
 * kinds take no parameters, so a query on them is refused.
 */
export function parseViewQuery(spec: ViewSpec, params: URLSearchParams): ViewQuery {
  if (!isEdlKind(spec.kind)) {
    throw new ViewQueryError(
      `View ${JSON.stringify(spec.name)} is a ${spec.kind} view, which takes no query parameters; only edl-ip, edl-domain and edl-url views do.`,
    );
  }
  let feed: FeedQuery;
  try {
    feed = parseFeedQuery(params);
    // Rendering nothing checks that every parameter applies to the format.
    renderFeed(
      [],
      { kind: spec.kind, name: spec.name, defaults: edlDefaults(spec.options) },
      feed,
      new BuildLog(0),
    );
  } catch (error) {
    if (error instanceof FeedQueryError) throw new ViewQueryError(error.message);
    throw error;
  }
  const pairs = [...params.entries()]
    .filter(([name]) => name !== '_' && name !== 'cb')
    .map(([name, value]) => `${encodeURIComponent(name)}=${encodeURIComponent(value)}`);
  // The other names appear once each, so sorting them is canonical; `f`
  // keeps its order, which is the column order.
  const single = pairs.filter((pair) => !pair.startsWith('f=')).sort();
  const columns = pairs.filter((pair) => pair.startsWith('f='));
  return { key: [...single, ...columns].join('&'), feed };
}

/** Renders an EDL view with the parameters of a request. */
export function renderVariant(
  spec: ViewSpec,
  entries: readonly ViewEntry[],
  query: ViewQuery,
  log: BuildLog,
): FormatOutput {
  if (!isEdlKind(spec.kind)) throw new ViewQueryError(`${spec.kind} views take no parameters`);
  return renderFeed(
    entries,
    { kind: spec.kind, name: spec.name, defaults: edlDefaults(spec.options) },
    query.feed,
    log,
  );
}
