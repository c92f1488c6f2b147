/**
 * The `stix-bundle` source kind: a STIX bundle (or a bare JSON array of STIX
 * objects, or one object) read by URL or from a file as the source's whole
 * current set. The body is scanned as a stream: only one object at a time
 * is parsed, never the whole document. STIX 2.1 objects keep their exact
 * JSON text; STIX 2.0 objects are upgraded to 2.1 first.
 */

import { parseSimplePattern, parseTimestamp, toStoredVersion } from '../stix/index.js';
import type { ObjectVersionInput } from '../store/index.js';
// NOTE: the STIX 2.1 object validator (JSON Schema) lives in src/taxii. Moving
// it to src/stix would remove this import of another part's internals.
import { checkObject } from '../taxii/object-validation.js';
import { withIndicatorAttributes } from './stix-attributes.js';
import { redactUrl } from './fetch.js';
import { readWholeList } from './whole-list.js';
import { SourceRejectedError } from './rejected.js';
import {
  type ReadContext,
  type ReadResult,
  type ReadStats,
  type SourceEntry,
  type SourceKind,
} from './kinds.js';
import type { InvalidExample } from './text-list.js';

const MAX_INVALID_EXAMPLES = 5;

/** Maximum size in bytes of a body read as one STIX object rather than a bundle or array. */
export const MAX_SINGLE_OBJECT_BYTES = 1 << 20;

/** Maximum size in bytes of a bundle property other than `objects` (such as `id`) kept for checks. */
const MAX_MEMBER_BYTES = 1 << 16;

/**
 * STIX 2.1 cyber-observable types. STIX 2.1 makes `spec_version` optional on
 * these, and STIX 2.0 had no top-level observables, so one without
 * `spec_version` is 2.1.
 */
const SCO_TYPES = new Set([
  'artifact',
  'autonomous-system',
  'directory',
  'domain-name',
  'email-addr',
  'email-message',
  'file',
  'ipv4-addr',
  'ipv6-addr',
  'mac-addr',
  'mutex',
  'network-traffic',
  'process',
  'software',
  'url',
  'user-account',
  'windows-registry-key',
  'x509-certificate',
]);

/**
 * STIX 2.0 types whose required `labels` took a type vocabulary. STIX 2.1
 * moved each vocabulary into a property of its own and kept `labels` generic.
 */
const LABELS_TO_TYPES: Readonly<Record<string, string>> = {
  indicator: 'indicator_types',
  malware: 'malware_types',
  report: 'report_types',
  'threat-actor': 'threat_actor_types',
  tool: 'tool_types',
};

/** Counts of one bundle read. */
export interface StixBundleStats {
  /** Elements of the `objects` array (or of the bare array) in the body. */
  objectsFound: number;
  /** Objects that will be stored, upgraded ones included. */
  valid: number;
  invalid: number;
  /** Elements that repeat an (id, version) pair of this body. The first one is kept. */
  duplicates: number;
  /** STIX 2.0 objects upgraded to 2.1. */
  upgraded: number;
  invalidExamples: InvalidExample[];
}

export interface StixBundleResult {
  objects: ObjectVersionInput[];
  /** Values of simple indicator patterns, one entry per type and value. */
  entries: SourceEntry[];
  stats: StixBundleStats;
  /** The top level of the body: a bundle, a bare array or one object. */
  shape: 'bundle' | 'array' | 'object';
}

/** A body that is not a well-formed bundle, array or object: HTML, truncated or broken JSON. */
export class BundleSyntaxError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BundleSyntaxError';
  }
}

export const stixBundleKind: SourceKind = {
  read: readStixBundle,
};

/**
 * Fetches the bundle as a whole list (conditional GET, the unchanged-body
 * shortcut) and parses it. Throws `SourceRejectedError` for a body that is
 * not a usable bundle, so the poll changes nothing.
 */
