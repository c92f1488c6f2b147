/**
 * The `csv` source kind: delimited text (RFC 4180) with one or more
 * indicator columns, picked by header name or by 1-based position.
 */
import { TextDecoder } from 'node:util';

import type { RE2JS } from 're2js';

import {
  canonicalize,
  detectAndCanonicalize,
  type CanonicalResult,
  type ValueType,
} from '../processing/index.js';
import type { SightingAttributes } from '../store/index.js';
import type { SourceEntry } from './kinds.js';
import { compileExtract, SeenValues, type InvalidExample } from './text-list.js';

/** A column of a CSV body: its header or `fields` name, or its 1-based position. */
export type CsvColumnRef = string | number;

export interface CsvColumn {
  column: CsvColumnRef;
  /** The type of every value in the column, or `auto` to detect it per cell. */
  valueType: ValueType | 'auto';
}

/** Skips a row whose cell in `column` equals `equals` or matches `matches` (trimmed, case-sensitive). */
export interface CsvSkipRule {
  column: CsvColumnRef;
  equals?: string;
  /** An RE2 pattern searched in the cell; see `compileExtract`. */
  matches?: string;
}

/**
 * Kinds of attribute column, whose cell applies to every value of its row:
 * - `firstSeen`, `lastSeen`: the source's own times, in a format of `parseFeedTime`;
 * - `port`: one or more ports 1-65535, separated by `,`, `;`, `|` or spaces;
 * - `malwareFamily`: one malware family name;
 * - `tags`: labels separated by `,`, `;` or `|`;
 * - `description`: free text;
 * - `confidence`: an integer 0-100 that replaces the source's confidence for the value.
 */
export type CsvAttributeKind =
  'firstSeen' | 'lastSeen' | 'port' | 'malwareFamily' | 'tags' | 'description' | 'confidence';

export const CSV_ATTRIBUTE_KINDS: readonly CsvAttributeKind[] = [
  'firstSeen',
  'lastSeen',
  'port',
  'malwareFamily',
  'tags',
  'description',
  'confidence',
];

export interface CsvAttributeColumn {
  column: CsvColumnRef;
  kind: CsvAttributeKind;
}

/** Settings of a `csv` source, resolved from the collection file. */
export interface CsvSettings {
  /** One character. */
  delimiter: string;
  /** Prefix of comment lines, up to four characters; empty when the body has no comments. */
  comment: string;
  /**
   * True when the body names its columns in a header row, or in the last
   * comment line before the first row (as abuse.ch writes `# id,dateadded,url`).
   * With `fields` set, a true `header` means the body's header row is dropped.
   */
  header: boolean;
  /** Column names for a body without a header row, in order. */
  fields?: string[];
  columns: CsvColumn[];
  skip: CsvSkipRule[];
  /** Columns whose cells become attributes of the row's values; absent or empty when none. */
  attributes?: CsvAttributeColumn[];
}

export interface CsvStats {
  /** Physical lines of the body, line breaks inside quoted fields included. */
  lines: number;
  blank: number;
  comments: number;
  /** Data rows, the header row not included. */
  rows: number;
  /** Rows dropped by a skip rule. */
  skipped: number;
  valid: number;
  /** Invalid values plus rows that could not be read (truncated, unclosed quote, too long). */
  invalid: number;
  duplicates: number;
  /**
   * Attribute cells that could not be read (a bad date, port or confidence).
   * The value is kept without that attribute; `invalidExamples` names the cell.
   */
  invalidAttributes: number;
  invalidExamples: InvalidExample[];
  looksLikeHtml: boolean;
  /** Set when a named column is missing from the header; parsing stopped there. */
  headerProblem?: string;
}

export interface CsvResult {
  entries: SourceEntry[];
  stats: CsvStats;
}

/** Maximum length of one record in UTF-16 code units; a longer one is counted invalid and skipped. */
export const MAX_RECORD_LENGTH = 65536;
const MAX_EXAMPLE_LENGTH = 200;
/** How much of the body's start is searched for signs of an HTML page. */
const HTML_SNIFF_LENGTH = 1024;

/**
 * Decodes body chunks to text: UTF-8, or UTF-16 when the body starts with a
 * UTF-16 byte order mark (Excel's "Unicode text" export). A byte order mark
 * is dropped in every encoding. Chunks may split a character anywhere.
 */
