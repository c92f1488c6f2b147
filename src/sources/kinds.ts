import type { Logger } from 'pino';
import { manualKind, type ManualSettings } from './manual.js';
import type { ValueType } from '../processing/index.js';
import type { ObjectVersionInput, SightingAttributes, SourceState } from '../store/index.js';
import { judgeCsv, streamCsv, type CsvSettings } from './csv.js';
import { readDirectory, type DirectorySettings } from './directory.js';
import type { HttpSettings } from './http-client.js';
import { readWholeListStream, type ListStream } from './whole-list.js';
import { mispFeedKind, type MispSettings } from './misp.js';
import { SourceRejectedError } from './rejected.js';
import { stixBundleKind } from './stix-bundle.js';
import { judgeJson, readJsonSource, streamJsonRecords, type JsonSettings } from './json.js';
import { judgeBody, SeenValues, streamTextList, type InvalidExample } from './text-list.js';
import { taxii21, type Taxii21Settings } from './taxii21.js';

/** One indicator value read from a source. */
export interface SourceEntry {
  type: ValueType;
  value: string;
  /** The source's attributes of the value, when its format has fields for them. */
  attributes?: SightingAttributes;
}

/** Counts of one read, copied into the run report. */
export interface ReadStats {
  bytes?: number;
  lines?: number;
  comments?: number;
  blank?: number;
  unmatched?: number;
  valid: number;
  invalid: number;
  duplicates?: number;
  /** Attribute cells of a CSV source that could not be read; their values are kept without them. */
  invalidAttributes?: number;
  /** Rows that a `skip` rule of a CSV source dropped; they count neither as valid nor invalid. */
  skipped?: number;
  invalidExamples?: InvalidExample[];
  /** Pages requested from a paged source such as TAXII. */
  pages?: number;
  /** STIX objects found in a bundle, valid or not. */
  objectsFound?: number;
  /** STIX 2.0 objects upgraded to 2.1. */
  upgraded?: number;
  /** Files read by a `directory` source. */
  files?: number;
  /** Files of a `directory` source that were unusable and moved to failed/. */
  filesFailed?: number;
}

/** The settings of a source that every kind understands; kinds read their own keys too. */
export interface SourceSettings {
  id: string;
  name: string;
  kind: string;
  url: string;
  valueType: ValueType | 'auto';
  extract?: RegExp;
  timeoutMs: number;
  maxBytes: number;
  /** The settings of a `taxii21` source; other kinds have none. */
  taxii21?: Taxii21Settings;
  /** The settings of a `csv` source; other kinds have none. */
  csv?: CsvSettings;
  /** The settings of a `json` source; other kinds have none. */
  json?: JsonSettings;
  /** The settings of a `misp-feed` source; other kinds have none. */
  misp?: Partial<MispSettings>;
  /** The entry loader of the `manual` source, supplied by the hub at poll time. */
  manual?: ManualSettings;
  /** Authentication, TLS, proxy, retries and zip entry of an HTTP source. Default: none and no retries. */
  http?: HttpSettings;
  /** `allow-list`: the values join the collection's allow-list instead of becoming indicators. Default `block`. */
  role?: 'block' | 'allow-list';
  /** The settings of a `directory` source; other kinds have none. */
  directory?: DirectorySettings;
}

export interface ReadContext {
  source: SourceSettings;
  /** State stored after the previous poll: conditional-GET validators and the kind's cursor. */
  previous?: SourceState;
  userAgent: string;
  logger: Logger;
  /**
   * Digest of the body of the previous complete, plausible poll. A kind that
   * reads whole lists answers `unchanged` when the body has the same digest,
   * without parsing it.
   */
  unchangedDigest?: string;
}

