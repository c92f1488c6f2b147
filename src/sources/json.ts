/**
 * The `json` source kind: a JSON document or JSON lines, with the values
 * picked by a JMESPath expression (the JMESPath Community edition, see
 * https://jmespath.site). Presets for published cloud ranges live in
 * `presets.ts`.
 */
import { createHash } from 'node:crypto';

import { compile, TreeInterpreter, type JSONValue } from '@jmespath-community/jmespath';

import type { ValueType } from '../processing/index.js';
import { decodeText, EntryCollector, judgeValues, looksLikeHtml } from './csv.js';
import { formatElementPath, JsonElementScanner, parseElementPath } from './json-elements.js';
import { fetchFeed, redactUrl } from './fetch.js';
import type { ReadContext, ReadResult, SourceEntry } from './kinds.js';
import { SourceRejectedError } from './rejected.js';
import type { InvalidExample } from './text-list.js';
import { fetchOptionsFor, readWholeList } from './whole-list.js';

/** Settings of a `json` source, resolved from the collection file. */
export interface JsonSettings {
  /**
   * `document`: the body is one JSON value. `lines`: one JSON value per line
   * (JSON Lines). `elements`: the body is one JSON value, read as a stream
   * of the elements of the array or object at `elements`.
   */
  format: 'document' | 'lines' | 'elements';
  /** JMESPath expression applied to the document, to each line or to each element. */
  expression: string;
  /** With format `elements`: `@` or object keys joined by dots, the path of the list. */
  elements?: string;
  /** Field holding the value when the expression yields objects. */
  value?: string;
  /**
   * URL of a JSON document whose `latest` field changes whenever the list
   * does (the version method of the Microsoft 365 endpoints web service).
   * While it stays the same, a poll does not fetch the list.
   */
  versionUrl?: string;
}

export interface JsonStats {
  /** Lines of a `lines` body, elements of an `elements` body; 1 for a document. */
  lines: number;
  /** True when `lines` counts elements. */
  elements?: boolean;
  blank: number;
  /** Records for which the expression yielded nothing. */
  unmatched: number;
  valid: number;
  invalid: number;
  duplicates: number;
  invalidExamples: InvalidExample[];
  looksLikeHtml: boolean;
  /** Set when the whole document is unusable: invalid JSON, or the expression failed. */
  documentProblem?: string;
}

export interface JsonResult {
  entries: SourceEntry[];
  stats: JsonStats;
}

/** The minimum number of entries in each batch of `streamJsonLines` but the last. */
const ENTRY_BATCH_SIZE = 1000;

/**
 * Maximum length of one line of a `lines` body, or of one element of an
 * `elements` body, in UTF-16 code units. A longer one counts as invalid and
 * is skipped without being buffered.
 */
export const MAX_JSON_LINE_LENGTH = 1 << 20;

/**
 * Compiles a JMESPath expression. Throws an error naming the expression and
 * the parser's message when it is not valid JMESPath.
 */
export function compileExpression(expression: string): ReturnType<typeof compile> {
  try {
    return compile(expression);
  } catch (error) {
    throw new SyntaxError(
      `${JSON.stringify(expression)} is not a valid JMESPath expression: ${(error as Error).message}`,
      { cause: error },
    );
  }
}

/** Applies the expression to one parsed value and hands every value text it yields to the collector. */
class ValueExtractor {
  private readonly node: ReturnType<typeof compile>;
  readonly collector: EntryCollector;
  unmatched = 0;

  constructor(
    private readonly settings: JsonSettings,
    private readonly valueType: ValueType | 'auto',
    keepDuplicates = false,
  ) {
    this.node = compileExpression(settings.expression);
    this.collector = new EntryCollector(5, keepDuplicates);
  }

  /** Returns an error message when the expression fails on `data` (a type error in a function). */
  extract(data: JSONValue, line: number, text: string): string | undefined {
    let result: JSONValue;
    try {
      result = TreeInterpreter.search(this.node, data);
    } catch (error) {
      return `expression ${JSON.stringify(this.settings.expression)} failed: ${(error as Error).message}`;
    }
    if (result === null) {
      this.unmatched += 1;
      return undefined;
    }
    const items = Array.isArray(result) ? result : [result];
    for (const item of items) this.item(item, line, text);
    return undefined;
  }

  /** Parses one record (a line or an element) and extracts its values, or counts it invalid. */
  record(text: string, record: number): void {
    let data: JSONValue;
    try {
      data = JSON.parse(text) as JSONValue;
    } catch (error) {
      this.collector.reject(record, text, `not valid JSON: ${(error as Error).message}`);
      return;
    }
    const failure = this.extract(data, record, text);
    if (failure !== undefined) this.collector.reject(record, text, failure);
  }

