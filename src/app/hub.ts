import { mkdirSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { createServer, type Server } from 'node:http';
import type Router from '@koa/router';
import type { Logger } from 'pino';
import type { CollectionRecord, Store } from '../store/index.js';
import type { CollectionConfig, Config } from './config.js';
import { createHttpApp, hubRequestListener } from './http.js';
import { PollMetrics } from './metrics.js';
import { processingFor, refreshAllowSources } from './processing.js';
import { openStore, type OpenedStore } from './store.js';
import { closeDispatchers, pollSource, type PollReport } from '../sources/index.js';
import { createTaxiiRouter } from '../taxii/index.js';
import { createAuthenticator, PrincipalDirectory, type Authenticator } from '../auth/index.js';
import { createRestApi, type Operations } from '../api/index.js';
import { explainValue } from './why.js';
import { loadManualEntries, removeManualValue } from './manual.js';
import { MANUAL_SOURCE_ID } from './config.js';
import { toViewEntries } from '../views/select.js';
import type { ValueType } from '../processing/index.js';
import { createViewHandler, type ViewHandler } from '../views/index.js';
import { ViewPublisher } from './views.js';
import { OneAtATime } from './one-at-a-time.js';
import { Catalog } from './catalog.js';
import { createScheduler, type Scheduler } from '../jobs/index.js';

export const USER_AGENT = 'feedhub/0.1 (+TAXII 2.1 feed hub)';
export const TAXII_API_ROOT = 'hub';
/**
 * Time between aging passes over every collection, in seconds. Aging also
 * runs after each poll and at start, so this only bounds how late a value
 * whose sources stay silent leaves the views.
 */
export const AGING_INTERVAL_SECONDS = 300;
/** Time an idle HTTP connection stays open, in ms: longer than common clients keep theirs. */
export const SERVER_KEEP_ALIVE_MS = 65_000;
/** How often a process reloads the collection definitions that others may have changed, in ms. */
export const CATALOG_REFRESH_MS = 5000;

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
  /** How often stored collection definitions are reloaded, in ms. Default 5000. */
  catalogRefreshMs?: number;
  /** Environment that `*Env` keys of stored definitions read. Default: the one the config was read from. */
  env?: NodeJS.ProcessEnv;
  /** Check every REST API response against its declared schema, failing loudly (tests). */
  checkApiResponses?: boolean;
  /** Schedules no poll, so that sources are polled only through `pollNow` (tests). */
  pollOnRequestOnly?: boolean;
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
  const catalog = new Catalog({
    store,
    logger,
    baseDir: settings.collectionsDir,
    env: options.env ?? config.env,
  });
  // The TAXII record of each collection follows its definition, on every process.
  catalog.onChange(async (change) => {
    if (change.collection) await store.upsertCollection(collectionRecord(change.collection));
  });
  await catalog.seed(config.collections);
  await catalog.refresh();
  logger.info({ count: catalog.collections().length }, 'collections loaded');

  let draining = false;
  const directory = new PrincipalDirectory(store, config.principals);
  await directory.refreshEnabled();
  const authenticator = createAuthenticator({ directory, logger });
  const metrics = new PollMetrics();
  const runsJobs = role === 'worker' || role === 'all';
  // An API-only process renders too (after a change made through it) but
  // leaves syslog forwarding to the workers.
  const publisher = new ViewPublisher(catalog.collections(), store, logger, metrics, {
    debounceMs: options.viewDebounceMs,
    forward: runsJobs,
  });
  const views = publisher;
  const poller = createPoller(catalog, opened, logger, metrics);
  const pollNow: Hub['pollNow'] = async (collectionId, sourceId) => {
    const report = await poller(collectionId, sourceId);
    // Also after a poll that changed nothing: a scheduled poll of the same
    // source may have run meanwhile, and its render may still be pending.
    if (report !== undefined) await views.renderNow(collectionId);
    return report;
  };
  if (!runsJobs) {
    catalog.onChange((change) => {
      if (change.collection) views.setCollection(change.collection);
      else views.removeCollection(change.id);
    });
  }
  // Lists scheduled polls for the API; the worker's scheduler once it runs.
  let scheduler: Scheduler | undefined;
  const listing = (): Scheduler =>
    (scheduler ??= createScheduler({ backend: opened.jobBackend(), logger }));

  // A worker serves only the health probes, so orchestrators can check it too.
  const api =
    role === 'worker'
      ? undefined
      : await createApi(
          config,
          catalog,
          store,
          logger,
          authenticator,
          directory,
          {
            runSource: async (collectionId, sourceId) => {
              const report = await pollNow(collectionId, sourceId);
              if (report === undefined) throw new Error(`source ${sourceId} is not configured`);
              return { ...report };
            },
            renderViews: (collectionId) => views.renderNow(collectionId),
            applyManualEntries: async (collectionId) => {
              await pollNow(collectionId, MANUAL_SOURCE_ID);
            },
            removeManualValue: async (collection, valueType, value, at) => {
              const result = await removeManualValue(store, collection, valueType, value, at);
              await pollNow(collection.id, MANUAL_SOURCE_ID);
              return result;
            },
            listJobs: () => listing().listPolls(),
            judge: async (collection, valueType, value) => {
              await refreshAllowSources(collection, store);
              const verdict = processingFor(collection).screen.judge(valueType as ValueType, value);
              switch (verdict.kind) {
                case 'keep':
                case 'split':
                  return undefined;
                case 'refused':
                  return `refused by the ${verdict.rule} guard`;
                case 'allowed':
                  return `allow-listed by ${verdict.entry}`;
              }
            },
            activeIndicators: async (collection, valueTypes) => {
              const processing = processingFor(collection);
              const entries = await store.listIndicatorEntries(collection.id, valueTypes);
              const tlp = collection.tlp === 'white' ? 'clear' : collection.tlp;
              // View entries name sources by their names; the API uses their ids.
              return toViewEntries(entries, processing.versions, tlp).map((entry, i) => ({
                valueType: entry.type,
                value: entry.value,
                indicatorId: entry.indicatorId,
                firstSeen: entry.firstSeen,
                lastSeen: entry.lastSeen,
                sources: entries[i]!.sources,
                confidence: entry.confidence,
                tlp: entry.tlp,
                ...(entry.labels.length === 0 ? {} : { labels: entry.labels }),
              }));
            },
            explain: async (collection, value) =>
              ({ ...(await explainValue(store, collection, value)) }) as Record<string, unknown>,
          },
          options.checkApiResponses === true,
        );
  // Renders in this process drop the view handler's short-lived caches at once.
  if (api) views.onViewsChanged(() => api.views.invalidate());
  const app = createHttpApp({
    store,
    logger,
    isDraining: () => draining,
    routers: [...(api?.routers ?? []), metrics.router()],
  });
  const server: Server = createServer(
    // Idle connections stay open longer than clients keep theirs (undici's
    // default is 4 s), so the client closes first. Otherwise a request sent on
    // a connection that the server is closing gets a reset.
    { keepAliveTimeout: SERVER_KEEP_ALIVE_MS },
    hubRequestListener(app, api?.views),
  );
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(settings.port, settings.host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${host}:${address.port}`;
  logger.info({ url, publicUrl: settings.publicUrl, role }, 'http server listening');

  if (runsJobs) {
    scheduler = await startJobs(
      catalog,
      opened,
      async (collectionId, sourceId) => {
        const report = await poller(collectionId, sourceId);
        if (report?.outcome === 'applied' && changedAnything(report)) views.request(collectionId);
      },
      views,
      { ...options, auditRetentionMs: settings.auditRetentionMs },
      logger,
    );
  }

  catalog.startPolling(options.catalogRefreshMs ?? CATALOG_REFRESH_MS);

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      draining = true;
      catalog.stop();
      logger.info('hub stopping');
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      await closed;
      logger.info('http server closed');
      if (scheduler && runsJobs) {
        await scheduler.stop();
        logger.info('scheduler stopped');
      }
      await publisher.close(settings.shutdownTimeoutMs);
      logger.info('view rendering stopped');
      await closeDispatchers();
      await store.close();
      logger.info('store closed');
    })();
    return stopping;
  };

  return { url, stop, pollNow };
}

/** Builds the parts of an API process: the TAXII router, the REST API and the view handler. */
async function createApi(
  config: Config,
  catalog: Catalog,
  store: Store,
  logger: Logger,
  authenticator: Authenticator,
  directory: PrincipalDirectory,
  operations: Operations,
  checkResponses: boolean,
): Promise<{ routers: Router[]; views: ViewHandler }> {
  const { settings } = config;
  const cursorSecret = await store.getOrCreateSecret('taxii-cursor', () =>
    randomBytes(32).toString('base64url'),
  );
  const rest = createRestApi({
    store,
    logger,
    authenticator,
    directory,
    definitions: catalog,
    operations,
    publicUrl: settings.publicUrl,
    checkResponses,
  });
  return {
    routers: [
      ...rest.routers,
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
      viewSpecs: (collection) => catalog.get(collection.id)?.views ?? [],
    }),
  };
}

/** Whether the guards or the allow-list of a collection changed. */
function screenChanged(before: CollectionConfig, after: CollectionConfig): boolean {
  return JSON.stringify(before.processing.screen) !== JSON.stringify(after.processing.screen);
}

/**
 * Polls every source of a collection again, soon and in full, after its
 * guards or allow-list changed: views follow at once (they screen when they
 * render), but the stored sightings and the TAXII versions follow only a
 * poll that screens the list again. Conditional-GET validators and the
 * unchanged-list digest are dropped, so that the poll parses the list.
 * Without a scheduler the next `pollNow` does it.
 */
async function rescreen(
  collection: CollectionConfig,
  store: Store,
  scheduler: Scheduler | undefined,
  logger: Logger,
): Promise<void> {
  for (const source of collection.sources) {
    const state = await store.getSourceState(collection.id, source.id);
    if (state !== undefined) {
      // Keys of src/sources that let a poll skip parsing an unchanged list.
      const cursor = { ...state.cursor };
      delete cursor.unchangedList;
      delete cursor.manualDigest;
      const rest = { ...state };
      delete rest.etag;
      delete rest.lastModified;
      await store.putSourceState({ ...rest, cursor });
    }
    await scheduler?.runPollSoon(collection.id, source.id, source.intervalSeconds);
  }
  logger.info(
    { collection: collection.alias, sources: collection.sources.length },
    'guards or allow-list changed: every source is polled again',
  );
}

/** Whether an applied poll changed what views show; an empty manual list changes nothing. */
function changedAnything(report: PollReport): boolean {
  const counts = [
    report.created,
    report.refreshed,
    report.reactivated,
    report.withdrawn,
    report.merged,
    report.expired,
    report.objectsAdded,
  ];
  return counts.some((count) => count === undefined || count > 0);
}

/** The TAXII record of a collection definition. */
function collectionRecord(collection: CollectionConfig): CollectionRecord {
  return {
    id: collection.id,
    alias: collection.alias,
    title: collection.title,
    ...(collection.description === undefined ? {} : { description: collection.description }),
    canRead: true,
    // Writing is on when someone is granted it; `access` says who.
    canWrite: collection.access.write.length > 0,
    mediaTypes: ['application/stix+json;version=2.1'],
    access: { ...collection.access },
  };
}

/** Builds the function that polls one source; the caller renders its collection's views. */
function createPoller(
  catalog: Catalog,
  opened: OpenedStore,
  logger: Logger,
  metrics: PollMetrics,
): (collectionId: string, sourceId: string) => Promise<PollReport | undefined> {
  const queue = new OneAtATime();
  return (collectionId, sourceId) => {
    const key = JSON.stringify([collectionId, sourceId]);
    if (queue.busy(key)) {
      logger.info({ collectionId, sourceId }, 'poll waits for the running poll of this source');
    }
    return queue.run(key, () => pollOnce(collectionId, sourceId));
  };

  async function pollOnce(collectionId: string, sourceId: string): Promise<PollReport | undefined> {
    const collection = catalog.get(collectionId);
    const source = collection?.sources.find((s) => s.id === sourceId);
    if (!collection || !source) {
      logger.warn({ collectionId, sourceId }, 'poll requested for a source that is not configured');
      return undefined;
    }
    await refreshAllowSources(collection, opened.store);
    const polled =
      source.kind === 'manual'
        ? {
            ...source,
            manual: {
              load: () => loadManualEntries(opened.store, collectionId, Date.now() * 1000),
            },
          }
        : source;
    const report = await pollSource(
      { store: opened.store, logger, userAgent: USER_AGENT, processing: processingFor(collection) },
      collectionId,
      polled,
    );
    metrics.record(report);
    // The collection may have been deleted while the poll ran: remove what it wrote.
    if (
      report.outcome === 'applied' &&
      (await opened.store.getRecord('collection', collectionId)) === undefined
    ) {
      await opened.store.deleteCollection(collectionId);
      logger.warn(
        { collectionId, sourceId },
        'collection deleted during a poll; its data was removed again',
      );
      return undefined;
    }
    // The run history of the source; a manual list that did not change leaves no entry.
    if (source.kind !== 'manual' || report.outcome !== 'not-modified') {
      await opened.store.appendAudit({
        at: Date.now() * 1000,
        actor: 'system',
        action: 'source.poll',
        targetKind: 'source',
        targetId: `${collectionId}/${sourceId}`,
        collectionId,
        details: { ...report },
      });
    }
    return report;
  }
}

/**
 * Deletes the audit entries older than the retention, on the aging
 * schedule. A retention of 0 keeps them all. A failure is logged, and a
 * later pass purges the entries.
 */
async function purgeAudit(store: Store, retentionMs: number, logger: Logger): Promise<void> {
  if (retentionMs === 0) return;
  try {
    const purged = await store.purgeAudit((Date.now() - retentionMs) * 1000);
    if (purged > 0) logger.info({ purged, retentionMs }, 'old audit entries deleted');
  } catch (error) {
    logger.error(
      { err: error, retentionMs },
      'deleting old audit entries failed; retrying at the next pass',
    );
  }
}

async function startJobs(
  catalog: Catalog,
  opened: OpenedStore,
  poll: (collectionId: string, sourceId: string) => Promise<void>,
  views: ViewPublisher,
  options: HubOptions & { auditRetentionMs: number },
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
    await purgeAudit(opened.store, options.auditRetentionMs, logger);
    for (const collection of catalog.collections()) {
      await processingFor(collection).age(opened.store, Date.now() * 1000);
      await views.renderNow(collection.id);
    }
  });

  // Views are stored; rendering at start also covers a collection whose view
  // list or rules changed. Aging runs first, so values that aged out while
  // the hub was stopped leave the views at once.
  for (const collection of catalog.collections()) {
    await processingFor(collection).age(opened.store, Date.now() * 1000);
    await views.renderNow(collection.id);
  }

  const onRequestOnly = options.pollOnRequestOnly === true;
  const schedulePolls = async (): Promise<number> => {
    const keys: { collectionId: string; sourceId: string }[] = [];
    for (const collection of catalog.collections()) {
      for (const source of collection.sources) {
        if (onRequestOnly) continue;
        keys.push({ collectionId: collection.id, sourceId: source.id });
        await scheduler.schedulePoll(collection.id, source.id, source.intervalSeconds);
      }
    }
    await scheduler.removePollsExcept(keys);
    return keys.length;
  };
  const count = await schedulePolls();
  await scheduler.scheduleAging(AGING_INTERVAL_SECONDS);

  // A definition changed here or on another process: its sources are
  // scheduled again and its views follow the new rules.
  catalog.onChange(async (change) => {
    if (change.collection) views.setCollection(change.collection);
    else views.removeCollection(change.id);
    for (const source of onRequestOnly ? [] : (change.collection?.sources ?? [])) {
      await scheduler.schedulePoll(change.id, source.id, source.intervalSeconds);
    }
    const keys = catalog
      .collections()
      .flatMap((c) => c.sources.map((s) => ({ collectionId: c.id, sourceId: s.id })));
    await scheduler.removePollsExcept(keys);
    if (change.collection) views.request(change.id);
    if (change.collection && change.previous && screenChanged(change.previous, change.collection)) {
      await rescreen(
        change.collection,
        opened.store,
        onRequestOnly ? undefined : scheduler,
        logger,
      );
    }
  });

  await scheduler.start();
  logger.info({ count }, 'scheduler started');
  return scheduler;
}