export type ReadResult =
  | { kind: 'not-modified' }
  | {
      /** The body is byte for byte the one whose digest was `unchangedDigest`. */
      kind: 'unchanged';
      bodyDigest: string;
      bytes: number;
      etag?: string;
      lastModified?: string;
      /** Parses the body after all, for when the shortcut cannot apply. */
      parse: () => Promise<ReadResult>;
    }
  | {
      kind: 'data';
      /** Values that become hub indicators (and reach the views). */
      entries: SourceEntry[];
      /** STIX objects stored as they are, e.g. from a bundle or a TAXII server. */
      objects: ObjectVersionInput[];
      stats: ReadStats;
      etag?: string;
      lastModified?: string;
      /** Kind-specific position to resume from on the next poll (stored with the source state). */
      cursor?: Record<string, unknown>;
      /** SHA-256 of a whole-list body, for the next poll's `unchangedDigest`. */
      bodyDigest?: string;
      /**
       * True when the read is the source's whole current list, so a value
       * missing from it has left the source. False for incremental reads
       * such as TAXII `added_after`.
       */
      complete: boolean;
      /**
       * True for a list that is the truth even when it shrinks or empties,
       * such as the analysts' manual entries: no plausibility check, and a
       * value missing from it is withdrawn at once.
       */
      authoritative?: boolean;
    }
  | {
      /**
       * A whole list parsed while it is read, so that it is never held in
       * memory whole. Only `SourceKind.readStream` returns it.
       */
      kind: 'stream';
      /**
       * The entries in list order. Iterate once. Each canonical value comes
       * once, unless `duplicatesKept` is set.
       */
      batches: AsyncIterable<SourceEntry[]>;
      /**
       * The batches may list a value more than once, so that the parse keeps
       * no set of the values seen. `valid` then counts every listing and
       * `duplicates` none, until the reader counts the repeats: the poll takes
       * them from its store's stage, and `collectStream` while collecting.
       */
      duplicatesKept: boolean;
      /**
       * Returns the read's stats and objects. Call it after `batches` ended.
       * Throws `SourceRejectedError` when the whole body turned out unusable.
       */
      end: () => { stats: ReadStats; objects: ObjectVersionInput[] };
      /** Removes the body's temporary file. Call it once, whether or not `batches` was read. */
      close: () => Promise<void>;
      etag?: string;
      lastModified?: string;
      bodyDigest: string;
      /** A whole list is complete: a value missing from it has left the source. */
      complete: true;
    };

/**
 * A kind of source. `read` fetches and parses; it throws to fail the poll
 * (a `SourceRejectedError` when the body arrived but is unusable), and it
 * never writes to the store. It never returns a `stream` result.
 */
export interface SourceKind {
  read(context: ReadContext): Promise<ReadResult>;
  /** Reads as `read` does but may return a `stream` result. Polls call it when a kind has it. */
  readStream?(context: ReadContext): Promise<ReadResult>;
}

/** Reads a `stream` result whole into a `data` result; other results are returned as they are. */
export async function collectStream(result: ReadResult): Promise<ReadResult> {
  if (result.kind === 'unchanged') {
    const { parse } = result;
    return { ...result, parse: async () => collectStream(await parse()) };
  }
  if (result.kind !== 'stream') return result;
  try {
    const entries: SourceEntry[] = [];
    const seen = result.duplicatesKept ? new SeenValues() : undefined;
    let repeats = 0;
    for await (const batch of result.batches) {
      for (const entry of batch) {
        if (seen === undefined || seen.add(entry.type, entry.value)) entries.push(entry);
        else repeats++;
      }
    }
    const { stats, objects } = result.end();
    if (seen !== undefined) countRepeats(stats, repeats);
    return {
      kind: 'data',
      entries,
      objects,
      stats,
      etag: result.etag,
      lastModified: result.lastModified,
      bodyDigest: result.bodyDigest,
      complete: true,
    };
  } finally {
    await result.close();
  }
}

// Defined in its own module, so that kind modules can import it without an import cycle.
export { SourceRejectedError };

/**
 * Moves `repeats` listings of a read that kept duplicates from its valid
 * count to its duplicates, as a read that removed them would have counted.
 */