  private item(item: JSONValue, line: number, text: string): void {
    const { collector, settings } = this;
    if (typeof item === 'string') {
      collector.add(item, this.valueType, line, item);
      return;
    }
    if (item === null) {
      this.unmatched += 1;
      return;
    }
    if (typeof item === 'object' && !Array.isArray(item) && settings.value !== undefined) {
      const value = item[settings.value];
      if (typeof value === 'string') collector.add(value, this.valueType, line, value);
      else if (value === undefined || value === null) this.unmatched += 1;
      else collector.reject(line, JSON.stringify(item), `field ${settings.value} is not a string`);
      return;
    }
    collector.reject(line, JSON.stringify(item) ?? text, describeNonString(item));
  }
}

function describeNonString(item: JSONValue): string {
  if (Array.isArray(item)) return 'an array, not a string; flatten it with [] in the expression';
  if (typeof item === 'object' && item !== null) {
    return 'an object, not a string; set value to the field that holds the value';
  }
  return `a ${typeof item}, not a string`;
}

function emptyStats(): JsonStats {
  return {
    lines: 0,
    blank: 0,
    unmatched: 0,
    valid: 0,
    invalid: 0,
    duplicates: 0,
    invalidExamples: [],
    looksLikeHtml: false,
  };
}

/** Returns the result of a parse: `entries`, or by default the entries the collector still has. */
function resultOf(
  extractor: ValueExtractor,
  stats: JsonStats,
  entries: SourceEntry[] = extractor.collector.entries,
): JsonResult {
  const { collector } = extractor;
  return {
    entries,
    stats: {
      ...stats,
      unmatched: extractor.unmatched,
      valid: collector.valid,
      invalid: collector.invalid,
      duplicates: collector.duplicates,
      invalidExamples: collector.invalidExamples,
    },
  };
}

/**
 * Parses a JSON body and returns the canonical values that the expression
 * picks. A document is read whole (the fetcher's `maxBytes` bounds it); JSON
 * lines are read line by line. A UTF-8 or UTF-16 byte order mark is dropped.
 */
export async function parseJson(
  input: AsyncIterable<Buffer | string> | Buffer | string,
  settings: JsonSettings,
  valueType: ValueType | 'auto' = 'auto',
): Promise<JsonResult> {
  const extractor = new ValueExtractor(settings, valueType);
  if (settings.format === 'document') return parseDocument(input, extractor, settings);
  const stats = emptyStats();
  const entries: SourceEntry[] = [];
  for await (const batch of recordBatches(input, settings, extractor, stats)) {
    for (const entry of batch) entries.push(entry);
  }
  return resultOf(extractor, stats, entries);
}

async function parseDocument(
  input: AsyncIterable<Buffer | string> | Buffer | string,
  extractor: ValueExtractor,
  settings: JsonSettings,
): Promise<JsonResult> {
  const stats = emptyStats();
  stats.lines = 1;
  const parts: string[] = [];
  for await (const text of decodeText(input)) parts.push(text);
  const text = parts.join('');
  if (looksLikeHtml(text.slice(0, 1024))) {
    stats.looksLikeHtml = true;
    return resultOf(extractor, stats);
  }

  let data: JSONValue;
  try {
    data = JSON.parse(text) as JSONValue;
  } catch (error) {
    stats.documentProblem = `the body is not valid JSON (${(error as Error).message}); a truncated download also looks like this`;
    return resultOf(extractor, stats);
  }
  const failure = extractor.extract(data, 1, '');
  if (failure !== undefined) stats.documentProblem = failure;
  else if (extractor.unmatched > 0 && extractor.collector.valid === 0) {
    stats.documentProblem = `expression ${JSON.stringify(settings.expression)} matched nothing in the document; check it against the feed's current format`;
  }
  return resultOf(extractor, stats);
}

/** A JSON Lines or `elements` body parsed while it is read. */
export interface JsonRecordStream {
  /** The entries in body order, each canonical value once unless `keepDuplicates` is set. Iterate once. */
  batches: AsyncGenerator<SourceEntry[]>;
  /** Returns the counts so far, which are final once `batches` has ended. */
  stats: () => JsonStats;
}

/**
 * Parses a JSON Lines or `elements` body as `parseJson` does, but hands the
 * entries on in batches while the input is read, so only one batch of
 * entries is held at a time. With `keepDuplicates`, repeated values are
 * handed on too and counted as valid (see `TextListOptions`), so memory
 * does not grow with the body.
 */
export function streamJsonRecords(
  input: AsyncIterable<Buffer | string> | Buffer | string,
  settings: JsonSettings,
  valueType: ValueType | 'auto' = 'auto',
  options: { keepDuplicates?: boolean } = {},
): JsonRecordStream {
  if (settings.format === 'document') {
    throw new Error('a JSON document is parsed whole; use parseJson');
  }
  const extractor = new ValueExtractor(settings, valueType, options.keepDuplicates === true);
  const stats = emptyStats();
  return {
    batches: recordBatches(input, settings, extractor, stats),
    stats: () => resultOf(extractor, stats, []).stats,
  };
}

