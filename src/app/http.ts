import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';

import Koa from 'koa';
import Router from '@koa/router';
import type { Logger } from 'pino';
import type { Store } from '../store/index.js';

export interface HttpAppDeps {
  store: Store;
  logger: Logger;
  /** Routers mounted in order after the health routes. */
  routers: Router[];
  /** True while the process drains before exit: readiness then fails. */
  isDraining: () => boolean;
}

const READY_TIMEOUT_MS = 2000;

/** Error codes of a client that went away; they are not server errors. */
const CLIENT_GONE = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED', 'ERR_STREAM_PREMATURE_CLOSE']);

/** Builds the Koa application: request logging, health probes and the part routers. */
export function createHttpApp(deps: HttpAppDeps): Koa {
  const { store, logger } = deps;
  const app = new Koa({ proxy: false });

  app.use(async (ctx, next) => {
    const started = process.hrtime.bigint();
    try {
      await next();
    } catch (error) {
      // Parts map their own errors; anything reaching here is unexpected.
      logger.error({ err: error, method: ctx.method, path: ctx.path }, 'request failed');
      ctx.status = 500;
      ctx.type = 'text/plain';
      ctx.body = 'Internal Server Error\n';
    }
    const durationMs = Number(process.hrtime.bigint() - started) / 1e6;
    const fields = { method: ctx.method, path: ctx.path, status: ctx.status, durationMs };
    if (ctx.status >= 500) logger.error(fields, 'request failed with a server error');
    else if (ctx.status >= 400) logger.info(fields, 'request rejected with a client error');
    else logger.debug(fields, 'request served');
  });

  const health = new Router();
  health.get('/healthz', (ctx) => {
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { status: 'ok' };
  });
  health.get('/readyz', async (ctx) => {
    ctx.set('Cache-Control', 'no-store');
    if (deps.isDraining()) {
      ctx.status = 503;
      ctx.body = { status: 'draining' };
      return;
    }
    try {
      await store.ping(READY_TIMEOUT_MS);
      ctx.body = { status: 'ready' };
    } catch (error) {
      logger.warn({ err: error }, 'readiness probe failed: store unreachable');
      ctx.status = 503;
      ctx.body = { status: 'store unreachable' };
    }
  });
  app.use(health.routes());
  app.use(health.allowedMethods());

  for (const router of deps.routers) {
    app.use(router.routes());
    app.use(router.allowedMethods());
  }

  app.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code && CLIENT_GONE.has(error.code)) return;
    logger.error({ err: error }, 'http server error');
  });
  return app;
}

/**
 * Returns the request listener of the hub's server: view requests go to the
 * view handler, which skips Koa because firewalls poll views often and most
 * responses are 304s; everything else goes to the Koa application.
 */
export function hubRequestListener(
  app: Koa,
  views: { handle(req: IncomingMessage, res: ServerResponse): boolean } | undefined,
): RequestListener {
  const koa = app.callback();
  return (req, res) => {
    if (views === undefined || !views.handle(req, res)) void koa(req, res);
  };
}