export async function* decodeText(
  input: AsyncIterable<Buffer | string> | Buffer | string,
): AsyncGenerator<string> {
  if (typeof input === 'string') {
    yield input.startsWith('\uFEFF') ? input.slice(1) : input;
    return;
  }
  const chunks: AsyncIterable<Buffer | string> = Buffer.isBuffer(input) ? once(input) : input;
  let decoder: TextDecoder | undefined;
  let head = Buffer.alloc(0);
  for await (const chunk of chunks) {
    if (typeof chunk === 'string') {
      yield chunk;
      continue;
    }
    if (decoder === undefined) {
      head = Buffer.concat([head, chunk]);
      if (head.length < 2) continue;
      decoder = new TextDecoder(encodingOf(head));
      yield decoder.decode(head, { stream: true });
      continue;
    }
    yield decoder.decode(chunk, { stream: true });
  }
  if (decoder === undefined) {
    yield new TextDecoder('utf-8').decode(head);
    return;
  }
  yield decoder.decode();
}

async function* once(buffer: Buffer): AsyncGenerator<Buffer> {
  yield buffer;
}

function encodingOf(head: Buffer): string {
  if (head[0] === 0xff && head[1] === 0xfe) return 'utf-16le';
  if (head[0] === 0xfe && head[1] === 0xff) return 'utf-16be';
  return 'utf-8';
}

/** True when the start of a body looks like an HTML page, such as a login wall served with status 200. */
export function looksLikeHtml(start: string): boolean {
  return start.trimStart().startsWith('<') || /<html[\s>]/i.test(start);
}

/**
 * Canonicalizes values, keeps each canonical value once, and counts valid,
 * invalid and duplicate values with a few invalid examples. With
 * `keepDuplicates` it keeps repeated values too and counts them as valid,
 * so its memory does not grow with the body (see `TextListOptions`).
 */
export class EntryCollector {
  /** The values kept since the last `take`. */
  entries: SourceEntry[] = [];
  valid = 0;
  invalid = 0;
  duplicates = 0;
  readonly invalidExamples: InvalidExample[] = [];
  /** Undefined with `keepDuplicates`. */
  private readonly seen: SeenValues | undefined;

  constructor(
    private readonly maxExamples = 5,
    keepDuplicates = false,
  ) {
    this.seen = keepDuplicates ? undefined : new SeenValues();
  }

  /**
   * Canonicalizes `text` as `type` (or detects its type) and keeps it when it
   * is valid and new. A duplicate keeps the attributes of its first listing.
   */
  add(
    text: string,
    type: ValueType | 'auto',
    line: number,
    context: string,
    attributes?: SightingAttributes,
  ): void {
    const result: CanonicalResult =
      type === 'auto' ? detectAndCanonicalize(text) : canonicalize(type, text);
    if (!result.ok) {
      this.reject(line, context, result.reason);
      return;
    }
    if (this.seen !== undefined && !this.seen.add(result.type, result.value)) {
      this.duplicates += 1;
      return;
    }
    this.valid += 1;
    this.entries.push(
      attributes === undefined
        ? { type: result.type, value: result.value }
        : { type: result.type, value: result.value, attributes },
    );
  }

  /** Returns the values kept since the last `take`. */
  take(): SourceEntry[] {
    const batch = this.entries;
    this.entries = [];
    return batch;
  }

  /** Counts one invalid value or unreadable record. */
  reject(line: number, text: string, reason: string): void {
    this.invalid += 1;
    if (this.invalidExamples.length < this.maxExamples) {
      this.invalidExamples.push({ line, text: text.slice(0, MAX_EXAMPLE_LENGTH), reason });
    }
  }
}

/**
 * Decides whether a parse of a structured body is a plausible snapshot: it
 * is not when nothing is valid or when invalid values are more than half of
 * the values read. `unmatched` counts records that yielded no value.
 */
export function judgeValues(counts: {
  valid: number;
  invalid: number;
  duplicates: number;
  unmatched?: number;
  records: number;
  recordName: string;
}): { ok: true } | { ok: false; reason: string } {
  const unmatched = counts.unmatched ?? 0;
  if (counts.valid === 0) {
    return { ok: false, reason: `no valid values in ${counts.records} ${counts.recordName}` };
  }
  const read = counts.valid + counts.duplicates + counts.invalid + unmatched;
  const rejected = counts.invalid + unmatched;
  if (rejected * 2 > read) {
    return {
      ok: false,
      reason:
        unmatched > 0
          ? `${counts.invalid} invalid and ${unmatched} missing of ${read} values (more than half)`
          : `${counts.invalid} of ${read} values are invalid (more than half)`,
    };
  }
  return { ok: true };
}

