import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Document, LineCounter, parseDocument, isNode, isSeq } from 'yaml';
import type { ErrorObject } from 'ajv';
import { loadSchemaValidator } from './schemas.js';
import {
  DEFAULT_ALLOW_LIST_SETTINGS,
  DEFAULT_GUARD_SETTINGS,
  Screen,
  type BuiltinAllowList,
  type GuardSettings,
  type ScreenSettings,
  type ValueType,
} from '../processing/index.js';
import {
  confidenceFromScale,
  type ConfidenceRule,
  type ConfidenceScale,
} from '../processing/confidence.js';
import {
  DEFAULT_WITHDRAWAL_POLICY,
  parseAgingSpec,
  type AgingSpec,
  type SourceAging,
  type WithdrawalPolicy,
} from '../processing/policy.js';
import {
  compileExpression,
  compileExtract,
  JSON_PRESETS,
  PRESET_OPTIONS,
  presetExpression,
  type CsvAttributeKind,
  type CsvColumnRef,
  type CsvSettings,
  type JsonPreset,
  type JsonPresetOptions,
  type JsonSettings,
  type MispSettings,
  type Taxii21Settings,
  DEFAULT_MISP_SETTINGS,
} from '../sources/index.js';
import {
  expandCatalogue,
  type DirectorySettings,
  parseElementPath,
  type DropFormat,
  type HttpSettings,
} from '../sources/index.js';
import {
  checkNetwork,
  DEFAULT_VALUE_TYPES,
  PUBLIC_VIEW_ACCESS,
  type ViewAccess,
  type ViewFilter,
  type ViewKind,
  type ViewOrder,
  type ViewSpec,
} from '../views/index.js';
import { checkViewOptions } from '../views/kinds.js';
import {
  checkGrantedPrincipals,
  readPrincipalsFile,
  resolveAccess,
  type PrincipalConfig,
  type RawAccess,
} from '../auth/index.js';
import type { CollectionAccess } from '../store/index.js';

export type Tlp = 'clear' | 'white' | 'green' | 'amber' | 'amber+strict' | 'red';
export type SourceValueType = 'auto' | ValueType;
export type SourceKindName =
  'text-list' | 'taxii21' | 'csv' | 'json' | 'stix-bundle' | 'misp-feed' | 'manual' | 'directory';

export interface SourceConfig {
  id: string;
  name: string;
  kind: SourceKindName;
  /**
   * text-list, csv, json: http(s) or file URL; a `path` in the YAML becomes a file URL.
   * taxii21: the API root URL when configured, else the discovery URL.
   */
  url: string;
  intervalSeconds: number;
  valueType: SourceValueType;
  extract?: RegExp;
  confidence: number;
  tlp: Tlp;
  indicatorTypes: string[];
  labels: string[];
  timeoutMs: number;
  maxBytes: number;
  /** Set for a taxii21 source, with its credentials already read from the environment. */
  taxii21?: Taxii21Settings;
  /** Set for a csv source. */
  csv?: CsvSettings;
  /** Set for a json source, with a preset already turned into its expression. */
  json?: JsonSettings;
  /** Set for a misp-feed source. */
  misp?: MispSettings;
  /** Set for text-list, csv, json, stix-bundle, misp-feed and taxii21 sources, with secrets read from the environment. */
  http?: HttpSettings;
  /** Set for a directory source. */
  directory?: DirectorySettings;
  /** Weight 0-1 of the source in the collection's confidence rule. Default 1. */
  confidenceWeight?: number;
  /** When the source's values age out. Default: never. */
  aging?: SourceAging;
  /**
   * `allow-list`: the source's values join the collection's allow-list
   * instead of becoming indicators. Default `block`.
   */
  role?: 'block' | 'allow-list';
}

/** A view as the collection YAML declares it, resolved; see `src/views/spec.ts`. */
export interface ViewConfig extends ViewSpec {
  /** The syslog server that receives additions and removals as they happen. */
  forward?: ViewForward;
}

export interface ViewForward {
  transport: 'tcp' | 'udp';
  host: string;
  port: number;
  appName?: string;
  maxQueue?: number;
}

interface RawView {
  name: string;
  kind: ViewKind;
  description?: string;
  filter?: Omit<ViewFilter, 'seenWithinMicros'> & { seenWithin?: string };
  order?: ViewOrder;
  descending?: boolean;
  maxEntries?: number;
  options?: Record<string, unknown>;
  access?: {
    public?: boolean;
    principals?: string[];
    methods?: ViewAccess['methods'];
    networks?: string[];
  };
  forward?: Partial<ViewForward> & { host: string; port: number };
}

export interface CollectionConfig {
  id: string;
  alias: string;
  title: string;
  description?: string;
  tlp: Tlp;
  sources: SourceConfig[];
  views: ViewConfig[];
  /** The YAML file the collection came from, or the label of a stored definition. */
  file: string;
  /** The definition as data, in the form of a collection YAML file: what the store keeps. */
  document: Record<string, unknown>;
  /** Guards, allow-list and merge and withdrawal policy, with defaults filled in. */
  processing: ProcessingConfig;
  /** Who may read and write the collection over TAXII. */
  access: CollectionAccess;
}

/** The collection-level processing keys `guards`, `allowList` and `policy`, resolved. */
export interface ProcessingConfig {
  screen: ScreenSettings;
  withdrawal: WithdrawalPolicy;
  confidenceRule: ConfidenceRule;
}

export interface Settings {
  host: string;
  port: number;
  dataDir: string;
  collectionsDir: string;
  logLevel: string;
  publicUrl: string;
  taxiiMaxPageSize: number;
  shutdownTimeoutMs: number;
  /** Age after which audit entries are deleted, in ms; 0 keeps them all. */
  auditRetentionMs: number;
  role: 'api' | 'worker' | 'all';
  mongodbUri?: string;
  mongodbDatabase: string;
  /** Absolute path of the principals file (FEEDHUB_PRINCIPALS_FILE); unset means no one can log in. */
  principalsFile?: string;
}