function readStixBundle(context: ReadContext): Promise<ReadResult> {
  const { source } = context;
  return readWholeList(context, async (body) => {
    const parsed = await parseBundleOrReject(body, redactUrl(source.url));
    const stats: ReadStats & Omit<StixBundleStats, 'invalidExamples'> = {
      objectsFound: parsed.stats.objectsFound,
      valid: parsed.stats.valid,
      invalid: parsed.stats.invalid,
      duplicates: parsed.stats.duplicates,
      upgraded: parsed.stats.upgraded,
      invalidExamples: parsed.stats.invalidExamples,
    };
    context.logger.info(
      {
        shape: parsed.shape,
        count: parsed.objects.length,
        entries: parsed.entries.length,
        invalid: parsed.stats.invalid,
        upgraded: parsed.stats.upgraded,
      },
      'STIX bundle read',
    );
    return { ok: true, entries: parsed.entries, objects: parsed.objects, stats };
  });
}

async function parseBundleOrReject(
  body: AsyncIterable<Buffer>,
  shownUrl: string,
): Promise<StixBundleResult> {
  let parsed: StixBundleResult;
  try {
    parsed = await parseStixBundle(body);
  } catch (error) {
    if (error instanceof BundleSyntaxError) {
      throw new SourceRejectedError(`rejected the body of ${shownUrl}: ${error.message}`);
    }
    throw error;
  }
  const problem = judgeBundle(parsed.stats);
  if (problem !== undefined) {
    throw new SourceRejectedError(`rejected the body of ${shownUrl}: ${problem}`);
  }
  return parsed;
}

/**
 * Returns why a parsed bundle is unusable as the source's whole set, or
 * undefined when it is usable. A usable bundle contains a valid object and
 * no more invalid objects than valid ones.
 */
export function judgeBundle(stats: StixBundleStats): string | undefined {
  if (stats.objectsFound === 0) return 'the bundle contains no objects';
  if (stats.valid === 0) {
    const first = stats.invalidExamples[0]?.reason ?? 'no reason recorded';
    return `none of its ${stats.objectsFound} objects is valid STIX (first: ${first})`;
  }
  if (stats.invalid > stats.valid) {
    return `${stats.invalid} of its ${stats.objectsFound} objects are invalid STIX, more than the valid ones`;
  }
  return undefined;
}

/**
 * Parses a STIX bundle, a bare JSON array of STIX objects, or a single STIX
 * object, reading the body as a stream and parsing one object at a time.
 * Invalid objects are counted with examples, not returned. Throws
 * `BundleSyntaxError` when the body is not JSON of one of these shapes
 * (an HTML page, a truncated document, a top-level object of another type).
 */
export async function parseStixBundle(
  body: AsyncIterable<Buffer> | Buffer | string,
): Promise<StixBundleResult> {
  const collector = new ObjectCollector();
  const scanner = new BundleScanner((text) => collector.add(text));
  if (typeof body === 'string' || Buffer.isBuffer(body)) {
    scanner.push(Buffer.from(body));
  } else {
    for await (const chunk of body) scanner.push(chunk);
  }
  const shape = scanner.end();

  if (shape === 'object') {
    const text = scanner.singleObjectText();
    if (text === undefined) {
      throw new BundleSyntaxError(
        `the body is a single JSON object larger than ${MAX_SINGLE_OBJECT_BYTES} bytes and not a bundle, so wrap it in a bundle`,
      );
    }
    collector.add(text);
  }
  return { ...collector.finish(), shape };
}

/** Receives element texts, upgrades and validates them, and collects the stored versions and entries. */
class ObjectCollector {
  private readonly objects: ObjectVersionInput[] = [];
  private readonly stats: StixBundleStats = {
    objectsFound: 0,
    valid: 0,
    invalid: 0,
    duplicates: 0,
    upgraded: 0,
    invalidExamples: [],
  };
  /** Keys (`id` and version) of the stored objects, to skip repeats. */
  private readonly seen = new Set<string>();
  /** The newest version of each indicator with the values of its pattern. */
  private readonly indicators = new Map<string, { version: string; values: SourceEntry[] }>();

