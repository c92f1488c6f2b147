import { hostname } from 'node:os';

import { Agenda, type AgendaBackend, type Job } from 'agenda';
import type { Logger } from 'pino';

/** Agenda job name of source polls. */
export const POLL_JOB = 'poll-source';

/** Agenda job name of the aging pass over every collection. */
export const AGING_JOB = 'age-collections';

/** Data of a poll job; (collectionId, sourceId) identifies the job. */
export interface PollJobData {
  collectionId: string;
  sourceId: string;
}

export type PollHandler = (data: PollJobData) => Promise<void>;

export interface SchedulerOptions {
  /** Job storage: `store.jobBackend()` of the SQLite store, or a MongoDB backend. */
  backend: AgendaBackend;
  logger: Logger;
  /** How often this process looks for due jobs, in ms. Default 5000. */
  processEveryMs?: number;
  /**
   * How long a job may hold its lock without renewal before another process
   * takes it over, in ms. Running polls renew their lock every third of
   * this. Default 600000 (10 minutes).
   *
   * NOTE: Agenda 6.2.6 checks a running job's lock every `lockLifetimeMs / 2`
   * and leaves that timer pending after the job ends, so after `stop()` the
   * process may stay alive that long unless it exits explicitly.
   */
  lockLifetimeMs?: number;
  /** How long `stop()` waits for running polls before unlocking them, in ms. Default 30000. */
  stopTimeoutMs?: number;
  /** Maximum number of polls that run at once in this process. Default 4. */
  concurrency?: number;
  /** Name of this process in job records (`lastModifiedBy`). Default `host:pid`. */
  name?: string;
}

/** A scheduled poll as stored. */
export interface PollJobInfo extends PollJobData {
  jobId: string;
  intervalSeconds: number;
  /** Null while a run is in progress or when the job will not run again. */
  nextRunAt: Date | null;
  lastRunAt?: Date;
  lastFinishedAt?: Date;
  failedAt?: Date;
  failReason?: string;
  /** Whether a process holds the job's lock, i.e. runs it or is about to. */
  locked: boolean;
}

export interface Scheduler {
  /** Sets the function that runs a poll. Call before `start()`. */
  definePoll(handler: PollHandler): void;
  /** Sets the function of the aging pass. Call before `start()`. */
  defineAging(handler: () => Promise<void>): void;
  /** Runs the aging pass every `intervalSeconds`, once across all processes sharing the store. */
  scheduleAging(intervalSeconds: number): Promise<void>;
  /**
   * Creates or updates the recurring poll of a source. A new poll, or one
   * whose interval changed or whose last run is older than the interval, is
   * due at once; a poll that ran within its interval keeps its schedule.
   * Then it runs every `intervalSeconds` after each run starts.
   */
  schedulePoll(collectionId: string, sourceId: string, intervalSeconds: number): Promise<void>;
  /** Removes the polls of every source not in `keys`; returns how many were removed. */
  removePollsExcept(keys: PollJobData[]): Promise<number>;
  /** Makes the recurring poll of a source due now; a worker of any process runs it once. */
  runPollSoon(collectionId: string, sourceId: string, intervalSeconds: number): Promise<void>;
  listPolls(): Promise<PollJobInfo[]>;
  /** Starts taking due jobs. */
  start(): Promise<void>;
  /**
   * Stops taking jobs and waits up to `stopTimeoutMs` for running polls to
   * finish. Polls still running then are unlocked so that another process
   * can take them. Safe to call more than once.
   */
  stop(): Promise<void>;
}

export function createScheduler(options: SchedulerOptions): Scheduler {
  return new AgendaScheduler(options);
}

class AgendaScheduler implements Scheduler {
  private readonly agenda: Agenda;
  private readonly logger: Logger;
  private readonly lockLifetimeMs: number;
  private readonly stopTimeoutMs: number;
  private readonly concurrency: number;
  /**
   * Runs started by this process whose job record is not saved back yet,
   * counted by job id. On a server without atomic updates (FerretDB) two
   * scans can lock one job at once, so it can run twice.
   */
  private readonly running = new Map<string, number>();
  private readonly runningChanged = new Set<() => void>();
  /**
   * Schedule changes requested while the poll of their source ran, by
   * source. Saving them at once would be undone by the run's final save of
   * its job, and on MongoDB would also clear the run's lock.
   */
  private readonly deferred = new Map<string, () => Promise<void>>();
  private deferTimer: NodeJS.Timeout | undefined;
  private applyingDeferred = false;
  private readonly processEveryMs: number;
  private started = false;
  private stopping: Promise<void> | undefined;

