/**
 * Keeps the stored views of every collection current: renders them after
 * each change (debounced, so a burst of polls costs one render), records
 * metrics, and hands added and removed entries to syslog forwarders.
 */
import type { Logger } from 'pino';

import type { Store } from '../store/index.js';
import { createSyslogForwarder, type SyslogForwarder } from '../views/syslog.js';
import { formatCefLine } from '../views/formats/cef.js';
import { renderCollectionViews, type ViewTlp } from '../views/index.js';
import type { CollectionConfig } from './config.js';
import type { PollMetrics } from './metrics.js';
import { processingFor, refreshAllowSources } from './processing.js';

export interface ViewPublisherOptions {
  /** Wait after a change before rendering, in ms, so that changes close together share a render. Default 2000. */
  debounceMs?: number;
  /** Whether this process sends view changes to the syslog forwarders of the views. Default true. */
  forward?: boolean;
}

interface CollectionState {
  config: CollectionConfig;
  timer?: NodeJS.Timeout;
  running?: Promise<void>;
  /** A change arrived while a render was running. */
  dirty: boolean;
}

export class ViewPublisher {
  private readonly collections = new Map<string, CollectionState>();
  private readonly forwarders = new Map<
    string,
    { signature: string; forwarder: SyslogForwarder }
  >();
  private readonly debounceMs: number;
  private readonly forward: boolean;
  private closed = false;
  private readonly changeListeners: (() => void)[] = [];

  constructor(
    collections: readonly CollectionConfig[],
    private readonly store: Store,
    private readonly logger: Logger,
    private readonly metrics: PollMetrics,
    options: ViewPublisherOptions = {},
  ) {
    this.debounceMs = options.debounceMs ?? 2000;
    this.forward = options.forward ?? true;
    for (const collection of collections) this.setCollection(collection);
  }

  /**
   * Puts a collection's definition in force, or a new one in place of the
   * previous: later renders use it, and its forwarders follow its views.
   */
  setCollection(collection: CollectionConfig): void {
    const state = this.collections.get(collection.id);
    if (state) state.config = collection;
    else this.collections.set(collection.id, { config: collection, dirty: false });
    const wanted = new Set<string>();
    for (const view of collection.views) {
      if (view.forward === undefined || !this.forward) continue;
      const key = `${collection.id}\n${view.name}`;
      wanted.add(key);
      const forward = view.forward;
      const signature = JSON.stringify(forward);
      const current = this.forwarders.get(key);
      if (current?.signature === signature) continue;
      if (current) void current.forwarder.close(1000);
      this.forwarders.set(key, {
        signature,
        forwarder: createSyslogForwarder(
          {
            transport: forward.transport,
            host: forward.host,
            port: forward.port,
            ...(forward.appName === undefined ? {} : { appName: forward.appName }),
            ...(forward.maxQueue === undefined ? {} : { maxQueue: forward.maxQueue }),
          },
          this.logger.child({ collection: collection.alias, view: view.name }),
        ),
      });
    }
    this.closeForwarders(collection.id, wanted);
  }

  /** Stops rendering a removed collection and closes its forwarders. */
  removeCollection(collectionId: string): void {
    const state = this.collections.get(collectionId);
    if (state?.timer !== undefined) clearTimeout(state.timer);
    this.collections.delete(collectionId);
    this.closeForwarders(collectionId, new Set());
  }

  private closeForwarders(collectionId: string, keep: ReadonlySet<string>): void {
    for (const [key, entry] of this.forwarders) {
      if (!key.startsWith(`${collectionId}\n`) || keep.has(key)) continue;
      this.forwarders.delete(key);
      void entry.forwarder.close(1000);
    }
  }

  /** Calls `listener` after each render that stored a changed view. */
  onViewsChanged(listener: () => void): void {
    this.changeListeners.push(listener);
  }

