/** Helpers shared by the TAXII route groups. */
import type { Context } from 'koa';

import type { CollectionRecord, ObjectPage } from '../../store/index.js';
import { decodeCursor, encodeCursor, type CursorScope } from '../cursor.js';
import type { ResolvedTaxiiDeps } from '../deps.js';
import { TaxiiError, notFound } from '../errors.js';
import { parsePageRequest, toObjectQuery, type ObjectFilters } from '../filters.js';
import { TAXII_MEDIA_TYPE } from '../media-type.js';
import { formatTimestampMicros } from '../timestamp.js';

/** Sends a JSON text that is already serialised, with the TAXII media type. */
export function sendTaxii(ctx: Context, body: string): void {
  ctx.status = 200;
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

/** Loads the collection named in the path, or rejects with 404. */
export async function requireCollection(
  ctx: Context,
  deps: ResolvedTaxiiDeps,
): Promise<CollectionRecord> {
  requireApiRoot(ctx, deps);
  const id = ctx.params['collectionId'] ?? '';
  const collection = await deps.store.getCollection(id);
  if (collection === undefined) {
    throw notFound(
      `Collection ${JSON.stringify(id)} does not exist in API root ${JSON.stringify(deps.apiRootPath)}.`,
    );
  }
  return collection;
}

export function requireReadable(collection: CollectionRecord): void {
  if (!collection.canRead) {
    throw new TaxiiError(
      403,
      'forbidden',
      'Forbidden',
      `Collection ${collection.id} cannot be read.`,
    );
  }
}

/** Returns the authenticated caller that a cursor is bound to. */
// TODO: return the principal once authentication is in front of the TAXII routes.
export function callerPrincipal(_ctx: Context): string {
  return '';
}

export interface FetchedPage extends ObjectPage {
  /** The `next` cursor, present exactly when `more` is true. */
  next?: string;
}

/**
 * Reads one page of `filters` in a collection, resuming from the request's
 * `next` cursor, and issues the cursor of the following page.
 */
export async function fetchPage(
  ctx: Context,
  deps: ResolvedTaxiiDeps,
  resource: string,
  collectionId: string,
  filters: ObjectFilters,
  filtersText: string,
  withoutBody: boolean,
): Promise<FetchedPage> {
  const pageRequest = parsePageRequest(ctx.query, deps.maxPageSize);
  const scope: CursorScope = {
    resource,
    collectionId,
    filters: filtersText,
    principal: callerPrincipal(ctx),
  };

  const query = toObjectQuery(collectionId, filters, pageRequest.limit);
  if (pageRequest.next !== undefined) {
    query.after = decodeCursor(deps.cursorSecret, pageRequest.next, scope);
  }
  if (withoutBody) {
    query.withoutBody = true;
  }
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

/** Sets `X-TAXII-Date-Added-First` and `-Last` for a non-empty page; an empty page gets neither. */
export function setDateAddedHeaders(ctx: Context, page: ObjectPage): void {
  const first = page.items[0];
  const last = page.items[page.items.length - 1];
  if (first === undefined || last === undefined) {
    return;
  }
  ctx.set('X-TAXII-Date-Added-First', formatTimestampMicros(first.dateAdded));
  ctx.set('X-TAXII-Date-Added-Last', formatTimestampMicros(last.dateAdded));
}

/** Opens an envelope-like body with `more` and `next`, ready for the list property. */
export function envelopeHead(page: FetchedPage): string {
  return page.next === undefined
    ? `{"more":${page.more}`
    : `{"more":true,"next":${JSON.stringify(page.next)}`;
}
