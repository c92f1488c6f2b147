/**
 * The analyst REST API under /api/v1: its routes, the OpenAPI document at
 * /api/v1/openapi.json and a readable page of it at /api/v1/docs.
 */
import Router from '@koa/router';

import type { ApiDeps } from './deps.js';
import { buildOpenApi } from './openapi.js';
import { collectionRoutes } from './resources/collections.js';
import { indicatorRoutes } from './resources/indicators.js';
import { principalRoutes } from './resources/principals.js';
import { API_PREFIX, createApiRouter, type RouteSpec } from './route.js';
import { ApiSchemas } from './schemas.js';
import { docsPage } from './docs-page.js';

export type { ApiDeps, Definitions, JobInfo, Operations, ActiveIndicator } from './deps.js';
export { API_PREFIX } from './route.js';
export { createKey } from './resources/principals.js';

export const API_VERSION = '1.0.0';

export function apiRoutes(deps: ApiDeps): RouteSpec[] {
  return [...principalRoutes(deps), ...collectionRoutes(deps), ...indicatorRoutes(deps)];
}

/** Builds the routers of the REST API: the public document routes, then the authenticated ones. */
export function createRestApi(deps: ApiDeps): {
  routers: Router[];
  openapi: Record<string, unknown>;
} {
  const schemas = new ApiSchemas();
  const routes = apiRoutes(deps);
  const openapi = buildOpenApi({
    routes,
    files: schemas.files,
    publicUrl: deps.publicUrl,
    version: API_VERSION,
  });
  const documentText = JSON.stringify(openapi);
  const page = docsPage(openapi);

  const docs = new Router({ prefix: API_PREFIX });
  docs.get('/openapi.json', (ctx) => {
    ctx.type = 'application/json';
    ctx.set('Cache-Control', 'no-cache');
    ctx.body = documentText;
  });
  docs.get('/docs', (ctx) => {
    ctx.type = 'text/html; charset=utf-8';
    ctx.set('Cache-Control', 'no-cache');
    ctx.set('Content-Security-Policy', "default-src 'none'; style-src 'unsafe-inline'");
    ctx.body = page;
  });

  const api = createApiRouter({
    routes,
    schemas,
    authenticator: deps.authenticator,
    directory: deps.directory,
    logger: deps.logger,
    ...(deps.checkResponses === undefined ? {} : { checkResponses: deps.checkResponses }),
  });
  return { routers: [docs, api], openapi };
}