/** Reads the records of a `lines` or `elements` body and yields their entries in batches. */
function recordBatches(
  input: AsyncIterable<Buffer | string> | Buffer | string,
  settings: JsonSettings,
  extractor: ValueExtractor,
  stats: JsonStats,
): AsyncGenerator<SourceEntry[]> {
  return settings.format === 'elements'
    ? elementBatches(input, settings.elements ?? '@', extractor, stats)
    : lineBatches(input, extractor, stats);
}

/**
 * Reads the elements of the list at `pathText` into `stats` and yields the
 * extracted entries in batches of about `ENTRY_BATCH_SIZE`. A document that
 * ends early or has no list at the path sets `documentProblem`.
 */
async function* elementBatches(
  input: AsyncIterable<Buffer | string> | Buffer | string,
  pathText: string,
  extractor: ValueExtractor,
  stats: JsonStats,
): AsyncGenerator<SourceEntry[]> {
  stats.elements = true;
  const path = parseElementPath(pathText);
  if (typeof path === 'string') {
    stats.documentProblem = path;
    return;
  }
  const element = (text: string | undefined): void => {
    stats.lines += 1;
    const record = stats.lines;
    if (text === undefined) {
      extractor.collector.reject(
        record,
        '',
        `element longer than ${MAX_JSON_LINE_LENGTH} characters`,
      );
      return;
    }
    extractor.record(text, record);
  };
  const scanner = new JsonElementScanner(path, element, MAX_JSON_LINE_LENGTH);

  const sniffer = new HtmlSniffer();
  for await (const text of decodeText(input)) {
    if (sniffer.looksLikeHtml(text)) {
      stats.looksLikeHtml = true;
      return;
    }
    scanner.push(text);
    if (extractor.collector.entries.length >= ENTRY_BATCH_SIZE) yield extractor.collector.take();
  }
  const problem = scanner.end();
  if (problem !== undefined) {
    stats.documentProblem = `${problem} (elements at ${formatElementPath(path)})`;
  }
  if (extractor.collector.entries.length > 0) yield extractor.collector.take();
}

/** Reads JSON lines into `stats` and yields the extracted entries in batches of about `ENTRY_BATCH_SIZE`. */
async function* lineBatches(
  input: AsyncIterable<Buffer | string> | Buffer | string,
  extractor: ValueExtractor,
  stats: JsonStats,
): AsyncGenerator<SourceEntry[]> {
  let pending = '';
  let overlong = false;
  const sniffer = new HtmlSniffer();

  const line = (raw: string): void => {
    stats.lines += 1;
    const trimmed = raw.trim();
    if (trimmed === '') {
      stats.blank += 1;
      return;
    }
    extractor.record(trimmed, stats.lines);
  };
  const overlongLine = (): void => {
    stats.lines += 1;
    extractor.collector.reject(
      stats.lines,
      '',
      `line longer than ${MAX_JSON_LINE_LENGTH} characters`,
    );
  };

  for await (const text of decodeText(input)) {
    if (sniffer.looksLikeHtml(text)) {
      stats.looksLikeHtml = true;
      return;
    }
    let start = 0;
    let newline = text.indexOf('\n');
    while (newline >= 0) {
      if (overlong) overlongLine();
      else line(pending + text.slice(start, newline));
      overlong = false;
      pending = '';
      start = newline + 1;
      newline = text.indexOf('\n', start);
    }
    if (!overlong) pending += text.slice(start);
    if (pending.length > MAX_JSON_LINE_LENGTH) {
      overlong = true;
      pending = '';
    }
    if (extractor.collector.entries.length >= ENTRY_BATCH_SIZE) yield extractor.collector.take();
  }
  if (overlong) overlongLine();
  else if (pending !== '') line(pending);
  if (extractor.collector.entries.length > 0) yield extractor.collector.take();
}

/** Checks the first 1,024 characters of a body read in pieces for an HTML page. */
class HtmlSniffer {
  private head = '';

  /** Adds the next piece; true once the head looks like HTML. */
  looksLikeHtml(text: string): boolean {
    if (this.head.length >= 1024) return false;
    this.head += text.slice(0, 1024 - this.head.length);
    return looksLikeHtml(this.head);
  }
}

/** Decides whether a parsed JSON body is a plausible snapshot of the feed. */
export function judgeJson(stats: JsonStats): { ok: true } | { ok: false; reason: string } {
  if (stats.looksLikeHtml) {
    return { ok: false, reason: 'the body looks like an HTML page, not JSON' };
  }
  if (stats.documentProblem !== undefined) return { ok: false, reason: stats.documentProblem };
  return judgeValues({
    ...stats,
    records: stats.lines - stats.blank,
    recordName: recordNameOf(stats),
  });
}

