import { randomUUID } from 'node:crypto';

import {
  computeJobState,
  datefields,
  toJobId,
  type AgendaBackend,
  type JobId,
  type JobParameters,
  type JobRepository,
  type JobRepositoryOptions,
  type JobsOverview,
  type JobsQueryOptions,
  type JobsResult,
  type JobWithState,
  type RemoveJobsOptions,
} from 'agenda';
import type Database from 'better-sqlite3';

/**
 * A job as stored: every parameter except `_id` in `doc` (JSON, dates as
 * epoch milliseconds), with the fields that lookups filter or sort on copied
 * into columns by `writeJob`.
 */
type JobRow = { id: string; doc: string };

type StoredParameters = JobParameters & { _id: JobId };

/** Fields that only the job processor writes; `saveJob` keeps their stored values. */
const PROCESSOR_FIELDS = [
  'lockedAt',
  'lastRunAt',
  'lastFinishedAt',
  'failedAt',
  'failCount',
  'failReason',
  'progress',
] as const;

/**
 * Agenda's job storage in the store's SQLite file (table `agenda_jobs`).
 *
 * Every write that reads first (locking, upserts) runs in a `BEGIN IMMEDIATE`
 * transaction, so two processes on the same file never lock the same job:
 * the second one waits for the first to commit and then finds the job locked.
 *
 * Differences from Agenda's MongoDB repository:
 * - `unique` constraints match jobs saved with an equal `unique` object and
 *   the same name, not any job whose fields happen to match the query.
 * - `saveJob` keeps the stored lock and run fields of an existing job (Agenda
 *   never sends them from `Job.save()`), so re-saving a job that another
 *   process is running does not unlock it.
 */
export class SqliteJobRepository implements JobRepository {
  private readonly statements: ReturnType<typeof prepare>;

  constructor(private readonly db: Database.Database) {
    this.statements = prepare(db);
  }

  async connect(): Promise<void> {
    const table = this.db
      .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'agenda_jobs'")
      .get();
    if (table === undefined) {
      throw new Error('Table agenda_jobs is missing: call init() on the SQLite store first');
    }
  }

  async queryJobs(options: JobsQueryOptions = {}): Promise<JobsResult> {
    const now = new Date();
    const { state, skip = 0, limit = 0, includeDisabled = true } = options;
    let jobs: JobWithState[] = this.allJobs()
      .filter((job) => matchesQuery(job, options))
      .filter((job) => includeDisabled || job.disabled !== true)
      .map((job) => ({ ...job, state: computeJobState(job, now) }));

    if (state === 'paused') jobs = jobs.filter((job) => job.disabled === true);
    else if (state !== undefined) jobs = jobs.filter((job) => job.state === state);

    jobs.sort(comparatorFor(options.sort));
    const total = jobs.length;
    const end = limit > 0 ? skip + limit : undefined;
    return { jobs: jobs.slice(skip, end), total };
  }

  async getJobsOverview(): Promise<JobsOverview[]> {
    const now = new Date();
    const byName = new Map<string, JobsOverview>();
    for (const job of this.allJobs()) {
      let overview = byName.get(job.name);
      if (overview === undefined) {
        overview = {
          name: job.name,
          total: 0,
          running: 0,
          scheduled: 0,
          queued: 0,
          completed: 0,
          failed: 0,
          repeating: 0,
          paused: 0,
        };
        byName.set(job.name, overview);
      }
      overview.total++;
      overview[computeJobState(job, now)]++;
      if (job.disabled === true) overview.paused++;
    }
    return [...byName.values()];
  }

  async getDistinctJobNames(): Promise<string[]> {
    return this.statements.distinctNames.all().map((row) => row.name);
  }

  async getJobById(id: string): Promise<JobParameters | null> {
    return this.readJob(id) ?? null;
  }

  async getQueueSize(): Promise<number> {
    return this.statements.queueSize.get(Date.now())?.n ?? 0;
  }

  async removeJobs(options: RemoveJobsOptions): Promise<number> {
    const matches = predicateFor(options);
    if (matches === undefined) return 0;
    return this.db
      .transaction(() => {
        let removed = 0;
        for (const job of this.allJobs()) {
          if (matches(job)) removed += this.statements.remove.run(job._id).changes;
        }
        return removed;
      })
      .immediate();
  }

