import { StixError } from './errors.js';

/**
 * STIX 2.1 section 3.2: a timestamp is RFC 3339 in UTC with an upper-case `T`
 * and `Z` and with seconds. STIX allows any fractional precision, and nine
 * digits cover nanoseconds.
 */
const TIMESTAMP_PATTERN = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?Z$/;
const MICROS_PER_SECOND = 1_000_000;

/**
 * Formats integer microseconds since the epoch as a STIX timestamp with
 * `fractionDigits` (0-6) digits, truncating, e.g. `2024-01-02T03:04:05.123Z`.
 */
export function formatTimestamp(micros: number, fractionDigits = 3): string {
  // The versions that one poll writes share a few timestamps, so recent results are kept.
  const key = `${micros}:${fractionDigits}`;
  let text = recentTimestamps.get(key);
  if (text === undefined) {
    text = formatTimestampUncached(micros, fractionDigits);
    if (recentTimestamps.size >= 16) recentTimestamps.clear();
    recentTimestamps.set(key, text);
  }
  return text;
}

const recentTimestamps = new Map<string, string>();

function formatTimestampUncached(micros: number, fractionDigits: number): string {
  if (!Number.isSafeInteger(micros)) {
    throw new StixError(`invalid timestamp ${micros}: expected integer microseconds`);
  }
  if (!Number.isInteger(fractionDigits) || fractionDigits < 0 || fractionDigits > 6) {
    throw new StixError(`invalid fraction digits ${fractionDigits}: expected 0-6`);
  }
  const seconds = Math.floor(micros / MICROS_PER_SECOND);
  const fraction = micros - seconds * MICROS_PER_SECOND;
  const date = new Date(seconds * 1000);
  const year = date.getUTCFullYear();
  if (year < 0 || year > 9999) {
    throw new StixError(`invalid timestamp ${micros}: year ${year} is outside 0000-9999`);
  }
  // toISOString() gives `YYYY-MM-DDTHH:MM:SS.sssZ` for years 0-9999.
  const base = date.toISOString().slice(0, 19);
  if (fractionDigits === 0) return `${base}Z`;
  const digits = String(fraction).padStart(6, '0').slice(0, fractionDigits);
  return `${base}.${digits}Z`;
}

interface TimestampParts {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
  /** The fractional second digits as written, possibly empty. */
  fraction: string;
}

/** Splits and range-checks a STIX timestamp. Leap seconds (`:60`) are rejected: JavaScript time cannot hold them. */
function splitTimestamp(text: string): TimestampParts {
  const match = TIMESTAMP_PATTERN.exec(text);
  if (!match) {
    throw new StixError(
      `invalid timestamp "${text}": expected RFC 3339 UTC form YYYY-MM-DDTHH:MM:SS[.fraction]Z`,
    );
  }
  const [year, month, day, hour, minute, second] = match.slice(1, 7).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) {
    throw new StixError(`invalid timestamp "${text}": no such calendar date`);
  }
  if (hour > 23 || minute > 59 || second > 59) {
    throw new StixError(
      `invalid timestamp "${text}": time of day out of range (leap seconds are not supported)`,
    );
  }
  return { year, month, day, hour, minute, second, fraction: match[7] ?? '' };
}

/**
 * Parses a STIX timestamp into integer microseconds since the epoch.
 * Digits beyond the sixth are truncated. Instants outside the years
 * 1685-2255 are rejected because their microseconds exceed 2^53.
 */
export function parseTimestamp(text: string): number {
  const parts = splitTimestamp(text);
  const date = new Date(0);
  date.setUTCFullYear(parts.year, parts.month - 1, parts.day);
  date.setUTCHours(parts.hour, parts.minute, parts.second, 0);
  const micros = date.getTime() * 1000 + Number(parts.fraction.padEnd(6, '0').slice(0, 6));
  if (!Number.isSafeInteger(micros)) {
    throw new StixError(`invalid timestamp "${text}": outside the supported years 1685-2255`);
  }
  return micros;
}

function daysInMonth(year: number, month: number): number {
  // Day 0 of the next month is the last day of this month; 2000 is a leap year.
  const days = new Date(Date.UTC(2000, month, 0)).getUTCDate();
  return month === 2 && !isLeapYear(year) ? days - 1 : days;
}

function isLeapYear(year: number): boolean {
  return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
}

/**
 * Returns the storage version key of a STIX timestamp: the same instant with
 * exactly six fractional digits, so that text order is time order. It works
 * on the text, so every year 0000-9999 is accepted.
 * NOTE: timestamps that differ only after the sixth fractional digit map to
 * the same key.
 */
export function versionKey(text: string): string {
  const parts = splitTimestamp(text);
  const fraction = parts.fraction.padEnd(6, '0').slice(0, 6);
  return `${text.slice(0, 19)}.${fraction}Z`;
}
