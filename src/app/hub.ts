import { mkdirSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { createServer, type Server } from 'node:http';
import type Router from '@koa/router';
import type { Logger } from 'pino';
import type { Store } from '../store/index.js';
import type { CollectionConfig, Config } from './config.js';
import { createHttpApp, hubRequestListener } from './http.js';
import { PollMetrics } from './metrics.js';
import { processingFor, refreshAllowSources } from './processing.js';
import { openStore, type OpenedStore } from './store.js';
import { pollSource, type PollReport } from '../sources/index.js';
import { createTaxiiRouter } from '../taxii/index.js';
import { createAuthenticator, type Authenticator } from '../auth/index.js';
import { createViewHandler, type ViewHandler } from '../views/index.js';
import { ViewPublisher } from './views.js';
import { createScheduler, type Scheduler } from '../jobs/index.js';

export const USER_AGENT = 'feedhub/0.1 (+TAXII 2.1 feed hub)';
export const TAXII_API_ROOT = 'hub';
/**
 * Time between aging passes over every collection, in seconds. Aging also
 * runs after each poll and at start, so this only bounds how late a value
 * whose sources stay silent leaves the views.
 */
export const AGING_INTERVAL_SECONDS = 300;

export interface Hub {
  /** Base URL the HTTP server listens on. A worker serves only the health probes there. */
  url: string;
  /**
   * Runs one poll of a source now, outside the schedule, with the same code
   * as the poll job, and returns its report. Only a process running jobs has it.
   */
  pollNow?: (collectionId: string, sourceId: string) => Promise<PollReport | undefined>;
  /** Stops everything once, in order; later calls return the same promise. */
  stop(): Promise<void>;
}

/**
 * Builds and starts the hub in order: store, collections, HTTP, jobs. This is
 * the one composition root; every part gets only what it uses.
 */
export interface HubOptions {
  /** How often the scheduler looks for due jobs, in ms; see `SchedulerOptions`. */
  processEveryMs?: number;
  /** How long a poll may hold its job lock without renewal, in ms; see `SchedulerOptions`. */
  lockLifetimeMs?: number;
  /** Wait after a scheduled poll before its views render, in ms. Default 2000. */
  viewDebounceMs?: number;
}

export async function startHub(
  config: Config,
  logger: Logger,
  options: HubOptions = {},
): Promise<Hub> {
  const { settings } = config;
  const role = settings.role;
  if (!settings.mongodbUri) mkdirSync(settings.dataDir, { recursive: true });

  const opened: OpenedStore = await openStore(settings, logger);
  const { store } = opened;
  await store.init();
  await syncCollections(config.collections, opened, logger);

  let draining = false;
  // A worker serves only the health probes, so orchestrators can check it too.
  const authenticator = createAuthenticator({ principals: config.principals, logger });
  const api = role === 'worker' ? undefined : await createApi(config, store, logger, authenticator);
  const metrics = new PollMetrics();
  const app = createHttpApp({
    store,
    logger,
    isDraining: () => draining,
    routers: [...(api?.routers ?? []), metrics.router()],
  });
  const server: Server = createServer(hubRequestListener(app, api?.views));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(settings.port, settings.host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${host}:${address.port}`;
  logger.info({ url, publicUrl: settings.publicUrl, role }, 'http server listening');

  let scheduler: Scheduler | undefined;
  let pollNow: Hub['pollNow'];
  let publisher: ViewPublisher | undefined;
  if (role === 'worker' || role === 'all') {
    publisher = new ViewPublisher(config, store, logger, metrics, {
      debounceMs: options.viewDebounceMs,
    });
    const views = publisher;
    // Renders in this process drop the view handler's short-lived caches at once.
    if (api) views.onViewsChanged(() => api.views.invalidate());
    const poller = createPoller(config, opened, logger, metrics);
    pollNow = async (collectionId, sourceId) => {
      const report = await poller(collectionId, sourceId);
      // Also after a poll that changed nothing: a scheduled poll of the same
      // source may have run meanwhile, and its render may still be pending.
      if (report !== undefined) await views.renderNow(collectionId);
      return report;
    };
    scheduler = await startJobs(
      config,
      opened,
      async (collectionId, sourceId) => {
        const report = await poller(collectionId, sourceId);
        if (report?.outcome === 'applied') views.request(collectionId);
      },
      views,
      options,
      logger,
    );
  }

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      draining = true;
      logger.info('hub stopping');
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      await closed;
      logger.info('http server closed');
      if (scheduler) {
        await scheduler.stop();
        logger.info('scheduler stopped');
      }
      if (publisher) {
        await publisher.close(settings.shutdownTimeoutMs);
        logger.info('view rendering stopped');
      }
      await store.close();
      logger.info('store closed');
    })();
    return stopping;
  };

  return { url, stop, pollNow };
}

/** Builds the parts of an API process: the TAXII router and the view handler. */
async function createApi(
  config: Config,
  store: Store,
  logger: Logger,
  authenticator: Authenticator,
): Promise<{ routers: Router[]; views: ViewHandler }> {
  const { settings } = config;
  const cursorSecret = await store.getOrCreateSecret('taxii-cursor', () =>
    randomBytes(32).toString('base64url'),
  );
  const viewsByCollection = new Map(config.collections.map((c) => [c.id, c.views] as const));
  return {
    routers: [
      createTaxiiRouter({
        store,
        logger,
        publicUrl: settings.publicUrl,
        title: 'feedhub TAXII 2.1 server',
        description: 'Indicators collected, normalised to STIX 2.1 and published by feedhub.',
        apiRootPath: TAXII_API_ROOT,
        maxPageSize: settings.taxiiMaxPageSize,
        cursorSecret,
        authenticator,
      }),
    ],
    views: createViewHandler({
      store,
      logger,
      authenticator,
      viewSpecs: (collection) => viewsByCollection.get(collection.id) ?? [],
    }),
  };
}

async function syncCollections(
  collections: readonly CollectionConfig[],
  opened: OpenedStore,
  logger: Logger,
): Promise<void> {
  for (const collection of collections) {
    await opened.store.upsertCollection({
      id: collection.id,
      alias: collection.alias,
      title: collection.title,
      description: collection.description,
      canRead: true,
      // Writing is on when someone is granted it; `access` says who.
      canWrite: collection.access.write.length > 0,
      mediaTypes: ['application/stix+json;version=2.1'],
      access: { ...collection.access },
    });
  }
  logger.info({ count: collections.length }, 'collections loaded');
}

/** Builds the function that polls one source; the caller renders its collection's views. */
function createPoller(
  config: Config,
  opened: OpenedStore,
  logger: Logger,
  metrics: PollMetrics,
): (collectionId: string, sourceId: string) => Promise<PollReport | undefined> {
  const byId = new Map(config.collections.map((c) => [c.id, c]));
  return async (collectionId, sourceId) => {
    const collection = byId.get(collectionId);
    const source = collection?.sources.find((s) => s.id === sourceId);
    if (!collection || !source) {
      logger.warn({ collectionId, sourceId }, 'poll requested for a source that is not configured');
      return undefined;
    }
    await refreshAllowSources(collection, opened.store);
    const report = await pollSource(
      { store: opened.store, logger, userAgent: USER_AGENT, processing: processingFor(collection) },
      collectionId,
      source,
    );
    metrics.record(report);
    return report;
  };
}

async function startJobs(
  config: Config,
  opened: OpenedStore,
  poll: (collectionId: string, sourceId: string) => Promise<void>,
  views: ViewPublisher,
  options: HubOptions,
  logger: Logger,
): Promise<Scheduler> {
  const scheduler = createScheduler({
    backend: opened.jobBackend(),
    logger,
    processEveryMs: options.processEveryMs,
    lockLifetimeMs: options.lockLifetimeMs,
  });
  scheduler.definePoll(async ({ collectionId, sourceId }) => {
    await poll(collectionId, sourceId);
  });
  scheduler.defineAging(async () => {
    for (const collection of config.collections) {
      await processingFor(collection).age(opened.store, Date.now() * 1000);
      await views.renderNow(collection.id);
    }
  });

  // Views are stored; rendering at start also covers a collection whose view
  // list or rules changed. Aging runs first, so values that aged out while
  // the hub was stopped leave the views at once.
  for (const collection of config.collections) {
    await processingFor(collection).age(opened.store, Date.now() * 1000);
    await views.renderNow(collection.id);
  }

  const keys: { collectionId: string; sourceId: string }[] = [];
  for (const collection of config.collections) {
    for (const source of collection.sources) {
      keys.push({ collectionId: collection.id, sourceId: source.id });
      await scheduler.schedulePoll(collection.id, source.id, source.intervalSeconds);
    }
  }
  await scheduler.removePollsExcept(keys);
  await scheduler.scheduleAging(AGING_INTERVAL_SECONDS);
  await scheduler.start();
  logger.info({ count: keys.length }, 'scheduler started');
  return scheduler;
}
