/**
 * ArcSight Common Event Format (CEF) view: one line per entry,
 * `CEF:0|vendor|product|version|signatureId|name|severity|extensions`.
 *
 * Escaping follows "Implementing ArcSight Common Event Format (CEF)". Header
 * fields escape `\` and `|`. Extension values escape `\` and `=`, and write
 * CR and LF as `\r` and `\n`. A header field cannot span lines, so CR and LF
 * in a header option become spaces.
 *
 * Extension keys of an entry, in output order:
 *
 * | key | content |
 * | --- | --- |
 * | `dst` | an `ipv4` value (destinationAddress) |
 * | `c6a1`, `c6a1Label=indicator` | an `ipv6` value (deviceCustomIPv6Address1) |
 * | `dhost` | a `domain` value (destinationHostName) |
 * | `request` | a `url` value (requestUrl) |
 * | `fileHash` | an `md5`, `sha1` or `sha256` value |
 * | `cs5`, `cs5Label` = the value type | an `ipv4-cidr`, `ipv6-cidr` or `ipv4-range` value, because CEF has no key for a network or a range |
 * | `cat` | the value type, e.g. `ipv4` or `sha256` (deviceEventCategory) |
 * | `cn1`, `cn1Label=confidence` | confidence 0-100 |
 * | `cs1`, `cs1Label=sources` | source names joined with `;` |
 * | `cs2`, `cs2Label=labels` | labels joined with `;` |
 * | `cs3`, `cs3Label=tlp` | TLP level |
 * | `cs4`, `cs4Label=indicator types` | STIX indicator types joined with `;` |
 * | `cs6`, `cs6Label=stix indicator id` | the STIX id of the hub indicator |
 * | `deviceCustomDate1`, `deviceCustomDate1Label=first seen` | first seen, milliseconds since the Unix epoch |
 * | `deviceCustomDate2`, `deviceCustomDate2Label=last seen` | last seen, milliseconds since the Unix epoch |
 * | `dpt` | the port, when the sources gave exactly one (destinationPort) |
 * | `flexString2`, `flexString2Label=ports` | the ports joined with `;`, when the sources gave several |
 * | `flexString1`, `flexString1Label=malware family` | malware families joined with `;` |
 * | `msg` | the description of the most recent sighting that has one (message) |
 * | `start`, `end` | the first and last seen times that the sources reported themselves, milliseconds since the Unix epoch |
 *
 * A custom field whose value is empty (no labels, say) is left out with its
 * label, and so is a sighting attribute that no source gave.
 * Severity is confidence / 10, rounded, which is the "0-10" scale of STIX 2.1
 * confidence (0-4 is 0, 5-14 is 1, and so on).
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import type { ValueType } from '../../processing/index.js';
import { PLAIN_TEXT, type BuildLog, type FormatOutput, type ViewEntry } from '../model.js';

export interface CefOptions {
  /** Device Vendor header field. Default `feedhub`. */
  vendor?: string;
  /** Device Product header field. Default `feedhub`. */
  product?: string;
  /** Device Version header field. Default the version in package.json. */
  version?: string;
  /** Signature ID header field. Default the value type of the entry, e.g. `ipv4`. */
  signatureId?: string;
  /** Name header field. Default `Threat indicator: <value type>`. */
  name?: string;
}

/** The package root, from `src/views/formats` and from `dist/views/formats` alike. */
const PACKAGE_JSON = join(
  dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  '..',
  'package.json',
);

let packageVersion: string | undefined;

/** Returns the `version` of package.json, read once. */
function readPackageVersion(): string {
  if (packageVersion === undefined) {
    const parsed = JSON.parse(readFileSync(PACKAGE_JSON, 'utf8')) as { version?: unknown };
    if (typeof parsed.version !== 'string') {
      throw new Error(
        `${PACKAGE_JSON} has no "version" string; set one or pass the CEF version option`,
      );
    }
    packageVersion = parsed.version;
  }
  return packageVersion;
}

const LIST_SEPARATOR = ';';

/** Extension key of the value itself, by type. Types missing here go to `cs5`. */
const VALUE_KEYS: Partial<Record<ValueType, string>> = {
  ipv4: 'dst',
  ipv6: 'c6a1',
  domain: 'dhost',
  url: 'request',
  md5: 'fileHash',
  sha1: 'fileHash',
  sha256: 'fileHash',
};

/** Escapes a header field: `\` and `|` get a backslash, CR and LF become spaces. */
export function escapeCefHeader(text: string): string {
  return text.replace(/[\\|]/g, (char) => `\\${char}`).replace(/\r\n|[\r\n]/g, ' ');
}

