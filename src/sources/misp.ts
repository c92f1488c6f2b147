/**
 * The `misp-feed` source kind: reads a MISP feed, a directory that contains
 * `manifest.json` (events keyed by UUID, each with its `timestamp`), one
 * `<uuid>.json` file per event and, when the feed has one, `hashes.csv` (the
 * MD5 of each attribute value with the UUID of its event, read by
 * misp-hashes.ts). An event is fetched when its manifest timestamp differs
 * from the one stored in the cursor. It is also fetched when its set of MD5s
 * in `hashes.csv` differs from the digest stored there, because some feed
 * generators change an event without changing its timestamp. The cursor
 * keeps the values of every other event, so each read still returns the
 * feed's whole list.
 *
 * Unchanged MD5s never spare a fetch: a changed `to_ids` flag, a deleted
 * attribute or a new TLP tag leaves the value hashes as they were, and the
 * manifest timestamp shows those changes. The MD5s listed for a fetched
 * event are compared with its attribute values, and the run report counts
 * the mismatches. A feed without `hashes.csv` is read by its manifest alone.
 * A malformed `hashes.csv`, or one that fails to download, is reported in
 * the run report and ignored.
 */
import { createHash } from 'node:crypto';

import {
  canonicalize,
  detectValueType,
  type CanonicalResult,
  type ValueType,
} from '../processing/index.js';
import { isTlpLevel, type TlpLevel } from '../stix/tlp.js';
import type { SightingAttributes } from '../store/index.js';
import { fetchFeed, redactUrl, type FetchResult } from './fetch.js';
import { FetchError } from './fetch-error.js';
import {
  attributeHashes,
  digestOfHashes,
  HashesFileError,
  parseHashesCsv,
  type HashesFile,
  type HashesOrder,
} from './misp-hashes.js';
import { SourceRejectedError } from './rejected.js';
import {
  type ReadContext,
  type ReadResult,
  type ReadStats,
  type SourceEntry,
  type SourceKind,
  type SourceSettings,
} from './kinds.js';
import type { InvalidExample } from './text-list.js';

/** Settings of a `misp-feed` source. */
export interface MispSettings {
  /** Take only attributes whose `to_ids` flag is set (default); false takes every attribute. */
  toIdsOnly: boolean;
  /** Event files fetched at the same time, 1 to 16; default 4. */
  concurrency: number;
  /**
   * Maximum number of values kept in the cursor over all events. A read that
   * would keep more fails, because the cursor is stored with the source state.
   * Default 100,000.
   */
  maxEntries: number;
}

export const DEFAULT_MISP_SETTINGS: Readonly<MispSettings> = {
  toIdsOnly: true,
  concurrency: 4,
  // NOTE: an estimate. A cursor entry takes about 40 bytes for an IP address
  // and about 100 for a SHA-256 hash, so 100,000 entries stay well below the
  // 16 MiB document limit of MongoDB.
  maxEntries: 100_000,
};

/**
 * The MISP context of one value, with the UUIDs of its events. The entries
 * carry the same TLP and labels as attributes, with ports and descriptions.
 */
export interface MispAnnotation {
  type: ValueType;
  value: string;
  /** The strictest `tlp:*` tag of the events and attributes that list the value. */
  tlp?: TlpLevel;
  /** Tags other than `tlp:*` of those events and attributes, sorted. */
  labels: string[];
  /** UUIDs of the events that list the value. */
  events: string[];
}

/** Event and attribute counts of one read, added to the run report beside `ReadStats`. */
export interface MispStats {
  eventsListed: number;
  eventsFetched: number;
  /** Events whose manifest timestamp and MD5s in `hashes.csv` equal the stored ones, so they were not fetched. */
  eventsUnchanged: number;
  /** Events fetched because their MD5s in `hashes.csv` changed while their manifest timestamp did not. */
  eventsHashesChanged: number;
  /** Events that could not be fetched or parsed; their previous values are kept. */
  eventsFailed: number;
  eventFailures: { event: string; reason: string }[];
  /** Attributes in the fetched events, those inside `Object` entries included. */
  attributesRead: number;
  attributesNotIds: number;
  attributesDeleted: number;
  /** Attributes of a type that does not map to a value type, such as `filename` or `text`. */
  attributesUnsupported: number;
  /**
   * Outcome of reading `hashes.csv`: `read`, `absent` (HTTP 404 or 410, or
   * no such file), or ignored because it is `malformed` or its download `failed`.
   */
  hashesFile: 'read' | 'absent' | 'malformed' | 'failed';
  /** Reason `hashes.csv` was ignored. */
  hashesProblem?: string;
  /** Column order of the `hashes.csv` read. */
  hashesOrder?: HashesOrder;
  /** Data lines of `hashes.csv`. */
  hashesLines: number;
  /** Lines of `hashes.csv` that are neither data nor its header, skipped. */
  hashesInvalidLines: number;
  hashesInvalidExamples?: InvalidExample[];
  /** MD5s that `hashes.csv` lists for a fetched event but that no attribute value of the event has. */
  hashesNotInEvent: number;
  /** Attributes read from fetched events whose values `hashes.csv` does not list for the event. */
  attributesNotInHashes: number;
}