  constructor(options: SchedulerOptions) {
    this.logger = options.logger;
    this.lockLifetimeMs = positive('lockLifetimeMs', options.lockLifetimeMs ?? 600_000);
    this.stopTimeoutMs = positive('stopTimeoutMs', options.stopTimeoutMs ?? 30_000);
    this.concurrency = positive('concurrency', options.concurrency ?? 4);
    this.processEveryMs = positive('processEveryMs', options.processEveryMs ?? 5000);
    this.agenda = new Agenda({
      backend: options.backend,
      name: options.name ?? `${hostname()}:${process.pid}`,
      processEvery: this.processEveryMs,
      defaultLockLifetime: this.lockLifetimeMs,
      maxConcurrency: this.concurrency,
    });

    this.agenda.on('error', (err: unknown) => {
      this.logger.error({ err }, 'job scheduler error');
    });
    // Agenda emits `complete` after it has saved the job's state and lock.
    this.agenda.on('complete', (job: Job) => {
      const jobId = String(job.attrs._id);
      const runs = this.running.get(jobId);
      if (runs === undefined) return;
      if (runs > 1) this.running.set(jobId, runs - 1);
      else this.running.delete(jobId);
      for (const notify of this.runningChanged) notify();
    });
  }

  definePoll(handler: PollHandler): void {
    this.agenda.define(POLL_JOB, (job: Job) => this.runPoll(job, handler), {
      concurrency: this.concurrency,
      lockLifetime: this.lockLifetimeMs,
    });
  }

  defineAging(handler: () => Promise<void>): void {
    this.agenda.define(
      AGING_JOB,
      async (job: Job) => {
        const jobId = String(job.attrs._id);
        const startedAt = performance.now();
        this.addRunning(jobId);
        try {
          await handler();
          this.logger.info(
            { jobId, durationMs: Math.round(performance.now() - startedAt) },
            'aging job finished',
          );
        } catch (err) {
          this.logger.error({ jobId, err }, 'aging job failed');
          throw err;
        }
      },
      { concurrency: 1, lockLifetime: this.lockLifetimeMs },
    );
  }

  async scheduleAging(intervalSeconds: number): Promise<void> {
    if (!Number.isFinite(intervalSeconds) || intervalSeconds <= 0) {
      throw new Error(
        `Invalid aging interval ${intervalSeconds}: expected a positive number of seconds`,
      );
    }
    // `every` keeps one job of this name, however many processes call it.
    await this.agenda.every(Math.round(intervalSeconds * 1000), AGING_JOB, undefined, {
      skipImmediate: true,
    });
  }

  async schedulePoll(
    collectionId: string,
    sourceId: string,
    intervalSeconds: number,
  ): Promise<void> {
    if (!Number.isFinite(intervalSeconds) || intervalSeconds <= 0) {
      throw new Error(
        `Invalid poll interval ${intervalSeconds} for source ${sourceId} of collection ${collectionId}: ` +
          'expected a positive number of seconds',
      );
    }
    const data: PollJobData = { collectionId, sourceId };
    const intervalMs = Math.round(intervalSeconds * 1000);

    // A process that joins others, or restarts soon after a poll, keeps the
    // stored schedule: the poll runs once per interval however many workers start.
    const existing = (await this.listPolls()).find(
      (poll) => poll.collectionId === collectionId && poll.sourceId === sourceId,
    );
    if (
      existing &&
      existing.intervalSeconds * 1000 === intervalMs &&
      existing.lastRunAt !== undefined &&
      existing.lastRunAt.getTime() + intervalMs > Date.now()
    ) {
      return;
    }

    const save = async () => {
      const job = this.agenda.create<PollJobData>(POLL_JOB, data);
      // A numeric interval is in ms; without a previous run it makes the job due now.
      job.repeatEvery(intervalMs);
      job.unique({ 'data.collectionId': collectionId, 'data.sourceId': sourceId });
      await job.save();
    };
    if (existing?.locked === true) this.defer(data, save);
    else await save();
  }

  async runPollSoon(
    collectionId: string,
    sourceId: string,
    intervalSeconds: number,
  ): Promise<void> {
    const data: PollJobData = { collectionId, sourceId };
    const save = async () => {
      const job = this.agenda.create<PollJobData>(POLL_JOB, data);
      job.repeatEvery(Math.round(intervalSeconds * 1000));
      job.unique({ 'data.collectionId': collectionId, 'data.sourceId': sourceId });
      job.schedule(new Date());
      await job.save();
    };
    const existing = (await this.listPolls()).find((poll) => keyOf(poll) === keyOf(data));
    if (existing?.locked === true) this.defer(data, save);
    else await save();
  }

  /**
   * Keeps `save` until the poll of `data` no longer holds its lock, then
   * runs it. A later request for the same source replaces an earlier one.
   *
   * NOTE: a poll that a process locks between the check and the save is
   * still unlocked by the save on MongoDB, so another worker may start the
   * same source. Polls of one source queue only within one process.
   */
  private defer(data: PollJobData, save: () => Promise<void>): void {
    this.deferred.set(keyOf(data), save);
    this.logger.info(
      data,
      'poll of this source is running, so its new schedule applies when it ends',
    );
    if (this.deferTimer !== undefined) return;
    this.deferTimer = setInterval(() => void this.applyDeferred(), this.processEveryMs);
    this.deferTimer.unref();
  }

