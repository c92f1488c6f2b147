/** The dependencies of the REST API, handed in by the composition root. */
import type { Logger } from 'pino';

import type { CollectionConfig } from '../app/config.js';
import type { Authenticator, PrincipalDirectory } from '../auth/index.js';
import type { AuditInput, RemoveSightingResult, Store } from '../store/index.js';

/** The collection definitions in force; see `src/app/catalog.ts`. */
export interface Definitions {
  /** The collections directory: relative paths resolve against it, and paths the API adds must stay inside it. */
  readonly baseDir: string;
  collections(): CollectionConfig[];
  /** By alias or id. */
  find(aliasOrId: string): CollectionConfig | undefined;
  /** Checks and resolves a definition; problems name the field and the fix. */
  resolve(id: string, document: unknown, problems: string[]): CollectionConfig | undefined;
  /** Reloads the definitions after this process changed one, so the change is in force on return. */
  refresh(): Promise<unknown>;
}

/** A scheduled poll as the jobs endpoint shows it. */
export interface JobInfo {
  collectionId: string;
  sourceId: string;
  intervalSeconds: number;
  nextRunAt: Date | null;
  lastRunAt?: Date;
  lastFinishedAt?: Date;
  failedAt?: Date;
  failReason?: string;
  locked: boolean;
}

export interface ActiveIndicator {
  valueType: string;
  value: string;
  indicatorId: string;
  firstSeen: number;
  lastSeen: number;
  sources: string[];
  confidence: number;
  tlp?: string;
  labels?: string[];
}

/** Work that the API starts: polls, renders, explanations. */
export interface Operations {
  /** Polls a source now, in this process, renders the collection's views, and returns the run report. */
  runSource(collectionId: string, sourceId: string): Promise<Record<string, unknown>>;
  /** Renders a collection's views now and resolves when they are stored. */
  renderViews(collectionId: string): Promise<void>;
  /** Polls the collection's manual entries, so that a change reaches the views and TAXII. */
  applyManualEntries(collectionId: string): Promise<void>;
  /**
   * Withdraws the value of a removed manual entry, revoking its indicator
   * when no other source lists it, then polls the manual entries as
   * `applyManualEntries` does. Returns what the store did.
   */
  removeManualValue(
    collection: CollectionConfig,
    valueType: string,
    value: string,
    at: number,
  ): Promise<RemoveSightingResult>;
  listJobs(): Promise<JobInfo[]>;
  /** Checks a canonical value against the guards and allow-list. Returns undefined to keep it, else the reason it is kept out. */
  judge(
    collection: CollectionConfig,
    valueType: string,
    value: string,
  ): Promise<string | undefined>;
  /** The active values of a collection with their merged confidence, TLP and labels, ordered by type then value. */
  activeIndicators(collection: CollectionConfig, valueTypes?: string[]): Promise<ActiveIndicator[]>;
  explain(collection: CollectionConfig, value: string): Promise<Record<string, unknown>>;
}

export interface ApiDeps {
  store: Store;
  logger: Logger;
  authenticator: Authenticator;
  directory: PrincipalDirectory;
  definitions: Definitions;
  operations: Operations;
  publicUrl: string;
  /** Check every response against its schema (tests). */
  checkResponses?: boolean;
  /** Clock in micros, for tests. */
  now?: () => number;
}

/** Appends an audit record for a change made through the API. */
export function audit(
  deps: ApiDeps,
  entry: Omit<AuditInput, 'at'> & { at?: number },
): Promise<unknown> {
  return deps.store.appendAudit({ ...entry, at: entry.at ?? nowMicros(deps) });
}

export function nowMicros(deps: Pick<ApiDeps, 'now'>): number {
  return deps.now?.() ?? Date.now() * 1000;
}

export function isoMicros(micros: number | undefined): string | undefined {
  return micros === undefined ? undefined : new Date(Math.floor(micros / 1000)).toISOString();
}