/** One record of a CSV body, as the tokenizer emits it. */
type CsvRecord =
  | { kind: 'row'; line: number; fields: string[] }
  | { kind: 'comment'; line: number; text: string }
  | { kind: 'blank' }
  | { kind: 'broken'; line: number; text: string; reason: string };

type TokenizerState =
  | 'recordStart'
  | 'prefix'
  | 'fieldStart'
  | 'unquoted'
  | 'quoted'
  | 'quoteInQuoted'
  | 'comment'
  | 'skipLine';

/** The longest comment text kept for header detection. */
const MAX_COMMENT_LENGTH = 4096;

/**
 * Splits text into records following RFC 4180: fields separated by the
 * delimiter, records by LF or CRLF, quoted fields that may hold delimiters,
 * line breaks and doubled quotes. It is lenient where Excel and feeds are:
 * spaces around a quoted field are ignored, text after a closing quote is
 * kept, a quote inside an unquoted field is an ordinary character and
 * unquoted fields are trimmed. A line that starts with the comment prefix
 * is a comment. Text may arrive in chunks split anywhere.
 */
class CsvTokenizer {
  private state: TokenizerState = 'recordStart';
  private field = '';
  private fields: string[] = [];
  private quoted = false;
  private prefix = '';
  private comment = '';
  private recordLength = 0;
  private line = 1;
  private recordLine = 1;
  private lastChar = '';

  constructor(
    private readonly delimiter: string,
    private readonly commentPrefix: string,
    private readonly emit: (record: CsvRecord) => void,
  ) {}

  write(text: string): void {
    for (let i = 0; i < text.length; i += 1) this.char(text[i]!);
  }

  end(): void {
    switch (this.state) {
      case 'recordStart':
      case 'skipLine':
        break;
      case 'comment':
        this.emit({ kind: 'comment', line: this.recordLine, text: this.comment });
        break;
      case 'prefix':
        this.replayPrefix('');
        this.endRecord();
        break;
      case 'quoted':
        this.emit({
          kind: 'broken',
          line: this.recordLine,
          text: [...this.fields, this.field].join(this.delimiter),
          reason: 'quoted field not closed at the end of the body (truncated download?)',
        });
        break;
      default:
        this.endRecord();
    }
  }

  /** Physical lines read; a last line without a line break counts. */
  lines(): number {
    if (this.lastChar === '') return 0;
    return this.lastChar === '\n' ? this.line - 1 : this.line;
  }

  private char(ch: string): void {
    this.lastChar = ch;
    if (this.state !== 'recordStart' && this.state !== 'skipLine') {
      this.recordLength += 1;
      if (this.recordLength > MAX_RECORD_LENGTH) {
        this.emit({
          kind: 'broken',
          line: this.recordLine,
          text: '',
          reason: `record longer than ${MAX_RECORD_LENGTH} characters`,
        });
        this.reset();
        this.state = 'skipLine';
      }
    }
    this.step(ch);
    if (ch === '\n') this.line += 1;
  }

