/**
 * The compact encoding of a view's entries, stored with the view so that a
 * request with parameters (another format, a slice) is served from
 * storage on any process without reading the collection again.
 *
 * gzip of UTF-8 text: a first line of JSON `{"v":1,"attrs":[...]}` holding
 * each distinct tuple [sources, labels, indicatorTypes, tlp, confidence],
 * with a sixth element `Extras` for an entry that has sighting attributes of
 * its own, then one line per entry: type, value, indicator id, attribute
 * index, first seen and last seen, separated by tabs. Canonical values
 * never contain a tab or a line break.
 */
import { gunzipSync, gzipSync } from 'node:zlib';

import type { ValueType } from '../processing/index.js';
import type { ViewEntry, ViewTlp } from './model.js';

const FORMAT_VERSION = 1;

/** Ports, malware families, description, reported first and last seen; absent ones are left out. */
interface Extras {
  p?: number[];
  m?: string[];
  d?: string;
  f?: number;
  l?: number;
}

type Attrs =
  | [string[], string[], string[], ViewTlp, number]
  | [string[], string[], string[], ViewTlp, number, Extras];

function extrasOf(entry: ViewEntry): Extras | undefined {
  const extras: Extras = {};
  if (entry.ports !== undefined) extras.p = entry.ports;
  if (entry.malwareFamilies !== undefined) extras.m = entry.malwareFamilies;
  if (entry.description !== undefined) extras.d = entry.description;
  if (entry.reportedFirstSeen !== undefined) extras.f = entry.reportedFirstSeen;
  if (entry.reportedLastSeen !== undefined) extras.l = entry.reportedLastSeen;
  return Object.keys(extras).length === 0 ? undefined : extras;
}

function addExtras(entry: ViewEntry, extras: Extras): void {
  if (extras.p !== undefined) entry.ports = extras.p;
  if (extras.m !== undefined) entry.malwareFamilies = extras.m;
  if (extras.d !== undefined) entry.description = extras.d;
  if (extras.f !== undefined) entry.reportedFirstSeen = extras.f;
  if (extras.l !== undefined) entry.reportedLastSeen = extras.l;
}

export function encodeEntries(entries: readonly ViewEntry[]): Buffer {
  const attrs: Attrs[] = [];
  const indexOf = new Map<string, number>();
  const lines: string[] = new Array(entries.length + 1);
  for (let i = 0; i < entries.length; i += 1) {
    const entry = entries[i]!;
    const extras = extrasOf(entry);
    const tuple: Attrs =
      extras === undefined
        ? [entry.sources, entry.labels, entry.indicatorTypes, entry.tlp, entry.confidence]
        : [entry.sources, entry.labels, entry.indicatorTypes, entry.tlp, entry.confidence, extras];
    const key = JSON.stringify(tuple);
    let index = indexOf.get(key);
    if (index === undefined) {
      index = attrs.length;
      attrs.push(tuple);
      indexOf.set(key, index);
    }
    lines[i + 1] =
      `${entry.type}\t${entry.value}\t${entry.indicatorId}\t${index}\t${entry.firstSeen}\t${entry.lastSeen}`;
  }
  lines[0] = JSON.stringify({ v: FORMAT_VERSION, attrs });
  return gzipSync(lines.join('\n'), { level: 1 });
}

export function decodeEntries(data: Buffer): ViewEntry[] {
  if (data.length === 0) return [];
  const lines = gunzipSync(data).toString('utf8').split('\n');
  const head = JSON.parse(lines[0] ?? '{}') as { v?: number; attrs?: Attrs[] };
  if (head.v !== FORMAT_VERSION || !Array.isArray(head.attrs)) {
    throw new Error(`stored view data has format ${String(head.v)}; expected ${FORMAT_VERSION}`);
  }
  const attrs = head.attrs;
  const entries: ViewEntry[] = new Array(lines.length - 1);
  for (let i = 1; i < lines.length; i += 1) {
    const [type, value, indicatorId, index, firstSeen, lastSeen] = lines[i]!.split('\t');
    const tuple = attrs[Number(index)];
    if (tuple === undefined) throw new Error(`stored view data line ${i} has no attributes`);
    const entry: ViewEntry = {
      type: type as ValueType,
      value: value!,
      indicatorId: indicatorId!,
      confidence: tuple[4],
      sources: tuple[0],
      labels: tuple[1],
      indicatorTypes: tuple[2],
      tlp: tuple[3],
      firstSeen: Number(firstSeen),
      lastSeen: Number(lastSeen),
    };
    if (tuple.length === 6) addExtras(entry, tuple[5]);
    entries[i - 1] = entry;
  }
  return entries;
}

/** Returns the values listed in encoded data, for the difference between two renders. */
export function encodedValues(data: Buffer): Set<string> {
  const values = new Set<string>();
  if (data.length === 0) return values;
  const text = gunzipSync(data).toString('utf8');
  let start = text.indexOf('\n') + 1;
  if (start === 0) return values;
  while (start < text.length) {
    const tab = text.indexOf('\t', start);
    const tab2 = text.indexOf('\t', tab + 1);
    values.add(text.slice(tab + 1, tab2));
    const end = text.indexOf('\n', tab2);
    start = end < 0 ? text.length : end + 1;
  }
  return values;
}
