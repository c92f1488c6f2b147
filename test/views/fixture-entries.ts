/**
 * View entries built from the bundled feed snapshots, for golden tests of
 * the view formats. Attributes other than the value are derived from the
 * line number, so every run builds the same entries.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { detectAndCanonicalize } from '../../src/processing/index.js';
import type { ViewEntry, ViewTlp } from '../../src/views/model.js';

// import.meta.dirname is not set under jest's ESM support.
export const FEEDS_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'feeds');

/** 2024-03-01T00:00:00Z in microseconds. */
const BASE_MICROS = 1_709_251_200_000_000;
const HOUR_MICROS = 3_600_000_000;
const TLPS: ViewTlp[] = ['clear', 'green', 'amber', 'amber+strict', 'red'];
const SOURCE_NAMES = ['abuse.ch', 'IPsum', 'Tor Project'];

/**
 * Reads the values of a snapshot: one per line, `#` comments and blank lines
 * skipped, and values that do not canonicalize left out. A line's value is
 * its first word, or with `csvField` that field of a comma-separated line
 * (quotes removed), e.g. 1 for the Feodo Tracker `dst_ip` column.
 */
export function fixtureEntries(
  relativePath: string,
  limit = Infinity,
  csvField?: number,
): ViewEntry[] {
  const text = readFileSync(join(FEEDS_DIR, relativePath), 'utf8');
  const entries: ViewEntry[] = [];
  const seen = new Set<string>();
  for (const line of text.split(/\r?\n/)) {
    if (entries.length >= limit) break;
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    const word = csvField === undefined ? trimmed.split(/\s+/)[0] : trimmed.split(',')[csvField];
    const raw = (word ?? '').replace(/^"|"$/g, '');
    const result = detectAndCanonicalize(raw);
    if (!result.ok || seen.has(result.value)) continue;
    seen.add(result.value);
    entries.push(entryFor(result.type, result.value, entries.length));
  }
  return entries;
}

/** Builds one entry with attributes that vary with `index`. */
export function entryFor(type: ViewEntry['type'], value: string, index: number): ViewEntry {
  const digest = createHash('sha256').update(value).digest('hex');
  return {
    type,
    value,
    indicatorId: `indicator--${digest.slice(0, 8)}-${digest.slice(8, 12)}-5${digest.slice(13, 16)}-8${digest.slice(17, 20)}-${digest.slice(20, 32)}`,
    confidence: (index * 17) % 101,
    sources: SOURCE_NAMES.slice(0, 1 + (index % SOURCE_NAMES.length)).sort(),
    labels: index % 2 === 0 ? ['botnet-c2'] : ['botnet-c2', 'scanner'],
    indicatorTypes: ['malicious-activity'],
    tlp: TLPS[index % TLPS.length] ?? 'clear',
    firstSeen: BASE_MICROS + index * HOUR_MICROS,
    lastSeen: BASE_MICROS + (index + 24) * HOUR_MICROS,
  };
}
