/**
 * TAXII timestamps (RFC 3339 in UTC with a `Z` suffix, as the TAXII 2.1
 * specification requires) converted to and from integer microseconds.
 */

// TODO: use the timestamp helpers of `src/stix/index.ts` once that part exports them.

const TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?Z$/i;

/**
 * Parses a TAXII timestamp into microseconds since the epoch. Fractional
 * digits past the sixth are truncated, which keeps a strictly exclusive
 * bound (`added_after`) exact. Returns undefined for any other text.
 */
export function parseTimestampMicros(text: string): number | undefined {
  const match = TIMESTAMP.exec(text);
  if (match === null) {
    return undefined;
  }
  const [, year, month, day, hour, minute, second, fraction = ''] = match;
  const millis = Date.UTC(
    Number(year),
    Number(month) - 1,
    Number(day),
    Number(hour),
    Number(minute),
    Number(second),
  );
  // Date.UTC rolls over out-of-range fields (Feb 30 becomes Mar 2), so a
  // round trip through the calendar fields rejects them.
  const date = new Date(millis);
  if (
    date.getUTCFullYear() !== Number(year) ||
    date.getUTCMonth() !== Number(month) - 1 ||
    date.getUTCDate() !== Number(day) ||
    date.getUTCHours() !== Number(hour) ||
    date.getUTCMinutes() !== Number(minute) ||
    date.getUTCSeconds() !== Number(second)
  ) {
    return undefined;
  }
  const micros = Number(fraction.slice(0, 6).padEnd(6, '0'));
  return millis * 1000 + micros;
}

/** Formats microseconds since the epoch as a TAXII timestamp with six fractional digits. */
export function formatTimestampMicros(micros: number): string {
  const millis = Math.floor(micros / 1000);
  const iso = new Date(millis).toISOString();
  const extra = String(micros - millis * 1000).padStart(3, '0');
  return iso.slice(0, 23) + extra + 'Z';
}

/**
 * Converts a TAXII timestamp into the stored version key form
 * (`ObjectVersionInput.version`: six fractional digits), so that versions
 * compare as instants. Returns undefined for invalid text.
 */
export function toVersionKey(text: string): string | undefined {
  const micros = parseTimestampMicros(text);
  return micros === undefined ? undefined : formatTimestampMicros(micros);
}