/** The result of a read together with what `ReadResult` cannot carry yet. */
export interface MispRead {
  result: ReadResult;
  /** One annotation per returned entry, in the same order; empty unless the result is `data`. */
  annotations: MispAnnotation[];
}

/** The cursor key under which the kind keeps its state; `poll.ts` owns other keys. */
export const MISP_CURSOR_KEY = 'misp';

/**
 * One cached value: type, value, TLP level or empty, indexes into the event's
 * labels, the ports of `|port` attributes, and the comment of the first
 * `to_ids` attribute that has one (empty when none).
 */
type CachedEntry = [ValueType, string, TlpLevel | '', number[], number[], string];

interface CachedEvent {
  /** The manifest timestamp of the event when it was read, as the manifest wrote it. */
  timestamp: string;
  /** `digestOfHashes` of the event's MD5s in the last `hashes.csv` read; absent while none was read. */
  hashes?: string;
  labels: string[];
  entries: CachedEntry[];
}

/** The stored state of a `misp-feed` source. */
interface MispCursor {
  /** 2 since entries carry ports and comments; a cursor of format 1 is discarded, so every event is read again. */
  format: 2;
  /** The manifest URL and the settings the entries were extracted with; another value discards the cursor. */
  feedUrl: string;
  toIdsOnly: boolean;
  /** The last `hashes.csv` read; absent when the feed has none or it was ignored. */
  hashesFile?: HashesFileState;
  events: Record<string, CachedEvent>;
}

/** Validators and SHA-256 (base64url) of the last `hashes.csv` read. */
interface HashesFileState {
  digest: string;
  etag?: string;
  lastModified?: string;
}

const MAX_INVALID_EXAMPLES = 5;
const MAX_CONCURRENCY = 16;
const MAX_EXAMPLE_LENGTH = 200;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const TIMESTAMP = /^\d{1,12}$/;

/** TLP levels from least to most strict; `white` and `clear` are the same level. */
const TLP_RANK: Record<TlpLevel, number> = {
  clear: 0,
  white: 0,
  green: 1,
  amber: 2,
  'amber+strict': 3,
  red: 4,
};

export const mispFeedKind: SourceKind = {
  async read(context) {
    return (await readMispFeed(context)).result;
  },
};

/**
 * Reads a MISP feed: fetches the manifest with a conditional GET and
 * `hashes.csv`, then the events that changed since the cursor was written.
 * An event that fails to fetch or parse keeps its previous values and makes
 * the read incomplete, so nothing is withdrawn. An unusable manifest throws
 * `SourceRejectedError`; an unusable `hashes.csv` is reported and ignored.
 */