  private step(ch: string): void {
    // A CR outside quotes is part of a CRLF line end or stray whitespace, never data.
    if (ch === '\r' && this.state !== 'quoted') return;
    switch (this.state) {
      case 'recordStart':
        this.recordLine = this.line;
        this.recordLength = 1;
        if (this.commentPrefix !== '' && ch === this.commentPrefix[0]) {
          this.prefix = ch;
          this.state = this.commentPrefix.length === 1 ? 'comment' : 'prefix';
          return;
        }
        this.state = 'fieldStart';
        this.step(ch);
        return;
      case 'prefix':
        if (ch === this.commentPrefix[this.prefix.length]) {
          this.prefix += ch;
          if (this.prefix === this.commentPrefix) this.state = 'comment';
          return;
        }
        this.replayPrefix(ch);
        return;
      case 'comment':
        if (ch === '\n') {
          this.emit({ kind: 'comment', line: this.recordLine, text: this.comment });
          this.reset();
        } else if (this.comment.length < MAX_COMMENT_LENGTH) {
          this.comment += ch;
        }
        return;
      case 'skipLine':
        if (ch === '\n') this.state = 'recordStart';
        return;
      case 'fieldStart':
        if (ch === '"' && this.field.trim() === '') {
          this.field = '';
          this.quoted = true;
          this.state = 'quoted';
        } else if (ch === this.delimiter) {
          this.endField();
        } else if (ch === '\n') {
          this.endRecord();
        } else {
          this.field += ch;
          if (ch !== ' ' && ch !== '\t') this.state = 'unquoted';
        }
        return;
      case 'unquoted':
        if (ch === this.delimiter) this.endField();
        else if (ch === '\n') this.endRecord();
        else this.field += ch;
        return;
      case 'quoted':
        if (ch === '"') this.state = 'quoteInQuoted';
        else this.field += ch;
        return;
      case 'quoteInQuoted':
        if (ch === '"') {
          this.field += '"';
          this.state = 'quoted';
        } else if (ch === this.delimiter) {
          this.endField();
        } else if (ch === '\n') {
          this.endRecord();
        } else if (ch !== ' ' && ch !== '\t') {
          this.field += ch;
          this.state = 'unquoted';
        }
        return;
    }
  }

  /** Parses the characters buffered while matching a multi-character comment prefix as data. */
  private replayPrefix(next: string): void {
    const buffered = this.prefix + next;
    this.prefix = '';
    this.state = 'fieldStart';
    for (const ch of buffered) this.step(ch);
  }

  private endField(): void {
    this.fields.push(this.quoted ? this.field : this.field.trim());
    this.field = '';
    this.quoted = false;
    this.state = 'fieldStart';
  }

  private endRecord(): void {
    const blankCandidate = !this.quoted && this.fields.length === 0;
    this.endField();
    const fields = this.fields;
    if (blankCandidate && fields.length === 1 && fields[0] === '') this.emit({ kind: 'blank' });
    else this.emit({ kind: 'row', line: this.recordLine, fields });
    this.reset();
  }

  private reset(): void {
    this.field = '';
    this.fields = [];
    this.quoted = false;
    this.prefix = '';
    this.comment = '';
    this.recordLength = 0;
    this.state = 'recordStart';
  }
}

/** Splits one line of text into fields; used for a header written as a comment. */
function splitLine(text: string, delimiter: string): string[] {
  let fields: string[] = [];
  const tokenizer = new CsvTokenizer(delimiter, '', (record) => {
    if (record.kind === 'row' && fields.length === 0) fields = record.fields;
  });
  tokenizer.write(text);
  tokenizer.end();
  return fields;
}

interface ResolvedColumn {
  name: string;
  /** 0-based index into the row's fields. */
  index: number;
}

interface ResolvedSkip {
  column: ResolvedColumn;
  equals?: string;
  matches?: RE2JS;
}

/** Maps rows to values once the header gives the position of each configured column. */
class CsvRowReader {
  readonly stats: CsvStats = {
    lines: 0,
    blank: 0,
    comments: 0,
    rows: 0,
    skipped: 0,
    valid: 0,
    invalid: 0,
    duplicates: 0,
    invalidAttributes: 0,
    invalidExamples: [],
    looksLikeHtml: false,
  };
  readonly collector: EntryCollector;
  private columns: (ResolvedColumn & { valueType: ValueType | 'auto' })[] | undefined;
  private attributeColumns: (ResolvedColumn & { kind: CsvAttributeKind })[] = [];
  private skip: ResolvedSkip[] = [];
  private lastComment: string | undefined;
  private readonly skipPatterns: (RE2JS | undefined)[];

  constructor(
    private readonly settings: CsvSettings,
    keepDuplicates = false,
  ) {
    this.collector = new EntryCollector(5, keepDuplicates);
    this.skipPatterns = settings.skip.map((rule) =>
      rule.matches === undefined ? undefined : compileExtract(rule.matches),
    );
  }

  /** True once a header problem stopped the parse. */
  get stopped(): boolean {
    return this.stats.headerProblem !== undefined;
  }

