/**
 * Reading a source's whole list: a conditional GET, the body kept while it
 * is hashed, and a parse that is skipped when the body is the one of the
 * previous complete poll.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import type { ObjectVersionInput } from '../store/index.js';
import { fetchFeed, redactUrl, type FetchOptions } from './fetch.js';
import type { ReadContext, ReadResult, ReadStats, SourceEntry } from './kinds.js';
import { SourceRejectedError } from './rejected.js';

/** A parsed whole-list body: its entries and stats, or the reason it is unusable. */
export type ParsedList =
  | {
      ok: true;
      entries: SourceEntry[];
      stats: ReadStats;
      /** STIX objects to store as they are. Default none. */
      objects?: ObjectVersionInput[];
    }
  | { ok: false; reason: string };

/**
 * Bodies up to this many bytes are kept in memory between hashing and
 * parsing. A larger one is written to a temporary file and parsed from
 * there, so memory does not grow with the size of a feed.
 */
export const SPOOL_THRESHOLD_BYTES = 1024 * 1024;

/** Builds the fetch options of a source: its limits, HTTP settings and conditional-GET validators. */
export function fetchOptionsFor(
  { source, previous, userAgent, logger }: ReadContext,
  conditional = true,
): FetchOptions {
  return {
    etag: conditional ? previous?.etag : undefined,
    lastModified: conditional ? previous?.lastModified : undefined,
    timeoutMs: source.timeoutMs,
    maxBytes: source.maxBytes,
    userAgent,
    http: source.http,
    logger,
  };
}

/** A whole-list body parsed as a stream: its entries in batches, then its stats. */
export interface ListStream {
  batches: AsyncIterable<SourceEntry[]>;
  /** Returns the stats or the reason the body is unusable. Call it after `batches` ended. */
  end: () => { ok: true; stats: ReadStats } | { ok: false; reason: string };
  /** Whether the batches may repeat a value; see `duplicatesKept` of the `stream` read result. */
  duplicatesKept?: boolean;
}

/** A fetched whole-list body, kept until it is parsed. */
interface FetchedBody {
  spool: Spool;
  bodyDigest: string;
  bytes: number;
  etag?: string;
  lastModified?: string;
}

/**
 * Fetches a body that contains the source's whole list, with a conditional
 * GET, and parses it. Throws `SourceRejectedError` when the parse finds the body
 * unusable, so the poll changes nothing.
 */
export function readWholeList(
  context: ReadContext,
  parse: (body: AsyncIterable<Buffer>) => Promise<ParsedList>,
  conditional = true,
): Promise<ReadResult> {
  return readWhole(context, conditional, async (body) => {
    let parsed: ParsedList;
    try {
      parsed = await parse(body.spool.read());
    } finally {
      await body.spool.remove();
    }
    if (!parsed.ok) throw rejection(context, parsed.reason);
    return {
      kind: 'data',
      entries: parsed.entries,
      objects: parsed.objects ?? [],
      stats: { bytes: body.bytes, ...parsed.stats },
      etag: body.etag,
      lastModified: body.lastModified,
      complete: true,
      bodyDigest: body.bodyDigest,
    };
  });
}

/**
 * Fetches a whole list as `readWholeList` does, but returns a `stream`
 * result whose entries are parsed from the kept body while the caller reads
 * them. Its `end` throws `SourceRejectedError` when the body is unusable.
 */
export function readWholeListStream(
  context: ReadContext,
  parse: (body: AsyncIterable<Buffer>) => ListStream,
  conditional = true,
): Promise<ReadResult> {
  return readWhole(context, conditional, async (body) => {
    const parsed = parse(body.spool.read());
    return {
      kind: 'stream',
      batches: parsed.batches,
      end: () => {
        const judged = parsed.end();
        if (!judged.ok) throw rejection(context, judged.reason);
        return { stats: { bytes: body.bytes, ...judged.stats }, objects: [] };
      },
      close: () => body.spool.remove(),
      etag: body.etag,
      lastModified: body.lastModified,
      complete: true,
      bodyDigest: body.bodyDigest,
      duplicatesKept: parsed.duplicatesKept === true,
    };
  });
}

function rejection(context: ReadContext, reason: string): SourceRejectedError {
  return new SourceRejectedError(
    `rejected the body of ${redactUrl(context.source.url)}: ${reason}`,
  );
}

/**
 * Fetches and keeps a whole-list body, then returns `not-modified`,
 * `unchanged` when its digest is `context.unchangedDigest`, or what `toResult`
 * makes of it. `toResult` owns the kept body and must remove it.
 */
async function readWhole(
  context: ReadContext,
  conditional: boolean,
  toResult: (body: FetchedBody) => Promise<ReadResult>,
): Promise<ReadResult> {
  const { source, unchangedDigest } = context;
  const fetched = await fetchFeed(source.url, fetchOptionsFor(context, conditional));
  if (fetched.kind === 'not-modified') return { kind: 'not-modified' };

  const spool = new Spool();
  const hash = createHash('sha256');
  try {
    for await (const chunk of fetched.body) {
      hash.update(chunk);
      await spool.write(chunk);
    }
    await spool.end();
  } catch (error) {
    await spool.remove();
    throw error;
  }
  const body: FetchedBody = {
    spool,
    bodyDigest: hash.digest('base64url'),
    bytes: fetched.bytes(),
    etag: fetched.etag,
    lastModified: fetched.lastModified,
  };

  if (unchangedDigest === body.bodyDigest) {
    // The poll may never parse an unchanged body, so a spooled one is not
    // kept: parsing it after all fetches the list again.
    const inMemory = !spool.spooled;
    if (!inMemory) await spool.remove();
    return {
      kind: 'unchanged',
      bodyDigest: body.bodyDigest,
      bytes: body.bytes,
      etag: body.etag,
      lastModified: body.lastModified,
      parse: inMemory
        ? () => toResult(body)
        : () => readWhole({ ...context, unchangedDigest: undefined }, false, toResult),
    };
  }
  return toResult(body);
}

/** Holds a body in memory up to SPOOL_THRESHOLD_BYTES and in a temporary file beyond. */
class Spool {
  private chunks: Buffer[] = [];
  private size = 0;
  private directory?: string;
  private file?: WriteStream;

  get spooled(): boolean {
    return this.directory !== undefined;
  }

  async write(chunk: Buffer): Promise<void> {
    if (this.file === undefined) {
      this.chunks.push(chunk);
      this.size += chunk.length;
      if (this.size <= SPOOL_THRESHOLD_BYTES) return;
      this.directory = await mkdtemp(join(tmpdir(), 'feedhub-body-'));
      this.file = createWriteStream(join(this.directory, 'body'));
      const kept = this.chunks;
      this.chunks = [];
      for (const part of kept) await this.append(part);
      return;
    }
    await this.append(chunk);
  }

  private async append(chunk: Buffer): Promise<void> {
    if (!this.file!.write(chunk)) await once(this.file!, 'drain');
  }

  async end(): Promise<void> {
    if (this.file === undefined) return;
    this.file.end();
    await once(this.file, 'finish');
  }

  /** Yields the body again, as the fetch did. */
  async *read(): AsyncGenerator<Buffer> {
    if (this.directory === undefined) {
      for (const chunk of this.chunks) yield chunk;
      return;
    }
    for await (const chunk of createReadStream(join(this.directory, 'body'))) {
      yield chunk as Buffer;
    }
  }

  async remove(): Promise<void> {
    this.chunks = [];
    this.file?.destroy();
    if (this.directory !== undefined) await rm(this.directory, { recursive: true, force: true });
  }
}
