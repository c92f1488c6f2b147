/**
 * The collection definitions in force. The store is their source of truth:
 * the REST API edits them there, and every process reloads them from it. The
 * YAML files of the collections directory seed a fresh store, and keep
 * updating a definition for as long as no one has changed it through the API.
 */
import { createHash } from 'node:crypto';

import type { Logger } from 'pino';

import { RecordConflictError, type AdminRecord, type Store } from '../store/index.js';
import { resolveCollectionDocument, type CollectionConfig } from './config.js';

/** The origin of a stored definition. A file definition follows its file until the API changes it. */
export type DefinitionOrigin =
  { kind: 'file'; file: string; digest: string } | { kind: 'api'; by: string };

/** The body of a `collection` record. */
export interface CollectionRecordBody {
  document: Record<string, unknown>;
  origin: DefinitionOrigin;
}

export interface CatalogChange {
  kind: 'added' | 'updated' | 'removed';
  id: string;
  /** The definition now in force; absent when removed. */
  collection?: CollectionConfig;
  /** The definition in force before; absent when added. */
  previous?: CollectionConfig;
}

export interface CatalogOptions {
  store: Store;
  logger: Logger;
  /** Relative paths in stored definitions resolve against this folder: the collections directory. */
  baseDir: string;
  env: NodeJS.ProcessEnv;
}

interface Entry {
  revision: number;
  config: CollectionConfig;
}

const PAGE = 200;

/** Returns a digest of a definition, stable across key order of equal documents. */
export function documentDigest(document: unknown): string {
  return createHash('sha256').update(stableJson(document)).digest('base64url');
}