export interface Config {
  settings: Settings;
  collections: CollectionConfig[];
  /** The TAXII principals and their hashed credentials. */
  principals: PrincipalConfig[];
  /** The environment the configuration was read from; stored definitions read their `*Env` keys from it. */
  env: Readonly<Record<string, string | undefined>>;
}

/** Every problem found in the configuration, reported together. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

const DEFAULT_VIEWS: RawView[] = [
  { name: 'ip', kind: 'edl-ip' },
  { name: 'domain', kind: 'edl-domain' },
  { name: 'url', kind: 'edl-url' },
];

const SECONDS_PER_UNIT: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

/** Converts a duration such as `15m` (already checked against the schema) to seconds. */
export function durationSeconds(text: string): number {
  const unit = text.slice(-1);
  return Number(text.slice(0, -1)) * (SECONDS_PER_UNIT[unit] ?? Number.NaN);
}

/** Reads and checks the environment settings and every collection file, then freezes the result. */
export function loadConfig(env: NodeJS.ProcessEnv, cwd = process.cwd()): Config {
  const problems: string[] = [];
  const settings = loadSettings(env, cwd, problems);
  const collections = settings ? loadCollections(settings.collectionsDir, env, problems) : [];
  const principalsFile = settings?.principalsFile;
  const principals = principalsFile ? readPrincipalsFile(principalsFile, problems) : [];
  const names = new Set(principals.map((principal) => principal.name));
  checkGrantedPrincipals(collections, names, principalsFile, problems);
  checkViewPrincipals(collections, names, principalsFile, problems);
  if (problems.length > 0 || !settings) {
    throw new ConfigError(problems);
  }
  return deepFreeze({ settings, collections, principals, env: { ...env } });
}

function loadSettings(
  env: NodeJS.ProcessEnv,
  cwd: string,
  problems: string[],
): Settings | undefined {
  const raw: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) {
    if ((key.startsWith('FEEDHUB_') || key === 'MONGODB_URI') && value !== undefined) {
      raw[key] = value;
    }
  }

  const validate = loadSchemaValidator('settings.schema.json');
  if (!validate(raw)) {
    for (const error of validate.errors ?? []) {
      problems.push(`environment: ${describeSettingError(error, raw)}`);
    }
    return undefined;
  }

  const host = raw.FEEDHUB_HOST ?? '127.0.0.1';
  const port = Number(raw.FEEDHUB_PORT ?? '8080');
  if (port > 65535) {
    problems.push(`environment: FEEDHUB_PORT=${port} is not a TCP port; use 0 to 65535`);
  }
  const urlHost = host.includes(':') ? `[${host}]` : host;
  const publicUrl = (raw.FEEDHUB_PUBLIC_URL ?? `http://${urlHost}:${port}`).replace(/\/+$/, '');

  return {
    host,
    port,
    dataDir: resolve(cwd, raw.FEEDHUB_DATA_DIR ?? 'data'),
    collectionsDir: resolve(cwd, raw.FEEDHUB_COLLECTIONS_DIR ?? 'collections'),
    logLevel: raw.FEEDHUB_LOG_LEVEL ?? 'info',
    publicUrl,
    taxiiMaxPageSize: Number(raw.FEEDHUB_TAXII_MAX_PAGE_SIZE ?? '1000'),
    shutdownTimeoutMs: Number(raw.FEEDHUB_SHUTDOWN_TIMEOUT ?? '15') * 1000,
    auditRetentionMs: Number(raw.FEEDHUB_AUDIT_RETENTION_DAYS ?? '400') * 86_400_000,
    role: (raw.FEEDHUB_ROLE ?? 'all') as Settings['role'],
    mongodbUri: raw.MONGODB_URI,
    mongodbDatabase: raw.FEEDHUB_MONGODB_DATABASE ?? 'feedhub',
    principalsFile:
      raw.FEEDHUB_PRINCIPALS_FILE === undefined
        ? undefined
        : resolve(cwd, raw.FEEDHUB_PRINCIPALS_FILE),
  };
}

function describeSettingError(error: ErrorObject, raw: Record<string, string>): string {
  if (error.keyword === 'additionalProperties') {
    const name = String(error.params.additionalProperty);
    return `unknown setting ${name}; remove it or fix its spelling (see docs/configuration.md)`;
  }
  const name = error.instancePath.replace(/^\//, '');
  const value = raw[name];
  return `${name}=${JSON.stringify(value)} ${error.message ?? 'is invalid'}`;
}

function loadCollections(
  dir: string,
  env: NodeJS.ProcessEnv,
  problems: string[],
): CollectionConfig[] {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    problems.push(`${dir}: collections directory not found; set FEEDHUB_COLLECTIONS_DIR`);
    return [];
  }
  const files = readdirSync(dir)
    .filter((name) => /\.ya?ml$/.test(name))
    .sort()
    .map((name) => join(dir, name));

  const collections: CollectionConfig[] = [];
  for (const file of files) {
    const collection = loadCollectionFile(file, env, problems);
    if (collection) collections.push(collection);
  }

  checkUnique(collections, (c) => c.id, 'collection id', problems);
  checkUnique(collections, (c) => c.alias, 'collection alias', problems);
  return collections;
}

function checkUnique(
  collections: CollectionConfig[],
  key: (c: CollectionConfig) => string,
  what: string,
  problems: string[],
): void {
  const seen = new Map<string, string>();
  for (const collection of collections) {
    const value = key(collection);
    const first = seen.get(value);
    if (first) {
      problems.push(
        `${collection.file}: ${what} ${JSON.stringify(value)} is also used by ${first}`,
      );
    } else {
      seen.set(value, collection.file);
    }
  }
}