  add(text: string): void {
    this.stats.objectsFound += 1;
    const position = this.stats.objectsFound;

    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (error) {
      this.reject(position, text, `not valid JSON: ${(error as Error).message}`);
      return;
    }
    if (!isRecord(value)) {
      this.reject(position, text, 'not a JSON object');
      return;
    }

    let storedText = text;
    const upgrade = upgradeObject(value);
    if (upgrade.kind === 'unsupported') {
      this.reject(position, text, upgrade.reason);
      return;
    }
    if (upgrade.kind === 'upgraded') {
      value = upgrade.object;
      storedText = JSON.stringify(upgrade.object);
    }

    const check = checkObject(value);
    if (!check.ok) {
      this.reject(position, text, check.failure.message ?? 'invalid STIX 2.1 object');
      return;
    }
    const stored = toStoredVersion(storedText);
    const key = `${stored.id}\u0000${stored.version}`;
    if (this.seen.has(key)) {
      this.stats.duplicates += 1;
      return;
    }
    this.seen.add(key);
    this.objects.push(stored);
    this.stats.valid += 1;
    if (upgrade.kind === 'upgraded') this.stats.upgraded += 1;

    if (stored.type === 'indicator') {
      const known = this.indicators.get(stored.id);
      if (!known || known.version < stored.version) {
        this.indicators.set(stored.id, {
          version: stored.version,
          values: indicatorValues(value as Record<string, unknown>, Date.now() * 1000),
        });
      }
    }
  }

  finish(): Omit<StixBundleResult, 'shape'> {
    const entries: SourceEntry[] = [];
    const seenValues = new Set<string>();
    for (const { values } of this.indicators.values()) {
      for (const entry of values) {
        const key = `${entry.type}\u0000${entry.value}`;
        if (seenValues.has(key)) continue;
        seenValues.add(key);
        entries.push(entry);
      }
    }
    return { objects: this.objects, entries, stats: this.stats };
  }

  private reject(position: number, text: string, reason: string): void {
    this.stats.invalid += 1;
    if (this.stats.invalidExamples.length < MAX_INVALID_EXAMPLES) {
      // `line` is the 1-based position of the object in the bundle.
      this.stats.invalidExamples.push({ line: position, text: text.slice(0, 200), reason });
    }
  }
}

/**
 * Returns the value of an indicator that is neither revoked nor expired and
 * whose STIX pattern is one `=` comparison on a value type the hub handles.
 * Any other pattern (AND, OR, qualifiers, other properties) yields nothing,
 * so the indicator stays an object only.
 */
function indicatorValues(indicator: Record<string, unknown>, nowMicros: number): SourceEntry[] {
  if (indicator.revoked === true) return [];
  if (indicator.pattern_type !== 'stix' || typeof indicator.pattern !== 'string') return [];
  if (typeof indicator.valid_until === 'string') {
    try {
      if (parseTimestamp(indicator.valid_until) <= nowMicros) return [];
    } catch {
      return [];
    }
  }
  const values = parseSimplePattern(indicator.pattern);
  return values?.length === 1 ? withIndicatorAttributes(values, indicator) : [];
}

type Upgrade =
  | { kind: 'none' }
  | { kind: 'upgraded'; object: Record<string, unknown> }
  | { kind: 'unsupported'; reason: string };

/**
 * Upgrades a STIX 2.0 object to STIX 2.1. An object is 2.0 when its
 * `spec_version` is "2.0", or when it has none and is not a cyber-observable.
 * The upgrade:
 * - adds `spec_version: "2.1"` after `type` and keeps the id and every other property.
 * - moves `labels` to `indicator_types`, `malware_types`, `report_types`,
 *   `threat_actor_types` or `tool_types`, unless that property is already set.
 * - adds `pattern_type: "stix"` to indicators, which STIX 2.1 requires.
 * - adds `is_family: true` to malware, which STIX 2.1 requires.
 * It leaves alone what STIX 2.1 still accepts: the `objects` dictionary of
 * observed-data (deprecated but valid), `created_by_ref`, markings,
 * external references, custom `x_` properties and custom object types.
 * - writes `created` and `modified` with at least three fractional digits,
 *   as STIX 2.1 section 3.2 requires, e.g. `2017-06-01T00:00:00Z` becomes
 *   `2017-06-01T00:00:00.000Z`: the same instant.
 * Other timestamps keep their text.
 */