function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const keys = Object.keys(value).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${stableJson((value as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

export class Catalog {
  private entries = new Map<string, Entry>();
  private readonly listeners: ((change: CatalogChange) => void | Promise<void>)[] = [];
  private timer: NodeJS.Timeout | undefined;
  private refreshing: Promise<CatalogChange[]> | undefined;

  constructor(private readonly options: CatalogOptions) {}

  /** The folder that relative paths of stored definitions resolve against. */
  get baseDir(): string {
    return this.options.baseDir;
  }

  /** Returns the definitions in force, ordered by alias. */
  collections(): CollectionConfig[] {
    const configs = [...this.entries.values()].map((entry) => entry.config);
    return configs.sort((a, b) => a.alias.localeCompare(b.alias, 'en'));
  }

  get(id: string): CollectionConfig | undefined {
    return this.entries.get(id)?.config;
  }

  /** Finds a collection by alias or by id. */
  find(aliasOrId: string): CollectionConfig | undefined {
    const byId = this.entries.get(aliasOrId);
    if (byId) return byId.config;
    for (const entry of this.entries.values()) {
      if (entry.config.alias === aliasOrId) return entry.config;
    }
    return undefined;
  }

  /** Calls `listener` for each change that a refresh finds, in order. A refresh waits for its listeners. */
  onChange(listener: (change: CatalogChange) => void | Promise<void>): void {
    this.listeners.push(listener);
  }

  /**
   * Stores the definitions of the collection files. A collection missing from
   * the store is created, and one that still follows its file is updated when
   * the file changed. One changed through the API is left alone, with a warning.
   */
  async seed(files: readonly CollectionConfig[]): Promise<void> {
    const { store, logger } = this.options;
    for (const collection of files) {
      const digest = documentDigest(collection.document);
      const body: CollectionRecordBody = {
        document: collection.document,
        origin: { kind: 'file', file: collection.file, digest },
      };
      const stored = await store.getRecord('collection', collection.id);
      const at = Date.now() * 1000;
      if (stored === undefined) {
        const clash = await this.storedAlias(collection.alias);
        if (clash !== undefined) {
          logger.error(
            { file: collection.file, alias: collection.alias, storedId: clash },
            'collection file not loaded: its alias is used by another stored collection; rename one of them',
          );
          continue;
        }
        try {
          await store.putRecord(
            'collection',
            collection.id,
            { ...body },
            {
              at,
              expectedRevision: 'absent',
            },
          );
        } catch (error) {
          // Another process starting at the same time seeded it first.
          if (error instanceof RecordConflictError) continue;
          throw error;
        }
        await store.appendAudit({
          at,
          actor: 'system',
          action: 'collection.seed',
          targetKind: 'collection',
          targetId: collection.id,
          collectionId: collection.id,
          details: { file: collection.file },
        });
        continue;
      }
      const origin = (stored.body as unknown as CollectionRecordBody).origin;
      if (origin?.kind === 'file') {
        if (origin.digest === digest) continue;
        try {
          await store.putRecord(
            'collection',
            collection.id,
            { ...body },
            {
              at,
              expectedRevision: stored.revision,
            },
          );
        } catch (error) {
          if (error instanceof RecordConflictError) continue;
          throw error;
        }
        await store.appendAudit({
          at,
          actor: 'system',
          action: 'collection.seed',
          targetKind: 'collection',
          targetId: collection.id,
          collectionId: collection.id,
          details: { file: collection.file, revision: stored.revision + 1 },
        });
      } else if (
        documentDigest((stored.body as unknown as CollectionRecordBody).document) !== digest
      ) {
        logger.warn(
          { file: collection.file, id: collection.id },
          'collection file differs from the definition changed through the API; the stored definition stays in force (import the file through the API to apply it)',
        );
      }
    }
  }

  /** Resolves a stored definition. Problems name the collection by its alias. */
  resolve(id: string, document: unknown, problems: string[]): CollectionConfig | undefined {
    const alias =
      document !== null && typeof document === 'object' && 'alias' in document
        ? String((document as { alias: unknown }).alias)
        : id;
    return resolveCollectionDocument(
      document,
      `collection ${JSON.stringify(alias)}`,
      this.options.baseDir,
      this.options.env,
      problems,
    );
  }

  /**
   * Reads every stored definition and brings the catalogue in step, then
   * calls the listeners with each change. A definition that no longer resolves
   * (a missing file or environment variable) keeps its last good form in
   * force and is logged. Concurrent calls share one pass.
   */
  refresh(): Promise<CatalogChange[]> {
    this.refreshing ??= this.load().finally(() => {
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  /** Refreshes every `intervalMs`, so that changes made on other processes arrive. */
  startPolling(intervalMs: number): void {
    this.timer = setInterval(() => {
      this.refresh().catch((error: unknown) =>
        this.options.logger.warn(
          { err: error },
          'reloading the collection definitions failed; the previous ones stay in force',
        ),
      );
    }, intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  private async load(): Promise<CatalogChange[]> {
    const records = await this.allRecords();
    const changes: CatalogChange[] = [];
    const next = new Map<string, Entry>();
    for (const record of records) {
      const previous = this.entries.get(record.id);
      if (previous !== undefined && previous.revision === record.revision) {
        next.set(record.id, previous);
        continue;
      }
      const problems: string[] = [];
      const body = record.body as unknown as CollectionRecordBody;
      const config = this.resolve(record.id, body.document, problems);
      if (config === undefined) {
        this.options.logger.error(
          { id: record.id, revision: record.revision, problems },
          previous === undefined
            ? 'stored collection definition does not resolve; the collection stays unloaded'
            : 'stored collection definition does not resolve; its previous revision stays in force',
        );
        if (previous !== undefined) next.set(record.id, previous);
        continue;
      }
      next.set(record.id, { revision: record.revision, config });
      changes.push(
        previous === undefined
          ? { kind: 'added', id: record.id, collection: config }
          : { kind: 'updated', id: record.id, collection: config, previous: previous.config },
      );
    }
    for (const id of this.entries.keys()) {
      if (!next.has(id)) changes.push({ kind: 'removed', id });
    }
    this.entries = next;
    for (const change of changes) {
      for (const listener of this.listeners) {
        try {
          await listener(change);
        } catch (error) {
          this.options.logger.error(
            { err: error, id: change.id, change: change.kind },
            'collection change not applied everywhere',
          );
        }
      }
    }
    return changes;
  }

  private async allRecords(): Promise<AdminRecord[]> {
    const records: AdminRecord[] = [];
    let after: string | undefined;
    for (;;) {
      const page = await this.options.store.listRecords('collection', {
        limit: PAGE,
        ...(after === undefined ? {} : { after }),
      });
      records.push(...page.items);
      if (!page.more || page.items.length === 0) return records;
      after = page.items[page.items.length - 1]!.id;
    }
  }

  private async storedAlias(alias: string): Promise<string | undefined> {
    for (const record of await this.allRecords()) {
      const document = (record.body as unknown as CollectionRecordBody).document;
      if (document?.alias === alias) return record.id;
    }
    return undefined;
  }
}
