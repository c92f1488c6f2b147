import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';

import { afterAll, afterEach, describe, expect, it } from '@jest/globals';
import { pino } from 'pino';

import {
  createScheduler,
  type PollHandler,
  type Scheduler,
  type SchedulerOptions,
} from '../../src/jobs/index.js';
import { createSqliteStore, type SqliteStore } from '../../src/store/index.js';

const directory = mkdtempSync(join(tmpdir(), 'feedhub-jobs-'));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

let fileCounter = 0;
/** Closes what a test opened, schedulers first, whatever the test's outcome. */
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function newFile(): string {
  fileCounter++;
  return join(directory, `jobs-${fileCounter}.db`);
}

async function openStore(file: string): Promise<SqliteStore> {
  const store = createSqliteStore({ file });
  await store.init();
  cleanups.push(() => store.close());
  return store;
}

type LogLine = Record<string, unknown> & { msg: string };

function captureLogger() {
  const lines: LogLine[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const text of chunk.toString().split('\n')) {
        if (text !== '') lines.push(JSON.parse(text) as LogLine);
      }
      callback();
    },
  });
  return { logger: pino({ level: 'debug' }, stream), lines };
}

function newScheduler(
  store: SqliteStore,
  handler: PollHandler,
  options: Partial<SchedulerOptions> = {},
): { scheduler: Scheduler; lines: LogLine[] } {
  const { logger, lines } = captureLogger();
  const scheduler = createScheduler({
    backend: store.jobBackend(),
    logger,
    processEveryMs: 100,
    // Agenda checks a running job's lock every lockLifetime / 2 and keeps that
    // timer after the job ends. A short lifetime lets the test run exit.
    lockLifetimeMs: 2000,
    ...options,
  });
  scheduler.definePoll(handler);
  cleanups.push(() => scheduler.stop());
  return { scheduler, lines };
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function waitFor(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await delay(20);
  }
}