export function upgradeObject(object: Record<string, unknown>): Upgrade {
  const specVersion = object.spec_version;
  const type = typeof object.type === 'string' ? object.type : '';
  if (specVersion === '2.1') return { kind: 'none' };
  if (specVersion === undefined && SCO_TYPES.has(type)) return { kind: 'none' };
  if (specVersion !== undefined && specVersion !== '2.0') {
    return {
      kind: 'unsupported',
      reason: `spec_version ${JSON.stringify(specVersion)} is not supported, expected "2.0" or "2.1"`,
    };
  }

  const upgraded: Record<string, unknown> = {};
  if (!('type' in object)) upgraded.spec_version = '2.1';
  for (const [key, value] of Object.entries(object)) {
    upgraded[key] = value;
    if (key === 'type') upgraded.spec_version = '2.1';
  }

  const typesProperty = LABELS_TO_TYPES[type];
  if (typesProperty !== undefined && 'labels' in upgraded && !(typesProperty in upgraded)) {
    upgraded[typesProperty] = upgraded.labels;
    delete upgraded.labels;
  }
  for (const property of ['created', 'modified'] as const) {
    const text = upgraded[property];
    if (typeof text === 'string') upgraded[property] = withMilliseconds(text);
  }
  if (type === 'indicator' && !('pattern_type' in upgraded)) upgraded.pattern_type = 'stix';
  // NOTE: `is_family: true` is an assumption. STIX 2.0 malware did not say
  // whether it was a family or a sample. MITRE ATT&CK for ICS v18.1 (STIX 2.1)
  // sets `is_family: true` on every malware object.
  if (type === 'malware' && !('is_family' in upgraded)) upgraded.is_family = true;
  return { kind: 'upgraded', object: upgraded };
}

/** Pads the fraction of an RFC 3339 UTC timestamp to three digits. Other text is returned unchanged. */
function withMilliseconds(timestamp: string): string {
  const match = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,2}))?Z$/.exec(timestamp);
  if (!match) return timestamp;
  return `${match[1]}.${(match[2] ?? '').padEnd(3, '0')}Z`;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const SPACE = 0x20;
const TAB = 0x09;
const LF = 0x0a;
const CR = 0x0d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;

function isSpace(byte: number): boolean {
  return byte === SPACE || byte === TAB || byte === LF || byte === CR;
}

/** First bytes of a JSON value: an object, array, string, number, true, false or null. */
function startsValue(byte: number): boolean {
  return (
    byte === OPEN_BRACE ||
    byte === OPEN_BRACKET ||
    byte === QUOTE ||
    byte === 0x2d || // '-'
    (byte >= 0x30 && byte <= 0x39) ||
    byte === 0x74 || // 't'
    byte === 0x66 || // 'f'
    byte === 0x6e // 'n'
  );
}

/** One JSON value being copied out of the stream: its bytes and where the scan is inside it. */
interface Capture {
  purpose: 'element' | 'key' | 'member';
  pieces: Buffer[];
  length: number;
  /** Maximum bytes kept. A longer value is dropped and treated as too long. */
  limit: number;
  depth: number;
  inString: boolean;
  escaped: boolean;
  scalar: boolean;
}

type ScanState =
  | 'start'
  | 'key'
  | 'colon'
  | 'member-value'
  | 'after-member'
  | 'element'
  | 'after-element'
  | 'done';

/**
 * Splits a JSON body into the texts of the elements of a bundle's `objects`
 * array or of a top-level array, byte by byte, without parsing them. It
 * checks the structure around the elements: RFC 8259 separators, nesting
 * and the end of the document. The collector checks each element with
 * `JSON.parse`. JSON's structural characters are ASCII, so
 * scanning UTF-8 bytes is safe: no byte of a multi-byte character matches them.
 */
class BundleScanner {
  private state: ScanState = 'start';
  private container: 'object' | 'array' | undefined;
  private capture: Capture | undefined;
  private memberKey = '';
  /** Top-level properties of a top-level object, such as `type`, parsed. */
  private readonly members = new Map<string, unknown>();
  private objectsArraySeen = false;
  private offset = 0;
  /** The first bytes of the body, kept for error messages. */
  private head = '';
  /** The whole body while it stays under MAX_SINGLE_OBJECT_BYTES; undefined beyond. */
  private whole: Buffer[] | undefined = [];
  private wholeLength = 0;