  async saveJob<DATA = unknown>(
    job: JobParameters<DATA>,
    options: JobRepositoryOptions | undefined,
  ): Promise<JobParameters<DATA>> {
    const saved = this.db
      .transaction(() => this.saveJobInTransaction(job as JobParameters, options))
      .immediate();
    return saved as JobParameters<DATA>;
  }

  async saveJobState(job: JobParameters, options: JobRepositoryOptions | undefined): Promise<void> {
    const id = job._id;
    if (id === undefined) throw new Error('Cannot save job state without job ID');

    this.db
      .transaction(() => {
        const stored = this.readJob(id);
        if (stored === undefined || stored.name !== job.name) {
          throw new Error(
            `job ${id} (name: ${job.name}) cannot be updated in the database, maybe it does not exist anymore?`,
          );
        }
        this.writeJob({
          ...stored,
          lockedAt: job.lockedAt,
          nextRunAt: job.nextRunAt ?? null,
          lastRunAt: job.lastRunAt,
          progress: job.progress,
          failReason: job.failReason,
          failCount: job.failCount,
          failedAt: job.failedAt,
          lastFinishedAt: job.lastFinishedAt,
          lastModifiedBy: options?.lastModifiedBy,
        });
      })
      .immediate();
  }

  async lockJob(
    job: JobParameters,
    options: JobRepositoryOptions | undefined,
  ): Promise<JobParameters | undefined> {
    const id = job._id;
    if (id === undefined) return undefined;

    return this.db
      .transaction(() => {
        const stored = this.readJob(id);
        if (
          stored === undefined ||
          stored.name !== job.name ||
          stored.lockedAt !== undefined ||
          stored.disabled === true ||
          timeOf(stored.nextRunAt) !== timeOf(job.nextRunAt)
        ) {
          return undefined;
        }
        const locked = { ...stored, lockedAt: new Date(), lastModifiedBy: options?.lastModifiedBy };
        this.writeJob(locked);
        return locked;
      })
      .immediate();
  }

  async unlockJob(job: JobParameters): Promise<void> {
    if (job._id === undefined) return;
    // A job whose nextRunAt is null is running a single time; it stays locked.
    this.db
      .transaction(() => {
        const stored = this.readJob(job._id as string);
        if (stored === undefined || stored.nextRunAt === null) return;
        this.writeJob({ ...stored, lockedAt: undefined });
      })
      .immediate();
  }

  async unlockJobs(jobIds: (JobId | string)[]): Promise<void> {
    this.db
      .transaction(() => {
        for (const id of jobIds) {
          const stored = this.readJob(String(id));
          if (stored !== undefined) this.writeJob({ ...stored, lockedAt: undefined });
        }
      })
      .immediate();
  }

  async getNextJobToRun(
    jobName: string,
    nextScanAt: Date,
    lockDeadline: Date,
    now: Date | undefined,
    options: JobRepositoryOptions | undefined,
  ): Promise<JobParameters | undefined> {
    return this.db
      .transaction(() => {
        const row = this.statements.nextToRun.get(
          jobName,
          nextScanAt.getTime(),
          lockDeadline.getTime(),
        );
        if (row === undefined) return undefined;
        const stored = parseJob(row);
        const locked = {
          ...stored,
          lockedAt: now ?? new Date(),
          lastModifiedBy: options?.lastModifiedBy,
        };
        this.writeJob(locked);
        return locked;
      })
      .immediate();
  }

  async disableJobs(options: RemoveJobsOptions): Promise<number> {
    return this.setDisabled(options, true);
  }

  async enableJobs(options: RemoveJobsOptions): Promise<number> {
    return this.setDisabled(options, false);
  }

  async purgeAllJobs(): Promise<number> {
    return this.statements.purge.run().changes;
  }