  record(record: CsvRecord): void {
    if (this.stopped) return;
    switch (record.kind) {
      case 'blank':
        this.stats.blank += 1;
        return;
      case 'comment':
        this.stats.comments += 1;
        if (this.columns === undefined) this.lastComment = record.text;
        return;
      case 'broken':
        this.stats.rows += 1;
        this.collector.reject(record.line, record.text, record.reason);
        return;
      case 'row':
        if (this.columns === undefined && this.resolveHeader(record.fields)) return;
        this.row(record.line, record.fields);
    }
  }

  /** Resolves the configured columns; returns true when `first` was a header row to drop. */
  private resolveHeader(first: string[]): boolean {
    const { settings } = this;
    let names: string[] | undefined = settings.fields;
    let drop = settings.header;
    if (names === undefined && settings.header) {
      const required = this.namedColumns();
      const fromComment =
        this.lastComment === undefined
          ? undefined
          : splitLine(this.lastComment.trimStart(), settings.delimiter);
      if (required.every((name) => indexOfName(first, name) >= 0)) {
        names = first;
      } else if (fromComment && required.every((name) => indexOfName(fromComment, name) >= 0)) {
        names = fromComment;
        drop = false;
      } else {
        const missing = required.filter((name) => indexOfName(first, name) < 0);
        this.stats.headerProblem = `column ${missing.map((m) => JSON.stringify(m)).join(', ')} not found in the header row (${first.join(', ')}); fix columns or skip, or set header: false and fields`;
        return true;
      }
    }

    const resolve = (ref: CsvColumnRef): ResolvedColumn =>
      typeof ref === 'number'
        ? { name: `field ${ref}`, index: ref - 1 }
        : { name: ref, index: indexOfName(names ?? [], ref) };
    this.columns = settings.columns.map((column) => ({
      ...resolve(column.column),
      valueType: column.valueType,
    }));
    this.attributeColumns = (settings.attributes ?? []).map((attribute) => ({
      ...resolve(attribute.column),
      kind: attribute.kind,
    }));
    this.skip = settings.skip.map((rule, i) => ({
      column: resolve(rule.column),
      equals: rule.equals,
      matches: this.skipPatterns[i],
    }));
    return drop;
  }

  private namedColumns(): string[] {
    const refs = [
      ...this.settings.columns.map((column) => column.column),
      ...this.settings.skip.map((rule) => rule.column),
      ...(this.settings.attributes ?? []).map((attribute) => attribute.column),
    ];
    return refs.filter((ref): ref is string => typeof ref === 'string');
  }

  private row(line: number, fields: string[]): void {
    this.stats.rows += 1;
    if (this.skip.some((rule) => skipMatches(rule, fields))) {
      this.stats.skipped += 1;
      return;
    }

    const columns = this.columns ?? [];
    const text = fields.join(this.settings.delimiter);
    const missing = columns.find((column) => column.index >= fields.length);
    if (missing) {
      this.collector.reject(
        line,
        text,
        `row has ${fields.length} fields but column ${JSON.stringify(missing.name)} is field ${missing.index + 1} (truncated row?)`,
      );
      return;
    }

    const attributes = this.rowAttributes(line, fields, text);
    let values = 0;
    for (const column of columns) {
      const cell = fields[column.index]!.trim();
      if (cell === '') continue;
      values += 1;
      this.collector.add(cell, column.valueType, line, text, attributes);
    }
    if (values === 0) {
      this.collector.reject(
        line,
        text,
        `no value in column ${columns.map((c) => JSON.stringify(c.name)).join(', ')}`,
      );
    }
  }

  /**
   * Reads the attribute cells of a row. An empty or missing cell gives no
   * attribute; an unreadable one is counted and named in the examples.
   */
  private rowAttributes(
    line: number,
    fields: string[],
    text: string,
  ): SightingAttributes | undefined {
    if (this.attributeColumns.length === 0) return undefined;
    const attributes: SightingAttributes = {};
    for (const column of this.attributeColumns) {
      const cell = fields[column.index]?.trim() ?? '';
      if (cell === '') continue;
      const problem = readAttribute(attributes, column.kind, cell);
      if (problem === undefined) continue;
      this.stats.invalidAttributes += 1;
      const examples = this.collector.invalidExamples;
      if (examples.length < MAX_ATTRIBUTE_EXAMPLES) {
        examples.push({
          line,
          text: text.slice(0, MAX_EXAMPLE_LENGTH),
          reason: `column ${JSON.stringify(column.name)}: ${problem}; the row's values are kept without it`,
        });
      }
    }
    return Object.keys(attributes).length === 0 ? undefined : attributes;
  }