/** Escapes an extension value: `\` and `=` get a backslash, CR and LF become `\r` and `\n`. */
export function escapeCefExtension(text: string): string {
  return text.replace(/[\\=\r\n]/g, (char) => {
    if (char === '\r') return '\\r';
    if (char === '\n') return '\\n';
    return `\\${char}`;
  });
}

/** Maps confidence 0-100 onto CEF severity 0-10. */
export function cefSeverity(confidence: number): number {
  return Math.min(10, Math.max(0, Math.round(confidence / 10)));
}

/** Returns the extension key/value pairs of an entry in output order, values unescaped. */
export function cefExtensions(entry: ViewEntry): [string, string][] {
  const pairs: [string, string][] = [];
  const valueKey = VALUE_KEYS[entry.type];
  if (valueKey === undefined) {
    pairs.push(['cs5', entry.value], ['cs5Label', entry.type]);
  } else {
    pairs.push([valueKey, entry.value]);
    if (valueKey === 'c6a1') pairs.push(['c6a1Label', 'indicator']);
  }
  pairs.push(['cat', entry.type]);
  pairs.push(['cn1', String(entry.confidence)], ['cn1Label', 'confidence']);

  const custom: [string, string, string][] = [
    ['cs1', 'sources', entry.sources.join(LIST_SEPARATOR)],
    ['cs2', 'labels', entry.labels.join(LIST_SEPARATOR)],
    ['cs3', 'tlp', entry.tlp],
    ['cs4', 'indicator types', entry.indicatorTypes.join(LIST_SEPARATOR)],
    ['cs6', 'stix indicator id', entry.indicatorId],
  ];
  for (const [key, label, value] of custom) {
    if (value !== '') pairs.push([key, value], [`${key}Label`, label]);
  }

  pairs.push(
    ['deviceCustomDate1', String(Math.floor(entry.firstSeen / 1000))],
    ['deviceCustomDate1Label', 'first seen'],
    ['deviceCustomDate2', String(Math.floor(entry.lastSeen / 1000))],
    ['deviceCustomDate2Label', 'last seen'],
  );
  addAttributeExtensions(pairs, entry);
  return pairs;
}

/** Appends the extensions of the sighting attributes that the entry has. */
function addAttributeExtensions(pairs: [string, string][], entry: ViewEntry): void {
  const ports = entry.ports ?? [];
  if (ports.length === 1) {
    pairs.push(['dpt', String(ports[0])]);
  } else if (ports.length > 1) {
    pairs.push(['flexString2', ports.join(LIST_SEPARATOR)], ['flexString2Label', 'ports']);
  }
  const families = entry.malwareFamilies ?? [];
  if (families.length > 0) {
    pairs.push(
      ['flexString1', families.join(LIST_SEPARATOR)],
      ['flexString1Label', 'malware family'],
    );
  }
  if (entry.description !== undefined) pairs.push(['msg', entry.description]);
  if (entry.reportedFirstSeen !== undefined) {
    pairs.push(['start', String(Math.floor(entry.reportedFirstSeen / 1000))]);
  }
  if (entry.reportedLastSeen !== undefined) {
    pairs.push(['end', String(Math.floor(entry.reportedLastSeen / 1000))]);
  }
}

/** Formats one entry as a CEF line without a line end, as the view and a syslog forwarder send it. */
export function formatCefLine(entry: ViewEntry, options: CefOptions = {}): string {
  const header = [
    'CEF:0',
    escapeCefHeader(options.vendor ?? 'feedhub'),
    escapeCefHeader(options.product ?? 'feedhub'),
    escapeCefHeader(options.version ?? readPackageVersion()),
    escapeCefHeader(options.signatureId ?? entry.type),
    escapeCefHeader(options.name ?? `Threat indicator: ${entry.type}`),
    String(cefSeverity(entry.confidence)),
  ].join('|');
  const extensions = cefExtensions(entry)
    .map(([key, value]) => `${key}=${escapeCefExtension(value)}`)
    .join(' ');
  return `${header}|${extensions}`;
}

/** Renders one CEF line per entry, in the given order. Every entry type fits, so nothing is dropped. */
export function renderCef(
  entries: readonly ViewEntry[],
  options: CefOptions,
  _log: BuildLog,
): FormatOutput {
  const lines = entries.map((entry) => formatCefLine(entry, options));
  return {
    body: lines.length === 0 ? '' : `${lines.join('\n')}\n`,
    contentType: PLAIN_TEXT,
  };
}