  private setDisabled(options: RemoveJobsOptions, disabled: boolean): number {
    const matches = predicateFor(options);
    if (matches === undefined) return 0;
    return this.db
      .transaction(() => {
        let changed = 0;
        for (const job of this.allJobs()) {
          if (!matches(job) || (job.disabled === true) === disabled) continue;
          this.writeJob({ ...job, disabled });
          changed++;
        }
        return changed;
      })
      .immediate();
  }

  /** Implements `saveJob` inside a write transaction, following Agenda's MongoDB repository. */
  private saveJobInTransaction(
    job: JobParameters,
    options: JobRepositoryOptions | undefined,
  ): JobParameters {
    const { _id, unique, uniqueOpts, ...props } = job;
    const lastModifiedBy = options?.lastModifiedBy;
    const now = new Date();

    if (_id !== undefined) {
      const stored = this.readJob(_id);
      // A job removed meanwhile is returned unchanged, as Agenda expects.
      if (stored === undefined || stored.name !== props.name) return job;
      return this.writeJob(mergeSaved(stored, props, lastModifiedBy));
    }

    if (props.type === 'single') {
      const row = this.statements.single.get(props.name);
      if (row === undefined) return this.insertJob({ ...props, lastModifiedBy });
      const stored = parseJob(row);
      const merged = mergeSaved(stored, props, lastModifiedBy);
      // A due nextRunAt only applies to a new job, so that restarting a
      // process does not move an existing schedule.
      if (props.nextRunAt !== null && props.nextRunAt <= now) merged.nextRunAt = stored.nextRunAt;
      return this.writeJob(merged);
    }

    if (unique !== undefined) {
      const uniqueKey = uniqueKeyOf(props.name, unique);
      const row = this.statements.byUniqueKey.get(uniqueKey);
      const debounce = uniqueOpts?.debounce;

      if (row === undefined) {
        const fresh: JobParameters = { ...props, unique, uniqueOpts, lastModifiedBy };
        if (debounce !== undefined) {
          fresh.debounceStartedAt = now;
          if (debounce.strategy !== 'leading')
            fresh.nextRunAt = new Date(now.getTime() + debounce.delay);
        }
        return this.insertJob(fresh);
      }

      const stored = parseJob(row);
      if (uniqueOpts?.insertOnly === true && debounce === undefined) return stored;
      const merged = { ...mergeSaved(stored, props, lastModifiedBy), unique, uniqueOpts };

      if (debounce !== undefined) {
        const startedAt = stored.debounceStartedAt ?? now;
        if (debounce.strategy === 'leading') {
          merged.nextRunAt = stored.nextRunAt;
          merged.debounceStartedAt = startedAt;
        } else if (
          debounce.maxWait !== undefined &&
          now.getTime() - startedAt.getTime() >= debounce.maxWait
        ) {
          merged.nextRunAt = now;
          merged.debounceStartedAt = undefined;
        } else {
          merged.nextRunAt = new Date(now.getTime() + debounce.delay);
          merged.debounceStartedAt = startedAt;
        }
      }
      return this.writeJob(merged);
    }

    return this.insertJob({ ...props, lastModifiedBy });
  }

  private insertJob(job: JobParameters): StoredParameters {
    return this.writeJob({ ...job, _id: toJobId(randomUUID()) });
  }

  /** Inserts or replaces the row of `job` and returns it. */
  private writeJob(job: StoredParameters): StoredParameters {
    const doc: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(job)) {
      if (key === '_id' || value === undefined) continue;
      doc[key] = value instanceof Date ? value.getTime() : value;
    }
    this.statements.write.run({
      id: job._id,
      name: job.name,
      type: job.type,
      priority: job.priority,
      nextRunAt: job.nextRunAt?.getTime() ?? null,
      lockedAt: job.lockedAt?.getTime() ?? null,
      disabled: job.disabled === true ? 1 : 0,
      uniqueKey: job.unique === undefined ? null : uniqueKeyOf(job.name, job.unique),
      doc: JSON.stringify(doc),
    });
    return job;
  }

  private readJob(id: string): StoredParameters | undefined {
    const row = this.statements.byId.get(id);
    return row === undefined ? undefined : parseJob(row);
  }

  private allJobs(): StoredParameters[] {
    return this.statements.all.all().map(parseJob);
  }
}

