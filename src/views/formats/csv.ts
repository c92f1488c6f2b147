/**
 * CSV view for SIEMs and spreadsheets, per RFC 4180: CRLF line ends, and a
 * field that contains `"`, `,`, CR or LF is quoted with inner quotes doubled.
 * List attributes are joined with `;` and times are ISO 8601 in UTC with `Z`.
 * A sighting attribute that no source gave (a port, say) is an empty cell.
 *
 * A cell that starts with `=`, `+`, `-`, `@`, tab or CR gets a leading `'`
 * and is then quoted, as the OWASP "CSV Injection" page advises, so a
 * spreadsheet shows the text instead of running it as a formula.
 */
import type { BuildLog, FormatOutput, ViewEntry } from '../model.js';

export type CsvField =
  | 'indicator'
  | 'type'
  | 'confidence'
  | 'sources'
  | 'labels'
  | 'indicator_types'
  | 'tlp'
  | 'first_seen'
  | 'last_seen'
  | 'id'
  | 'ports'
  | 'malware_families'
  | 'description'
  | 'reported_first_seen'
  | 'reported_last_seen';

/** The columns of a CSV view without a `columns` option. */
export const DEFAULT_CSV_FIELDS: readonly CsvField[] = [
  'indicator',
  'type',
  'confidence',
  'sources',
  'labels',
  'indicator_types',
  'tlp',
  'first_seen',
  'last_seen',
  'id',
];

/**
 * Every field a column may name: the default ones, then the sighting
 * attributes (ports, malware families, description, and the first and last
 * seen times that the sources reported themselves).
 */
export const CSV_FIELDS: readonly CsvField[] = [
  ...DEFAULT_CSV_FIELDS,
  'ports',
  'malware_families',
  'description',
  'reported_first_seen',
  'reported_last_seen',
];

export interface CsvColumn {
  field: CsvField;
  /** Text of the column in the header row. */
  header: string;
}

export interface CsvOptions {
  /** Columns in output order, at least one. */
  columns: CsvColumn[];
  /** Whether the first row names the columns. */
  header: boolean;
  /** Whether the body starts with U+FEFF, which Excel needs to read the file as UTF-8. */
  bom: boolean;
}

/** Every default field once, headed by its own name. */
export const DEFAULT_CSV_COLUMNS: readonly CsvColumn[] = DEFAULT_CSV_FIELDS.map((field) => ({
  field,
  header: field,
}));

const CRLF = '\r\n';
const LIST_SEPARATOR = ';';
const NEEDS_QUOTES = /[",\r\n]/;
const FORMULA_START = /^[=+\-@\t\r]/;

/** Quotes `text` per RFC 4180 when it contains `"`, `,`, CR or LF. */
export function quoteCsvField(text: string): string {
  if (!NEEDS_QUOTES.test(text)) return text;
  return `"${text.replaceAll('"', '""')}"`;
}

/**
 * Writes one CSV cell: a value that a spreadsheet would read as a formula
 * gets a leading `'` and quotes, and any other value is quoted per RFC 4180.
 */
export function formatCsvCell(text: string): string {
  if (FORMULA_START.test(text)) return `"'${text.replaceAll('"', '""')}"`;
  return quoteCsvField(text);
}

/**
 * Writes microseconds since the Unix epoch as ISO 8601 UTC text, with as
 * many fraction digits as the value needs (none, 3 or 6).
 */
export function formatIsoMicros(micros: number): string {
  const millis = Math.floor(micros / 1000);
  const seconds = new Date(millis).toISOString().slice(0, 19);
  const fraction = micros - Math.floor(micros / 1_000_000) * 1_000_000;
  if (fraction === 0) return `${seconds}Z`;
  if (fraction % 1000 === 0) return `${seconds}.${String(fraction / 1000).padStart(3, '0')}Z`;
  return `${seconds}.${String(fraction).padStart(6, '0')}Z`;
}

/** Returns the text of one field of an entry, before CSV quoting. */
export function csvFieldText(entry: ViewEntry, field: CsvField): string {
  switch (field) {
    case 'indicator':
      return entry.value;
    case 'type':
      return entry.type;
    case 'confidence':
      return String(entry.confidence);
    case 'sources':
      return entry.sources.join(LIST_SEPARATOR);
    case 'labels':
      return entry.labels.join(LIST_SEPARATOR);
    case 'indicator_types':
      return entry.indicatorTypes.join(LIST_SEPARATOR);
    case 'tlp':
      return entry.tlp;
    case 'first_seen':
      return formatIsoMicros(entry.firstSeen);
    case 'last_seen':
      return formatIsoMicros(entry.lastSeen);
    case 'id':
      return entry.indicatorId;
    case 'ports':
      return (entry.ports ?? []).join(LIST_SEPARATOR);
    case 'malware_families':
      return (entry.malwareFamilies ?? []).join(LIST_SEPARATOR);
    case 'description':
      return entry.description ?? '';
    case 'reported_first_seen':
      return entry.reportedFirstSeen === undefined ? '' : formatIsoMicros(entry.reportedFirstSeen);
    case 'reported_last_seen':
      return entry.reportedLastSeen === undefined ? '' : formatIsoMicros(entry.reportedLastSeen);
  }
}

function checkColumns(columns: readonly CsvColumn[]): void {
  if (columns.length === 0) {
    throw new Error(
      `invalid CSV columns: the list is empty; name at least one of ${CSV_FIELDS.join(', ')}`,
    );
  }
  for (const column of columns) {
    if (!(CSV_FIELDS as readonly string[]).includes(column.field)) {
      throw new Error(
        `invalid CSV column field "${String(column.field)}": expected one of ${CSV_FIELDS.join(', ')}`,
      );
    }
  }
}

/** Renders entries as CSV rows in their given order. Every entry type fits, so nothing is dropped. */
export function renderCsv(
  entries: readonly ViewEntry[],
  options: CsvOptions,
  _log: BuildLog,
): FormatOutput {
  checkColumns(options.columns);
  const fields = options.columns.map((column) => column.field);
  const lines: string[] = [];
  if (options.header) {
    lines.push(options.columns.map((column) => formatCsvCell(column.header)).join(','));
  }
  for (const entry of entries) {
    lines.push(fields.map((field) => formatCsvCell(csvFieldText(entry, field))).join(','));
  }

  const text = lines.length === 0 ? '' : `${lines.join(CRLF)}${CRLF}`;
  return {
    body: options.bom ? `\uFEFF${text}` : text,
    contentType: `text/csv; charset=utf-8; header=${options.header ? 'present' : 'absent'}`,
  };
}