  result(lines: number): CsvResult {
    const { collector } = this;
    return {
      entries: collector.entries,
      stats: {
        ...this.stats,
        lines,
        valid: collector.valid,
        invalid: collector.invalid,
        duplicates: collector.duplicates,
        invalidExamples: collector.invalidExamples,
      },
    };
  }
}

const MAX_ATTRIBUTE_EXAMPLES = 5;
const LIST_SEPARATORS = /[,;|]/;
const PORT_SEPARATORS = /[,;|\s]+/;

/** Adds one attribute cell to `attributes`; returns why the cell is invalid, or undefined. */
function readAttribute(
  attributes: SightingAttributes,
  kind: CsvAttributeKind,
  cell: string,
): string | undefined {
  switch (kind) {
    case 'firstSeen':
    case 'lastSeen': {
      const micros = parseFeedTime(cell);
      if (micros === undefined) {
        return `invalid ${kind} time ${JSON.stringify(cell)}: expected ISO 8601 (2024-01-02T03:04:05Z), "2024-01-02 03:04:05" (UTC), a date or Unix seconds or milliseconds`;
      }
      attributes[kind] = micros;
      return undefined;
    }
    case 'port': {
      const ports: number[] = [];
      for (const part of cell.split(PORT_SEPARATORS)) {
        if (part === '') continue;
        const port = /^[0-9]{1,5}$/.test(part) ? Number(part) : NaN;
        if (!(port >= 1 && port <= 65535)) {
          return `invalid port ${JSON.stringify(part)}: expected an integer 1-65535`;
        }
        ports.push(port);
      }
      if (ports.length > 0) attributes.ports = [...(attributes.ports ?? []), ...ports];
      return undefined;
    }
    case 'malwareFamily':
      attributes.malwareFamilies = [...(attributes.malwareFamilies ?? []), cell];
      return undefined;
    case 'tags': {
      const tags = cell
        .split(LIST_SEPARATORS)
        .map((tag) => tag.trim())
        .filter((tag) => tag !== '');
      if (tags.length > 0) attributes.labels = [...(attributes.labels ?? []), ...tags];
      return undefined;
    }
    case 'description':
      attributes.description = cell;
      return undefined;
    case 'confidence': {
      const confidence = /^[0-9]{1,3}$/.test(cell) ? Number(cell) : NaN;
      if (!(confidence >= 0 && confidence <= 100)) {
        return `invalid confidence ${JSON.stringify(cell)}: expected an integer 0-100`;
      }
      attributes.confidence = confidence;
      return undefined;
    }
  }
}

const ISO_TIME =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?\s*(Z|UTC|[+-]\d{2}:?\d{2})?$/i;

/**
 * Parses a time as feeds write it and returns microseconds since the Unix
 * epoch, or undefined when the text matches none of these forms:
 * - RFC 3339 / ISO 8601 date and time, `T` or a space between them, with
 *   `Z`, `UTC`, an offset such as `+02:00`, or nothing, which means UTC;
 * - a date alone (`2024-01-02`, midnight UTC);
 * - Unix time: up to 11 digits are seconds (with an optional fraction), 12 or
 *   13 digits are milliseconds.
 */
export function parseFeedTime(text: string): number | undefined {
  const trimmed = text.trim();
  const unix = /^(\d{1,13})(?:\.(\d{1,6}))?$/.exec(trimmed);
  if (unix !== null) {
    const digits = unix[1]!;
    if (digits.length >= 12) {
      return unix[2] === undefined ? Number(digits) * 1000 : undefined;
    }
    const fraction = unix[2] === undefined ? 0 : Number(unix[2].padEnd(6, '0'));
    return Number(digits) * 1_000_000 + fraction;
  }

  const match = ISO_TIME.exec(trimmed);
  if (match === null) return undefined;
  const [, year, month, day, hour = '0', minute = '0', second = '0', fraction = '', zone] = match;
  const fields = [Number(month), Number(day), Number(hour), Number(minute), Number(second)];
  const [mo, d, h, mi, sec] = fields as [number, number, number, number, number];
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) return undefined;
  const millis = Date.UTC(Number(year), mo - 1, d, h, mi, Math.min(sec, 59));
  // Date.UTC rolls an impossible day (February 30) over into the next month.
  if (new Date(millis).getUTCDate() !== d) return undefined;
  let micros = millis * 1000 + Number(fraction.slice(0, 6).padEnd(6, '0'));
  if (zone !== undefined && /^[+-]/.test(zone)) {
    const digits = zone.replace(':', '');
    const offset = Number(digits.slice(1, 3)) * 60 + Number(digits.slice(3, 5));
    micros -= (zone.startsWith('-') ? -1 : 1) * offset * 60_000_000;
  }
  return micros;
}