export async function readMispFeed(context: ReadContext): Promise<MispRead> {
  const { source, logger } = context;
  const settings = mispSettings(source);
  const manifestUrl = manifestUrlOf(source.url);
  const hashesUrl = new URL('hashes.csv', manifestUrl).href;
  const previous = readCursor(context.previous?.cursor, manifestUrl, settings);
  if (context.previous?.cursor?.[MISP_CURSOR_KEY] !== undefined && previous === undefined) {
    logger.info(
      { url: redactUrl(manifestUrl) },
      'stored MISP cursor belongs to another URL or settings; fetching every event',
    );
  }

  // Validators are sent only with a usable cursor, because a 304 does not
  // cover events whose values a discarded cursor no longer contains.
  let fetched: FetchResult = await fetchFeed(
    manifestUrl,
    requestOptions(context, previous ? context.previous : undefined),
  );
  let hashes: HashesRead;
  if (fetched.kind === 'not-modified') {
    // An event can change without its manifest timestamp, and then only hashes.csv shows it.
    hashes = await readHashes(hashesUrl, previous?.hashesFile, context);
    if (hashes.status !== 'read' || hashes.state.digest === previous?.hashesFile?.digest) {
      return { result: { kind: 'not-modified' }, annotations: [] };
    }
    fetched = await fetchFeed(manifestUrl, requestOptions(context));
    if (fetched.kind === 'not-modified') {
      throw new Error(`GET ${redactUrl(manifestUrl)} returned 304 to a request without validators`);
    }
  } else {
    hashes = await readHashes(hashesUrl, undefined, context);
  }

  const manifestBody = await collect(fetched.body);
  const manifest = parseManifest(manifestBody, manifestUrl);
  const stats = emptyStats(Object.keys(manifest.events).length + manifest.invalid.length);
  const counts: ReadStats = {
    bytes: manifestBody.length + ('bytes' in hashes ? hashes.bytes : 0),
    valid: 0,
    invalid: 0,
  };
  for (const listing of manifest.invalid) addFailure(stats, listing.event, listing.reason);
  recordHashes(stats, hashes);
  const listed = hashes.status === 'read' ? hashes.file.byEvent : undefined;

  const events: Record<string, CachedEvent> = {};
  const toFetch: { uuid: string; timestamp: string; hashes?: string }[] = [];
  for (const [uuid, timestamp] of Object.entries(manifest.events)) {
    const cached = previous?.events[uuid];
    const eventHashes = listed && digestOfHashes(listedFor(listed, uuid));
    if (cached === undefined || cached.timestamp !== timestamp) {
      toFetch.push({ uuid, timestamp, hashes: eventHashes });
    } else if (
      eventHashes !== undefined &&
      cached.hashes !== undefined &&
      eventHashes !== cached.hashes
    ) {
      toFetch.push({ uuid, timestamp, hashes: eventHashes });
      stats.eventsHashesChanged += 1;
    } else {
      // A cursor written before hashes.csv was read takes the digest without a fetch.
      events[uuid] = withEventHashes(cached, eventHashes ?? cached.hashes);
      stats.eventsUnchanged += 1;
    }
  }

  const extraction = new Extraction(settings, stats, counts);
  await runLimited(toFetch, settings.concurrency, async ({ uuid, timestamp, hashes: digest }) => {
    const url = new URL(`${uuid}.json`, manifestUrl).href;
    try {
      const body = await fetchEventBody(url, context);
      counts.bytes = (counts.bytes ?? 0) + body.length;
      const event = parseEvent(body, uuid, url);
      const extracted = extraction.extract(uuid, event, listed && listedFor(listed, uuid));
      events[uuid] = withEventHashes({ timestamp, ...extracted }, digest);
      stats.eventsFetched += 1;
    } catch (error) {
      addFailure(stats, uuid, (error as Error).message);
      logger.warn(
        { url: redactUrl(url), err: error },
        'MISP event not read; its previous values are kept',
      );
      const cached = previous?.events[uuid];
      if (cached !== undefined) events[uuid] = cached;
    }
  });

  const merged = mergeEvents(events, Object.keys(manifest.events));
  if (merged.cachedEntries > settings.maxEntries) {
    throw new SourceRejectedError(
      `MISP feed ${redactUrl(manifestUrl)} lists ${merged.cachedEntries} values, more than maxEntries ${settings.maxEntries}; raise maxEntries or set toIdsOnly`,
    );
  }
  counts.valid = merged.entries.length;
  counts.duplicates = merged.cachedEntries - merged.entries.length;

  const cursor: MispCursor = {
    format: 2,
    feedUrl: manifestUrl,
    toIdsOnly: settings.toIdsOnly,
    ...(hashes.status === 'read' ? { hashesFile: hashes.state } : {}),
    events: orderedEvents(events),
  };
  const complete = stats.eventsFailed === 0;
  const hashesDigest = hashes.status === 'read' ? hashes.state.digest : undefined;
  const bodyDigest = complete ? digestOf(manifestBody, hashesDigest, settings) : undefined;
  logger.info(
    {
      url: redactUrl(manifestUrl),
      count: counts.valid,
      eventsListed: stats.eventsListed,
      eventsFetched: stats.eventsFetched,
      eventsUnchanged: stats.eventsUnchanged,
      eventsHashesChanged: stats.eventsHashesChanged,
      eventsFailed: stats.eventsFailed,
      hashesFile: stats.hashesFile,
      hashesNotInEvent: stats.hashesNotInEvent,
      attributesNotInHashes: stats.attributesNotInHashes,
    },
    'MISP feed read',
  );

  // An incomplete read drops the manifest's validators, so that the next poll
  // gets the manifest again instead of a 304 and retries the failed events.
  const data: ReadResult = {
    kind: 'data',
    entries: merged.entries,
    objects: [],
    // The MISP counts travel in the same object, so the run report shows them.
    stats: { ...counts, ...stats } as ReadStats & MispStats,
    etag: complete ? fetched.etag : undefined,
    lastModified: complete ? fetched.lastModified : undefined,
    cursor: { [MISP_CURSOR_KEY]: cursor },
    complete,
    bodyDigest,
  };
  const unchanged =
    bodyDigest !== undefined && bodyDigest === context.unchangedDigest && stats.eventsFetched === 0;
  const result: ReadResult = unchanged
    ? {
        kind: 'unchanged',
        bodyDigest,
        bytes: counts.bytes ?? manifestBody.length,
        etag: fetched.etag,
        lastModified: fetched.lastModified,
        parse: () => Promise.resolve(data),
      }
    : data;
  return { result, annotations: merged.annotations };
}

/** Builds the fetch options of every request of a read, with the validators of `previous` when given. */
function requestOptions(
  { source, userAgent, logger }: ReadContext,
  previous?: { etag?: string; lastModified?: string },
): Parameters<typeof fetchFeed>[1] {
  return {
    etag: previous?.etag,
    lastModified: previous?.lastModified,
    timeoutMs: source.timeoutMs,
    maxBytes: source.maxBytes,
    userAgent,
    ...(source.http === undefined ? {} : { http: source.http }),
    logger,
  };
}

