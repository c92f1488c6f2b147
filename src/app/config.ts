import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { LineCounter, parseDocument, isNode } from 'yaml';
import type { ErrorObject } from 'ajv';
import { loadSchemaValidator } from './schemas.js';

export type Tlp = 'clear' | 'white' | 'green' | 'amber' | 'amber+strict' | 'red';
export type SourceValueType =
  | 'auto'
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
export type ViewKind = 'edl-ip' | 'edl-domain' | 'edl-url';

export interface SourceConfig {
  id: string;
  name: string;
  kind: 'text-list';
  /** http(s) or file URL; a `path` in the YAML becomes a file URL. */
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
}

export interface ViewConfig {
  name: string;
  kind: ViewKind;
}

export interface CollectionConfig {
  id: string;
  alias: string;
  title: string;
  description?: string;
  tlp: Tlp;
  sources: SourceConfig[];
  views: ViewConfig[];
  /** The YAML file the collection came from. */
  file: string;
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
  role: 'api' | 'worker' | 'all';
  mongodbUri?: string;
  mongodbDatabase: string;
}

export interface Config {
  settings: Settings;
  collections: CollectionConfig[];
}

/** Every problem found in the configuration, reported together. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

const DEFAULT_VIEWS: ViewConfig[] = [
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
  const collections = settings ? loadCollections(settings.collectionsDir, problems) : [];
  if (problems.length > 0 || !settings) {
    throw new ConfigError(problems);
  }
  return deepFreeze({ settings, collections });
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
    role: (raw.FEEDHUB_ROLE ?? 'all') as Settings['role'],
    mongodbUri: raw.MONGODB_URI,
    mongodbDatabase: raw.FEEDHUB_MONGODB_DATABASE ?? 'feedhub',
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

function loadCollections(dir: string, problems: string[]): CollectionConfig[] {
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
    const collection = loadCollectionFile(file, problems);
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
  kind: 'text-list';
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
}

interface RawCollection {
  id: string;
  alias: string;
  title: string;
  description?: string;
  tlp?: Tlp;
  sources: RawSource[];
  views?: ViewConfig[];
}

function loadCollectionFile(file: string, problems: string[]): CollectionConfig | undefined {
  const lineCounter = new LineCounter();
  const doc = parseDocument(readFileSync(file, 'utf8'), { lineCounter, uniqueKeys: true });
  const before = problems.length;

  for (const error of doc.errors) {
    const pos = error.linePos?.[0];
    const where = pos ? `${file}:${pos.line}:${pos.col}` : file;
    problems.push(`${where}: ${error.message.split('\n')[0]}`);
  }
  if (problems.length > before) return undefined;

  const data: unknown = doc.toJS();
  const validate = loadSchemaValidator('collection.schema.json');
  if (!validate(data)) {
    for (const error of validate.errors ?? []) {
      // The branches of a oneOf explain nothing that its own message does not.
      if (error.schemaPath.includes('/oneOf/')) continue;
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
    const built = buildSource(source, raw.tlp ?? 'clear', dirname(file), where, problems);
    if (built) sources.push(built);
  });

  const views = raw.views ?? DEFAULT_VIEWS;
  const viewNames = new Set<string>();
  views.forEach((view, index) => {
    if (viewNames.has(view.name)) {
      problems.push(
        `${file} /views/${index}/name: view name ${JSON.stringify(view.name)} is used twice`,
      );
    }
    viewNames.add(view.name);
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

/** Names the file, line and column of a schema error, and the JSON path inside the document. */
function describeYamlError(
  file: string,
  doc: ReturnType<typeof parseDocument>,
  lineCounter: LineCounter,
  error: ErrorObject,
): string {
  const segments = error.instancePath
    .split('/')
    .slice(1)
    .map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((part) => (/^\d+$/.test(part) ? Number(part) : part));

  let message = error.message ?? 'is invalid';
  if (error.keyword === 'additionalProperties') {
    const key = String(error.params.additionalProperty);
    message = `unknown key ${JSON.stringify(key)}; remove it or fix its spelling`;
    segments.push(key);
  } else if (error.keyword === 'oneOf') {
    message = 'set exactly one of url or path';
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
