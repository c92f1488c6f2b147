/** Helpers shared by the TAXII route groups. */
import type { Context } from 'koa';

import { formatTimestamp } from '../../stix/index.js';
import type { JoinedObjectPage, ObjectPage, ObjectQuery, StoredObject } from '../../store/index.js';
import { decodeCursor, encodeCursor, type CursorScope } from '../cursor.js';
import type { ResolvedTaxiiDeps } from '../deps.js';
import { notFound } from '../errors.js';
import {
  normaliseFilters,
  parsePageRequest,
  toObjectQuery,
  type ObjectFilters,
} from '../filters.js';
import { TAXII_MEDIA_TYPE } from '../media-type.js';

/** Formats microseconds as a TAXII timestamp, which always has six fractional digits. */
export function taxiiTimestamp(micros: number): string {
  return formatTimestamp(micros, 6);
}

/** Sends a JSON text that is already serialised, with the TAXII media type. */
export function sendTaxii(ctx: Context, body: string | Buffer, status = 200): void {
  ctx.status = status;
  ctx.body = body;
  ctx.set('Content-Type', TAXII_MEDIA_TYPE);
}

/** Rejects a request for an API root other than the configured one. */
export function requireApiRoot(ctx: Context, deps: ResolvedTaxiiDeps): void {
  if (ctx.params['root'] !== deps.apiRootPath) {
    throw notFound(
      `API root ${JSON.stringify(ctx.params['root'])} does not exist; the API root is ${JSON.stringify(deps.apiRootPath)}.`,
    );
  }
}

export interface FetchedPage extends ObjectPage {
  /** The `next` cursor, present exactly when `more` is true. */
  next?: string;
}

export interface FetchedJoinedPage extends JoinedObjectPage {
  /** The `next` cursor, present exactly when `more` is true. */
  next?: string;
}

/** The authenticated principal of a request, undefined for an anonymous caller. */
export function callerOf(ctx: Context): string | undefined {
  return ctx.state['principal'] as string | undefined;
}

export interface PageRequestSpec {
  /** The resource kind that the `next` cursor is bound to, e.g. `objects`. */
  resource: string;
  collectionId: string;
  filters: ObjectFilters;
  /** True for manifest and versions pages, which need no object bodies. */
  withoutBody: boolean;
}

interface PreparedPage {
  query: ObjectQuery;
  /** The scope that the `next` cursor of the page is bound to. */
  scope: CursorScope;
}

/**
 * Builds the storage query of one page of `spec.filters`, resuming from the
 * request's `next` cursor, which must have been issued for the same
 * resource, collection, filters and caller.
 */
function preparePage(ctx: Context, deps: ResolvedTaxiiDeps, spec: PageRequestSpec): PreparedPage {
  const pageRequest = parsePageRequest(ctx.query, deps.maxPageSize);
  const scope: CursorScope = {
    resource: spec.resource,
    collectionId: spec.collectionId,
    filters: normaliseFilters(spec.filters),
    principal: callerOf(ctx) ?? '',
  };

  const query = toObjectQuery(spec.collectionId, spec.filters, pageRequest.limit);
  if (pageRequest.next !== undefined) {
    query.after = decodeCursor(deps.cursorSecret, pageRequest.next, scope);
  }
  if (spec.withoutBody) {
    query.withoutBody = true;
  }
  return { query, scope };
}

/**
 * Reads one page of `spec.filters` in a collection, resuming from the
 * request's `next` cursor, and issues the cursor of the following page. The
 * cursor is bound to the resource, collection, filters and caller.
 */
export async function fetchPage(
  ctx: Context,
  deps: ResolvedTaxiiDeps,
  spec: PageRequestSpec,
): Promise<FetchedPage> {
  const { query, scope } = preparePage(ctx, deps, spec);
  const page: FetchedPage = await deps.store.queryObjects(query);

  const last = page.items[page.items.length - 1];
  if (page.more && last !== undefined) {
    page.next = encodeCursor(
      deps.cursorSecret,
      { dateAdded: last.dateAdded, id: last.id, version: last.version },
      scope,
    );
  }
  return page;
}

/** Reads a page as `fetchPage` does, with the JSON texts of its objects joined. */
export async function fetchJoinedPage(
  ctx: Context,
  deps: ResolvedTaxiiDeps,
  spec: PageRequestSpec,
): Promise<FetchedJoinedPage> {
  const { query, scope } = preparePage(ctx, deps, spec);
  const page: FetchedJoinedPage = await deps.store.queryJoinedObjects(query);

  if (page.more && page.last !== undefined) {
    page.next = encodeCursor(deps.cursorSecret, page.last, scope);
  }
  return page;
}

/**
 * Sets `X-TAXII-Date-Added-First` and `-Last` from the `dateAdded` of the
 * first and last item of a page; an empty page, with neither, gets neither.
 */
export function setDateAddedHeaders(
  ctx: Context,
  firstDateAdded: number | undefined,
  lastDateAdded: number | undefined,
): void {
  if (firstDateAdded === undefined || lastDateAdded === undefined) {
    return;
  }
  ctx.set('X-TAXII-Date-Added-First', taxiiTimestamp(firstDateAdded));
  ctx.set('X-TAXII-Date-Added-Last', taxiiTimestamp(lastDateAdded));
}

/** Sets the date_added headers of a page of `fetchPage`. */
export function setPageDateAddedHeaders(ctx: Context, page: ObjectPage): void {
  setDateAddedHeaders(ctx, page.items[0]?.dateAdded, page.items[page.items.length - 1]?.dateAdded);
}

/** Opens an envelope-like body with `more` and `next`, ready for the list property. */
export function envelopeHead(page: { more: boolean; next?: string }): string {
  return page.next === undefined
    ? `{"more":${page.more}`
    : `{"more":true,"next":${JSON.stringify(page.next)}`;
}

/**
 * The version of a stored object as TAXII presents it: the version key
 * (`modified`, else `created`, with six fractional digits). An object with
 * neither, such as most SCOs, has one version, presented as its `date_added`.
 */
export function versionText(item: StoredObject): string {
  return item.version === '' ? taxiiTimestamp(item.dateAdded) : item.version;
}