/** Returns the MD5s that `hashes.csv` lists for an event; none when it does not name the event. */
function listedFor(listed: Map<string, Set<string>>, uuid: string): ReadonlySet<string> {
  return listed.get(uuid.toLowerCase()) ?? new Set();
}

function withEventHashes(event: CachedEvent, hashes: string | undefined): CachedEvent {
  const copy = { ...event };
  if (hashes === undefined) delete copy.hashes;
  else copy.hashes = hashes;
  return copy;
}

/**
 * Returns the source's `misp` settings over the defaults. The config schema
 * checks them first; the checks here keep a direct caller from passing a
 * value that would stall or unbound the read.
 */
function mispSettings(source: SourceSettings): MispSettings {
  const given = (source as SourceSettings & { misp?: Partial<MispSettings> }).misp ?? {};
  const settings = { ...DEFAULT_MISP_SETTINGS, ...given };
  const { concurrency, maxEntries, toIdsOnly } = settings;
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > MAX_CONCURRENCY) {
    throw new Error(
      `source ${source.id} has invalid misp concurrency ${String(concurrency)}; use an integer from 1 to ${MAX_CONCURRENCY}`,
    );
  }
  if (!Number.isInteger(maxEntries) || maxEntries < 1) {
    throw new Error(
      `source ${source.id} has invalid misp maxEntries ${String(maxEntries)}; use a positive integer`,
    );
  }
  if (typeof toIdsOnly !== 'boolean') {
    throw new Error(
      `source ${source.id} has invalid misp toIdsOnly ${String(toIdsOnly)}; use true or false`,
    );
  }
  return settings;
}

/** Returns the manifest URL of a feed given by its directory or by its `manifest.json`. */
export function manifestUrlOf(url: string): string {
  const parsed = new URL(url);
  if (parsed.pathname.endsWith('/manifest.json')) return parsed.href;
  if (!parsed.pathname.endsWith('/')) parsed.pathname += '/';
  return new URL('manifest.json', parsed).href;
}

function readCursor(
  stored: Record<string, unknown> | undefined,
  feedUrl: string,
  settings: MispSettings,
): MispCursor | undefined {
  const cursor = stored?.[MISP_CURSOR_KEY];
  if (!isRecord(cursor) || cursor.format !== 2) return undefined;
  if (cursor.feedUrl !== feedUrl || cursor.toIdsOnly !== settings.toIdsOnly) return undefined;
  if (!isRecord(cursor.events)) return undefined;
  const { hashesFile, ...rest } = cursor;
  // A hashes.csv state of another shape is dropped, and the next read writes it again.
  const usable = isRecord(hashesFile) && typeof hashesFile.digest === 'string';
  return (usable ? cursor : rest) as unknown as MispCursor;
}

function emptyStats(eventsListed: number): MispStats {
  return {
    eventsListed,
    eventsFetched: 0,
    eventsUnchanged: 0,
    eventsFailed: 0,
    eventFailures: [],
    attributesRead: 0,
    attributesNotIds: 0,
    attributesDeleted: 0,
    attributesUnsupported: 0,
    eventsHashesChanged: 0,
    hashesFile: 'absent',
    hashesLines: 0,
    hashesInvalidLines: 0,
    hashesNotInEvent: 0,
    attributesNotInHashes: 0,
  };
}

function addFailure(stats: MispStats, event: string, reason: string): void {
  stats.eventsFailed += 1;
  if (stats.eventFailures.length < MAX_INVALID_EXAMPLES) {
    stats.eventFailures.push({ event, reason: reason.slice(0, MAX_EXAMPLE_LENGTH) });
  }
}