  constructor(private readonly onElement: (text: string) => void) {}

  push(chunk: Buffer): void {
    if (this.head.length < 40) this.head += chunk.subarray(0, 40).toString('utf8');
    if (this.whole !== undefined) {
      this.wholeLength += chunk.length;
      if (this.wholeLength <= MAX_SINGLE_OBJECT_BYTES && !this.objectsArraySeen) {
        this.whole.push(chunk);
      } else {
        this.whole = undefined;
      }
    }

    let i = 0;
    let captureStart = 0;
    while (i < chunk.length) {
      const capture = this.capture;
      if (capture !== undefined) {
        const end = this.advanceCapture(capture, chunk, i);
        if (end === undefined) break;
        this.keep(capture, chunk.subarray(captureStart, end));
        this.capture = undefined;
        this.finishCapture(capture);
        i = end;
        continue;
      }
      const byte = chunk[i]!;
      const startsCapture = this.step(byte, this.offset + i);
      if (startsCapture) {
        captureStart = i;
        // The byte that opened the value is scanned again as part of it.
        continue;
      }
      i += 1;
    }
    if (this.capture !== undefined) this.keep(this.capture, chunk.subarray(captureStart));
    this.offset += chunk.length;
  }

  /** Checks that the document ended where JSON allows and returns its top-level shape. */
  end(): 'bundle' | 'array' | 'object' {
    if (this.state === 'start') throw new BundleSyntaxError('the body is empty');
    if (this.state !== 'done') {
      throw new BundleSyntaxError(
        `the JSON ends early after ${this.offset} bytes, so the body is truncated`,
      );
    }
    if (this.container === 'array') return 'array';

    const type = this.members.get('type');
    if (type === 'bundle') return 'bundle';
    if (this.objectsArraySeen) {
      throw new BundleSyntaxError(
        `the top-level object has an objects array but type ${JSON.stringify(type)}, expected "bundle"`,
      );
    }
    if (typeof type !== 'string') {
      throw new BundleSyntaxError('the top-level JSON object has no type, expected a STIX bundle');
    }
    return 'object';
  }

  /** Returns the whole body text of a single-object document, or undefined when it was too long to keep. */
  singleObjectText(): string | undefined {
    if (this.whole === undefined) return undefined;
    return Buffer.concat(this.whole).toString('utf8').trim();
  }

  private fail(expected: string, byte: number, position: number): never {
    if (this.state === 'start') {
      throw new BundleSyntaxError(
        `the body is not JSON: it starts with ${JSON.stringify(this.head.trim().slice(0, 40))}, e.g. an HTML page`,
      );
    }
    throw new BundleSyntaxError(
      `invalid JSON at byte ${position}: expected ${expected} but found ${JSON.stringify(String.fromCharCode(byte))}`,
    );
  }

  /**
   * Moves the state machine over one byte outside any captured value.
   * Returns true when the byte opens a value to capture.
   */
  private step(byte: number, position: number): boolean {
    if (isSpace(byte)) return false;
    switch (this.state) {
      case 'start':
        // A UTF-8 byte order mark (EF BB BF) may precede the document.
        if ((byte === 0xef || byte === 0xbb || byte === 0xbf) && this.head.startsWith('\ufeff')) {
          return false;
        }
        if (byte === OPEN_BRACE) {
          this.container = 'object';
          this.state = 'key';
          return false;
        }
        if (byte === OPEN_BRACKET) {
          this.container = 'array';
          this.state = 'element';
          return false;
        }
        return this.fail('a JSON object or array', byte, position);
      case 'key':
        if (byte === QUOTE) return this.open('key', MAX_MEMBER_BYTES, byte);
        if (byte === CLOSE_BRACE && this.members.size === 0) {
          this.state = 'done';
          return false;
        }
        return this.fail('a property name', byte, position);
      case 'colon':
        if (byte !== COLON) return this.fail('":"', byte, position);
        this.state = 'member-value';
        return false;
      case 'member-value':
        if (this.memberKey === 'objects' && byte === OPEN_BRACKET) {
          this.objectsArraySeen = true;
          this.whole = undefined;
          this.members.set('objects', true);
          this.state = 'element';
          return false;
        }
        if (!startsValue(byte)) return this.fail('a value', byte, position);
        return this.open('member', MAX_MEMBER_BYTES, byte);
      case 'after-member':
        if (byte === COMMA) {
          this.state = 'key';
          return false;
        }
        if (byte === CLOSE_BRACE) {
          this.state = 'done';
          return false;
        }
        return this.fail('"," or "}"', byte, position);
      case 'element':
        if (startsValue(byte)) return this.open('element', Number.POSITIVE_INFINITY, byte);
        if (byte === CLOSE_BRACKET) {
          this.closeArray();
          return false;
        }
        return this.fail('a value or "]"', byte, position);
      case 'after-element':
        if (byte === COMMA) {
          this.state = 'element';
          return false;
        }
        if (byte === CLOSE_BRACKET) {
          this.closeArray();
          return false;
        }
        return this.fail('"," or "]"', byte, position);
      case 'done':
        return this.fail('the end of the document', byte, position);
    }
  }