/** Finds a column name in a header, ignoring case and surrounding spaces. */
function indexOfName(header: string[], name: string): number {
  const target = name.trim().toLowerCase();
  return header.findIndex((cell) => cell.trim().toLowerCase() === target);
}

function skipMatches(rule: ResolvedSkip, fields: string[]): boolean {
  const cell = fields[rule.column.index]?.trim();
  if (cell === undefined) return false;
  if (rule.equals !== undefined) return cell === rule.equals;
  return rule.matches !== undefined && rule.matches.matcher(cell).find();
}

/** The minimum number of entries in each batch of `streamCsv` but the last. */
const ENTRY_BATCH_SIZE = 1000;

/** A CSV body parsed while it is read. */
export interface CsvStream {
  /** The entries in body order, each canonical value once unless `keepDuplicates` is set. Iterate once. */
  batches: AsyncGenerator<SourceEntry[]>;
  /** Returns the counts so far, which are final once `batches` has ended. */
  stats: () => CsvStats;
}

/**
 * Parses a CSV body into canonical values from the configured columns.
 * Parsing stops early, with `looksLikeHtml` or `headerProblem` set, when
 * the body is an HTML page or lacks a named column.
 */
export async function parseCsv(
  input: AsyncIterable<Buffer | string> | Buffer | string,
  settings: CsvSettings,
): Promise<CsvResult> {
  const parsed = streamCsv(input, settings);
  const entries: SourceEntry[] = [];
  for await (const batch of parsed.batches) {
    for (const entry of batch) entries.push(entry);
  }
  return { entries, stats: parsed.stats() };
}

/**
 * Parses a CSV body as `parseCsv` does, but hands the entries on in batches
 * while the input is read, so only one batch of entries is held at a time.
 * The set of values seen, which finds duplicates, still grows with the body,
 * unless `keepDuplicates` is set (see `TextListOptions`).
 */
export function streamCsv(
  input: AsyncIterable<Buffer | string> | Buffer | string,
  settings: CsvSettings,
  options: { keepDuplicates?: boolean } = {},
): CsvStream {
  const reader = new CsvRowReader(settings, options.keepDuplicates === true);
  const tokenizer = new CsvTokenizer(settings.delimiter, settings.comment, (record) =>
    reader.record(record),
  );
  let lines = 0;
  async function* batches(): AsyncGenerator<SourceEntry[]> {
    let sniffed = '';
    for await (const text of decodeText(input)) {
      if (sniffed.length < HTML_SNIFF_LENGTH) {
        sniffed += text.slice(0, HTML_SNIFF_LENGTH - sniffed.length);
        if (looksLikeHtml(sniffed)) {
          reader.stats.looksLikeHtml = true;
          return;
        }
      }
      tokenizer.write(text);
      if (reader.stopped) break;
      if (reader.collector.entries.length >= ENTRY_BATCH_SIZE) yield reader.collector.take();
    }
    if (!reader.stopped) tokenizer.end();
    lines = tokenizer.lines();
    if (reader.collector.entries.length > 0) yield reader.collector.take();
  }
  return { batches: batches(), stats: () => reader.result(lines).stats };
}

/** Decides whether a parsed CSV body is a plausible snapshot of the feed. */
export function judgeCsv(stats: CsvStats): { ok: true } | { ok: false; reason: string } {
  if (stats.looksLikeHtml) {
    return { ok: false, reason: 'the body looks like an HTML page, not CSV' };
  }
  if (stats.headerProblem !== undefined) return { ok: false, reason: stats.headerProblem };
  const skipped = stats.skipped > 0 ? ` (${stats.skipped} skipped by skip rules)` : '';
  return judgeValues({ ...stats, records: stats.rows, recordName: `rows${skipped}` });
}