async function collect(body: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/** Runs `work` on every item with at most `limit` calls pending at once. */
async function runLimited<T>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next]!;
      next += 1;
      await work(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

async function fetchEventBody(url: string, context: ReadContext): Promise<Buffer> {
  const fetched = await fetchFeed(url, requestOptions(context));
  if (fetched.kind === 'not-modified') {
    throw new Error(`GET ${redactUrl(url)} returned 304 to a request without validators`);
  }
  return collect(fetched.body);
}

/** The outcome of reading `hashes.csv`. */
type HashesRead =
  | { status: 'read'; file: HashesFile; state: HashesFileState; bytes: number }
  | { status: 'not-modified' }
  | { status: 'absent' }
  | { status: 'malformed' | 'failed'; reason: string; bytes: number };

/**
 * Fetches and parses `hashes.csv`, with a conditional GET when `validators`
 * are given. A 404 or 410 (or a missing local file) means the feed has none.
 * A `FetchError` or `HashesFileError` is logged and returned, and any other
 * error, which would be a bug, is thrown.
 */
async function readHashes(
  url: string,
  validators: HashesFileState | undefined,
  context: ReadContext,
): Promise<HashesRead> {
  const redacted = redactUrl(url);
  let body: Buffer;
  let fetched: FetchResult;
  try {
    fetched = await fetchFeed(url, requestOptions(context, validators));
    if (fetched.kind === 'not-modified') return { status: 'not-modified' };
    body = await collect(fetched.body);
  } catch (error) {
    if (isAbsent(error)) return { status: 'absent' };
    if (!(error instanceof FetchError)) throw error;
    context.logger.warn(
      { url: redacted, err: error },
      'MISP hashes.csv not read; events are compared by manifest timestamp only',
    );
    return { status: 'failed', reason: error.message, bytes: 0 };
  }

  try {
    const file = parseHashesCsv(body);
    const digest = createHash('sha256').update(body).digest('base64url');
    const state: HashesFileState = { digest };
    if (fetched.etag !== undefined) state.etag = fetched.etag;
    if (fetched.lastModified !== undefined) state.lastModified = fetched.lastModified;
    return { status: 'read', file, state, bytes: body.length };
  } catch (error) {
    if (!(error instanceof HashesFileError)) throw error;
    const reason = `${redacted} is not a MISP hashes.csv: ${error.message}`;
    context.logger.warn(
      { url: redacted, reason },
      'MISP hashes.csv ignored; events are compared by manifest timestamp only',
    );
    return { status: 'malformed', reason, bytes: body.length };
  }
}

function isAbsent(error: unknown): boolean {
  if (!(error instanceof FetchError)) return false;
  return error.reason === 'not-found' || error.status === 404 || error.status === 410;
}

/** Copies the outcome of reading `hashes.csv` into the stats of the read. */
function recordHashes(stats: MispStats, hashes: HashesRead): void {
  if (hashes.status === 'read') {
    stats.hashesFile = 'read';
    stats.hashesOrder = hashes.file.order;
    stats.hashesLines = hashes.file.lines;
    stats.hashesInvalidLines = hashes.file.invalidLines;
    if (hashes.file.invalidExamples.length > 0) {
      stats.hashesInvalidExamples = hashes.file.invalidExamples;
    }
  } else if (hashes.status === 'malformed' || hashes.status === 'failed') {
    stats.hashesFile = hashes.status;
    stats.hashesProblem = hashes.reason.slice(0, MAX_EXAMPLE_LENGTH);
  }
}

/** Decodes a UTF-8 JSON body, rejecting an HTML page and invalid or truncated JSON by name. */
function parseJsonBody(body: Buffer, url: string, what: string): unknown {
  let text = body.toString('utf8');
  if (text.startsWith('\uFEFF')) text = text.slice(1);
  // JSON never starts with `<`, so such a body is an HTML (or XML) error or login page.
  if (text.trimStart().startsWith('<')) {
    throw new SourceRejectedError(
      `${redactUrl(url)} returned an HTML page, not a ${what}; check the feed URL and its access`,
    );
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new SourceRejectedError(
      `${redactUrl(url)} is not valid JSON, so not a ${what} (${(error as Error).message}); the file may be truncated`,
    );
  }
}

interface Manifest {
  /** Event UUID to manifest timestamp. */
  events: Record<string, string>;
  /** Listings that cannot be read: a key that is no UUID or a missing timestamp. */
  invalid: { event: string; reason: string }[];
}

function parseManifest(body: Buffer, url: string): Manifest {
  const value = parseJsonBody(body, url, 'MISP feed manifest');
  if (!isRecord(value)) {
    throw new SourceRejectedError(
      `${redactUrl(url)} is not a MISP feed manifest: expected a JSON object keyed by event UUID`,
    );
  }
  const manifest: Manifest = { events: {}, invalid: [] };
  for (const [key, listing] of Object.entries(value)) {
    const event = key.slice(0, 64);
    // The key becomes part of a URL, so anything but a UUID is rejected.
    if (!UUID.test(key)) {
      manifest.invalid.push({ event, reason: `manifest key "${event}" is not an event UUID` });
      continue;
    }
    const timestamp = isRecord(listing) ? listing.timestamp : undefined;
    const text = typeof timestamp === 'number' ? String(timestamp) : timestamp;
    if (typeof text !== 'string' || !TIMESTAMP.test(text)) {
      manifest.invalid.push({
        event,
        reason: `manifest entry has no valid timestamp (expected Unix seconds, got ${JSON.stringify(timestamp) ?? 'none'})`,
      });
      continue;
    }
    manifest.events[key] = text;
  }
  if (Object.keys(manifest.events).length === 0) {
    throw new SourceRejectedError(`MISP feed manifest ${redactUrl(url)} lists no event`);
  }
  return manifest;
}

/**
 * Returns the `Event` object of an event file. The feed form is
 * `{"Event": {...}}`; the REST API form `{"response": [{"Event": {...}}]}`
 * is accepted as well.
 */
function parseEvent(body: Buffer, uuid: string, url: string): Record<string, unknown> {
  const value = parseJsonBody(body, url, 'MISP event');
  const wrapped =
    isRecord(value) && Array.isArray(value.response) && value.response.length === 1
      ? value.response[0]
      : value;
  const event = isRecord(wrapped) ? wrapped.Event : undefined;
  if (!isRecord(event)) {
    throw new SourceRejectedError(
      `${redactUrl(url)} is not a MISP event: expected a JSON object with an Event object`,
    );
  }
  if (typeof event.uuid === 'string' && event.uuid.toLowerCase() !== uuid.toLowerCase()) {
    throw new SourceRejectedError(
      `${redactUrl(url)} contains event ${event.uuid}, not the event ${uuid} that the manifest lists`,
    );
  }
  return event;
}

/** Extracts the values of events and adds their counts to the stats of the read. */
class Extraction {
  constructor(
    private readonly settings: MispSettings,
    private readonly stats: MispStats,
    private readonly counts: ReadStats,
  ) {}

  /**
   * Extracts the values of one event. With `listed`, the event's MD5s in
   * `hashes.csv`, it also counts the listed MD5s that no attribute value of
   * the event has, and the attributes read whose values are not listed.
   */
  extract(
    uuid: string,
    event: Record<string, unknown>,
    listed?: ReadonlySet<string>,
  ): Omit<CachedEvent, 'timestamp'> {
    const eventTags = tagsOf(event);
    const labels: string[] = [];
    const labelIndex = new Map<string, number>();
    const indexOf = (label: string): number => {
      let index = labelIndex.get(label);
      if (index === undefined) {
        index = labels.length;
        labels.push(label);
        labelIndex.set(label, index);
      }
      return index;
    };
    const byValue = new Map<string, CachedEntry>();
    const eventHashes = new Set<string>();

    let position = 0;
    for (const attribute of attributesOf(event)) {
      position += 1;
      const values = this.attributeValues(uuid, attribute, position);
      if (listed !== undefined) this.checkHashes(attribute, values.length > 0, listed, eventHashes);
      if (values.length === 0) continue;
      const tags = [...eventTags, ...tagsOf(attribute)];
      const tlp = strictestTlp(tags);
      const labelIds = tags.filter((tag) => tlpOf(tag) === undefined).map(indexOf);
      const ports = portOf(attribute);
      const comment = idsComment(attribute);
      for (const { type, value } of values) {
        const key = `${type}\u0000${value}`;
        const known = byValue.get(key);
        if (known === undefined) {
          const labelList = [...new Set(labelIds)].sort((a, b) => a - b);
          byValue.set(key, [type, value, tlp ?? '', labelList, ports, comment]);
        } else {
          known[2] = stricter(known[2] || undefined, tlp) ?? '';
          known[3] = [...new Set([...known[3], ...labelIds])].sort((a, b) => a - b);
          known[4] = [...new Set([...known[4], ...ports])].sort((a, b) => a - b);
          if (known[5] === '') known[5] = comment;
        }
      }
    }
    if (listed !== undefined) {
      for (const md5 of listed) if (!eventHashes.has(md5)) this.stats.hashesNotInEvent += 1;
    }
    return { labels, entries: [...byValue.values()] };
  }

  /**
   * Adds the MD5s of an attribute's value to `eventHashes`, and counts the
   * attribute when it gave values but `listed` has none of its MD5s.
   */
  private checkHashes(
    attribute: Record<string, unknown>,
    read: boolean,
    listed: ReadonlySet<string>,
    eventHashes: Set<string>,
  ): void {
    if (typeof attribute.type !== 'string' || typeof attribute.value !== 'string') return;
    const hashes = attributeHashes(attribute.type, attribute.value);
    for (const md5 of hashes) eventHashes.add(md5);
    if (read && !hashes.some((md5) => listed.has(md5))) this.stats.attributesNotInHashes += 1;
  }

  /** Returns the canonical values of one attribute, counting it as skipped, unsupported or invalid. */
  private attributeValues(
    uuid: string,
    attribute: Record<string, unknown>,
    position: number,
  ): SourceEntry[] {
    this.stats.attributesRead += 1;
    if (isSet(attribute.deleted)) {
      this.stats.attributesDeleted += 1;
      return [];
    }
    if (this.settings.toIdsOnly && !isSet(attribute.to_ids)) {
      this.stats.attributesNotIds += 1;
      return [];
    }
    const type = typeof attribute.type === 'string' ? attribute.type : '';
    if (!SUPPORTED_TYPES.has(type)) {
      this.stats.attributesUnsupported += 1;
      return [];
    }
    const raw = typeof attribute.value === 'string' ? attribute.value : undefined;
    const results: CanonicalResult[] = mapAttribute(type, raw ?? '') ?? [];
    const values: SourceEntry[] = [];
    for (const result of results) {
      if (result.ok) {
        values.push({ type: result.type, value: result.value });
        continue;
      }
      this.counts.invalid += 1;
      const examples = (this.counts.invalidExamples ??= []);
      if (examples.length < MAX_INVALID_EXAMPLES) {
        const example: InvalidExample = {
          line: position,
          text: `event ${uuid} ${type} ${raw ?? ''}`.slice(0, MAX_EXAMPLE_LENGTH),
          reason: result.reason,
        };
        examples.push(example);
      }
    }
    return values;
  }
}

/** Returns the port of an `ip-src|port` or `ip-dst|port` attribute, as a list of none or one. */
function portOf(attribute: Record<string, unknown>): number[] {
  const type = attribute.type;
  if (type !== 'ip-src|port' && type !== 'ip-dst|port') return [];
  if (typeof attribute.value !== 'string') return [];
  const parts = splitComposite(type, attribute.value);
  if (!Array.isArray(parts)) return [];
  const text = parts[1].trim();
  const port = /^[0-9]{1,5}$/.test(text) ? Number(text) : 0;
  return port >= 1 && port <= 65535 ? [port] : [];
}

/** Returns the trimmed `comment` of an attribute flagged `to_ids`, or empty text. */
function idsComment(attribute: Record<string, unknown>): string {
  if (!isSet(attribute.to_ids) || typeof attribute.comment !== 'string') return '';
  return attribute.comment.trim();
}

/** Collects the attributes of an event, those of its non-deleted `Object` entries included. */
function attributesOf(event: Record<string, unknown>): Record<string, unknown>[] {
  const attributes = Array.isArray(event.Attribute) ? event.Attribute.filter(isRecord) : [];
  const objects = Array.isArray(event.Object) ? event.Object.filter(isRecord) : [];
  for (const object of objects) {
    if (isSet(object.deleted) || !Array.isArray(object.Attribute)) continue;
    attributes.push(...object.Attribute.filter(isRecord));
  }
  return attributes;
}

/** Tag names of an event or attribute, trimmed; `Tag` is a list of `{ name }` objects. */
function tagsOf(holder: Record<string, unknown>): string[] {
  if (!Array.isArray(holder.Tag)) return [];
  const names: string[] = [];
  for (const tag of holder.Tag) {
    if (isRecord(tag) && typeof tag.name === 'string' && tag.name.trim() !== '') {
      names.push(tag.name.trim());
    }
  }
  return names;
}

/** Returns whether a MISP flag is set. Besides `true` it accepts `1` and `"1"`, in case an export writes flags as database integers. */
function isSet(flag: unknown): boolean {
  return flag === true || flag === 1 || flag === '1';
}

const SUPPORTED_TYPES = new Set([
  'ip-src',
  'ip-dst',
  'domain',
  'hostname',
  'url',
  'md5',
  'sha1',
  'sha256',
  'ip-src|port',
  'ip-dst|port',
  'domain|ip',
  'filename|md5',
  'filename|sha1',
  'filename|sha256',
]);

/**
 * Maps a MISP attribute to canonical values, or returns undefined for a type
 * that carries no supported value. Composite types hold two values joined
 * by `|`; `domain|ip` yields both, the `|port` types the address, and the
 * `filename|` types the hash.
 */
export function mapAttribute(type: string, raw: string): CanonicalResult[] | undefined {
  switch (type) {
    case 'ip-src':
    case 'ip-dst':
      return [canonicalIp(raw)];
    case 'domain':
    case 'hostname':
      return [canonicalize('domain', raw)];
    case 'url':
      return [canonicalize('url', raw)];
    case 'md5':
    case 'sha1':
    case 'sha256':
      return [canonicalize(type, raw)];
    case 'ip-src|port':
    case 'ip-dst|port':
      return [withComposite(type, raw, (ip) => canonicalIp(ip))];
    case 'domain|ip': {
      const parts = splitComposite(type, raw);
      if (!Array.isArray(parts)) return [parts];
      return [canonicalize('domain', parts[0]), canonicalIp(parts[1])];
    }
    case 'filename|md5':
    case 'filename|sha1':
    case 'filename|sha256': {
      const hash = type.slice('filename|'.length) as 'md5' | 'sha1' | 'sha256';
      const parts = splitComposite(type, raw);
      if (!Array.isArray(parts)) return [parts];
      return [canonicalize(hash, parts[1])];
    }
    default:
      return undefined;
  }
}

/** Splits a composite value at its first `|`, or at its last for `filename|` types because a file name may contain `|`. */
function splitComposite(type: string, raw: string): [string, string] | CanonicalResult {
  const bar = type.startsWith('filename|') ? raw.lastIndexOf('|') : raw.indexOf('|');
  if (bar < 0) {
    return {
      ok: false,
      reason: `invalid ${type} "${raw}": expected two values joined by "|"`,
    };
  }
  return [raw.slice(0, bar), raw.slice(bar + 1)];
}

function withComposite(
  type: string,
  raw: string,
  first: (part: string) => CanonicalResult,
): CanonicalResult {
  const parts = splitComposite(type, raw);
  return Array.isArray(parts) ? first(parts[0]) : parts;
}

/** Canonicalizes an IPv4 or IPv6 address or CIDR; MISP allows a CIDR in `ip-src` and `ip-dst`. */
function canonicalIp(raw: string): CanonicalResult {
  const text = raw.trim();
  const type = detectValueType(text);
  if (type === 'ipv4' || type === 'ipv6' || type === 'ipv4-cidr' || type === 'ipv6-cidr') {
    return canonicalize(type, text);
  }
  return { ok: false, reason: `invalid IP address "${text}": expected an IPv4 or IPv6 address` };
}

/** Returns the TLP level of a `tlp:*` tag, or undefined for other tags and unknown levels. */
function tlpOf(tag: string): TlpLevel | undefined {
  const lower = tag.toLowerCase();
  if (!lower.startsWith('tlp:')) return undefined;
  const level = lower.slice('tlp:'.length).trim();
  return isTlpLevel(level) ? level : undefined;
}

function strictestTlp(tags: readonly string[]): TlpLevel | undefined {
  let strictest: TlpLevel | undefined;
  for (const tag of tags) strictest = stricter(strictest, tlpOf(tag));
  return strictest;
}

function stricter(a: TlpLevel | undefined, b: TlpLevel | undefined): TlpLevel | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return TLP_RANK[b] > TLP_RANK[a] ? b : a;
}

