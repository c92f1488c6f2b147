/** HTTP routes of the stored views: `GET` and `HEAD /feeds/{alias}/{viewName}`. */
import Router from '@koa/router';
import type { Context, Next } from 'koa';
import type { Logger } from 'pino';

import type { CollectionRecord, Store } from '../store/index.js';

import { acceptsGzip } from './encoding.js';
import { ifNoneMatchMatches, weakEtag } from './etag.js';
import { GzipCache } from './gzip-cache.js';

export interface ViewRouterDeps {
  store: Store;
  logger: Logger;
  /**
   * Returns the view names configured for a collection. A configured view
   * that has not been rendered yet gets 503 with `Retry-After`. Any other
   * view that is not stored gets 404, and so does every one when this is unset.
   */
  viewNames?: (collection: CollectionRecord) => readonly string[];
  /** Seconds a client should wait for a view that has not been rendered yet. Default 30. */
  retryAfterSeconds?: number;
  /** Maximum bytes of gzip-coded bodies kept in memory. Default 32 MiB. */
  gzipCacheBytes?: number;
}

// Bodies below this size are sent uncompressed; gzip saves too little on them.
const MIN_GZIP_BYTES = 1024;

function sendText(ctx: Context, status: number, message: string): void {
  ctx.status = status;
  ctx.body = `${message}\n`;
  ctx.set('Content-Type', 'text/plain; charset=utf-8');
}

/** Creates the router of `/feeds/{alias}/{viewName}`; mount it with `app.use(router.routes())`. */
export function createViewRouter(deps: ViewRouterDeps): Router {
  const { store, logger } = deps;
  const retryAfter = String(deps.retryAfterSeconds ?? 30);
  const gzipCache = new GzipCache(deps.gzipCacheBytes ?? 32 * 1024 * 1024);
  const router = new Router();

  router.use(async (ctx: Context, next: Next) => {
    try {
      await next();
    } catch (error) {
      logger.error({ err: error, method: ctx.method, path: ctx.path }, 'View request failed');
      sendText(ctx, 500, 'Internal server error.');
    }
  });

  router.get('/feeds/:alias/:viewName', async (ctx) => {
    const alias = ctx.params['alias'] ?? '';
    const viewName = ctx.params['viewName'] ?? '';

    const collection = await store.getCollectionByAlias(alias);
    if (collection === undefined) {
      sendText(ctx, 404, `Collection alias ${JSON.stringify(alias)} does not exist.`);
      return;
    }

    const etag = await store.getViewEtag(collection.id, viewName);
    if (etag === undefined) {
      if (deps.viewNames?.(collection).includes(viewName) === true) {
        sendText(
          ctx,
          503,
          `View ${JSON.stringify(viewName)} of ${JSON.stringify(alias)} has not been rendered yet; retry later.`,
        );
        ctx.set('Retry-After', retryAfter);
        return;
      }
      sendText(
        ctx,
        404,
        `View ${JSON.stringify(viewName)} does not exist for collection alias ${JSON.stringify(alias)}.`,
      );
      return;
    }

    ctx.set('Cache-Control', 'no-cache');
    ctx.set('Vary', 'Accept-Encoding');
    const gzip = acceptsGzip(ctx.get('Accept-Encoding') || undefined);
    const ifNoneMatch = ctx.get('If-None-Match');
    if (ifNoneMatch !== '' && ifNoneMatchMatches(ifNoneMatch, etag)) {
      ctx.status = 304;
      ctx.set('ETag', gzip ? weakEtag(etag) : etag);
      return;
    }

    const view = await store.getView(collection.id, viewName);
    if (view === undefined) {
      // Deleted between the two reads.
      sendText(
        ctx,
        404,
        `View ${JSON.stringify(viewName)} does not exist for collection alias ${JSON.stringify(alias)}.`,
      );
      return;
    }

    ctx.status = 200;
    ctx.set('Content-Type', view.contentType);
    // A gzip-coded body is another representation, so it carries the weak
    // form of the tag, which If-None-Match still matches (weak comparison).
    if (gzip && view.body.length >= MIN_GZIP_BYTES) {
      ctx.body = await gzipCache.get(view.etag, view.body);
      ctx.set('Content-Encoding', 'gzip');
      ctx.set('ETag', weakEtag(view.etag));
    } else {
      ctx.body = view.body;
      ctx.set('ETag', view.etag);
    }
    ctx.set('Content-Type', view.contentType);
  });

  return router;
}