/** Agenda backend on the SQLite file of a store; the store owns the connection. */
export class SqliteJobBackend implements AgendaBackend {
  readonly name = 'SQLite';
  readonly repository: SqliteJobRepository;
  readonly ownsConnection = false;

  constructor(db: Database.Database) {
    this.repository = new SqliteJobRepository(db);
  }

  async connect(): Promise<void> {
    await this.repository.connect();
  }

  async disconnect(): Promise<void> {}
}

function prepare(db: Database.Database) {
  return {
    byId: db.prepare<[string], JobRow>('SELECT id, doc FROM agenda_jobs WHERE id = ?'),
    all: db.prepare<[], JobRow>('SELECT id, doc FROM agenda_jobs'),
    single: db.prepare<[string], JobRow>(
      "SELECT id, doc FROM agenda_jobs WHERE name = ? AND type = 'single'",
    ),
    byUniqueKey: db.prepare<[string], JobRow>(
      'SELECT id, doc FROM agenda_jobs WHERE unique_key = ?',
    ),
    distinctNames: db.prepare<[], { name: string }>('SELECT DISTINCT name FROM agenda_jobs'),
    queueSize: db.prepare<[number], { n: number }>(
      'SELECT count(*) AS n FROM agenda_jobs WHERE next_run_at_ms < ?',
    ),
    // Due and unlocked, or locked longer ago than the lock lifetime; earliest
    // first, then highest priority, as Agenda's MongoDB repository sorts.
    nextToRun: db.prepare<[string, number, number], JobRow>(
      `SELECT id, doc FROM agenda_jobs
       WHERE name = ? AND disabled = 0
         AND ((locked_at_ms IS NULL AND next_run_at_ms <= ?) OR locked_at_ms <= ?)
       ORDER BY next_run_at_ms ASC, priority DESC
       LIMIT 1`,
    ),
    write: db.prepare(
      `INSERT INTO agenda_jobs (id, name, type, priority, next_run_at_ms, locked_at_ms, disabled, unique_key, doc)
       VALUES (:id, :name, :type, :priority, :nextRunAt, :lockedAt, :disabled, :uniqueKey, :doc)
       ON CONFLICT (id) DO UPDATE SET name = excluded.name, type = excluded.type,
         priority = excluded.priority, next_run_at_ms = excluded.next_run_at_ms,
         locked_at_ms = excluded.locked_at_ms, disabled = excluded.disabled,
         unique_key = excluded.unique_key, doc = excluded.doc`,
    ),
    remove: db.prepare<[string]>('DELETE FROM agenda_jobs WHERE id = ?'),
    purge: db.prepare('DELETE FROM agenda_jobs'),
  };
}

function parseJob(row: JobRow): StoredParameters {
  const doc = JSON.parse(row.doc) as Record<string, unknown>;
  for (const field of datefields) {
    const value = doc[field];
    if (typeof value === 'number') doc[field] = new Date(value);
  }
  if (doc.nextRunAt === undefined) doc.nextRunAt = null;
  return { ...(doc as unknown as JobParameters), _id: toJobId(row.id) };
}

/** Applies the fields of a `Job.save()` to a stored job, keeping the processor's fields. */
function mergeSaved(
  stored: StoredParameters,
  props: Omit<JobParameters, '_id' | 'unique' | 'uniqueOpts'>,
  lastModifiedBy: string | undefined,
): StoredParameters {
  const merged: StoredParameters = { ...stored, ...props, _id: stored._id, lastModifiedBy };
  for (const field of PROCESSOR_FIELDS) {
    if (props[field] === undefined)
      (merged as unknown as Record<string, unknown>)[field] = stored[field];
  }
  return merged;
}

/** Serialises a job name and `unique` object with the entries sorted by key, so equal objects give equal text. */
function uniqueKeyOf(name: string, unique: Record<string, unknown>): string {
  const entries = Object.entries(unique).sort(([a], [b]) => compareText(a, b));
  return JSON.stringify([name, entries]);
}

function compareText(a: string, b: string): number {
  if (a < b) return -1;
  if (a > b) return 1;
  return 0;
}