interface Merged {
  entries: SourceEntry[];
  annotations: MispAnnotation[];
  /** Entries over all events before merging; each event lists a value once. */
  cachedEntries: number;
}

interface MergedValue extends MispAnnotation {
  labelSet: Set<string>;
  portSet: Set<number>;
  description: string;
  /** Manifest timestamp of the event that gave `description`. */
  describedAt: number;
}

/**
 * Merges the cached events into one entry per value, in manifest order. The
 * description is the comment of the most recent event (by manifest
 * timestamp) that has one. When two such events have the same timestamp,
 * the first in manifest order wins.
 */
function mergeEvents(events: Record<string, CachedEvent>, order: readonly string[]): Merged {
  const byValue = new Map<string, MergedValue>();
  let cachedEntries = 0;
  for (const uuid of order) {
    const event = events[uuid];
    if (event === undefined) continue;
    const timestamp = Number(event.timestamp);
    for (const [type, value, tlp, labelIds, ports, comment] of event.entries) {
      cachedEntries += 1;
      const key = `${type}\u0000${value}`;
      let merged = byValue.get(key);
      if (merged === undefined) {
        merged = {
          type,
          value,
          labels: [],
          events: [],
          labelSet: new Set(),
          portSet: new Set(),
          description: '',
          describedAt: -Infinity,
        };
        byValue.set(key, merged);
      }
      merged.tlp = stricter(merged.tlp, tlp || undefined);
      merged.events.push(uuid);
      for (const id of labelIds) {
        const label = event.labels[id];
        if (label !== undefined) merged.labelSet.add(label);
      }
      for (const port of ports) merged.portSet.add(port);
      if (comment !== '' && timestamp > merged.describedAt) {
        merged.description = comment;
        merged.describedAt = timestamp;
      }
    }
  }
  const entries: SourceEntry[] = [];
  const annotations: MispAnnotation[] = [];
  for (const merged of byValue.values()) {
    const { type, value, tlp, events } = merged;
    const labels = [...merged.labelSet].sort();
    const ports = [...merged.portSet].sort((a, b) => a - b);
    entries.push(
      withAttributes({ type, value }, { tlp, labels, ports, description: merged.description }),
    );
    annotations.push(
      tlp === undefined ? { type, value, labels, events } : { type, value, tlp, labels, events },
    );
  }
  return { entries, annotations, cachedEntries };
}

