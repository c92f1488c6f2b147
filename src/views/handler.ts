/**
 * HTTP serving of the stored views, on plain `node:http`:
 * - `GET` and `HEAD /feeds/{alias}/{viewName}`: the stored body, with
 *   `ETag`, `If-None-Match` and gzip; with query parameters (MineMeld's,
 *   for existing firewall configurations), a variant derived from the
 *   stored entries;
 * - `GET /feeds/{alias}/{viewName}/build-log`: the last render's build log.
 *
 * Firewalls poll these every few minutes, often by the thousand, so they
 * bypass the Koa application: a 304 costs a few map lookups and one write.
 * Every response is read from storage (through short-lived caches), so any
 * API process can serve it.
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';

import type { Logger } from 'pino';

import type { Authenticator } from '../auth/index.js';
import type { CollectionRecord, Store } from '../store/index.js';
import { decideViewAccess } from './access.js';
import { decodeEntries } from './data.js';
import { acceptsGzip } from './encoding.js';
import { ifNoneMatchMatches, weakEtag } from './etag.js';
import { GzipCache } from './gzip-cache.js';
import { parseViewQuery, renderVariant, ViewQueryError, type ViewQuery } from './kinds.js';
import { BuildLog, type ViewEntry } from './model.js';
import type { ViewSpec } from './spec.js';

export interface ViewHandlerDeps {
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
  /** Maximum bytes of stored and variant bodies kept in memory. Default 64 MiB each. */
  bodyCacheBytes?: number;
  /**
   * How long a view's current entity tag, and a collection looked up by
   * alias, are reused without reading the store, in ms. A render stored by
   * another process is served here at most this late. Default 1000.
   */
  headTtlMs?: number;
}

export interface ViewHandler {
  /** Serves the request when its path is under `/feeds/`; returns false, touching nothing, otherwise. */
  handle(req: IncomingMessage, res: ServerResponse): boolean;
  /** Drops the short-lived caches, so that a render stored by this process is served at once. */
  invalidate(): void;
}

export const VIEW_PATH_PREFIX = '/feeds/';

// Bodies below this size are sent uncompressed; gzip saves too little on them.
const MIN_GZIP_BYTES = 1024;
const PLAIN_TEXT = 'text/plain; charset=utf-8';