  private closeArray(): void {
    this.state = this.container === 'array' ? 'done' : 'after-member';
  }

  private open(purpose: Capture['purpose'], limit: number, byte: number): true {
    this.capture = {
      purpose,
      pieces: [],
      length: 0,
      limit,
      depth: 0,
      inString: false,
      escaped: false,
      scalar: byte !== OPEN_BRACE && byte !== OPEN_BRACKET && byte !== QUOTE,
    };
    return true;
  }

  /**
   * Scans a captured value from `from`. Returns the index just past its end
   * in `chunk`, or undefined when the value goes on in the next chunk.
   * A number or literal ends before the delimiter that follows it.
   */
  private advanceCapture(capture: Capture, chunk: Buffer, from: number): number | undefined {
    for (let i = from; i < chunk.length; i += 1) {
      const byte = chunk[i]!;
      if (capture.inString) {
        if (capture.escaped) capture.escaped = false;
        else if (byte === BACKSLASH) capture.escaped = true;
        else if (byte === QUOTE) {
          capture.inString = false;
          if (capture.depth === 0) return i + 1;
        }
      } else if (capture.scalar) {
        if (isSpace(byte) || byte === COMMA || byte === CLOSE_BRACE || byte === CLOSE_BRACKET) {
          return i;
        }
      } else if (byte === QUOTE) {
        capture.inString = true;
      } else if (byte === OPEN_BRACE || byte === OPEN_BRACKET) {
        capture.depth += 1;
      } else if (byte === CLOSE_BRACE || byte === CLOSE_BRACKET) {
        capture.depth -= 1;
        if (capture.depth === 0) return i + 1;
      }
    }
    return undefined;
  }

  private keep(capture: Capture, piece: Buffer): void {
    if (capture.length + piece.length <= capture.limit) {
      // A subarray shares memory with the whole chunk, so a copy is kept.
      capture.pieces.push(capture.purpose === 'element' ? piece : Buffer.from(piece));
    }
    capture.length += piece.length;
  }

  private finishCapture(capture: Capture): void {
    const tooLong = capture.length > capture.limit;
    // Most values sit inside one chunk; decoding that piece directly avoids a copy.
    const text = tooLong
      ? ''
      : capture.pieces.length === 1
        ? capture.pieces[0]!.toString('utf8')
        : Buffer.concat(capture.pieces).toString('utf8');
    switch (capture.purpose) {
      case 'element':
        this.onElement(text);
        this.state = 'after-element';
        return;
      case 'key':
        if (tooLong)
          throw new BundleSyntaxError('a property name of the top-level object is too long');
        this.memberKey = String(this.parseValue(text));
        this.state = 'colon';
        return;
      case 'member':
        // Only short properties such as type, id and spec_version are kept.
        if (!tooLong) this.members.set(this.memberKey, this.parseValue(text));
        this.state = 'after-member';
        return;
    }
  }

  private parseValue(text: string): unknown {
    try {
      return JSON.parse(text) as unknown;
    } catch (error) {
      throw new BundleSyntaxError(
        `invalid JSON near byte ${this.offset}: ${(error as Error).message}`,
      );
    }
  }
}