export function countRepeats(stats: ReadStats, repeats: number): void {
  const moved = Math.max(0, Math.min(stats.valid, repeats));
  stats.valid -= moved;
  stats.duplicates = (stats.duplicates ?? 0) + moved;
}

/**
 * Builds what `readWholeListStream` needs from a parse that hands on every
 * listing, repeated values included: its batches, and an end step that
 * judges the body once it has been read whole and copies only the
 * `reported` counts of its stats.
 */
function listingStream<S extends ReadStats>(
  batches: AsyncIterable<SourceEntry[]>,
  stats: () => S,
  judge: (stats: S) => { ok: true } | { ok: false; reason: string },
  reported: readonly (keyof ReadStats)[],
): ListStream {
  const end = () => {
    const all = stats();
    const judgement = judge(all);
    if (!judgement.ok) return judgement;
    const report: ReadStats = { valid: all.valid, invalid: all.invalid };
    for (const key of reported) Object.assign(report, { [key]: all[key] });
    return { ok: true as const, stats: report };
  };
  return { batches, end, duplicatesKept: true };
}

/** Returns a kind whose reads are streams. Its `read` collects the stream into a `data` result. */
function streamedKind(readStream: (context: ReadContext) => Promise<ReadResult>): SourceKind {
  return { read: async (context) => collectStream(await readStream(context)), readStream };
}

/** Reads a text list as a stream of batches. */
function readTextListStream(context: ReadContext): Promise<ReadResult> {
  const { source } = context;
  return readWholeListStream(context, (body) => {
    const parsed = streamTextList(body, {
      valueType: source.valueType,
      extract: source.extract,
      maxInvalidExamples: 5,
      keepDuplicates: true,
    });
    return listingStream(parsed.batches, () => parsed.stats, judgeBody, [
      'lines',
      'comments',
      'blank',
      'unmatched',
      'duplicates',
      'invalidExamples',
    ]);
  });
}

/** Reads a CSV body as a stream of batches. */
function readCsvStream(context: ReadContext): Promise<ReadResult> {
  const settings = context.source.csv;
  if (!settings) throw new Error(`source ${context.source.id} has kind csv but no csv settings`);
  return readWholeListStream(context, (body) => {
    const parsed = streamCsv(body, settings, { keepDuplicates: true });
    return listingStream(parsed.batches, parsed.stats, judgeCsv, [
      'lines',
      'comments',
      'blank',
      'skipped',
      'duplicates',
      'invalidAttributes',
      'invalidExamples',
    ]);
  });
}

/**
 * Reads a JSON Lines or `elements` source without a version document as a
 * stream of batches. A JSON document is read whole (a JMESPath expression
 * runs on the whole document), and so is a list with a version document,
 * whose version goes with the list into the source's cursor.
 */
function readJsonStream(context: ReadContext): Promise<ReadResult> {
  const settings = context.source.json;
  if (
    settings === undefined ||
    settings.format === 'document' ||
    settings.versionUrl !== undefined
  ) {
    return readJsonSource(context);
  }
  return readWholeListStream(context, (body) => {
    const parsed = streamJsonRecords(body, settings, context.source.valueType, {
      keepDuplicates: true,
    });
    return listingStream(parsed.batches, parsed.stats, judgeJson, [
      'lines',
      'blank',
      'unmatched',
      'duplicates',
      'invalidExamples',
    ]);
  });
}

const textList = streamedKind(readTextListStream);
const csv = streamedKind(readCsvStream);
const json = streamedKind(readJsonStream);

/** The source kinds by the `kind` key of their configuration. */
export const SOURCE_KINDS: Readonly<Record<string, SourceKind>> = {
  'text-list': textList,
  taxii21,
  csv,
  json,
  'stix-bundle': stixBundleKind,
  'misp-feed': mispFeedKind,
  manual: manualKind,
  directory: { read: (context) => readDirectory(context, SOURCE_KINDS) },
};