interface RawSource {
  id: string;
  name?: string;
  kind: SourceKindName;
  url?: string;
  path?: string;
  interval: string;
  valueType?: SourceValueType;
  extract?: string;
  confidence?: number;
  tlp?: Tlp;
  indicatorTypes?: string[];
  labels?: string[];
  timeout?: string;
  maxBytes?: number;
  // misp-feed only.
  toIdsOnly?: boolean;
  concurrency?: number;
  maxEntries?: number;
  // taxii21 only.
  apiRoot?: string;
  collectionId?: string;
  collectionTitle?: string;
  // Every HTTP kind.
  auth?:
    | { type: 'basic'; usernameEnv: string; passwordEnv: string }
    | { type: 'bearer'; tokenEnv: string }
    | { type: 'header'; name: string; valueEnv: string };
  tls?: {
    certPath?: string;
    keyPath?: string;
    caPath?: string;
    passphraseEnv?: string;
    verify?: boolean;
  };
  proxy?: string;
  proxyEnv?: string;
  zipEntry?: string;
  limit?: number;
  maxPages?: number;
  maxRetries?: number;
  retryDelay?: string;
  // csv only.
  delimiter?: string;
  comment?: string;
  header?: boolean;
  fields?: string[];
  columns?: Record<string, SourceValueType>;
  skip?: RawSkipRule | RawSkipRule[];
  attributes?: Record<string, CsvAttributeKind>;
  // json only.
  format?: 'document' | 'lines' | 'elements' | DropFormat;
  elements?: string;
  expression?: string;
  value?: string;
  preset?: JsonPreset;
  service?: string[];
  region?: string[];
  scope?: string[];
  keys?: string[];
  tag?: string[];
  systemService?: string[];
  serviceArea?: string[];
  category?: string[];
  required?: boolean;
  output?: 'ips' | 'urls';
  versionUrl?: string;
  // directory only.
  snapshot?: boolean;
  settle?: string;
}

interface RawSkipRule {
  column: string | number;
  equals?: string;
  matches?: string;
}

interface RawCollection {
  id: string;
  alias: string;
  title: string;
  description?: string;
  tlp?: Tlp;
  sources: RawSource[];
  views?: RawView[];
  guards?: Partial<Omit<GuardSettings, 'protected'>> & { protected?: CommentedEntry[] };
  allowList?: { builtin?: BuiltinAllowList[]; entries?: CommentedEntry[]; files?: string[] };
  policy?: { confidence?: ConfidenceRule; missesBeforeWithdrawal?: number; maxDrop?: number };
  access?: RawAccess;
}

/** The per-source processing keys, which the schema allows on every source kind. */
interface RawSourceProcessing {
  confidence?:
    number | { scale?: ConfidenceScale | 'stix'; value: number | string; weight?: number };
  aging?: string | Record<string, string>;
}

function loadCollectionFile(
  file: string,
  env: NodeJS.ProcessEnv,
  problems: string[],
): CollectionConfig | undefined {
  const lineCounter = new LineCounter();
  const doc = parseDocument(readFileSync(file, 'utf8'), { lineCounter, uniqueKeys: true });
  const before = problems.length;

  for (const error of doc.errors) {
    const pos = error.linePos?.[0];
    const where = pos ? `${file}:${pos.line}:${pos.col}` : file;
    problems.push(`${where}: ${error.message.split('\n')[0]}`);
  }
  if (problems.length > before) return undefined;
  return buildCollection(doc, lineCounter, file, dirname(file), env, problems);
}

/**
 * Checks and resolves a collection definition held as data (the form of a
 * collection YAML file), as the REST API receives it and the store keeps it.
 * `label` names it in problems; relative paths in it resolve against `baseDir`.
 */
export function resolveCollectionDocument(
  document: unknown,
  label: string,
  baseDir: string,
  env: NodeJS.ProcessEnv,
  problems: string[],
): CollectionConfig | undefined {
  return buildCollection(new Document(document), new LineCounter(), label, baseDir, env, problems);
}

