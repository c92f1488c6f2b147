/**
 * The `taxii21` source kind: reads a collection of another TAXII 2.1 server
 * incrementally. Objects keep their ids, versions and exact JSON text.
 * Indicators whose patterns are simple comparisons also become hub entries,
 * so that their values reach the EDLs.
 */
import {
  parseSimplePattern,
  parseTimestamp,
  formatTimestamp,
  toStoredVersion,
} from '../stix/index.js';
import type { ObjectVersionInput } from '../store/index.js';
import { sliceArrayElements } from './json-slice.js';
import { withIndicatorAttributes } from './stix-attributes.js';
import type { InvalidExample } from './text-list.js';
import type { ReadContext, ReadResult, SourceEntry, SourceKind } from './kinds.js';
import { TaxiiClient, type TaxiiResponse } from './taxii21-http.js';

/**
 * Settings of a `taxii21` source, resolved from the collection file. Its
 * authentication, TLS, proxy and retries are the source's `http` settings,
 * as for every other kind.
 */
export interface Taxii21Settings {
  /** Discovery URL; used to find the default API root when `apiRootUrl` is not set. */
  discoveryUrl?: string;
  /** API root URL, ending in `/`. */
  apiRootUrl?: string;
  /** The collection, by its id or by its exact title. */
  collection: { id: string } | { title: string };
  /** Objects requested per page (the `limit` parameter); servers may return fewer. */
  limit: number;
  /** Pages read per poll at most; the next poll resumes where this one stopped. */
  maxPages: number;
}

/** The stored position of a `taxii21` source between polls. */
export interface Taxii21Cursor {
  /** The objects URL the cursor belongs to; a cursor of another collection is ignored. */
  objectsUrl: string;
  /** The `added_after` of the next poll: the last `X-TAXII-Date-Added-Last` read. */
  addedAfter: string;
}

const MAX_INVALID_EXAMPLES = 5;

/** Raised for a TAXII response that arrived but breaks the TAXII 2.1 resource shapes. */
export class TaxiiResponseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TaxiiResponseError';
  }
}

export const taxii21: SourceKind = {
  async read(context: ReadContext): Promise<ReadResult> {
    const { source, logger } = context;
    const settings = source.taxii21;
    if (!settings) {
      throw new Error(`source ${source.id} has kind taxii21 but no taxii21 settings`);
    }

    const client = await TaxiiClient.open({
      userAgent: context.userAgent,
      ...(source.http === undefined ? {} : { http: source.http }),
      timeoutMs: source.timeoutMs,
      maxBytes: source.maxBytes,
      logger,
    });
    try {
      const apiRootUrl = settings.apiRootUrl ?? (await findDefaultApiRoot(client, settings));
      const collectionId = await findCollection(client, apiRootUrl, settings.collection);
      const objectsUrl = new URL(
        `collections/${encodeURIComponent(collectionId)}/objects/`,
        apiRootUrl,
      ).href;

      const previous = readCursor(context.previous?.cursor, objectsUrl);
      if (context.previous?.cursor && !previous) {
        logger.info(
          { url: objectsUrl },
          'stored TAXII cursor belongs to another collection; reading from the start',
        );
      }
      const pages = await readPages(client, objectsUrl, settings, previous?.addedAfter);
      const converted = convertObjects(pages.objects);

      const cursor: Taxii21Cursor | undefined =
        pages.addedAfter !== undefined ? { objectsUrl, addedAfter: pages.addedAfter } : previous;
      logger.info(
        {
          url: objectsUrl,
          pages: pages.count,
          count: converted.objects.length,
          addedAfter: previous?.addedAfter,
          more: pages.more,
        },
        'TAXII collection read',
      );
      return {
        kind: 'data',
        entries: converted.entries,
        objects: converted.objects,
        stats: {
          bytes: pages.bytes,
          pages: pages.count,
          valid: converted.objects.length,
          invalid: converted.invalid,
          invalidExamples: converted.invalidExamples,
        },
        cursor: cursor ? { ...cursor } : undefined,
        complete: false,
      };
    } finally {
      await client.close();
    }
  },
};