  private async applyDeferred(): Promise<void> {
    if (this.applyingDeferred) return;
    this.applyingDeferred = true;
    try {
      const polls = await this.listPolls();
      for (const [key, save] of [...this.deferred]) {
        const poll = polls.find((candidate) => keyOf(candidate) === key);
        if (poll?.locked === true) continue;
        this.deferred.delete(key);
        // A source removed meanwhile gets no job back.
        if (poll !== undefined) await save();
      }
    } catch (err) {
      this.logger.warn(
        { err },
        'saving a deferred poll schedule failed, so it is retried at the next scan',
      );
    } finally {
      this.applyingDeferred = false;
    }
    if (this.deferred.size === 0 && this.deferTimer !== undefined) {
      clearInterval(this.deferTimer);
      this.deferTimer = undefined;
    }
  }

  async removePollsExcept(keys: PollJobData[]): Promise<number> {
    const keep = new Set(keys.map(keyOf));
    const { jobs } = await this.agenda.queryJobs({ name: POLL_JOB });
    const ids = jobs
      .filter((job) => !keep.has(keyOf(job.data as PollJobData)))
      .map((job) => job._id);
    if (ids.length === 0) return 0;

    const removed = await this.agenda.cancel({ ids });
    this.logger.info({ count: removed }, 'poll jobs of removed sources deleted');
    return removed;
  }

  async listPolls(): Promise<PollJobInfo[]> {
    const { jobs } = await this.agenda.queryJobs({ name: POLL_JOB, sort: { name: 'asc' } });
    return jobs.map((job) => {
      const data = job.data as PollJobData;
      const info: PollJobInfo = {
        jobId: String(job._id),
        collectionId: data.collectionId,
        sourceId: data.sourceId,
        intervalSeconds: Number(job.repeatInterval) / 1000,
        nextRunAt: job.nextRunAt,
        locked: job.lockedAt !== undefined,
      };
      if (job.lastRunAt) info.lastRunAt = job.lastRunAt;
      if (job.lastFinishedAt) info.lastFinishedAt = job.lastFinishedAt;
      if (job.failedAt) info.failedAt = job.failedAt;
      if (job.failReason) info.failReason = job.failReason;
      return info;
    });
  }

  async start(): Promise<void> {
    if (this.stopping !== undefined) throw new Error('Scheduler was stopped; create a new one');
    await this.agenda.start();
    this.started = true;
  }

  stop(): Promise<void> {
    this.stopping ??= this.stopOnce();
    return this.stopping;
  }

  private async stopOnce(): Promise<void> {
    if (this.deferTimer !== undefined) clearInterval(this.deferTimer);
    this.deferTimer = undefined;
    if (!this.started) return;
    // Stops the scan and unlocks jobs that are locked but not running yet.
    await this.agenda.stop(false);

    const finished = await this.waitForRunning(this.stopTimeoutMs);
    if (finished) return;
    const jobIds = [...this.running.keys()];
    this.logger.warn(
      { count: jobIds.length, jobIds, durationMs: this.stopTimeoutMs },
      'poll jobs still running at stop deadline; unlocking them',
    );
    await this.agenda.db.unlockJobs(jobIds);
  }

  /** Resolves true once no poll of this process runs, or false after `timeoutMs`. */
  private waitForRunning(timeoutMs: number): Promise<boolean> {
    if (this.running.size === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (finished: boolean) => {
        clearTimeout(timer);
        this.runningChanged.delete(check);
        resolve(finished);
      };
      const check = () => {
        if (this.running.size === 0) done(true);
      };
      const timer = setTimeout(() => done(false), timeoutMs);
      this.runningChanged.add(check);
    });
  }

  private async runPoll(job: Job, handler: PollHandler): Promise<void> {
    const jobId = String(job.attrs._id);
    const data = job.attrs.data as PollJobData;
    const fields = { jobId, collectionId: data.collectionId, sourceId: data.sourceId };
    const startedAt = performance.now();
    this.addRunning(jobId);
    this.logger.info(fields, 'poll job started');

    // Renews the lock so that a long poll is not taken over by another process.
    const renewal = setInterval(() => {
      job.touch().catch((err: unknown) => {
        this.logger.warn({ ...fields, err }, 'poll job lock renewal failed');
      });
    }, this.lockLifetimeMs / 3);

    try {
      await handler(data);
      const durationMs = Math.round(performance.now() - startedAt);
      this.logger.info({ ...fields, durationMs }, 'poll job finished');
    } catch (err) {
      const durationMs = Math.round(performance.now() - startedAt);
      this.logger.error({ ...fields, durationMs, err }, 'poll job failed');
      throw err;
    } finally {
      clearInterval(renewal);
    }
  }

  private addRunning(jobId: string): void {
    this.running.set(jobId, (this.running.get(jobId) ?? 0) + 1);
  }
}

function keyOf(data: PollJobData): string {
  return JSON.stringify([data.collectionId, data.sourceId]);
}

function positive(name: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0) {
    throw new Error(`Invalid scheduler option ${name}=${value}: expected a positive number`);
  }
  return value;
}