/** Returns the entry with the attributes that are not empty; TLP 1.0 `white` becomes `clear`. */
function withAttributes(
  entry: SourceEntry,
  found: { tlp?: TlpLevel; labels: string[]; ports: number[]; description: string },
): SourceEntry {
  const attributes: SightingAttributes = {};
  if (found.tlp !== undefined) attributes.tlp = found.tlp === 'white' ? 'clear' : found.tlp;
  if (found.labels.length > 0) attributes.labels = found.labels;
  if (found.ports.length > 0) attributes.ports = found.ports;
  if (found.description !== '') attributes.description = found.description;
  return Object.keys(attributes).length === 0 ? entry : { ...entry, attributes };
}

/** Orders the cursor's events by UUID, so that equal feeds store equal cursors. */
function orderedEvents(events: Record<string, CachedEvent>): Record<string, CachedEvent> {
  const ordered: Record<string, CachedEvent> = {};
  for (const uuid of Object.keys(events).sort()) ordered[uuid] = events[uuid]!;
  return ordered;
}

/** SHA-256 of the manifest, the digest of `hashes.csv` when one was read, and the settings that shape the entries. */
function digestOf(
  manifest: Buffer,
  hashesDigest: string | undefined,
  settings: MispSettings,
): string {
  return createHash('sha256')
    .update(
      JSON.stringify({ toIdsOnly: settings.toIdsOnly, ...(hashesDigest && { hashesDigest }) }),
    )
    .update('\n')
    .update(manifest)
    .digest('base64url');
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