function timeOf(date: Date | null | undefined): number | null {
  return date instanceof Date ? date.getTime() : null;
}

/** Tests whether `data` contains every field of `filter` with an equal value. Nested objects match partially. */
function matchesData(data: unknown, filter: unknown): boolean {
  if (filter !== null && typeof filter === 'object' && !Array.isArray(filter)) {
    if (data === null || typeof data !== 'object') return false;
    return Object.entries(filter).every(([key, value]) =>
      matchesData((data as Record<string, unknown>)[key], value),
    );
  }
  return JSON.stringify(data) === JSON.stringify(filter);
}

function matchesQuery(job: StoredParameters, options: JobsQueryOptions): boolean {
  const { name, names, id, ids, search, data } = options;
  if (search !== undefined && search.length > 0) {
    if (!job.name.toLowerCase().includes(search.toLowerCase())) return false;
  } else if (name !== undefined && name !== '') {
    if (job.name !== name) return false;
  } else if (names !== undefined && names.length > 0) {
    if (!names.includes(job.name)) return false;
  }
  if (id !== undefined && id !== '') {
    if (job._id !== id) return false;
  } else if (ids !== undefined && ids.length > 0) {
    if (!ids.includes(job._id)) return false;
  }
  return data === undefined || matchesData(job.data, data);
}

/** Returns the filter of `options`, or undefined when it has no criteria (matching nothing). */
function predicateFor(
  options: RemoveJobsOptions,
): ((job: StoredParameters) => boolean) | undefined {
  const tests: ((job: StoredParameters) => boolean)[] = [];
  if (options.id !== undefined && options.id !== '') {
    const id = String(options.id);
    tests.push((job) => job._id === id);
  } else if (options.ids !== undefined && options.ids.length > 0) {
    const ids = new Set(options.ids.map(String));
    tests.push((job) => ids.has(job._id));
  }
  if (options.name !== undefined && options.name !== '') {
    const name = options.name;
    tests.push((job) => job.name === name);
  } else if (options.names !== undefined && options.names.length > 0) {
    const names = new Set(options.names);
    tests.push((job) => names.has(job.name));
  } else if (options.notNames !== undefined && options.notNames.length > 0) {
    const notNames = new Set(options.notNames);
    tests.push((job) => !notNames.has(job.name));
  }
  if (options.data !== undefined) {
    const data = options.data;
    tests.push((job) => matchesData(job.data, data));
  }
  if (tests.length === 0) return undefined;
  return (job) => tests.every((test) => test(job));
}

type SortKey = keyof NonNullable<JobsQueryOptions['sort']>;

/** Sorts like Agenda's MongoDB repository; the default is nextRunAt then lastRunAt, newest first. */
function comparatorFor(
  sort: JobsQueryOptions['sort'],
): (a: JobWithState, b: JobWithState) => number {
  const keys: [SortKey, 'asc' | 'desc'][] = [];
  for (const key of [
    'nextRunAt',
    'lastRunAt',
    'lastFinishedAt',
    'priority',
    'name',
    'data',
  ] as const) {
    const direction = sort?.[key];
    if (direction !== undefined) keys.push([key, direction]);
  }
  if (keys.length === 0) {
    keys.push(['nextRunAt', 'desc'], ['lastRunAt', 'desc']);
  }
  return (a, b) => {
    for (const [key, direction] of keys) {
      const order = compareValues(a[key], b[key]);
      if (order !== 0) return direction === 'asc' ? order : -order;
    }
    return 0;
  };
}

/** Orders missing values first, as MongoDB sorts null before any value. */
function compareValues(a: unknown, b: unknown): number {
  const left = a instanceof Date ? a.getTime() : a;
  const right = b instanceof Date ? b.getTime() : b;
  if (left === right) return 0;
  if (left === undefined || left === null) return -1;
  if (right === undefined || right === null) return 1;
  if (typeof left === 'number' && typeof right === 'number') return left - right;
  const leftText = typeof left === 'string' ? left : JSON.stringify(left);
  const rightText = typeof right === 'string' ? right : JSON.stringify(right);
  return compareText(leftText, rightText);
}
