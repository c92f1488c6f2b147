/**
 * The `json` source kind: a JSON document or JSON lines, with the values
 * picked by a JMESPath expression (the JMESPath Community edition, see
 * https://jmespath.site). Presets for published cloud ranges live in
 * `presets.ts`.
 */
import { compile, TreeInterpreter, type JSONValue } from '@jmespath-community/jmespath';

import type { ValueType } from '../processing/index.js';
import { decodeText, EntryCollector, judgeValues, looksLikeHtml } from './csv.js';
import type { SourceEntry } from './kinds.js';
import type { InvalidExample } from './text-list.js';

/** Settings of a `json` source, resolved from the collection file. */
export interface JsonSettings {
  /** `document`: the body is one JSON value. `lines`: one JSON value per line (JSON Lines). */
  format: 'document' | 'lines';
  /** JMESPath expression applied to the document, or to each line. */
  expression: string;
  /** Field holding the value when the expression yields objects. */
  value?: string;
}

export interface JsonStats {
  /** Lines of a `lines` body; 1 for a document. */
  lines: number;
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

/**
 * Maximum length of one line of a `lines` body in UTF-16 code units; a
 * longer line counts as invalid and is skipped without being buffered.
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
  readonly collector = new EntryCollector();
  unmatched = 0;

  constructor(
    private readonly settings: JsonSettings,
    private readonly valueType: ValueType | 'auto',
  ) {
    this.node = compileExpression(settings.expression);
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

function resultOf(extractor: ValueExtractor, stats: JsonStats): JsonResult {
  const { collector } = extractor;
  return {
    entries: collector.entries,
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
  return settings.format === 'lines'
    ? parseLines(input, extractor)
    : parseDocument(input, extractor, settings);
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

async function parseLines(
  input: AsyncIterable<Buffer | string> | Buffer | string,
  extractor: ValueExtractor,
): Promise<JsonResult> {
  const stats = emptyStats();
  let pending = '';
  let overlong = false;
  let sniffed = '';

  const line = (raw: string): void => {
    stats.lines += 1;
    const trimmed = raw.trim();
    if (trimmed === '') {
      stats.blank += 1;
      return;
    }
    let data: JSONValue;
    try {
      data = JSON.parse(trimmed) as JSONValue;
    } catch (error) {
      extractor.collector.reject(
        stats.lines,
        trimmed,
        `not valid JSON: ${(error as Error).message}`,
      );
      return;
    }
    const failure = extractor.extract(data, stats.lines, trimmed);
    if (failure !== undefined) extractor.collector.reject(stats.lines, trimmed, failure);
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
    if (sniffed.length < 1024) {
      sniffed += text.slice(0, 1024 - sniffed.length);
      if (looksLikeHtml(sniffed)) {
        stats.looksLikeHtml = true;
        return resultOf(extractor, stats);
      }
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
  }
  if (overlong) overlongLine();
  else if (pending !== '') line(pending);
  return resultOf(extractor, stats);
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
    recordName: stats.lines === 1 ? 'document' : 'lines',
  });
}