/** A byte-bounded LRU of bodies keyed by their entity tag; a tag names one body, so entries never go stale. */
class BodyCache {
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
    if (entry.body.length > this.maxBytes || this.entries.has(etag)) return;
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

interface Loaded {
  body: Buffer;
  etag: string;
  contentType: string;
}

/** Parses `/feeds/{alias}/{view}` and `/feeds/{alias}/{view}/build-log`; undefined for any other shape. */
function parsePath(
  path: string,
): { alias: string; viewName: string; buildLog: boolean } | undefined {
  const parts = path.slice(VIEW_PATH_PREFIX.length).split('/');
  if (parts.length !== 2 && !(parts.length === 3 && parts[2] === 'build-log')) return undefined;
  try {
    const alias = decodeURIComponent(parts[0]!);
    const viewName = decodeURIComponent(parts[1]!);
    if (alias === '' || viewName === '') return undefined;
    return { alias, viewName, buildLog: parts.length === 3 };
  } catch {
    return undefined;
  }
}

export function createViewHandler(deps: ViewHandlerDeps): ViewHandler {
  const { store, logger } = deps;
  const retryAfter = String(deps.retryAfterSeconds ?? 30);
  const gzipCache = new GzipCache(deps.gzipCacheBytes ?? 32 * 1024 * 1024);
  const bodyCacheBytes = deps.bodyCacheBytes ?? 64 * 1024 * 1024;
  const bodies = new BodyCache(bodyCacheBytes);
  const variants = new BodyCache(bodyCacheBytes);
  const entriesCache = new EntriesCache();
  const headTtlMs = deps.headTtlMs ?? 1000;
  const collections = new TtlCache<CollectionRecord | undefined>(headTtlMs);
  const heads = new TtlCache<string | undefined>(headTtlMs);

  function finish(
    req: IncomingMessage,
    res: ServerResponse,
    status: number,
    headers: OutgoingHttpHeaders,
    body?: Buffer,
  ): void {
    if (body !== undefined) headers['Content-Length'] = body.length;
    res.writeHead(status, headers);
    res.end(req.method === 'HEAD' ? undefined : body);
    if (status >= 400) {
      const fields = { method: req.method, path: req.url, status };
      // A view waiting for its first render returns 503, which is expected and not a failure.
      if (status === 503) logger.warn(fields, 'view requested before its first render');
      else if (status >= 500) logger.error(fields, 'view request failed with a server error');
      else logger.info(fields, 'view request rejected with a client error');
    }
  }

  function sendText(
    req: IncomingMessage,
    res: ServerResponse,
    status: number,
    message: string,
    headers: OutgoingHttpHeaders = {},
  ): void {
    finish(
      req,
      res,
      status,
      { ...headers, 'Content-Type': PLAIN_TEXT },
      Buffer.from(`${message}\n`),
    );
  }

  function notRendered(
    req: IncomingMessage,
    res: ServerResponse,
    alias: string,
    viewName: string,
  ): void {
    sendText(
      req,
      res,
      503,
      `View ${JSON.stringify(viewName)} of ${JSON.stringify(alias)} has not been rendered yet; retry later.`,
      { 'Retry-After': retryAfter },
    );
  }

  /**
   * Sends 304 when the client has `etag`, else loads the body and sends
   * it, gzip-coded when the client accepts it. The loaded tag is sent, which
   * differs from `etag` when a newer render was stored in between.
   */
  async function send(
    req: IncomingMessage,
    res: ServerResponse,
    etag: string,
    load: () => Promise<Loaded | undefined>,
    onMissing: () => void,
  ): Promise<void> {
    const headers: OutgoingHttpHeaders = { 'Cache-Control': 'no-cache', Vary: 'Accept-Encoding' };
    const gzip = acceptsGzip(req.headers['accept-encoding']);
    const ifNoneMatch = req.headers['if-none-match'];
    if (ifNoneMatch !== undefined && ifNoneMatch !== '' && ifNoneMatchMatches(ifNoneMatch, etag)) {
      headers['ETag'] = gzip ? weakEtag(etag) : etag;
      finish(req, res, 304, headers);
      return;
    }
    const loaded = await load();
    if (loaded === undefined) {
      onMissing();
      return;
    }
    headers['Content-Type'] = loaded.contentType;
    // A gzip-coded body is another representation, so it carries the weak
    // form of the tag, which If-None-Match still matches (weak comparison).
    if (gzip && loaded.body.length >= MIN_GZIP_BYTES) {
      headers['Content-Encoding'] = 'gzip';
      headers['ETag'] = weakEtag(loaded.etag);
      finish(req, res, 200, headers, await gzipCache.get(loaded.etag, loaded.body));
    } else {
      headers['ETag'] = loaded.etag;
      finish(req, res, 200, headers, loaded.body);
    }
  }

  async function serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = req.url ?? '/';
    const question = url.indexOf('?');
    const path = question < 0 ? url : url.slice(0, question);
    const querystring = question < 0 ? '' : url.slice(question + 1);
    const parsed = parsePath(path);
    if (parsed === undefined) {
      sendText(
        req,
        res,
        404,
        `No view at ${JSON.stringify(path)}; view URLs are /feeds/{alias}/{view}.`,
      );
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      sendText(req, res, 405, `Views accept GET and HEAD only, not ${req.method ?? ''}.`, {
        Allow: 'GET, HEAD',
      });
      return;
    }
    const { alias, viewName } = parsed;
    const collection = await collections.get(alias, () => store.getCollectionByAlias(alias));
    const spec = collection && deps.viewSpecs(collection).find((view) => view.name === viewName);
    if (collection === undefined || spec === undefined) {
      sendText(
        req,
        res,
        404,
        collection === undefined
          ? `Collection alias ${JSON.stringify(alias)} does not exist.`
          : `View ${JSON.stringify(viewName)} does not exist for collection alias ${JSON.stringify(alias)}.`,
      );
      return;
    }
    const label = `view ${JSON.stringify(viewName)} of ${JSON.stringify(alias)}`;
    const decision = await decideViewAccess(
      { req, res, ip: req.socket.remoteAddress ?? '' },
      spec.access,
      label,
      deps.authenticator,
    );
    if (!decision.allowed) {
      sendText(req, res, decision.status, decision.message, { ...decision.headers });
      return;
    }
    const missing = () => notRendered(req, res, alias, viewName);

    if (parsed.buildLog) {
      const log = await store.getViewLog(collection.id, spec.name);
      if (log === undefined) {
        missing();
        return;
      }
      finish(
        req,
        res,
        200,
        { 'Cache-Control': 'no-cache', 'Content-Type': 'application/json; charset=utf-8' },
        Buffer.from(log.log, 'utf8'),
      );
      return;
    }

    if (querystring !== '') {
      let query: ViewQuery;
      try {
        query = parseViewQuery(spec, new URLSearchParams(querystring));
      } catch (error) {
        if (!(error instanceof ViewQueryError)) throw error;
        sendText(req, res, 400, error.message);
        return;
      }
      const tags = await store.getViewData(collection.id, spec.name, { withoutData: true });
      if (tags === undefined) {
        missing();
        return;
      }
      const etag = `"${createHash('sha256').update(`${tags.dataEtag}\n${query.key}`).digest('base64url')}"`;
      await send(
        req,
        res,
        etag,
        async () => {
          const cached = variants.get(etag);
          if (cached !== undefined) return { ...cached, etag };
          const entries = await entriesCache.get(
            `${collection.id}\n${spec.name}\n${tags.dataEtag}`,
            async () => (await store.getViewData(collection.id, spec.name))?.data,
          );
          if (entries === undefined) return undefined;
          const output = renderVariant(spec, entries, query, new BuildLog(0));
          const variant = {
            body: Buffer.from(output.body, 'utf8'),
            contentType: output.contentType,
          };
          variants.set(etag, variant);
          return { ...variant, etag };
        },
        missing,
      );
      return;
    }

    const etag = await heads.get(`${collection.id}\n${spec.name}`, () =>
      store.getViewEtag(collection.id, spec.name),
    );
    if (etag === undefined) {
      missing();
      return;
    }
    await send(
      req,
      res,
      etag,
      async () => {
        const cached = bodies.get(etag);
        if (cached !== undefined) return { ...cached, etag };
        const view = await store.getView(collection.id, spec.name);
        if (view === undefined) return undefined;
        bodies.set(view.etag, { body: view.body, contentType: view.contentType });
        return { body: view.body, etag: view.etag, contentType: view.contentType };
      },
      missing,
    );
  }

  return {
    handle(req, res) {
      if (!(req.url ?? '').startsWith(VIEW_PATH_PREFIX)) return false;
      serve(req, res).catch((error: unknown) => {
        logger.error({ err: error, method: req.method, path: req.url }, 'view request failed');
        if (!res.headersSent) sendText(req, res, 500, 'Internal server error.');
        else res.destroy();
      });
      return true;
    },
    invalidate() {
      collections.clear();
      heads.clear();
    },
  };
}
