/**
 * The catalogue of well-known public feeds. A source in a collection file
 * that sets `catalog: NAME` gets the entry's kind, URL, parse settings,
 * interval, confidence and TLP; every key the source sets itself overrides
 * the entry's key of the same name.
 */
import { CATALOGUE } from './catalogue-data.js';

/** The source keys of an entry, as a collection file writes them. */
export type CatalogueSource = Record<string, unknown> & {
  kind: string;
  url: string;
  interval: string;
};

export interface CatalogueEntry {
  /** The name that `catalog:` refers to: lower-case letters, digits and dashes. */
  name: string;
  title: string;
  homepage: string;
  /** The feed's terms of use, in short, with where to read them. */
  licence: string;
  source: CatalogueSource;
  /** Keys that a source must set itself, with what to set them to. */
  requires?: readonly { key: string; reason: string }[];
  /** A snapshot or a hand-made sample in the feed's format, relative to test/fixtures. */
  fixture?: string;
}

export { CATALOGUE };

/** Returns the entry named `name`, or undefined. */
export function catalogueEntry(name: string): CatalogueEntry | undefined {
  return CATALOGUE.find((entry) => entry.name === name);
}

/** Keys that exclude each other: a source setting the first drops the entry's second. */
const EXCLUSIVE_KEYS: readonly [string, string][] = [
  ['path', 'url'],
  ['expression', 'preset'],
  ['preset', 'expression'],
];

/**
 * Returns the source with the entry's keys filled in under its own. The id
 * defaults to the entry's name and the name to its title. Returns undefined
 * and adds a problem when the entry is unknown or a required key is missing.
 */
export function resolveCatalogueSource(
  source: Record<string, unknown>,
  where: string,
  problems: string[],
): Record<string, unknown> | undefined {
  const { catalog, ...own } = source;
  if (typeof catalog !== 'string') {
    problems.push(
      `${where}/catalog: must be the name of a catalogue entry (see docs/catalogue.md)`,
    );
    return undefined;
  }
  const entry = catalogueEntry(catalog);
  if (entry === undefined) {
    problems.push(
      `${where}/catalog: unknown catalogue entry ${JSON.stringify(catalog)}; use a name listed in docs/catalogue.md`,
    );
    return undefined;
  }
  let missing = false;
  for (const { key, reason } of entry.requires ?? []) {
    if (own[key] !== undefined) continue;
    problems.push(`${where}: catalogue entry ${entry.name} needs ${key}: ${reason}`);
    missing = true;
  }
  if (missing) return undefined;

  const base: Record<string, unknown> = { id: entry.name, name: entry.title, ...entry.source };
  for (const [key, dropped] of EXCLUSIVE_KEYS) {
    if (own[key] !== undefined && own[dropped] === undefined) delete base[dropped];
  }
  // Preset options belong to the entry's preset; an own expression replaces them too.
  if (own.expression !== undefined) {
    for (const key of PRESET_OPTION_KEYS) if (own[key] === undefined) delete base[key];
  }
  return { ...base, ...own };
}

const PRESET_OPTION_KEYS = [
  'service',
  'region',
  'scope',
  'keys',
  'tag',
  'systemService',
  'serviceArea',
  'category',
  'required',
  'output',
];

/**
 * Replaces each source of a collection document that names a catalogue
 * entry by the resolved source. Other sources, and a document that is not
 * an object with a list of sources, are returned as they are, for the
 * schema check to report.
 */
export function expandCatalogue(document: unknown, file: string, problems: string[]): unknown {
  if (typeof document !== 'object' || document === null) return document;
  const sources = (document as { sources?: unknown }).sources;
  if (!Array.isArray(sources)) return document;
  if (!sources.some((source) => isCatalogueReference(source))) return document;
  const expanded = sources.map((source: unknown, index) => {
    if (!isCatalogueReference(source)) return source;
    return resolveCatalogueSource(source, `${file} /sources/${index}`, problems) ?? source;
  });
  return { ...document, sources: expanded };
}

function isCatalogueReference(source: unknown): source is Record<string, unknown> {
  return typeof source === 'object' && source !== null && 'catalog' in source;
}

/** Markers around the generated table in docs/catalogue.md. */
export const TABLE_START = '<!-- catalogue table: generated from src/sources/catalogue-data.ts -->';
export const TABLE_END = '<!-- end of catalogue table -->';

/** Renders the catalogue as the Markdown table of docs/catalogue.md. */
export function renderCatalogueTable(): string {
  const cell = (text: string) => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
  const rows = CATALOGUE.map((entry) => {
    const { source } = entry;
    const parse = describeParse(source);
    const role = source.role === 'allow-list' ? 'allow-list' : 'block';
    const needs = (entry.requires ?? []).map((need) => need.key).join(', ');
    return `| \`${entry.name}\` | [${cell(entry.title)}](${entry.homepage}) | ${source.kind} | ${cell(parse)} | ${String(source.interval)} | ${String(source.confidence ?? 50)} | ${role} | ${needs === '' ? '' : `set ${needs}`} | ${cell(entry.licence)} |`;
  });
  return [
    TABLE_START,
    '',
    '| name | feed | kind | values | interval | confidence | role | you set | terms |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    ...rows,
    '',
    TABLE_END,
  ].join('\n');
}

/** Value descriptions of the kinds that read STIX or MISP data, for the table. */
const STRUCTURED_VALUES: Record<string, string> = {
  'misp-feed': 'to_ids attributes of the changed events',
  taxii21: 'STIX objects as they are, simple indicator patterns as values',
  'stix-bundle': 'STIX objects as they are, simple indicator patterns as values',
};

function describeParse(source: CatalogueSource): string {
  const structured = STRUCTURED_VALUES[source.kind];
  if (structured !== undefined) return structured;
  if (typeof source.preset === 'string') {
    return source.output === undefined
      ? `preset ${source.preset}`
      : `preset ${source.preset}, ${String(source.output)}`;
  }
  if (typeof source.expression === 'string') {
    return source.format === 'elements'
      ? `each element of \`${String(source.elements ?? '@')}\`: expression \`${source.expression}\``
      : `expression \`${source.expression}\``;
  }
  if (source.columns !== undefined)
    return `columns ${Object.keys(source.columns as object).join(', ')}`;
  if (typeof source.extract === 'string') return `extract \`${source.extract}\``;
  return typeof source.valueType === 'string'
    ? `one ${source.valueType} per line`
    : 'one value per line';
}