function readCursor(
  stored: Record<string, unknown> | undefined,
  objectsUrl: string,
): Taxii21Cursor | undefined {
  if (stored?.objectsUrl !== objectsUrl || typeof stored.addedAfter !== 'string') return undefined;
  return { objectsUrl, addedAfter: stored.addedAfter };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function invalid(response: TaxiiResponse, what: string): TaxiiResponseError {
  return new TaxiiResponseError(`GET ${response.url} returned an invalid ${what}`);
}

/** Reads the discovery resource (TAXII 2.1, section 4.1) and resolves its `default` API root. */
async function findDefaultApiRoot(client: TaxiiClient, settings: Taxii21Settings): Promise<string> {
  const url = settings.discoveryUrl;
  if (!url) throw new Error('a taxii21 source needs url (discovery) or apiRoot');
  const response = await client.get(url);
  const body = response.body;
  if (!isRecord(body) || typeof body.title !== 'string') {
    throw invalid(response, 'discovery resource: expected an object with a title');
  }
  const roots = Array.isArray(body.api_roots)
    ? body.api_roots.filter((r) => typeof r === 'string')
    : [];
  if (typeof body.default !== 'string') {
    const listed = roots.length > 0 ? `; it lists ${roots.join(', ')}` : '';
    throw new TaxiiResponseError(
      `discovery at ${url} names no default API root${listed}; set apiRoot in the source`,
    );
  }
  return withSlash(new URL(body.default, url).href);
}

function withSlash(url: string): string {
  return url.endsWith('/') ? url : `${url}/`;
}

/** Finds the collection (TAXII 2.1, section 5.1) and checks that it can be read; returns its id. */
async function findCollection(
  client: TaxiiClient,
  apiRootUrl: string,
  wanted: Taxii21Settings['collection'],
): Promise<string> {
  if ('id' in wanted) {
    const response = await client.get(
      new URL(`collections/${encodeURIComponent(wanted.id)}/`, apiRootUrl).href,
    );
    const collection = response.body;
    if (!isRecord(collection) || collection.id !== wanted.id) {
      throw invalid(response, `collection resource: expected an object with id ${wanted.id}`);
    }
    checkReadable(collection, response.url);
    return wanted.id;
  }

  const response = await client.get(new URL('collections/', apiRootUrl).href);
  const body = response.body;
  if (!isRecord(body) || (body.collections !== undefined && !Array.isArray(body.collections))) {
    throw invalid(response, 'collections resource: expected an object with a collections array');
  }
  const collections = (body.collections ?? []) as unknown[];
  const matches = collections.filter((c) => isRecord(c) && c.title === wanted.title) as Record<
    string,
    unknown
  >[];
  if (matches.length === 0) {
    const titles = collections
      .filter(isRecord)
      .map((c) => JSON.stringify(c.title))
      .slice(0, 10);
    throw new TaxiiResponseError(
      `no collection titled ${JSON.stringify(wanted.title)} at ${response.url}; available: ${titles.join(', ') || 'none'}`,
    );
  }
  if (matches.length > 1) {
    throw new TaxiiResponseError(
      `${matches.length} collections are titled ${JSON.stringify(wanted.title)} at ${response.url}; set collectionId instead`,
    );
  }
  const match = matches[0]!;
  if (typeof match.id !== 'string') throw invalid(response, 'collection: its id is not a string');
  checkReadable(match, response.url);
  return match.id;
}

function checkReadable(collection: Record<string, unknown>, url: string): void {
  if (collection.can_read !== true) {
    throw new TaxiiResponseError(
      `collection ${String(collection.id)} at ${url} has can_read ${JSON.stringify(collection.can_read)}; the account may not read it`,
    );
  }
}

interface PagesRead {
  /** Object texts in the order the server sent them. */
  objects: { text: string; value: unknown }[];
  count: number;
  bytes: number;
  /** The `added_after` of the next poll, when this poll read any object. */
  addedAfter?: string;
  /** True when the poll stopped at `maxPages` with more objects waiting. */
  more: boolean;
}

/**
 * Pages through the objects (TAXII 2.1, section 5.4) of every version added
 * after `addedAfter`, following `next` and repeating the filters with it,
 * as the specification requires. A server that sets `more` without `next`
 * is paged with `added_after` set to each page's `X-TAXII-Date-Added-Last`.
 */
async function readPages(
  client: TaxiiClient,
  objectsUrl: string,
  settings: Taxii21Settings,
  addedAfter: string | undefined,
): Promise<PagesRead> {
  const read: PagesRead = { objects: [], count: 0, bytes: 0, more: false };
  let filterAddedAfter = addedAfter;
  let next: string | undefined;
  let lastAdded: string | undefined;

  for (;;) {
    const url = new URL(objectsUrl);
    url.searchParams.set('limit', String(settings.limit));
    url.searchParams.set('match[version]', 'all');
    if (filterAddedAfter !== undefined) url.searchParams.set('added_after', filterAddedAfter);
    if (next !== undefined) url.searchParams.set('next', next);

    const response = await client.get(url.href);
    read.count += 1;
    read.bytes += response.bytes;
    const page = parseEnvelope(response);
    read.objects.push(...page.objects);

    const pageLast = headerText(response, 'x-taxii-date-added-last');
    if (page.objects.length > 0 && pageLast !== undefined) lastAdded = pageLast;
    if (!page.more || page.objects.length === 0) break;

    if (read.count >= settings.maxPages) {
      read.more = true;
      // The next poll must not skip objects that share the last date_added
      // of this page but did not fit in it, so it starts one microsecond earlier.
      if (lastAdded !== undefined) lastAdded = formatTimestamp(parseTimestamp(lastAdded) - 1, 6);
      break;
    }
    if (page.next !== undefined) {
      next = page.next;
    } else if (pageLast !== undefined) {
      // NOTE: objects that share pageLast as date_added but did not fit in this
      // page are skipped. Servers that send `next` (TAXII 2.1) avoid this gap.
      filterAddedAfter = pageLast;
    } else {
      throw new TaxiiResponseError(
        `GET ${response.url} set more without next or X-TAXII-Date-Added-Last, so the rest cannot be paged`,
      );
    }
  }
  read.addedAfter = lastAdded;
  return read;
}

function headerText(response: TaxiiResponse, name: string): string | undefined {
  const value = response.headers[name];
  const text = Array.isArray(value) ? value[0] : value;
  if (text === undefined) return undefined;
  try {
    parseTimestamp(text);
  } catch {
    throw new TaxiiResponseError(
      `GET ${response.url} sent an invalid ${name} header: ${JSON.stringify(text)}`,
    );
  }
  return text;
}

/** Checks an envelope (TAXII 2.1, section 3.7) and slices the text of each object. */
function parseEnvelope(response: TaxiiResponse): {
  objects: { text: string; value: unknown }[];
  more: boolean;
  next?: string;
} {
  const body = response.body;
  if (!isRecord(body)) throw invalid(response, 'envelope: expected a JSON object');
  if (body.more !== undefined && typeof body.more !== 'boolean') {
    throw invalid(response, 'envelope: more must be a boolean');
  }
  if (body.next !== undefined && typeof body.next !== 'string') {
    throw invalid(response, 'envelope: next must be a string');
  }
  if (body.objects !== undefined && !Array.isArray(body.objects)) {
    throw invalid(response, 'envelope: objects must be an array');
  }
  const values = (body.objects ?? []) as unknown[];
  const texts = values.length > 0 ? sliceArrayElements(response.text, 'objects') : [];
  if (!texts || texts.length !== values.length) {
    throw invalid(response, 'envelope: the objects array could not be sliced');
  }
  return {
    objects: values.map((value, index) => ({ value, text: texts[index]! })),
    more: body.more === true,
    next: body.next as string | undefined,
  };
}

interface Converted {
  objects: ObjectVersionInput[];
  entries: SourceEntry[];
  invalid: number;
  invalidExamples: InvalidExample[];
}

/**
 * Turns the object texts into stored versions, skipping (and counting) the
 * invalid ones, and collects the values of simple indicator patterns. Only
 * the newest version of each indicator read in this poll counts, and only
 * while it is neither revoked nor expired.
 * NOTE: an indicator revoked or expired in a later poll does not withdraw its
 * value from the views: the read is incremental, so it reports no removals.
 */
function convertObjects(objects: { text: string; value: unknown }[]): Converted {
  const result: Converted = { objects: [], entries: [], invalid: 0, invalidExamples: [] };
  const newestIndicators = new Map<string, { version: string; value: Record<string, unknown> }>();

  objects.forEach(({ text, value }, index) => {
    let stored: ObjectVersionInput;
    try {
      stored = toStoredVersion(text);
    } catch (error) {
      result.invalid += 1;
      if (result.invalidExamples.length < MAX_INVALID_EXAMPLES) {
        result.invalidExamples.push({
          line: index + 1,
          text: text.slice(0, 200),
          reason: (error as Error).message,
        });
      }
      return;
    }
    result.objects.push(stored);
    if (stored.type !== 'indicator' || !isRecord(value)) return;
    const known = newestIndicators.get(stored.id);
    if (!known || known.version < stored.version)
      newestIndicators.set(stored.id, { version: stored.version, value });
  });

  const now = Date.now() * 1000;
  const seen = new Set<string>();
  for (const { value } of newestIndicators.values()) {
    for (const entry of indicatorValues(value, now)) {
      const key = `${entry.type}\u0000${entry.value}`;
      if (seen.has(key)) continue;
      seen.add(key);
      result.entries.push(entry);
    }
  }
  return result;
}

function indicatorValues(indicator: Record<string, unknown>, nowMicros: number): SourceEntry[] {
  if (indicator.revoked === true) return [];
  if (indicator.pattern_type !== undefined && indicator.pattern_type !== 'stix') return [];
  if (typeof indicator.pattern !== 'string') return [];
  if (typeof indicator.valid_until === 'string') {
    try {
      if (parseTimestamp(indicator.valid_until) <= nowMicros) return [];
    } catch {
      return [];
    }
  }
  return withIndicatorAttributes(parseSimplePattern(indicator.pattern) ?? [], indicator);
}
