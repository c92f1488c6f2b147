/**
 * The TAXII 2.1 server under `/taxii2`: discovery, API root, status,
 * collections, objects (read, add, delete), manifest and object versions,
 * with authentication and per-collection access.
 */
import Router from '@koa/router';
import type { Context, Next } from 'koa';

import { authenticateMiddleware } from './access.js';
import {
  DEFAULT_MAX_CONTENT_LENGTH,
  DEFAULT_MAX_PAGE_SIZE,
  DEFAULT_STATUS_RETENTION_MS,
  type ResolvedTaxiiDeps,
  type TaxiiDeps,
} from './deps.js';
import { TaxiiError, notFound, taxiiErrorMiddleware } from './errors.js';
import { TAXII_MEDIA_TYPE, acceptsTaxii } from './media-type.js';
import { registerCollectionRoutes } from './routes/collections.js';
import { registerDiscoveryRoutes } from './routes/discovery.js';
import { registerManifestRoutes } from './routes/manifest.js';
import { registerObjectRoutes } from './routes/objects.js';
import { registerStatusRoutes } from './routes/status.js';
import { registerWriteRoutes } from './routes/write.js';

export type { TaxiiDeps } from './deps.js';
export { TaxiiError } from './errors.js';
export {
  TAXII_MEDIA_TYPE,
  STIX_MEDIA_TYPE,
  acceptsTaxii,
  isTaxiiContentType,
  parseAccept,
  parseContentType,
  type MediaRange,
} from './media-type.js';
export { decodeCursor, encodeCursor, type CursorScope } from './cursor.js';

/** The prefix that the router mounts itself at. */
export const TAXII_PREFIX = '/taxii2';

const API_ROOT_SEGMENT = /^[A-Za-z0-9._~-]+$/;

function resolveDeps(deps: TaxiiDeps): ResolvedTaxiiDeps {
  const maxPageSize = deps.maxPageSize ?? DEFAULT_MAX_PAGE_SIZE;
  if (!Number.isSafeInteger(maxPageSize) || maxPageSize < 1) {
    throw new Error(`maxPageSize ${maxPageSize} is invalid; use a positive integer.`);
  }
  const maxContentLength = deps.maxContentLength ?? DEFAULT_MAX_CONTENT_LENGTH;
  if (!Number.isSafeInteger(maxContentLength) || maxContentLength < 1) {
    throw new Error(
      `maxContentLength ${maxContentLength} is invalid; use a positive number of bytes.`,
    );
  }
  if (!API_ROOT_SEGMENT.test(deps.apiRootPath)) {
    throw new Error(
      `apiRootPath ${JSON.stringify(deps.apiRootPath)} is invalid; use one URL path segment such as "hub".`,
    );
  }
  if (deps.cursorSecret === '') {
    throw new Error('cursorSecret is empty; pass the secret stored with store.getOrCreateSecret.');
  }
  const statusRetentionMs = deps.statusRetentionMs ?? DEFAULT_STATUS_RETENTION_MS;
  if (!Number.isSafeInteger(statusRetentionMs) || statusRetentionMs < 1) {
    throw new Error(
      `statusRetentionMs ${statusRetentionMs} is invalid; use a positive number of ms.`,
    );
  }
  return { ...deps, maxPageSize, maxContentLength, statusRetentionMs };
}

/** Rejects with 406 a client that accepts no representation the server offers. */
async function negotiate(ctx: Context, next: Next): Promise<void> {
  if (!acceptsTaxii(ctx.get('Accept') || undefined)) {
    throw new TaxiiError(
      406,
      'not_acceptable',
      'Not acceptable',
      `This server only serves ${TAXII_MEDIA_TYPE}; the request accepts ${JSON.stringify(ctx.get('Accept'))}.`,
    );
  }
  await next();
}

/**
 * Rejects a path that no TAXII route serves: 405 with `Allow` when another
 * method is served there, else 404, in both cases as a TAXII error.
 */
function rejectUnrouted(ctx: Context): void {
  const allowed = new Set<string>();
  for (const layer of (ctx['matched'] ?? []) as { methods: string[]; opts: { name?: string } }[]) {
    if (layer.opts.name !== 'taxii-unrouted') {
      layer.methods.forEach((method) => allowed.add(method));
    }
  }
  if (allowed.size > 0) {
    const allow = [...allowed].join(', ');
    throw new TaxiiError(
      405,
      'method_not_allowed',
      'Method not allowed',
      `${ctx.method} is not supported here; use ${allow}.`,
      {
        Allow: allow,
      },
    );
  }
  throw notFound(`${ctx.path} is not a TAXII resource of this server.`);
}

/**
 * Creates the TAXII router, prefixed with `/taxii2`: mount it with
 * `app.use(router.routes())`. Every response under the prefix, errors and
 * unknown paths included, carries the TAXII media type.
 */
export function createTaxiiRouter(options: TaxiiDeps): Router {
  const deps = resolveDeps(options);
  const router = new Router({ prefix: TAXII_PREFIX });

  router.use(taxiiErrorMiddleware(deps.logger));
  router.use(authenticateMiddleware(deps));
  router.use(negotiate);

  // Paths are declared without the trailing slash of TAXII URLs: path-to-regexp 8,
  // with its default `trailing: true`, then matches both `/collections` and `/collections/`.
  registerDiscoveryRoutes(router, deps);
  registerCollectionRoutes(router, deps);
  registerObjectRoutes(router, deps);
  registerManifestRoutes(router, deps);
  registerWriteRoutes(router, deps);
  registerStatusRoutes(router, deps);

  router.all('taxii-unrouted', '{/*rest}', rejectUnrouted);
  return router;
}
