/**
 * JSON export of a view: `{ "indicators": [ ... ] }` with one object per
 * entry, in the given order. Each indicator sits on its own line, so a diff
 * of two exports shows the changed values.
 */
import type { BuildLog, FormatOutput, ViewEntry } from '../model.js';

import { formatIsoMicros } from './csv.js';

/** One indicator of the JSON export. Times are ISO 8601 UTC text. */
export interface JsonListIndicator {
  value: string;
  type: string;
  id: string;
  confidence: number;
  sources: string[];
  labels: string[];
  indicator_types: string[];
  tlp: string;
  first_seen: string;
  last_seen: string;
  /** The sighting attributes below are present only when a source gave them. */
  ports?: number[];
  malware_families?: string[];
  description?: string;
  reported_first_seen?: string;
  reported_last_seen?: string;
}

export function toJsonListIndicator(entry: ViewEntry): JsonListIndicator {
  const indicator: JsonListIndicator = {
    value: entry.value,
    type: entry.type,
    id: entry.indicatorId,
    confidence: entry.confidence,
    sources: entry.sources,
    labels: entry.labels,
    indicator_types: entry.indicatorTypes,
    tlp: entry.tlp,
    first_seen: formatIsoMicros(entry.firstSeen),
    last_seen: formatIsoMicros(entry.lastSeen),
  };
  if (entry.ports !== undefined) indicator.ports = entry.ports;
  if (entry.malwareFamilies !== undefined) indicator.malware_families = entry.malwareFamilies;
  if (entry.description !== undefined) indicator.description = entry.description;
  if (entry.reportedFirstSeen !== undefined) {
    indicator.reported_first_seen = formatIsoMicros(entry.reportedFirstSeen);
  }
  if (entry.reportedLastSeen !== undefined) {
    indicator.reported_last_seen = formatIsoMicros(entry.reportedLastSeen);
  }
  return indicator;
}

/** Renders the entries as one JSON document. Every entry type fits, so nothing is dropped. */
export function renderJsonList(entries: readonly ViewEntry[], _log: BuildLog): FormatOutput {
  const items = entries.map((entry) => JSON.stringify(toJsonListIndicator(entry)));
  const body =
    items.length === 0 ? '{"indicators":[]}\n' : `{"indicators":[\n${items.join(',\n')}\n]}\n`;
  return { body, contentType: 'application/json' };
}