/** Names the records of a parsed body in messages. */
function recordNameOf(stats: JsonStats): string {
  if (stats.elements === true) return 'elements';
  return stats.lines === 1 ? 'document' : 'lines';
}

/** The cursor key under which a json source with a `versionUrl` keeps the version of its last applied list. */
export const LIST_VERSION_KEY = 'listVersion';

/** Largest version document accepted, in bytes. */
const MAX_VERSION_BYTES = 64 * 1024;

interface ListVersion {
  /** The `latest` value of the version document. */
  latest: string;
  /** Digest of the json settings the list was read with, so that changed settings read it again. */
  settings: string;
}

/**
 * Reads a `json` source. With a `versionUrl`, the version document is fetched
 * first: while its `latest` and the source's settings are the ones stored
 * with the last applied list, the poll reports the list as unchanged (which
 * refreshes its values) without fetching it, or as not modified for an
 * allow-list source. A new version reads the list in full, skipping
 * conditional GET, so that the version stored with it is the one just read.
 */
export async function readJsonSource(context: ReadContext): Promise<ReadResult> {
  const settings = context.source.json;
  if (!settings) throw new Error(`source ${context.source.id} has kind json but no json settings`);
  if (settings.versionUrl === undefined) return readJsonList(context, settings);

  const version: ListVersion = {
    latest: await fetchLatestVersion(settings.versionUrl, context),
    settings: createHash('sha256').update(JSON.stringify(settings)).digest('base64url'),
  };
  const stored = context.previous?.cursor?.[LIST_VERSION_KEY] as Partial<ListVersion> | undefined;
  const same = stored?.latest === version.latest && stored.settings === version.settings;
  const { previous, unchangedDigest, logger } = context;
  if (same && unchangedDigest !== undefined) {
    logger.info({ version: version.latest }, 'list version unchanged; the list is not fetched');
    return {
      kind: 'unchanged',
      bodyDigest: unchangedDigest,
      bytes: 0,
      etag: previous?.etag,
      lastModified: previous?.lastModified,
      parse: () => readVersionedList(context, settings, version),
    };
  }
  if (same && context.source.role === 'allow-list') {
    logger.info({ version: version.latest }, 'list version unchanged; the list is not fetched');
    return { kind: 'not-modified' };
  }
  return readVersionedList(context, settings, version);
}

async function readVersionedList(
  context: ReadContext,
  settings: JsonSettings,
  version: ListVersion,
): Promise<ReadResult> {
  const result = await readJsonList({ ...context, unchangedDigest: undefined }, settings, false);
  if (result.kind !== 'data') return result;
  return { ...result, cursor: { ...result.cursor, [LIST_VERSION_KEY]: version } };
}

function readJsonList(
  context: ReadContext,
  settings: JsonSettings,
  conditional = true,
): Promise<ReadResult> {
  return readWholeList(
    context,
    async (body) => {
      const { entries, stats } = await parseJson(body, settings, context.source.valueType);
      const judgement = judgeJson(stats);
      if (!judgement.ok) return judgement;
      return {
        ok: true,
        entries,
        stats: {
          lines: stats.lines,
          blank: stats.blank,
          unmatched: stats.unmatched,
          valid: stats.valid,
          invalid: stats.invalid,
          duplicates: stats.duplicates,
          invalidExamples: stats.invalidExamples,
        },
      };
    },
    conditional,
  );
}

/**
 * Fetches a version document and returns its `latest` field: an object such
 * as `{"instance": "Worldwide", "latest": "2024103100"}`, or a list holding
 * one such object.
 */
async function fetchLatestVersion(url: string, context: ReadContext): Promise<string> {
  const fetched = await fetchFeed(url, {
    ...fetchOptionsFor(context, false),
    maxBytes: MAX_VERSION_BYTES,
  });
  if (fetched.kind !== 'body') throw new Error(`GET ${redactUrl(url)} returned no body`);
  const chunks: Buffer[] = [];
  for await (const chunk of fetched.body) chunks.push(chunk);
  const shown = redactUrl(url);

  let document: unknown;
  try {
    document = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch (error) {
    throw new SourceRejectedError(
      `the version document ${shown} is not valid JSON (${(error as Error).message})`,
    );
  }
  const single = Array.isArray(document) && document.length === 1 ? document[0] : document;
  const latest = (single as { latest?: unknown } | null)?.latest;
  if (typeof latest === 'string' && latest !== '') return latest;
  if (typeof latest === 'number') return String(latest);
  throw new SourceRejectedError(
    Array.isArray(document)
      ? `the version document ${shown} lists ${document.length} instances; use the version URL of one instance, such as .../version/Worldwide`
      : `the version document ${shown} has no latest field; check versionUrl`,
  );
}
