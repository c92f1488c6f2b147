import type { Logger } from 'pino';
import type { ValueType } from '../processing/index.js';
import type { ObjectVersionInput, SourceState } from '../store/index.js';
import { fetchFeed, redactUrl } from './fetch.js';
import { judgeBody, parseTextList, type InvalidExample } from './text-list.js';
import { taxii21, type Taxii21Settings } from './taxii21.js';

/** One indicator value read from a source. */
export interface SourceEntry {
  type: ValueType;
  value: string;
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
  invalidExamples?: InvalidExample[];
  /** Pages requested from a paged source such as TAXII. */
  pages?: number;
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
}

export interface ReadContext {
  source: SourceSettings;
  /** State stored after the previous poll: conditional-GET validators and the kind's cursor. */
  previous?: SourceState;
  userAgent: string;
  logger: Logger;
}

export type ReadResult =
  | { kind: 'not-modified' }
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
      /**
       * True when the read is the source's whole current list, so a value
       * missing from it has left the source. False for incremental reads
       * such as TAXII `added_after`.
       */
      complete: boolean;
    };

/**
 * A kind of source. `read` fetches and parses; it throws to fail the poll
 * (a `SourceRejectedError` when the body arrived but is unusable), and it
 * never writes to the store.
 */
export interface SourceKind {
  read(context: ReadContext): Promise<ReadResult>;
}

/** A body that arrived but is unusable: an HTML page, no valid entry, mostly invalid lines. */
export class SourceRejectedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SourceRejectedError';
  }
}

const textList: SourceKind = {
  async read({ source, previous, userAgent }) {
    const fetched = await fetchFeed(source.url, {
      etag: previous?.etag,
      lastModified: previous?.lastModified,
      timeoutMs: source.timeoutMs,
      maxBytes: source.maxBytes,
      userAgent,
    });
    if (fetched.kind === 'not-modified') return { kind: 'not-modified' };

    const parsed = await parseTextList(fetched.body, {
      valueType: source.valueType,
      extract: source.extract,
      maxInvalidExamples: 5,
    });
    const { stats } = parsed;
    const judgement = judgeBody(stats);
    if (!judgement.ok) {
      throw new SourceRejectedError(
        `rejected the body of ${redactUrl(source.url)}: ${judgement.reason}`,
      );
    }
    return {
      kind: 'data',
      entries: parsed.entries,
      objects: [],
      stats: {
        bytes: fetched.bytes(),
        lines: stats.lines,
        comments: stats.comments,
        blank: stats.blank,
        unmatched: stats.unmatched,
        valid: stats.valid,
        invalid: stats.invalid,
        duplicates: stats.duplicates,
        invalidExamples: stats.invalidExamples,
      },
      etag: fetched.etag,
      lastModified: fetched.lastModified,
      complete: true,
    };
  },
};

/** The source kinds by the `kind` key of their configuration. */
export const SOURCE_KINDS: Readonly<Record<string, SourceKind>> = {
  'text-list': textList,
  taxii21,
};
