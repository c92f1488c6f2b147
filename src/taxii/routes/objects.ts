/** The objects, object and object versions resources of a collection (GET). */
import type Router from '@koa/router';
import type { Context } from 'koa';

import { authorizeCollection } from '../access.js';
import type { ResolvedTaxiiDeps } from '../deps.js';
import { notFound } from '../errors.js';
import { parseObjectFilters, type ObjectFilters } from '../filters.js';
import {
  envelopeHead,
  fetchJoinedPage,
  fetchPage,
  sendTaxii,
  setDateAddedHeaders,
  setPageDateAddedHeaders,
  versionText,
  type FetchedJoinedPage,
} from './common.js';

const ALL_FILTERS = { id: true, type: true, version: true, specVersion: true };
// Filters of a single object: match[id] and match[type] are ignored there.
const OBJECT_FILTERS = { id: false, type: false, version: true, specVersion: true };
const VERSIONS_FILTERS = { id: false, type: false, version: false, specVersion: true };

const ENVELOPE_END = Buffer.from(']}');

/**
 * Builds the envelope around the stored JSON texts, which the store has
 * already joined, so that objects are served byte for byte as stored and
 * never parsed again. An empty page is the empty envelope `{}`.
 */
function envelopeBody(page: FetchedJoinedPage): Buffer | string {
  if (page.count === 0) {
    return '{}';
  }
  const head = Buffer.from(`${envelopeHead(page)},"objects":[`);
  return Buffer.concat([head, page.joined, ENVELOPE_END]);
}

function sendEnvelope(ctx: Context, page: FetchedJoinedPage): void {
  setDateAddedHeaders(ctx, page.firstDateAdded, page.last?.dateAdded);
  sendTaxii(ctx, envelopeBody(page));
}

/** Rejects with 404 when no version of `objectId` is in the collection at all. */
export async function requireObject(
  deps: ResolvedTaxiiDeps,
  collectionId: string,
  objectId: string,
): Promise<void> {
  const probe = await deps.store.queryObjects({
    collectionId,
    ids: [objectId],
    versions: [{ kind: 'last' }],
    limit: 1,
    withoutBody: true,
  });
  if (probe.items.length === 0) {
    throw notFound(`Object ${JSON.stringify(objectId)} is not in collection ${collectionId}.`);
  }
}

export function registerObjectRoutes(router: Router, deps: ResolvedTaxiiDeps): void {
  router.get('/:root/collections/:collectionId/objects', async (ctx) => {
    const { collection } = await authorizeCollection(ctx, deps, 'read');

    const filters = parseObjectFilters(ctx.query, ALL_FILTERS);

    const page = await fetchJoinedPage(ctx, deps, {
      resource: 'objects',
      collectionId: collection.id,
      filters,
      withoutBody: false,
    });

    sendEnvelope(ctx, page);
  });

  router.get('/:root/collections/:collectionId/objects/:objectId', async (ctx) => {
    const { collection } = await authorizeCollection(ctx, deps, 'read');

    const objectId = ctx.params['objectId'] ?? '';
    const filters = { ...parseObjectFilters(ctx.query, OBJECT_FILTERS), ids: [objectId] };

    const page = await fetchJoinedPage(ctx, deps, {
      resource: 'object',
      collectionId: collection.id,
      filters,
      withoutBody: false,
    });
    if (page.count === 0) {
      // An empty page is `{}` when the object exists but the filters exclude it.
      await requireObject(deps, collection.id, objectId);
    }

    sendEnvelope(ctx, page);
  });

  router.get('/:root/collections/:collectionId/objects/:objectId/versions', async (ctx) => {
    const { collection } = await authorizeCollection(ctx, deps, 'read');

    const objectId = ctx.params['objectId'] ?? '';
    const filters: ObjectFilters = {
      ...parseObjectFilters(ctx.query, VERSIONS_FILTERS),
      ids: [objectId],
      versions: [{ kind: 'all' }],
    };

    const page = await fetchPage(ctx, deps, {
      resource: 'versions',
      collectionId: collection.id,
      filters,
      withoutBody: true,
    });
    if (page.items.length === 0) {
      await requireObject(deps, collection.id, objectId);
    }

    setPageDateAddedHeaders(ctx, page);
    const body =
      page.items.length === 0
        ? '{}'
        : `${envelopeHead(page)},"versions":${JSON.stringify(page.items.map(versionText))}}`;
    sendTaxii(ctx, body);
  });
}