describe('scheduler', () => {
  it('poll runs at start', async () => {
    const store = await openStore(newFile());
    const calls: unknown[] = [];
    const { scheduler, lines } = newScheduler(store, async (data) => {
      calls.push(data);
    });
    await scheduler.schedulePoll('c1', 's1', 3600);
    await scheduler.start();

    await waitFor(() => lines.some((line) => line.msg === 'poll job finished'));
    expect(calls).toEqual([{ collectionId: 'c1', sourceId: 's1' }]);
    const finished = lines.find((line) => line.msg === 'poll job finished');
    expect(finished).toMatchObject({ collectionId: 'c1', sourceId: 's1' });
    expect(typeof finished?.jobId).toBe('string');
    expect(typeof finished?.durationMs).toBe('number');
    expect(lines.some((line) => line.msg === 'poll job started')).toBe(true);

    await waitFor(() => calls.length === 1);
    const [poll] = await scheduler.listPolls();
    expect(poll?.lastFinishedAt).toBeInstanceOf(Date);
    expect(poll?.nextRunAt?.getTime()).toBeGreaterThan(Date.now() + 3_000_000);
  });

  it('second start keeps a recent poll', async () => {
    const store = await openStore(newFile());
    const calls: string[] = [];
    const first = newScheduler(store, async () => {
      calls.push('first');
    });
    await first.scheduler.schedulePoll('c1', 's1', 3600);
    await first.scheduler.start();
    await waitFor(() => first.lines.some((line) => line.msg === 'poll job finished'));
    await first.scheduler.stop();

    // Another worker (or a restart) within the interval schedules the same source.
    const second = newScheduler(store, async () => {
      calls.push('second');
    });
    await second.scheduler.schedulePoll('c1', 's1', 3600);
    await second.scheduler.start();
    await delay(500);

    expect(calls).toEqual(['first']);
    const [poll] = await second.scheduler.listPolls();
    expect(poll?.nextRunAt?.getTime()).toBeGreaterThan(Date.now() + 3_000_000);
  });

  it('aging job runs on its interval', async () => {
    const store = await openStore(newFile());
    let runs = 0;
    const { scheduler, lines } = newScheduler(store, async () => {});
    scheduler.defineAging(async () => {
      runs += 1;
    });
    await scheduler.scheduleAging(1);
    await scheduler.scheduleAging(1);
    await scheduler.start();

    await waitFor(() => runs >= 2, 10_000);
    expect(lines.filter((line) => line.msg === 'aging job finished').length).toBeGreaterThanOrEqual(
      2,
    );
    expect(await scheduler.listPolls()).toEqual([]);
  });

  it('poll job survives reopen', async () => {
    const file = newFile();
    const first = createSqliteStore({ file });
    await first.init();
    const { logger } = captureLogger();
    const before = createScheduler({ backend: first.jobBackend(), logger });
    await before.schedulePoll('c1', 's1', 600);
    await before.stop();
    await first.close();

    const store = await openStore(file);
    const { scheduler } = newScheduler(store, async () => {});
    const polls = await scheduler.listPolls();
    expect(polls).toHaveLength(1);
    expect(polls[0]).toMatchObject({
      collectionId: 'c1',
      sourceId: 's1',
      intervalSeconds: 600,
      locked: false,
    });
  });

  it('reschedule updates interval', async () => {
    const store = await openStore(newFile());
    const { scheduler } = newScheduler(store, async () => {});
    await scheduler.schedulePoll('c1', 's1', 60);
    await scheduler.schedulePoll('c1', 's1', 120);
    await scheduler.schedulePoll('c1', 's2', 60);

    const polls = await scheduler.listPolls();
    expect(polls.map((poll) => [poll.sourceId, poll.intervalSeconds]).sort()).toEqual([
      ['s1', 120],
      ['s2', 60],
    ]);
  });

  it('removePollsExcept keeps listed', async () => {
    const store = await openStore(newFile());
    const { scheduler } = newScheduler(store, async () => {});
    await scheduler.schedulePoll('c1', 's1', 60);
    await scheduler.schedulePoll('c1', 's2', 60);
    await scheduler.schedulePoll('c2', 's1', 60);

    const removed = await scheduler.removePollsExcept([
      { collectionId: 'c1', sourceId: 's2' },
      { collectionId: 'c9', sourceId: 'absent' },
    ]);
    expect(removed).toBe(2);
    const polls = await scheduler.listPolls();
    expect(polls.map((poll) => `${poll.collectionId}/${poll.sourceId}`)).toEqual(['c1/s2']);
    expect(await scheduler.removePollsExcept([{ collectionId: 'c1', sourceId: 's2' }])).toBe(0);
  });

  it('invalid interval rejected', async () => {
    const store = await openStore(newFile());
    const { scheduler } = newScheduler(store, async () => {});
    await expect(scheduler.schedulePoll('c1', 's1', 0)).rejects.toThrow(/Invalid poll interval 0/);
    await expect(scheduler.schedulePoll('c1', 's1', Number.NaN)).rejects.toThrow(/s1/);
    expect(await scheduler.listPolls()).toEqual([]);
  });

  it('two schedulers never overlap', async () => {
    const file = newFile();
    let active = 0;
    let maxActive = 0;
    let runs = 0;
    const handler: PollHandler = async () => {
      active++;
      maxActive = Math.max(maxActive, active);
      await delay(150);
      active--;
      runs++;
    };
    const a = newScheduler(await openStore(file), handler);
    const b = newScheduler(await openStore(file), handler);
    await a.scheduler.schedulePoll('c1', 's1', 0.05);
    await b.scheduler.schedulePoll('c1', 's1', 0.05);
    await Promise.all([a.scheduler.start(), b.scheduler.start()]);

    await waitFor(() => runs >= 4, 10_000);
    await Promise.all([a.scheduler.stop(), b.scheduler.stop()]);
    expect(maxActive).toBe(1);
    expect(await a.scheduler.listPolls()).toHaveLength(1);
    const started = [...a.lines, ...b.lines].filter((line) => line.msg === 'poll job started');
    expect(started.length).toBeGreaterThanOrEqual(4);
  });

  it('stop waits for running poll', async () => {
    const store = await openStore(newFile());
    let started = false;
    let finished = false;
    const { scheduler } = newScheduler(store, async () => {
      started = true;
      await delay(400);
      finished = true;
    });
    await scheduler.schedulePoll('c1', 's1', 3600);
    await scheduler.start();
    await waitFor(() => started);

    await scheduler.stop();
    expect(finished).toBe(true);
    const [poll] = await scheduler.listPolls();
    expect(poll?.locked).toBe(false);
    expect(poll?.lastFinishedAt).toBeInstanceOf(Date);
  });

  it('stop deadline unlocks poll', async () => {
    const store = await openStore(newFile());
    let started = false;
    let release: () => void = () => {};
    const { scheduler, lines } = newScheduler(
      store,
      () =>
        new Promise<void>((resolve) => {
          started = true;
          release = resolve;
        }),
      { stopTimeoutMs: 200 },
    );
    await scheduler.schedulePoll('c1', 's1', 3600);
    await scheduler.start();
    await waitFor(() => started);

    const stoppedAt = Date.now();
    await scheduler.stop();
    expect(Date.now() - stoppedAt).toBeGreaterThanOrEqual(150);
    const [poll] = await scheduler.listPolls();
    expect(poll?.locked).toBe(false);
    expect(lines.some((line) => line.msg.includes('still running at stop deadline'))).toBe(true);

    release();
    await waitFor(() => lines.some((line) => line.msg === 'poll job finished'));
  });

  /**
   * Starts a scheduler whose first poll of c1/s1 (interval 1 h) runs until
   * `release()`, and whose later polls end at once.
   */
  async function startHeldPoll() {
    const store = await openStore(newFile());
    let calls = 0;
    let release: () => void = () => {};
    const started = newScheduler(store, () => {
      calls++;
      if (calls > 1) return Promise.resolve();
      return new Promise<void>((resolve) => {
        release = resolve;
      });
    });
    // Cleanups run last first, so a failed check releases the poll before stop() waits for it.
    cleanups.push(async () => release());
    await started.scheduler.schedulePoll('c1', 's1', 3600);
    await started.scheduler.start();
    await waitFor(() => calls === 1);
    return { ...started, calls: () => calls, release: () => release() };
  }

  it('run soon during a poll', async () => {
    const { scheduler, lines, calls, release } = await startHeldPoll();

    // A rescreen requests a poll while the scheduled one runs: the running
    // poll read the list with the old rules, so another must follow it.
    await scheduler.runPollSoon('c1', 's1', 3600);
    expect(lines.some((line) => line.msg.startsWith('poll of this source is running'))).toBe(true);
    const [during] = await scheduler.listPolls();
    expect(during?.locked).toBe(true);

    release();
    await waitFor(() => calls() === 2);
    await waitFor(() => lines.filter((line) => line.msg === 'poll job finished').length === 2);
    const [after] = await scheduler.listPolls();
    expect(after?.intervalSeconds).toBe(3600);
    expect(after?.nextRunAt?.getTime()).toBeGreaterThan(Date.now() + 3_000_000);
  });

  it('interval change during a poll', async () => {
    const { scheduler, calls, release } = await startHeldPoll();

    await scheduler.schedulePoll('c1', 's1', 7200);
    release();
    await waitFor(() => calls() === 2);
    const [poll] = await scheduler.listPolls();
    expect(poll?.intervalSeconds).toBe(7200);
  });

  it('failed poll logged', async () => {
    const store = await openStore(newFile());
    const { scheduler, lines } = newScheduler(store, async () => {
      throw new Error('feed unreachable');
    });
    await scheduler.schedulePoll('c1', 's1', 3600);
    await scheduler.start();

    await waitFor(() => lines.some((line) => line.msg === 'poll job failed'));
    const failed = lines.find((line) => line.msg === 'poll job failed');
    expect(failed).toMatchObject({ collectionId: 'c1', sourceId: 's1', level: 50 });
    expect((failed?.err as { message?: string } | undefined)?.message).toBe('feed unreachable');
    await waitFor(() => lines.length > 0);
    await scheduler.stop();
    const [poll] = await scheduler.listPolls();
    expect(poll?.failReason).toBe('feed unreachable');
  });
});

