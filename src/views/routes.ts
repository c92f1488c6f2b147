/**
 * HTTP routes of the stored views:
 * - `GET` and `HEAD /feeds/{alias}/{viewName}`: the stored body, with
 *   `ETag`, `If-None-Match` and gzip; with query parameters (MineMeld's, for
 *   existing firewall configurations), a variant derived from the stored
 *   entries;
 * - `GET /feeds/{alias}/{viewName}/build-log`: the last render's build log.
 * Every response is read from storage, so any API process can serve it.
 */
import { createHash } from 'node:crypto';

import Router from '@koa/router';
import type { Context, Next } from 'koa';
import type { Logger } from 'pino';

import type { Authenticator } from '../auth/index.js';
import type { CollectionRecord, Store } from '../store/index.js';
import { decideViewAccess } from './access.js';
import { decodeEntries } from './data.js';
import { acceptsGzip } from './encoding.js';
import { ifNoneMatchMatches, weakEtag } from './etag.js';
import { GzipCache } from './gzip-cache.js';
import { parseViewQuery, renderVariant, ViewQueryError } from './kinds.js';
import { BuildLog, type ViewEntry } from './model.js';
import type { ViewSpec } from './spec.js';

export interface ViewRouterDeps {
  store: Store;
  logger: Logger;
  /**
   * Returns the views configured for a collection. A configured view that
   * has not been rendered yet gets 503 with `Retry-After`; a view that is
   * not configured gets 404.
   */
  viewSpecs: (collection: CollectionRecord) => readonly ViewSpec[];
  /** Checks credentials for views that are not public. */
  authenticator?: Authenticator;
  /** Seconds a client should wait for a view that has not been rendered yet. Default 30. */
  retryAfterSeconds?: number;
  /** Maximum bytes of gzip-coded bodies kept in memory. Default 32 MiB. */
  gzipCacheBytes?: number;
  /** Maximum bytes of variant bodies kept in memory. Default 64 MiB. */
  variantCacheBytes?: number;
  /**
   * How long a view's current entity tag, and a collection looked up by
   * alias, are reused without reading the store, in ms. A render stored by
   * another process is served here at most this late. Default 1000.
   */
  headTtlMs?: number;
  /**
   * Lets a renderer in the same process say that views changed, so the
   * short-lived caches are dropped at once instead of after `headTtlMs`.
   */
  onViewsChanged?: (listener: () => void) => void;
}

// Bodies below this size are sent uncompressed; gzip saves too little on them.
const MIN_GZIP_BYTES = 1024;

function sendText(ctx: Context, status: number, message: string): void {
  ctx.status = status;
  ctx.body = `${message}\n`;
  ctx.set('Content-Type', 'text/plain; charset=utf-8');
}

/** A byte-bounded LRU of variant bodies keyed by their entity tag. */
class VariantCache {
  private readonly entries = new Map<string, { body: Buffer; contentType: string }>();
  private bytes = 0;

  constructor(private readonly maxBytes: number) {}

  get(etag: string): { body: Buffer; contentType: string } | undefined {
    const entry = this.entries.get(etag);
    if (entry !== undefined) {
      this.entries.delete(etag);
      this.entries.set(etag, entry);
    }
    return entry;
  }

  set(etag: string, entry: { body: Buffer; contentType: string }): void {
    if (entry.body.length > this.maxBytes) return;
    this.entries.set(etag, entry);
    this.bytes += entry.body.length;
    for (const [oldest, value] of this.entries) {
      if (this.bytes <= this.maxBytes) break;
      this.entries.delete(oldest);
      this.bytes -= value.body.length;
    }
  }
}

