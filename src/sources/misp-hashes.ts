/**
 * The `hashes.csv` file of a MISP feed: one line per attribute value, with
 * the MD5 of the value as the event file writes it and the UUID of the
 * event. MISP and the PyMISP feed generator write `md5,event_uuid`; other
 * generators write `event_uuid,md5`. The order is detected per file from its
 * first data line, by which column contains a UUID and which a 32-digit hex
 * MD5.
 */
import { createHash } from 'node:crypto';

import type { InvalidExample } from './text-list.js';

/** The column order of a `hashes.csv` file. */
export type HashesOrder = 'md5,event_uuid' | 'event_uuid,md5';

/** A parsed `hashes.csv`. */
export interface HashesFile {
  order: HashesOrder;
  /** Lower-case event UUID to the lower-case MD5s listed for the event. */
  byEvent: Map<string, Set<string>>;
  /** Data lines read, duplicates included. */
  lines: number;
  /** Non-blank lines that are neither data in the file's order nor its header line. */
  invalidLines: number;
  invalidExamples: InvalidExample[];
}

/** A `hashes.csv` that cannot be used at all; the message gives the reason. */
export class HashesFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'HashesFileError';
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const MD5 = /^[0-9a-f]{32}$/i;
const MAX_INVALID_EXAMPLES = 5;
const MAX_EXAMPLE_LENGTH = 200;

/**
 * Parses a `hashes.csv` body. Tolerates a UTF-8 byte order mark, CRLF line
 * ends, blank lines, spaces and double quotes around a cell, upper-case hex,
 * and a header line before the first data line. Other lines that do not
 * contain an MD5 and a UUID in the file's order are counted and skipped.
 * Throws `HashesFileError` for an HTML page and for a file with more invalid
 * lines than data lines, which is no `hashes.csv`. An empty file lists no
 * value, so it parses to an empty map.
 * NOTE: every MD5 of the file is kept in memory while the read runs: about
 * 120 MB of heap for 1,000,000 lines (70 MB), besides the body, measured
 * with Node 20. The source's `maxBytes` bounds the body.
 */
export function parseHashesCsv(body: Buffer): HashesFile {
  let text = body.toString('utf8');
  if (text.startsWith('\uFEFF')) text = text.slice(1);
  if (text.trimStart().startsWith('<')) {
    throw new HashesFileError('the body is an HTML page, not CSV');
  }

  const file: HashesFile = {
    order: 'md5,event_uuid',
    byEvent: new Map(),
    lines: 0,
    invalidLines: 0,
    invalidExamples: [],
  };
  let order: HashesOrder | undefined;
  let sawLine = false;
  const lines = text.split(/\r\n|\n|\r/);
  for (let index = 0; index < lines.length; index += 1) {
    const line = lines[index]!.trim();
    if (line === '') continue;
    const firstLine = !sawLine;
    sawLine = true;

    const row = parseRow(line);
    if (row !== undefined && (order === undefined || row.order === order)) {
      order ??= row.order;
      addHash(file.byEvent, row.event, row.md5);
      file.lines += 1;
      continue;
    }
    // A first line that is no data line in either order is the header, such as `md5,event_uuid`.
    if (firstLine && row === undefined) continue;

    file.invalidLines += 1;
    if (file.invalidExamples.length < MAX_INVALID_EXAMPLES) {
      file.invalidExamples.push({
        line: index + 1,
        text: line.slice(0, MAX_EXAMPLE_LENGTH),
        reason:
          row === undefined
            ? 'expected an MD5 and an event UUID separated by a comma'
            : `columns in the order ${row.order}, but the first data line has ${order ?? ''}`,
      });
    }
  }

  if (file.invalidLines > file.lines) {
    const example = file.invalidExamples[0];
    throw new HashesFileError(
      `${file.invalidLines} of ${file.invalidLines + file.lines} lines are not an MD5 and an event UUID` +
        (example === undefined ? '' : ` (line ${example.line}: ${JSON.stringify(example.text)})`),
    );
  }
  if (order !== undefined) file.order = order;
  return file;
}

/** Returns the lower-case MD5 and event UUID of a data line and the order they stand in, or undefined. */
function parseRow(line: string): { md5: string; event: string; order: HashesOrder } | undefined {
  const cells = line.split(',').map(unquote);
  if (cells.length !== 2) return undefined;
  const [first, second] = cells as [string, string];
  if (MD5.test(first) && UUID.test(second)) {
    return { md5: first.toLowerCase(), event: second.toLowerCase(), order: 'md5,event_uuid' };
  }
  if (UUID.test(first) && MD5.test(second)) {
    return { md5: second.toLowerCase(), event: first.toLowerCase(), order: 'event_uuid,md5' };
  }
  return undefined;
}

function unquote(cell: string): string {
  const trimmed = cell.trim();
  return trimmed.length >= 2 && trimmed.startsWith('"') && trimmed.endsWith('"')
    ? trimmed.slice(1, -1).trim()
    : trimmed;
}

function addHash(byEvent: Map<string, Set<string>>, event: string, md5: string): void {
  let hashes = byEvent.get(event);
  if (hashes === undefined) {
    hashes = new Set();
    byEvent.set(event, hashes);
  }
  hashes.add(md5);
}

/**
 * Returns a digest of an event's set of MD5s: the first 128 bits of the
 * SHA-256 of the sorted MD5s, in base64url (22 characters). Equal sets give
 * equal digests whatever the order of the lines in the file.
 */
export function digestOfHashes(md5s: Iterable<string>): string {
  return createHash('sha256')
    .update([...md5s].sort().join('\n'))
    .digest()
    .subarray(0, 16)
    .toString('base64url');
}

/**
 * Returns the MD5s that a feed generator may list for an attribute: the MD5
 * of its value, and for a composite type (`ip-dst|port`, `filename|sha256`)
 * or `malware-sample` also the MD5 of each part between `|`. PyMISP's
 * `MISPAttribute.hash_values` lists only the parts of those types.
 */
export function attributeHashes(type: string, value: string): string[] {
  const hashes = [md5Of(value)];
  if (type.includes('|') || type === 'malware-sample') {
    for (const part of value.split('|')) hashes.push(md5Of(part));
  }
  return hashes;
}

function md5Of(text: string): string {
  return createHash('md5').update(text, 'utf8').digest('hex');
}