describe('sqlite job repository', () => {
  it('second connection cannot take lock', async () => {
    const file = newFile();
    const first = (await openStore(file)).jobBackend().repository;
    const second = (await openStore(file)).jobBackend().repository;
    const saved = await first.saveJob(
      {
        name: 'poll-source',
        priority: 0,
        nextRunAt: new Date(Date.now() - 1000),
        type: 'normal',
        data: {},
      },
      undefined,
    );

    const scanAt = new Date(Date.now() + 1000);
    const deadline = new Date(Date.now() - 600_000);
    const locked = await first.getNextJobToRun(
      'poll-source',
      scanAt,
      deadline,
      undefined,
      undefined,
    );
    expect(locked?._id).toBe(saved._id);
    expect(locked?.lockedAt).toBeInstanceOf(Date);
    expect(
      await second.getNextJobToRun('poll-source', scanAt, deadline, undefined, undefined),
    ).toBe(undefined);
    expect(await second.lockJob(saved, undefined)).toBeUndefined();

    await first.unlockJobs([saved._id as string]);
    const relocked = await second.getNextJobToRun(
      'poll-source',
      scanAt,
      deadline,
      undefined,
      undefined,
    );
    expect(relocked?._id).toBe(saved._id);
  });

  it('expired lock taken over', async () => {
    const file = newFile();
    const repository = (await openStore(file)).jobBackend().repository;
    await repository.saveJob(
      { name: 'poll-source', priority: 0, nextRunAt: new Date(), type: 'normal', data: {} },
      undefined,
    );
    const scanAt = new Date(Date.now() + 1000);
    await repository.getNextJobToRun(
      'poll-source',
      scanAt,
      new Date(0),
      new Date(Date.now() - 60_000),
      undefined,
    );

    const notExpired = await repository.getNextJobToRun(
      'poll-source',
      scanAt,
      new Date(Date.now() - 120_000),
      undefined,
      undefined,
    );
    expect(notExpired).toBeUndefined();
    const expired = await repository.getNextJobToRun(
      'poll-source',
      scanAt,
      new Date(Date.now() - 30_000),
      undefined,
      undefined,
    );
    expect(expired).toBeDefined();
  });

  it('query, disable and remove', async () => {
    const repository = (await openStore(newFile())).jobBackend().repository;
    const a = await repository.saveJob(
      { name: 'a', priority: 0, nextRunAt: null, type: 'normal', data: { x: 1, y: { z: 2 } } },
      undefined,
    );
    await repository.saveJob(
      { name: 'b', priority: 5, nextRunAt: null, type: 'normal', data: { x: 2 } },
      undefined,
    );

    expect(
      (await repository.queryJobs({ data: { y: { z: 2 } } })).jobs.map((job) => job._id),
    ).toEqual([a._id]);
    expect((await repository.getDistinctJobNames()).sort()).toEqual(['a', 'b']);
    expect(await repository.disableJobs({ name: 'a' })).toBe(1);
    expect((await repository.queryJobs({ state: 'paused' })).jobs.map((job) => job.name)).toEqual([
      'a',
    ]);
    expect((await repository.queryJobs({ includeDisabled: false })).total).toBe(1);
    expect(await repository.removeJobs({})).toBe(0);
    expect(await repository.removeJobs({ notNames: ['a'] })).toBe(1);
    expect(await repository.purgeAllJobs()).toBe(1);
  });
});
