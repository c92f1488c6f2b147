import { StringDecoder } from 'node:string_decoder';

import { RE2JS } from 're2js';

import {
  canonicalize,
  detectAndCanonicalize,
  type CanonicalResult,
  type ValueType,
} from '../processing/index.js';

export interface TextListOptions {
  /** The type of every value, or `auto` (the default) to detect it per line. */
  valueType?: ValueType | 'auto';
  /**
   * Takes the value from the first capture group (or the whole match) of this
   * expression; lines that do not match count as `unmatched`, not invalid.
   * It runs on the linear-time RE2 engine (see `compileExtract`), so a hostile
   * line cannot make it backtrack; the flags `i`, `m` and `s` are kept.
   */
  extract?: RegExp;
  /** Invalid lines kept as examples in the stats; 10 by default. */
  maxInvalidExamples?: number;
  /**
   * Hands on every valid line's value, repeated values included, and counts
   * them all as valid, with no duplicates. Memory then does not grow with
   * the list: the caller removes and counts the repeats (the store's stage
   * does for a streamed poll).
   */
  keepDuplicates?: boolean;
}

export interface TextListEntry {
  type: ValueType;
  value: string;
}

export interface InvalidExample {
  /** 1-based line number. */
  line: number;
  /** The line, cut to 200 characters. */
  text: string;
  reason: string;
}

export interface TextListStats {
  lines: number;
  blank: number;
  comments: number;
  unmatched: number;
  valid: number;
  invalid: number;
  /** Valid lines whose canonical value an earlier line already had. */
  duplicates: number;
  invalidExamples: InvalidExample[];
  /** True when the body started like an HTML page; parsing stops there. */
  looksLikeHtml: boolean;
}

export interface TextListResult {
  entries: TextListEntry[];
  stats: TextListStats;
}

const BOM = '\uFEFF';
const MAX_EXAMPLE_LENGTH = 200;
/** How much of the body's start is searched for an `<html` tag. */
const HTML_SNIFF_LENGTH = 1024;
/**
 * Maximum length of a parsed line, in UTF-16 code units. A longer line is counted invalid
 * and skipped without being buffered, so a body without newlines costs linear
 * time and bounded memory.
 */
