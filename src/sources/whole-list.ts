/**
 * Reading a source's whole list: a conditional GET, the body kept while it
 * is hashed, and a parse that is skipped when the body is the one of the
 * previous complete poll.
 */
import { createHash } from 'node:crypto';

import type { ObjectVersionInput } from '../store/index.js';
import { fetchFeed, redactUrl } from './fetch.js';
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
 * Fetches a body that contains the source's whole list, with a conditional
 * GET, and parses it. Throws `SourceRejectedError` when the parse finds the body
 * unusable, so the poll changes nothing.
 */
export async function readWholeList(
  { source, previous, userAgent, unchangedDigest }: ReadContext,
  parse: (body: AsyncIterable<Buffer>) => Promise<ParsedList>,
): Promise<ReadResult> {
  const fetched = await fetchFeed(source.url, {
    etag: previous?.etag,
    lastModified: previous?.lastModified,
    timeoutMs: source.timeoutMs,
    maxBytes: source.maxBytes,
    userAgent,
  });
  if (fetched.kind === 'not-modified') return { kind: 'not-modified' };

  // The body is kept while it is hashed, so that an unchanged one is never
  // parsed; it is bounded by the source's maxBytes.
  const chunks: Buffer[] = [];
  const hash = createHash('sha256');
  for await (const chunk of fetched.body) {
    chunks.push(chunk);
    hash.update(chunk);
  }
  const bodyDigest = hash.digest('base64url');
  const parseBody = async (): Promise<ReadResult> => {
    const parsed = await parse(replay(chunks));
    if (!parsed.ok) {
      throw new SourceRejectedError(
        `rejected the body of ${redactUrl(source.url)}: ${parsed.reason}`,
      );
    }
    return {
      kind: 'data',
      entries: parsed.entries,
      objects: parsed.objects ?? [],
      stats: { bytes: fetched.bytes(), ...parsed.stats },
      etag: fetched.etag,
      lastModified: fetched.lastModified,
      complete: true,
      bodyDigest,
    };
  };
  if (unchangedDigest === bodyDigest) {
    return {
      kind: 'unchanged',
      bodyDigest,
      bytes: fetched.bytes(),
      etag: fetched.etag,
      lastModified: fetched.lastModified,
      parse: parseBody,
    };
  }
  return parseBody();
}

/** Yields kept chunks again, as the body stream did. */
async function* replay(chunks: readonly Buffer[]): AsyncIterable<Buffer> {
  for (const chunk of chunks) yield chunk;
}