/** Values read from the store and reused for a short time, so a burst of firewall polls costs one read. */
class TtlCache<T> {
  private readonly entries = new Map<string, { value: T; expiresAt: number }>();

  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries = 10_000,
  ) {}

  clear(): void {
    this.entries.clear();
  }

  async get(key: string, load: () => Promise<T>): Promise<T> {
    const now = Date.now();
    const entry = this.entries.get(key);
    if (entry !== undefined && entry.expiresAt > now) return entry.value;
    const value = await load();
    if (this.ttlMs > 0) {
      if (this.entries.size >= this.maxEntries) this.entries.clear();
      this.entries.set(key, { value, expiresAt: now + this.ttlMs });
    }
    return value;
  }
}

/** The decoded entries of the last view data read, since several variants of one view are often asked in a row. */
class EntriesCache {
  private last: { key: string; entries: ViewEntry[] } | undefined;

  async get(
    key: string,
    load: () => Promise<Buffer | undefined>,
  ): Promise<ViewEntry[] | undefined> {
    if (this.last?.key === key) return this.last.entries;
    const data = await load();
    if (data === undefined) return undefined;
    const entries = decodeEntries(data);
    this.last = { key, entries };
    return entries;
  }
}

/** Creates the router of `/feeds/{alias}/{viewName}`; mount it with `app.use(router.routes())`. */
export function createViewRouter(deps: ViewRouterDeps): Router {
  const { store, logger } = deps;
  const retryAfter = String(deps.retryAfterSeconds ?? 30);
  const gzipCache = new GzipCache(deps.gzipCacheBytes ?? 32 * 1024 * 1024);
  const variants = new VariantCache(deps.variantCacheBytes ?? 64 * 1024 * 1024);
  const entriesCache = new EntriesCache();
  const headTtlMs = deps.headTtlMs ?? 1000;
  const collections = new TtlCache<CollectionRecord | undefined>(headTtlMs);
  const heads = new TtlCache<string | undefined>(headTtlMs);
  // Stored bodies by entity tag: a tag names one body, so they never go stale.
  const bodies = new VariantCache(deps.variantCacheBytes ?? 64 * 1024 * 1024);
  deps.onViewsChanged?.(() => {
    collections.clear();
    heads.clear();
  });
  const router = new Router();

  router.use(async (ctx: Context, next: Next) => {
    try {
      await next();
    } catch (error) {
      logger.error({ err: error, method: ctx.method, path: ctx.path }, 'View request failed');
      sendText(ctx, 500, 'Internal server error.');
    }
  });

  /** Resolves the collection and view of the request and checks access; answers and returns undefined on failure. */
  async function resolve(
    ctx: Context,
  ): Promise<{ collection: CollectionRecord; spec: ViewSpec } | undefined> {
    const alias = ctx.params['alias'] ?? '';
    const viewName = ctx.params['viewName'] ?? '';
    const collection = await collections.get(alias, () => store.getCollectionByAlias(alias));
    const spec = collection && deps.viewSpecs(collection).find((view) => view.name === viewName);
    if (collection === undefined || spec === undefined) {
      sendText(
        ctx,
        404,
        collection === undefined
          ? `Collection alias ${JSON.stringify(alias)} does not exist.`
          : `View ${JSON.stringify(viewName)} does not exist for collection alias ${JSON.stringify(alias)}.`,
      );
      return undefined;
    }
    const label = `view ${JSON.stringify(viewName)} of ${JSON.stringify(alias)}`;
    const decision = await decideViewAccess(ctx, spec.access, label, deps.authenticator);
    if (!decision.allowed) {
      sendText(ctx, decision.status, decision.message);
      for (const [name, value] of Object.entries(decision.headers ?? {})) ctx.set(name, value);
      return undefined;
    }
    return { collection, spec };
  }

  function notRendered(ctx: Context): void {
    sendText(
      ctx,
      503,
      `View ${JSON.stringify(ctx.params['viewName'])} of ${JSON.stringify(ctx.params['alias'])} has not been rendered yet; retry later.`,
    );
    ctx.set('Retry-After', retryAfter);
  }

  /**
   * Answers 304 when the client holds `etag`, else loads the body and sends
   * it, gzip-coded when the client accepts it. The loaded tag is sent, which
   * differs from `etag` when a newer render was stored in between.
   */
  async function send(
    ctx: Context,
    etag: string,
    load: () => Promise<{ body: Buffer; etag: string; contentType: string } | undefined>,
  ): Promise<void> {
    ctx.set('Cache-Control', 'no-cache');
    ctx.set('Vary', 'Accept-Encoding');
    const gzip = acceptsGzip(ctx.get('Accept-Encoding') || undefined);
    const ifNoneMatch = ctx.get('If-None-Match');
    if (ifNoneMatch !== '' && ifNoneMatchMatches(ifNoneMatch, etag)) {
      ctx.status = 304;
      ctx.set('ETag', gzip ? weakEtag(etag) : etag);
      return;
    }
    const loaded = await load();
    if (loaded === undefined) {
      notRendered(ctx);
      return;
    }
    ctx.status = 200;
    // A gzip-coded body is another representation, so it carries the weak
    // form of the tag, which If-None-Match still matches (weak comparison).
    if (gzip && loaded.body.length >= MIN_GZIP_BYTES) {
      ctx.body = await gzipCache.get(loaded.etag, loaded.body);
      ctx.set('Content-Encoding', 'gzip');
      ctx.set('ETag', weakEtag(loaded.etag));
    } else {
      ctx.body = loaded.body;
      ctx.set('ETag', loaded.etag);
    }
    ctx.set('Content-Type', loaded.contentType);
  }

  router.get('/feeds/:alias/:viewName', async (ctx) => {
    const resolved = await resolve(ctx);
    if (resolved === undefined) return;
    const { collection, spec } = resolved;

    if (ctx.querystring !== '') {
      let query;
      try {
        query = parseViewQuery(spec, new URLSearchParams(ctx.querystring));
      } catch (error) {
        if (!(error instanceof ViewQueryError)) throw error;
        sendText(ctx, 400, error.message);
        return;
      }
      const tags = await store.getViewData(collection.id, spec.name, { withoutData: true });
      if (tags === undefined) {
        notRendered(ctx);
        return;
      }
      const etag = `"${createHash('sha256').update(`${tags.dataEtag}\n${query.key}`).digest('base64url')}"`;
      await send(ctx, etag, async () => {
        const cached = variants.get(etag);
        if (cached !== undefined) return { ...cached, etag };
        const entries = await entriesCache.get(
          `${collection.id}\n${spec.name}\n${tags.dataEtag}`,
          async () => (await store.getViewData(collection.id, spec.name))?.data,
        );
        if (entries === undefined) return undefined;
        const output = renderVariant(spec, entries, query, new BuildLog(0));
        const variant = { body: Buffer.from(output.body, 'utf8'), contentType: output.contentType };
        variants.set(etag, variant);
        return { ...variant, etag };
      });
      return;
    }

    const etag = await heads.get(`${collection.id}\n${spec.name}`, () =>
      store.getViewEtag(collection.id, spec.name),
    );
    if (etag === undefined) {
      notRendered(ctx);
      return;
    }
    await send(ctx, etag, async () => {
      const cached = bodies.get(etag);
      if (cached !== undefined) return { ...cached, etag };
      const view = await store.getView(collection.id, spec.name);
      if (view === undefined) return undefined;
      bodies.set(view.etag, { body: view.body, contentType: view.contentType });
      return { body: view.body, etag: view.etag, contentType: view.contentType };
    });
  });

  router.get('/feeds/:alias/:viewName/build-log', async (ctx) => {
    const resolved = await resolve(ctx);
    if (resolved === undefined) return;
    const log = await store.getViewLog(resolved.collection.id, resolved.spec.name);
    if (log === undefined) {
      notRendered(ctx);
      return;
    }
    ctx.status = 200;
    ctx.set('Cache-Control', 'no-cache');
    ctx.set('Content-Type', 'application/json; charset=utf-8');
    ctx.body = log.log;
  });

  return router;
}