function buildCollection(
  doc: Document,
  lineCounter: LineCounter,
  file: string,
  baseDir: string,
  env: NodeJS.ProcessEnv,
  problems: string[],
): CollectionConfig | undefined {
  const before = problems.length;
  // Sources that name a catalogue entry get its keys before the schema check;
  // the stored document keeps the reference, so catalogue updates reach it.
  const original: unknown = doc.toJS();
  const data: unknown = expandCatalogue(original, file, problems);
  if (problems.length > before) return undefined;
  const validate = loadSchemaValidator('collection.schema.json');
  if (!validate(data)) {
    for (const error of validate.errors ?? []) {
      // The branches of a oneOf or anyOf explain nothing that its own message does not.
      if (/\/(oneOf|anyOf)\//.test(error.schemaPath)) continue;
      problems.push(describeYamlError(file, doc, lineCounter, error));
    }
    return undefined;
  }

  const raw = data as RawCollection;
  const sources: SourceConfig[] = [];
  const sourceIds = new Set<string>();
  raw.sources.forEach((source, index) => {
    const where = `${file} /sources/${index}`;
    if (sourceIds.has(source.id)) {
      problems.push(
        `${where}/id: source id ${JSON.stringify(source.id)} is used twice in this collection`,
      );
    }
    sourceIds.add(source.id);
    // The schema checks the scheme only; a URL that does not parse would fail every poll.
    for (const key of ['url', 'apiRoot', 'versionUrl', 'proxy'] as const) {
      const value = (source as unknown as Record<string, unknown>)[key];
      if (typeof value === 'string' && !URL.canParse(value)) {
        problems.push(
          `${where}/${key}: ${JSON.stringify(value)} is not a valid URL; write it as scheme://host[:port]/path`,
        );
      }
    }
    const extra = sourceProcessing(source as RawSourceProcessing, where, problems);
    const plain = { ...source, confidence: extra.confidence };
    const built =
      source.kind === 'taxii21'
        ? buildTaxii21Source(plain, raw.tlp ?? 'clear', baseDir, env, where, problems)
        : buildListSource(plain, raw.tlp ?? 'clear', baseDir, env, where, problems);
    const role = (source as { role?: 'block' | 'allow-list' }).role;
    if (built) {
      sources.push({
        ...built,
        confidenceWeight: extra.weight,
        aging: extra.aging,
        ...(role === undefined ? {} : { role }),
      });
    }
  });
  if (sourceIds.has(MANUAL_SOURCE_ID)) {
    problems.push(
      `${file} /sources: source id ${JSON.stringify(MANUAL_SOURCE_ID)} is reserved for the values analysts add through the API; choose another id`,
    );
  }
  sources.push(manualSource(raw.tlp ?? 'clear'));
  sourceIds.add(MANUAL_SOURCE_ID);
  const processing = collectionProcessing(raw, baseDir, file, problems);

  const views: ViewConfig[] = [];
  const viewNames = new Set<string>();
  (raw.views ?? DEFAULT_VIEWS).forEach((view, index) => {
    const where = `${file} /views/${index}`;
    if (viewNames.has(view.name)) {
      problems.push(`${where}/name: view name ${JSON.stringify(view.name)} is used twice`);
    }
    viewNames.add(view.name);
    views.push(buildView(view, sourceIds, where, problems));
  });

  if (problems.length > before) return undefined;
  return {
    id: raw.id,
    alias: raw.alias,
    title: raw.title,
    description: raw.description,
    tlp: raw.tlp ?? 'clear',
    sources,
    views,
    file,
    document: structuredClone(original) as Record<string, unknown>,
    processing: processing!,
    access: resolveAccess(raw.access),
  };
}

/** Resolves a source's `confidence` (on its scale) and `aging` keys. */
function sourceProcessing(
  raw: RawSourceProcessing,
  where: string,
  problems: string[],
): { confidence: number; weight: number; aging: SourceAging } {
  let confidence = 50;
  let weight = 1;
  if (typeof raw.confidence === 'number') {
    confidence = raw.confidence;
  } else if (raw.confidence !== undefined) {
    weight = raw.confidence.weight ?? 1;
    const scale = raw.confidence.scale ?? 'stix';
    try {
      confidence =
        scale === 'stix'
          ? stixConfidence(raw.confidence.value)
          : confidenceFromScale(scale, raw.confidence.value);
    } catch (error) {
      problems.push(`${where}/confidence/value: ${(error as Error).message}`);
    }
  }

  const aging: SourceAging = { default: { basis: 'never' }, byType: {} };
  const specs: Record<string, string> =
    typeof raw.aging === 'string' ? { default: raw.aging } : (raw.aging ?? {});
  for (const [key, text] of Object.entries(specs)) {
    let spec: AgingSpec;
    try {
      spec = parseAgingSpec(text);
    } catch (error) {
      problems.push(
        `${where}/aging${key === 'default' && typeof raw.aging === 'string' ? '' : `/${key}`}: ${(error as Error).message}`,
      );
      continue;
    }
    if (spec.basis === 'decay' && spec.threshold >= confidence) {
      problems.push(
        `${where}/aging: decay threshold ${spec.threshold} is not below the source's confidence ${confidence}, so every value would expire at once; lower the threshold or raise the confidence`,
      );
    }
    if (key === 'default') aging.default = spec;
    else aging.byType[key as ValueType] = spec;
  }
  return { confidence, weight, aging };
}

function stixConfidence(value: number | string): number {
  const number = Number(value);
  if (!Number.isInteger(number) || number < 0 || number > 100) {
    throw new Error(`invalid confidence ${JSON.stringify(value)}: expected an integer 0 to 100`);
  }
  return number;
}

/** Id of the source that every collection has for the values analysts add by hand. */
export const MANUAL_SOURCE_ID = 'manual';
/** How often the manual entries are polled, which bounds how late an entry leaves after it expires. */
export const MANUAL_POLL_SECONDS = 60;

/** The source of the manual entries; the hub supplies its entry loader at poll time. */
function manualSource(tlp: Tlp): SourceConfig {
  return {
    id: MANUAL_SOURCE_ID,
    name: 'Analysts (manual entries)',
    kind: 'manual',
    url: 'manual:',
    intervalSeconds: MANUAL_POLL_SECONDS,
    valueType: 'auto',
    // An entry can carry its own; an analyst's word is strong by default.
    confidence: 90,
    tlp,
    indicatorTypes: ['malicious-activity'],
    labels: [],
    timeoutMs: 30_000,
    maxBytes: 0,
    aging: { default: { basis: 'never' }, byType: {} },
  };
}

/** An allow-list or protected entry: its text, or the text with a comment. */
export type CommentedEntry = string | { entry: string; comment?: string };

export function entryText(entry: CommentedEntry): string {
  return typeof entry === 'string' ? entry : entry.entry;
}

/** Resolves `guards`, `allowList` and `policy`, and checks that the screen compiles. */
function collectionProcessing(
  raw: RawCollection,
  baseDir: string,
  file: string,
  problems: string[],
): ProcessingConfig | undefined {
  const screen: ScreenSettings = {
    guards: {
      ...DEFAULT_GUARD_SETTINGS,
      ...raw.guards,
      protected: (raw.guards?.protected ?? []).map(entryText),
    },
    allowList: {
      builtin: raw.allowList?.builtin ?? DEFAULT_ALLOW_LIST_SETTINGS.builtin,
      entries: (raw.allowList?.entries ?? []).map(entryText),
      files: (raw.allowList?.files ?? []).map((path) =>
        isAbsolute(path) ? path : resolve(baseDir, path),
      ),
    },
  };
  try {
    // Compiling finds bad entries, bad patterns and missing files before anything starts.
    new Screen(screen);
  } catch (error) {
    problems.push(`${file}: ${(error as Error).message}`);
    return undefined;
  }
  return {
    screen,
    withdrawal: {
      missesBeforeWithdrawal:
        raw.policy?.missesBeforeWithdrawal ?? DEFAULT_WITHDRAWAL_POLICY.missesBeforeWithdrawal,
      maxDrop: raw.policy?.maxDrop ?? DEFAULT_WITHDRAWAL_POLICY.maxDrop,
    },
    confidenceRule: raw.policy?.confidence ?? 'max',
  };
}

/** Builds a text-list, csv or json source with the settings of its kind. */
function buildListSource(
  raw: RawSource,
  collectionTlp: Tlp,
  baseDir: string,
  env: NodeJS.ProcessEnv,
  where: string,
  problems: string[],
): SourceConfig | undefined {
  if (raw.kind === 'directory')
    return buildDirectorySource(raw, collectionTlp, baseDir, where, problems);
  const built = buildSource(raw, collectionTlp, baseDir, where, problems);
  const http = buildHttpSettings(raw, baseDir, env, where, problems);
  const source = built && http && { ...built, http };
  if (raw.kind === 'csv') {
    const csv = buildCsvSettings(raw, where, problems);
    return source && csv && { ...source, csv };
  }
  if (raw.kind === 'json') {
    const json = buildJsonSettings(raw, where, problems);
    return source && json && { ...source, json };
  }
  if (raw.kind === 'misp-feed') {
    return (
      source && {
        ...source,
        misp: {
          toIdsOnly: raw.toIdsOnly ?? DEFAULT_MISP_SETTINGS.toIdsOnly,
          concurrency: raw.concurrency ?? DEFAULT_MISP_SETTINGS.concurrency,
          maxEntries: raw.maxEntries ?? DEFAULT_MISP_SETTINGS.maxEntries,
        },
      }
    );
  }
  return source;
}

/**
 * Builds a directory source: the drop directory must exist, and the csv and
 * json keys, when present, are the settings for CSV and JSON files.
 */
function buildDirectorySource(
  raw: RawSource,
  collectionTlp: Tlp,
  baseDir: string,
  where: string,
  problems: string[],
): SourceConfig | undefined {
  const before = problems.length;
  const path = isAbsolute(raw.path!) ? raw.path! : resolve(baseDir, raw.path!);
  if (!existsSync(path) || !statSync(path).isDirectory()) {
    problems.push(`${where}/path: directory ${path} not found; create it or fix path`);
    return undefined;
  }
  const source = buildSource(raw, collectionTlp, baseDir, where, problems);
  const csv = raw.columns === undefined ? undefined : buildCsvSettings(raw, where, problems);
  const json =
    raw.expression === undefined && raw.preset === undefined
      ? undefined
      : buildJsonSettings({ ...raw, format: undefined }, where, problems);
  if (problems.length > before || source === undefined) return undefined;
  const directory: DirectorySettings = {
    path,
    snapshot: raw.snapshot ?? false,
    settleMs: durationSeconds(raw.settle ?? '2s') * 1000,
    ...(raw.format === undefined ? {} : { format: raw.format as DropFormat }),
  };
  return {
    ...source,
    directory,
    ...(csv === undefined ? {} : { csv }),
    ...(json === undefined ? {} : { json }),
  };
}

/** Reads a column reference: digits are a 1-based position, anything else a column name. */
function columnRef(ref: string | number): CsvColumnRef {
  if (typeof ref === 'number') return ref;
  return /^[1-9][0-9]{0,3}$/.test(ref) ? Number(ref) : ref;
}

/** Resolves and checks the keys of a csv source that the schema cannot check. */
function buildCsvSettings(
  raw: RawSource,
  where: string,
  problems: string[],
): CsvSettings | undefined {
  const before = problems.length;
  // YAML writes a tab as "\t" in double quotes; '\t' in single quotes arrives as two characters.
  const delimiter = raw.delimiter === '\\t' ? '\t' : (raw.delimiter ?? ',');
  if ([...delimiter].length !== 1) {
    problems.push(
      `${where}/delimiter: ${JSON.stringify(raw.delimiter)} is not one character; use one such as ",", ";" or "\\t"`,
    );
  } else if (/["\r\n]/.test(delimiter)) {
    problems.push(
      `${where}/delimiter: ${JSON.stringify(delimiter)} cannot separate fields because it is a quote or a line break; use one such as ",", ";" or "\\t"`,
    );
  }
  const comment = raw.comment ?? '#';
  if (
    comment !== '' &&
    (comment.includes('"') || comment.includes(delimiter) || /\s/.test(comment))
  ) {
    problems.push(
      `${where}/comment: ${JSON.stringify(comment)} cannot start comments because it contains a quote, the delimiter or whitespace; use a prefix such as "#", or "" for none`,
    );
  }

  const fields = raw.fields?.map((name) => name.trim());
  const header = raw.header ?? fields === undefined;
  const checkRef = (ref: CsvColumnRef, key: string): void => {
    if (typeof ref === 'number') return;
    if (
      fields !== undefined &&
      !fields.some((name) => name.toLowerCase() === ref.trim().toLowerCase())
    ) {
      problems.push(
        `${where}/${key}: column ${JSON.stringify(ref)} is not one of fields (${fields.join(', ')}); fix the name or use a 1-based position`,
      );
    } else if (fields === undefined && !header) {
      problems.push(
        `${where}/${key}: column ${JSON.stringify(ref)} is a name, but header is false and no fields name the columns; set header: true, list fields, or use a 1-based position`,
      );
    }
  };

  const columns = Object.entries(raw.columns ?? {}).map(([key, valueType]) => {
    const column = columnRef(key);
    checkRef(column, `columns/${key}`);
    return { column, valueType };
  });

  const rules = raw.skip === undefined ? [] : Array.isArray(raw.skip) ? raw.skip : [raw.skip];
  const skip = rules.map((rule, index) => {
    const key = Array.isArray(raw.skip) ? `skip/${index}` : 'skip';
    const column = columnRef(rule.column);
    checkRef(column, `${key}/column`);
    if ((rule.equals === undefined) === (rule.matches === undefined)) {
      problems.push(
        `${where}/${key}: set exactly one of equals (the exact cell text) or matches (a regular expression)`,
      );
    }
    if (rule.matches !== undefined) {
      try {
        compileExtract(rule.matches);
      } catch (error) {
        problems.push(`${where}/${key}/matches: ${(error as Error).message}`);
      }
    }
    return { column, equals: rule.equals, matches: rule.matches };
  });

  const attributes = Object.entries(raw.attributes ?? {}).map(([key, kind]) => {
    const column = columnRef(key);
    checkRef(column, `attributes/${key}`);
    return { column, kind };
  });

  if (problems.length > before) return undefined;
  return {
    delimiter,
    comment,
    header,
    fields,
    columns,
    skip,
    ...(attributes.length > 0 ? { attributes } : {}),
  };
}

/** Resolves and checks the keys of a json source, turning a preset into its expression. */
function buildJsonSettings(
  raw: RawSource,
  where: string,
  problems: string[],
): JsonSettings | undefined {
  const before = problems.length;
  // The schema allows document, lines and elements on a json source; a directory source passes none.
  const format = (raw.format ?? 'document') as JsonSettings['format'];
  const optionKeys = [
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
  ] as const;
  const allowed: readonly string[] = raw.preset === undefined ? [] : PRESET_OPTIONS[raw.preset];
  for (const key of optionKeys) {
    if (raw[key] === undefined || allowed.includes(key)) continue;
    const takers = JSON_PRESETS.filter((preset) => PRESET_OPTIONS[preset].includes(key));
    problems.push(
      `${where}/${key}: ${key} applies only to preset ${takers.join(' or ')}${raw.preset === undefined ? '' : `, not ${raw.preset}`}; remove it`,
    );
  }

  let expression = raw.expression;
  if (raw.preset !== undefined) {
    if (raw.expression !== undefined) {
      problems.push(
        `${where}/expression: set either preset or expression, not both; the preset ${raw.preset} provides the expression`,
      );
    }
    if (raw.value !== undefined) {
      problems.push(
        `${where}/value: the preset ${raw.preset} picks its values itself; remove value`,
      );
    }
    if (format !== 'document') {
      problems.push(`${where}/format: the preset ${raw.preset} reads a document; remove format`);
    }
    if (raw.preset === 'microsoft-365' && raw.output === undefined) {
      problems.push(
        `${where}: set output to ips or urls; the preset microsoft-365 reads one of them, so use two sources for both`,
      );
    }
    const options: JsonPresetOptions = {
      service: raw.service,
      region: raw.region,
      scope: raw.scope,
      keys: raw.keys,
      tag: raw.tag,
      systemService: raw.systemService,
      serviceArea: raw.serviceArea,
      category: raw.category,
      required: raw.required,
      output: raw.output,
    };
    expression = presetExpression(raw.preset, options);
  } else if (expression === undefined) {
    problems.push(
      `${where}: set expression (a JMESPath expression that yields the values) or preset (one of ${JSON_PRESETS.join(', ')})`,
    );
  } else {
    try {
      compileExpression(expression);
    } catch (error) {
      problems.push(`${where}/expression: ${(error as Error).message}`);
    }
  }

  if (raw.elements !== undefined && format !== 'elements') {
    problems.push(
      `${where}/elements: elements applies only to format elements; set format: elements or remove elements`,
    );
  }
  if (format === 'elements') {
    const path = parseElementPath(raw.elements ?? '@');
    if (typeof path === 'string') problems.push(`${where}/elements: ${path}`);
  }

  if (problems.length > before || expression === undefined) return undefined;
  return {
    format,
    ...(format === 'elements' ? { elements: raw.elements ?? '@' } : {}),
    expression,
    ...(raw.value === undefined ? {} : { value: raw.value }),
    ...(raw.versionUrl === undefined ? {} : { versionUrl: raw.versionUrl }),
  };
}

function buildSource(
  raw: RawSource,
  collectionTlp: Tlp,
  baseDir: string,
  where: string,
  problems: string[],
): SourceConfig | undefined {
  let extract: RegExp | undefined;
  if (raw.extract !== undefined) {
    try {
      extract = new RegExp(raw.extract);
    } catch (error) {
      problems.push(
        `${where}/extract: ${JSON.stringify(raw.extract)} is not a valid regular expression: ${(error as Error).message}`,
      );
      return undefined;
    }
    try {
      compileExtract(extract);
    } catch (error) {
      problems.push(`${where}/extract: ${(error as Error).message}`);
      return undefined;
    }
    if (new RegExp(`${raw.extract}|`).exec('')!.length < 2) {
      problems.push(
        `${where}/extract: ${JSON.stringify(raw.extract)} has no capture group; wrap the value in ( )`,
      );
      return undefined;
    }
  }

  let url = raw.url;
  if (raw.path !== undefined) {
    const path = isAbsolute(raw.path) ? raw.path : resolve(baseDir, raw.path);
    if (!existsSync(path)) {
      problems.push(`${where}/path: file ${path} not found`);
      return undefined;
    }
    url = pathToFileURL(path).href;
  }

  return {
    id: raw.id,
    name: raw.name ?? raw.id,
    kind: raw.kind,
    url: url!,
    intervalSeconds: durationSeconds(raw.interval),
    valueType: raw.valueType ?? 'auto',
    extract,
    confidence: raw.confidence ?? 50,
    tlp: raw.tlp ?? collectionTlp,
    indicatorTypes: raw.indicatorTypes ?? ['malicious-activity'],
    labels: raw.labels ?? [],
    timeoutMs: durationSeconds(raw.timeout ?? '60s') * 1000,
    maxBytes: raw.maxBytes ?? 100 * 1024 * 1024,
  };
}

/**
 * Resolves the HTTP keys of a source (auth, tls, proxy, retries, zipEntry):
 * credentials are read from the environment variables that the keys name,
 * and TLS paths resolve against the YAML file's directory.
 */
function buildHttpSettings(
  raw: RawSource,
  baseDir: string,
  env: NodeJS.ProcessEnv,
  where: string,
  problems: string[],
): HttpSettings | undefined {
  const before = problems.length;
  const fromEnv = (name: string, key: string): string => {
    const value = env[name];
    if (value === undefined || value === '') {
      problems.push(
        `${where}/${key}: environment variable ${name} is not set; export it or change ${key}`,
      );
      return '';
    }
    return value;
  };
  const existingFile = (path: string | undefined, key: string): string | undefined => {
    if (path === undefined) return undefined;
    const resolved = isAbsolute(path) ? path : resolve(baseDir, path);
    if (!existsSync(resolved)) problems.push(`${where}/${key}: file ${resolved} not found`);
    return resolved;
  };

  let authHeader: HttpSettings['authHeader'];
  const auth = raw.auth;
  if (auth?.type === 'basic') {
    const username = fromEnv(auth.usernameEnv, 'auth/usernameEnv');
    const password = fromEnv(auth.passwordEnv, 'auth/passwordEnv');
    if (username.includes(':')) {
      problems.push(
        `${where}/auth/usernameEnv: the user name in ${auth.usernameEnv} contains ":", which Basic authentication cannot carry`,
      );
    }
    const token = Buffer.from(`${username}:${password}`, 'utf8').toString('base64');
    authHeader = { name: 'Authorization', value: `Basic ${token}` };
  } else if (auth?.type === 'bearer') {
    authHeader = {
      name: 'Authorization',
      value: `Bearer ${fromEnv(auth.tokenEnv, 'auth/tokenEnv')}`,
    };
  } else if (auth?.type === 'header') {
    authHeader = { name: auth.name, value: fromEnv(auth.valueEnv, 'auth/valueEnv') };
  }

  let proxy = raw.proxy;
  if (raw.proxy !== undefined && !/^https?:\/\/[^@/]+\/?$/.test(raw.proxy)) {
    problems.push(
      raw.proxy.includes('@')
        ? `${where}/proxy: the proxy URL holds credentials, which do not belong in this file; put the URL in an environment variable and name it in proxyEnv`
        : `${where}/proxy: ${JSON.stringify(raw.proxy)} is not a proxy URL; use http://host:port`,
    );
  }
  if (raw.proxyEnv !== undefined) {
    if (raw.proxy !== undefined) {
      problems.push(`${where}/proxyEnv: set either proxy or proxyEnv, not both`);
    }
    proxy = fromEnv(raw.proxyEnv, 'proxyEnv');
    if (proxy !== '' && !/^https?:\/\/[^/]+\/?$/.test(proxy)) {
      problems.push(
        `${where}/proxyEnv: the value of ${raw.proxyEnv} is not a proxy URL; use http://[user:password@]host:port`,
      );
    }
  }

  const tls = raw.tls && {
    certPath: existingFile(raw.tls.certPath, 'tls/certPath'),
    keyPath: existingFile(raw.tls.keyPath, 'tls/keyPath'),
    caPath: existingFile(raw.tls.caPath, 'tls/caPath'),
    passphrase:
      raw.tls.passphraseEnv === undefined
        ? undefined
        : fromEnv(raw.tls.passphraseEnv, 'tls/passphraseEnv'),
    ...(raw.tls.verify === undefined ? {} : { verify: raw.tls.verify }),
  };
  if (problems.length > before) return undefined;

  return {
    ...(authHeader === undefined ? {} : { authHeader }),
    ...(tls === undefined ? {} : { tls }),
    ...(proxy === undefined ? {} : { proxy }),
    maxRetries: raw.maxRetries ?? 3,
    retryDelayMs: durationSeconds(raw.retryDelay ?? '1s') * 1000,
    ...(raw.zipEntry === undefined ? {} : { zipEntry: raw.zipEntry }),
  };
}

/** Builds a taxii21 source, reading its credentials from `env` and checking its TLS files. */
function buildTaxii21Source(
  raw: RawSource,
  collectionTlp: Tlp,
  baseDir: string,
  env: NodeJS.ProcessEnv,
  where: string,
  problems: string[],
): SourceConfig | undefined {
  const http = buildHttpSettings(raw, baseDir, env, where, problems);
  if (http === undefined) return undefined;

  const withSlash = (url: string) => (url.endsWith('/') ? url : `${url}/`);
  const apiRootUrl = raw.apiRoot === undefined ? undefined : withSlash(raw.apiRoot);
  return {
    id: raw.id,
    name: raw.name ?? raw.id,
    kind: 'taxii21',
    url: apiRootUrl ?? raw.url!,
    intervalSeconds: durationSeconds(raw.interval),
    valueType: 'auto',
    confidence: raw.confidence ?? 50,
    tlp: raw.tlp ?? collectionTlp,
    indicatorTypes: raw.indicatorTypes ?? ['malicious-activity'],
    labels: raw.labels ?? [],
    timeoutMs: durationSeconds(raw.timeout ?? '60s') * 1000,
    maxBytes: raw.maxBytes ?? 100 * 1024 * 1024,
    taxii21: {
      discoveryUrl: raw.url,
      apiRootUrl,
      collection:
        raw.collectionId !== undefined ? { id: raw.collectionId } : { title: raw.collectionTitle! },
      limit: raw.limit ?? 1000,
      maxPages: raw.maxPages ?? 100,
    },
    http,
  };
}

/** Allowed values of the `discriminator` tags of collection.schema.json, for error messages. */
const TAG_VALUES: Record<string, string[]> = {
  kind: ['text-list', 'csv', 'json', 'stix-bundle', 'misp-feed', 'taxii21', 'directory'],
  type: ['basic', 'bearer', 'header'],
};

/** Allowed forms of the keys whose schema is a `oneOf`, for error messages. */
const ONE_OF_FORMS: Record<string, string> = {
  confidence:
    'must be an integer from 0 to 100, or an object such as { value: High, scale: none-low-med-high, weight: 0.5 }',
  aging:
    'must be never, first_seen+DURATION or last_seen+DURATION (e.g. last_seen+30d), or an object of such values per value type with a default',
  skip: 'must be a rule such as { column: c2_status, equals: offline } or { column: 4, matches: "^off" }, or a list of such rules',
};

/** Names the file, line and column of a schema error, and the JSON path inside the document. */
function describeYamlError(
  file: string,
  doc: Document,
  lineCounter: LineCounter,
  error: ErrorObject,
): string {
  const segments = error.instancePath
    .split('/')
    .slice(1)
    .map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'))
    // Digits index a sequence, but stay a string key in a map (a CSV column position such as "3").
    .map((part, index, parts) =>
      /^\d+$/.test(part) && isSeq(doc.getIn(parts.slice(0, index), true)) ? Number(part) : part,
    );

  let message = error.message ?? 'is invalid';
  if (error.keyword === 'additionalProperties') {
    const key = String(error.params.additionalProperty);
    message = `unknown key ${JSON.stringify(key)}; remove it or fix its spelling`;
    segments.push(key);
  } else if (error.keyword === 'oneOf') {
    const last = segments[segments.length - 1];
    const isSource = typeof last === 'number' && segments[segments.length - 2] === 'sources';
    // ajv inlines the referenced source schemas, so the schema path does not tell the kind.
    if (isSource) {
      message =
        doc.getIn([...segments, 'kind']) === 'taxii21'
          ? 'set exactly one of collectionId or collectionTitle'
          : 'set exactly one of url or path';
    } else {
      message = ONE_OF_FORMS[String(last)] ?? 'does not have any of the allowed forms';
    }
  } else if (error.keyword === 'anyOf') {
    message = 'set url (the discovery URL) or apiRoot, or both';
  } else if (error.keyword === 'discriminator') {
    const tag = String(error.params.tag);
    const allowed = (TAG_VALUES[tag] ?? []).map((v) => JSON.stringify(v)).join(', ');
    message = `${tag} must be one of ${allowed}`;
    segments.push(tag);
  } else if (error.keyword === 'enum') {
    message = `must be one of ${(error.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
  }

  const node = doc.getIn(segments, true);
  let where = file;
  if (isNode(node) && node.range) {
    const pos = lineCounter.linePos(node.range[0]);
    where = `${file}:${pos.line}:${pos.col}`;
  } else if (error.keyword === 'additionalProperties') {
    const parent = doc.getIn(segments.slice(0, -1), true);
    if (isNode(parent) && parent.range) {
      const pos = lineCounter.linePos(parent.range[0]);
      where = `${file}:${pos.line}:${pos.col}`;
    }
  }

  const value = doc.getIn(segments);
  const shown =
    value !== undefined && typeof value !== 'object' ? ` (value ${JSON.stringify(value)})` : '';
  return `${where} ${error.instancePath || '/'}: ${message}${shown}`;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !(value instanceof RegExp)) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

/** Resolves one view of the YAML, reporting references that the schema cannot check. */
function buildView(
  raw: RawView,
  sourceIds: ReadonlySet<string>,
  where: string,
  problems: string[],
): ViewConfig {
  const { seenWithin, ...filter } = raw.filter ?? {};
  const kindTypes = DEFAULT_VALUE_TYPES[raw.kind];
  for (const type of filter.types ?? []) {
    if (!kindTypes.includes(type)) {
      problems.push(
        `${where}/filter/types: a ${raw.kind} view cannot list ${type} values; it lists ${kindTypes.join(', ')}`,
      );
    }
  }
  for (const source of filter.sources ?? []) {
    if (!sourceIds.has(source)) {
      problems.push(
        `${where}/filter/sources: ${JSON.stringify(source)} is not a source of this collection; use one of ${[...sourceIds].join(', ')}`,
      );
    }
  }
  if (
    filter.minConfidence !== undefined &&
    filter.belowConfidence !== undefined &&
    filter.belowConfidence <= filter.minConfidence
  ) {
    problems.push(
      `${where}/filter: belowConfidence ${filter.belowConfidence} must be above minConfidence ${filter.minConfidence}, or the view lists nothing`,
    );
  }
  const access = raw.access ?? {};
  for (const network of access.networks ?? []) {
    const problem = checkNetwork(network);
    if (problem !== undefined) problems.push(`${where}/access/networks: ${problem}`);
  }
  const principals = access.principals ?? [];
  const view: ViewConfig = {
    name: raw.name,
    kind: raw.kind,
    filter: {
      ...filter,
      ...(seenWithin === undefined
        ? {}
        : { seenWithinMicros: durationSeconds(seenWithin) * 1_000_000 }),
    },
    order: raw.order ?? 'value',
    descending: raw.descending ?? false,
    ...(raw.maxEntries === undefined ? {} : { maxEntries: raw.maxEntries }),
    options: raw.options ?? {},
    access: {
      public: access.public ?? principals.length === 0,
      principals,
      methods: access.methods ?? PUBLIC_VIEW_ACCESS.methods,
      networks: access.networks ?? [],
    },
  };
  const optionProblem = checkViewOptions(view);
  if (optionProblem !== undefined) problems.push(`${where}/options: ${optionProblem}`);
  if (raw.forward !== undefined) {
    view.forward = { transport: 'tcp', ...raw.forward };
  }
  return view;
}

/** Reports principals that a view grants access to but that the principals file does not define. */
function checkViewPrincipals(
  collections: readonly CollectionConfig[],
  names: ReadonlySet<string>,
  principalsFile: string | undefined,
  problems: string[],
): void {
  for (const collection of collections) {
    collection.views.forEach((view, index) => {
      for (const name of view.access.principals) {
        if (name === '*' || names.has(name)) continue;
        problems.push(
          principalsFile === undefined
            ? `${collection.file} /views/${index}/access/principals: principal ${JSON.stringify(name)} is granted access, but FEEDHUB_PRINCIPALS_FILE is not set; set it to a principals file that defines ${JSON.stringify(name)}`
            : `${collection.file} /views/${index}/access/principals: principal ${JSON.stringify(name)} is not defined in ${principalsFile}`,
        );
      }
    });
  }
}