export const MAX_LINE_LENGTH = 65536;
/** A comment after a value starts with whitespace, then `#` or `;` (Spamhaus: `1.2.3.0/24 ; SBL123`). */
const TRAILING_COMMENT = /\s[#;]/;

/** The minimum number of entries in each batch of `streamTextList` but the last. */
const ENTRY_BATCH_SIZE = 1000;

/** A text list parsed while it is read. */
export interface TextListStream {
  /** The entries in list order, each canonical value once unless `keepDuplicates` is set. Iterate once. */
  batches: AsyncGenerator<TextListEntry[]>;
  /** The counts so far, which are final once `batches` has ended. */
  stats: TextListStats;
}

/**
 * Parses a plain-text indicator list line by line. Input may arrive in
 * chunks split anywhere, even inside a UTF-8 sequence or a CRLF. Whole-line
 * comments start with `#` or `;`. Blank lines, a UTF-8 BOM, CRLF and
 * trailing whitespace are tolerated; a body that starts with a UTF-16 BOM
 * is read as UTF-16. A second whitespace-separated
 * column (IPsum's `ip<TAB>count`) is ignored. Values are canonicalized and
 * each canonical value is returned once.
 * An HTML page (a login wall or an error page served with status 200) is
 * detected from the first bytes and stops the parse with `looksLikeHtml`.
 */
export async function parseTextList(
  input: AsyncIterable<Buffer | string> | Buffer | string,
  options: TextListOptions = {},
): Promise<TextListResult> {
  const parsed = streamTextList(input, options);
  const entries: TextListEntry[] = [];
  for await (const batch of parsed.batches) {
    for (const entry of batch) entries.push(entry);
  }
  return { entries, stats: parsed.stats };
}

/**
 * Parses a text list as `parseTextList` does, but hands the entries on in
 * batches while the input is read, so only one batch of entries is held at
 * a time. The set of values seen, which finds duplicates, still grows with
 * the list, unless `keepDuplicates` is set.
 */
export function streamTextList(
  input: AsyncIterable<Buffer | string> | Buffer | string,
  options: TextListOptions = {},
): TextListStream {
  const parser = new LineParser(options);
  return { batches: parseLines(input, parser), stats: parser.stats };
}

async function* parseLines(
  input: AsyncIterable<Buffer | string> | Buffer | string,
  parser: LineParser,
): AsyncGenerator<TextListEntry[]> {
  const decoder = new BodyDecoder();
  let pending = '';
  /** True while skipping the rest of a line longer than MAX_LINE_LENGTH. */
  let overlong = false;
  let sniffed = '';

  for await (const chunk of toChunks(input)) {
    const text = typeof chunk === 'string' ? chunk : decoder.write(chunk);
    if (sniffed.length < HTML_SNIFF_LENGTH) {
      sniffed += text.slice(0, HTML_SNIFF_LENGTH - sniffed.length);
      if (looksLikeHtml(sniffed)) {
        parser.stats.looksLikeHtml = true;
        return;
      }
    }

    // Only the new text is searched for line ends, so each byte is scanned once.
    let start = 0;
    let newline = text.indexOf('\n');
    while (newline >= 0) {
      if (overlong) parser.overlongLine();
      else parser.line(pending + text.slice(start, newline));
      overlong = false;
      pending = '';
      start = newline + 1;
      newline = text.indexOf('\n', start);
    }
    if (!overlong) pending += text.slice(start);
    if (pending.length > MAX_LINE_LENGTH) {
      overlong = true;
      pending = '';
    }
    if (parser.pendingEntries >= ENTRY_BATCH_SIZE) yield parser.take();
  }

  const tail = decoder.end();
  if (overlong) parser.overlongLine();
  else if (pending + tail !== '') parser.line(pending + tail);
  if (parser.pendingEntries > 0) yield parser.take();
}

/**
 * Decodes body bytes as UTF-8, or as UTF-16 when the body starts with a
 * UTF-16 byte order mark (lists saved as "Unicode" on Windows). The mark is
 * dropped; a UTF-8 one stays for the line parser. Chunks may split anywhere.
 */
class BodyDecoder {
  /** First bytes, held until two of them tell the encoding. */
  private head: Buffer = Buffer.alloc(0);
  private decoder: StringDecoder | undefined;
  private bigEndian = false;
  /** Odd trailing byte of a big-endian chunk, swapped with the next chunk. */
  private odd: Buffer | undefined;

  write(chunk: Buffer): string {
    let bytes = chunk;
    if (this.decoder === undefined) {
      bytes = Buffer.concat([this.head, chunk]);
      if (bytes.length < 2) {
        this.head = bytes;
        return '';
      }
      if (bytes[0] === 0xff && bytes[1] === 0xfe) {
        this.decoder = new StringDecoder('utf16le');
        bytes = bytes.subarray(2);
      } else if (bytes[0] === 0xfe && bytes[1] === 0xff) {
        this.decoder = new StringDecoder('utf16le');
        this.bigEndian = true;
        bytes = bytes.subarray(2);
      } else {
        this.decoder = new StringDecoder('utf8');
      }
    }
    return this.decoder.write(this.bigEndian ? this.swap(bytes) : bytes);
  }

  end(): string {
    if (this.decoder === undefined) return this.head.toString('utf8');
    return this.decoder.end(this.odd);
  }

  /** Turns big-endian UTF-16 into little-endian, carrying an odd byte over. */
  private swap(chunk: Buffer): Buffer {
    const bytes = this.odd ? Buffer.concat([this.odd, chunk]) : chunk;
    const even = bytes.length - (bytes.length % 2);
    this.odd = even < bytes.length ? Buffer.from(bytes.subarray(even)) : undefined;
    return Buffer.from(bytes.subarray(0, even)).swap16();
  }
}

async function* toChunks(
  input: AsyncIterable<Buffer | string> | Buffer | string,
): AsyncIterable<Buffer | string> {
  if (typeof input === 'string' || Buffer.isBuffer(input)) {
    yield input;
    return;
  }
  yield* input;
}

function looksLikeHtml(start: string): boolean {
  const trimmed = start.replace(/^\uFEFF/, '').trimStart();
  return trimmed.startsWith('<') || /<html[\s>]/i.test(start);
}

/**
 * Compiles an `extract` expression for the RE2 engine, whose matching time is
 * linear in the line length: a pattern such as `(a+)+$` cannot backtrack
 * exponentially on a hostile feed line. The JavaScript flags `i`, `m` and `s`
 * are kept; `g` and `y` are dropped, as each line is matched on its own.
 * Throws a `SyntaxError` naming the pattern when RE2 cannot run it
 * (backreferences and lookarounds have no linear-time form).
 */
export function compileExtract(pattern: RegExp | string): RE2JS {
  const source = typeof pattern === 'string' ? pattern : pattern.source;
  const jsFlags = typeof pattern === 'string' ? '' : pattern.flags;
  let flags = 0;
  if (jsFlags.includes('i')) flags |= RE2JS.CASE_INSENSITIVE;
  if (jsFlags.includes('m')) flags |= RE2JS.MULTILINE;
  if (jsFlags.includes('s')) flags |= RE2JS.DOTALL;
  try {
    return RE2JS.compile(RE2JS.translateRegExp(source), flags);
  } catch (error) {
    throw new SyntaxError(
      `${JSON.stringify(source)} cannot run in linear time (${(error as Error).message}); remove backreferences and lookarounds`,
      { cause: error },
    );
  }
}

/**
 * The canonical values that a parse has seen, to find duplicates. It keeps
 * one set per type, keyed by the value string itself, because a new
 * `type value` key string per value took about twice the memory.
 */
export class SeenValues {
  private readonly byType = new Map<string, Set<string>>();

  /** Adds a value; returns false when it was added before. */
  add(type: string, value: string): boolean {
    let values = this.byType.get(type);
    if (values === undefined) {
      values = new Set();
      this.byType.set(type, values);
    }
    if (values.has(value)) return false;
    values.add(value);
    return true;
  }
}

class LineParser {
  readonly stats: TextListStats = {
    lines: 0,
    blank: 0,
    comments: 0,
    unmatched: 0,
    valid: 0,
    invalid: 0,
    duplicates: 0,
    invalidExamples: [],
    looksLikeHtml: false,
  };
  private entries: TextListEntry[] = [];
  /** Undefined with `keepDuplicates`. */
  private readonly seen: SeenValues | undefined;
  private readonly canonical: (text: string) => CanonicalResult;
  private readonly extract: RE2JS | undefined;
  private readonly maxExamples: number;

  constructor(options: TextListOptions) {
    const type = options.valueType ?? 'auto';
    this.canonical = type === 'auto' ? detectAndCanonicalize : (text) => canonicalize(type, text);
    this.extract = options.extract ? compileExtract(options.extract) : undefined;
    this.maxExamples = options.maxInvalidExamples ?? 10;
    this.seen = options.keepDuplicates === true ? undefined : new SeenValues();
  }

  /** Counts a line longer than MAX_LINE_LENGTH as invalid; its text is not kept. */
  overlongLine(): void {
    this.stats.lines += 1;
    this.stats.invalid += 1;
    if (this.stats.invalidExamples.length < this.maxExamples) {
      this.stats.invalidExamples.push({
        line: this.stats.lines,
        text: '',
        reason: `line longer than ${MAX_LINE_LENGTH} characters`,
      });
    }
  }

  line(raw: string): void {
    this.stats.lines += 1;
    let line = this.stats.lines === 1 && raw.startsWith(BOM) ? raw.slice(1) : raw;
    if (line.endsWith('\r')) line = line.slice(0, -1);

    const trimmed = line.trim();
    if (trimmed === '') {
      this.stats.blank += 1;
      return;
    }
    if (trimmed.startsWith('#') || trimmed.startsWith(';')) {
      this.stats.comments += 1;
      return;
    }

    const value = this.valueOf(trimmed);
    if (value === undefined) {
      this.stats.unmatched += 1;
      return;
    }
    this.add(value, trimmed);
  }

  /** Returns the value text of a non-comment line, or undefined when `extract` does not match. */
  private valueOf(line: string): string | undefined {
    if (this.extract) {
      const match = this.extract.exec(line) as (string | undefined)[] | null;
      if (!match) return undefined;
      // Two groups are the ends of a range, as in DShield's start and end columns.
      if (match[2] !== undefined) return `${(match[1] ?? '').trim()}-${match[2].trim()}`;
      return (match[1] ?? match[0] ?? '').trim();
    }
    const comment = TRAILING_COMMENT.exec(line);
    const withoutComment = comment ? line.slice(0, comment.index) : line;
    return withoutComment.trim().split(/\s/, 1)[0] ?? '';
  }

  private add(value: string, line: string): void {
    const result = this.canonical(value);
    if (!result.ok) {
      this.stats.invalid += 1;
      if (this.stats.invalidExamples.length < this.maxExamples) {
        this.stats.invalidExamples.push({
          line: this.stats.lines,
          text: line.slice(0, MAX_EXAMPLE_LENGTH),
          reason: result.reason,
        });
      }
      return;
    }

    if (this.seen !== undefined && !this.seen.add(result.type, result.value)) {
      this.stats.duplicates += 1;
      return;
    }
    this.stats.valid += 1;
    this.entries.push({ type: result.type, value: result.value });
  }

  /** Entries parsed since the last `take`. */
  get pendingEntries(): number {
    return this.entries.length;
  }

  /** Returns the entries parsed since the last `take`. */
  take(): TextListEntry[] {
    const batch = this.entries;
    this.entries = [];
    return batch;
  }
}

/**
 * Decides whether a parsed body is a plausible snapshot of the list. It is
 * not when it looks like HTML, has no valid entry, or has more invalid lines
 * than half of its value lines (lines that are not blank or comments).
 */
export function judgeBody(stats: TextListStats): { ok: true } | { ok: false; reason: string } {
  if (stats.looksLikeHtml) {
    return { ok: false, reason: 'the body looks like an HTML page, not a text list' };
  }
  if (stats.valid === 0) {
    return { ok: false, reason: `no valid entries in ${stats.lines} lines` };
  }
  // Lines that miss the extract pattern count against the body too: an error
  // page or a changed format shows up as lines the pattern no longer matches.
  const valueLines = stats.lines - stats.blank - stats.comments;
  const rejected = stats.invalid + stats.unmatched;
  if (rejected * 2 > valueLines) {
    return {
      ok: false,
      reason:
        stats.unmatched > 0
          ? `${stats.invalid} invalid and ${stats.unmatched} unmatched of ${valueLines} value lines (more than half)`
          : `${stats.invalid} of ${valueLines} value lines are invalid (more than half)`,
    };
  }
  return { ok: true };
}