  /** Asks for a render of a collection's views after the debounce delay. */
  request(collectionId: string): void {
    const state = this.collections.get(collectionId);
    if (state === undefined || this.closed) return;
    if (state.running !== undefined) {
      state.dirty = true;
      return;
    }
    if (state.timer === undefined) {
      state.timer = setTimeout(() => {
        state.timer = undefined;
        void this.run(state);
      }, this.debounceMs);
      // A pending render never keeps the process alive; close() cancels it.
      state.timer.unref();
    }
  }

  /** Renders a collection's views now, after any render in progress, and resolves when stored. */
  async renderNow(collectionId: string): Promise<void> {
    const state = this.collections.get(collectionId);
    if (state === undefined) return;
    if (state.timer !== undefined) {
      clearTimeout(state.timer);
      state.timer = undefined;
    }
    while (state.running !== undefined) await state.running;
    await this.run(state);
  }

  /** Renders every collection's views now, one collection after the other. */
  async renderAll(): Promise<void> {
    for (const id of this.collections.keys()) await this.renderNow(id);
  }

  /** Cancels pending renders, waits for running ones, and closes the forwarders. */
  async close(timeoutMs: number): Promise<void> {
    this.closed = true;
    for (const state of this.collections.values()) {
      if (state.timer !== undefined) clearTimeout(state.timer);
      state.timer = undefined;
    }
    await Promise.all(
      [...this.collections.values()].map((state) => state.running ?? Promise.resolve()),
    );
    await Promise.all(
      [...this.forwarders.values()].map((entry) => entry.forwarder.close(timeoutMs)),
    );
  }

  private run(state: CollectionState): Promise<void> {
    state.dirty = false;
    const running = this.render(state.config)
      .catch((error: unknown) => {
        this.logger.error({ err: error, collection: state.config.alias }, 'views not rendered');
      })
      .finally(() => {
        state.running = undefined;
        if (state.dirty && !this.closed) this.request(state.config.id);
      });
    state.running = running;
    return running;
  }

  private async render(collection: CollectionConfig): Promise<void> {
    const record = await this.store.getCollection(collection.id);
    if (!record) return;
    await refreshAllowSources(collection, this.store);
    const processing = processingFor(collection);
    const started = performance.now();
    const { results, failures } = await renderCollectionViews(
      {
        store: this.store,
        collection: record,
        versions: processing.versions,
        collectionTlp: (collection.tlp === 'white' ? 'clear' : collection.tlp) as ViewTlp,
        screen: processing.screen,
        withChanges: this.forwarders.size > 0,
      },
      collection.views,
    );
    for (const result of results) {
      this.metrics.recordRender(collection.alias, result.spec.name, result.report);
      const forwarder = this.forwarders.get(`${collection.id}\n${result.spec.name}`)?.forwarder;
      if (forwarder !== undefined && result.changed) {
        const options = { name: 'feedhub indicator' };
        const added = (result.addedEntries ?? []).map((entry) =>
          formatCefLine(entry, { ...options, name: 'Indicator added' }),
        );
        const removed = (result.removedEntries ?? []).map((entry) =>
          formatCefLine(entry, { ...options, name: 'Indicator removed' }),
        );
        if (added.length > 0) forwarder.send(added, 'add');
        if (removed.length > 0) forwarder.send(removed, 'remove');
      }
    }
    if (results.some((result) => result.changed)) {
      for (const listener of this.changeListeners) listener();
    }
    for (const failure of failures) {
      this.metrics.recordRender(collection.alias, failure.spec.name, undefined);
      this.logger.error(
        { err: failure.error, collection: collection.alias, view: failure.spec.name },
        'view not rendered; the previous render stays in service',
      );
    }
    this.logger.info(
      {
        collection: collection.alias,
        durationMs: Math.round(performance.now() - started),
        views: results.map((result) => ({
          name: result.spec.name,
          entries: result.report.entries,
          added: result.report.added,
          removed: result.report.removed,
          cut: result.report.cut,
          dropped: result.report.dropped,
        })),
      },
      'views rendered',
    );
  }
}
