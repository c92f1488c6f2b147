import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/** How often the worker checkpoints without a request, in milliseconds. */
const INTERVAL_MS = 1000;

/** The result of one checkpoint of the worker: WAL frames in the log and frames copied back so far. */
export interface CheckpointResult {
  logFrames: number;
  checkpointedFrames: number;
}

/**
 * The worker's code. It runs as a CommonJS script (`eval`), so it needs no
 * file of its own next to the compiled or the TypeScript sources. It opens
 * its own connection and runs a PASSIVE checkpoint on request, where
 * requests that arrive during one share the next, and every `intervalMs`
 * for the small writes in between. Each report names the requests it served.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.file, { fileMustExist: true });
db.pragma('busy_timeout = 5000');
// A connection learns that the file is in WAL mode when it first reads it.
// Until then wal_checkpoint reports -1 and copies nothing.
db.pragma('journal_mode');
let received = 0;
let served = 0;
let scheduled = false;
function schedule() {
  if (scheduled) return;
  scheduled = true;
  setImmediate(run);
}
function run() {
  scheduled = false;
  const upTo = received;
  let row;
  try {
    [row] = db.pragma('wal_checkpoint(PASSIVE)');
  } catch (error) {
    clearInterval(timer);
    parentPort.postMessage({ kind: 'failed', message: String((error && error.message) || error) });
    return;
  }
  if (upTo > served) {
    served = upTo;
    parentPort.postMessage({ kind: 'done', upTo, logFrames: row.log, checkpointedFrames: row.checkpointed });
  }
  if (received > served) schedule();
}
const timer = setInterval(schedule, workerData.intervalMs);
parentPort.on('message', (message) => {
  if (message === 'close') {
    clearInterval(timer);
    db.close();
    parentPort.close();
    return;
  }
  received++;
  schedule();
});
`;

/**
 * Copies the WAL back into the database file on a worker thread. SQLite
 * checkpoints on the connection that commits, inside its commit: after a
 * poll of a million new values that copy took about a quarter of the poll's
 * time, and it blocked the event loop meanwhile. Large writers commit with
 * automatic checkpoints off (see `SqliteStore.offloadCheckpoint`) and then
 * call `request`. The worker starts on the first request. From then on the
 * store's connection never checkpoints at commit, so the worker also
 * checkpoints every `INTERVAL_MS` for the small writes.
 *
 * When the worker fails, `failure` keeps the reason, later requests do
 * nothing, and `onStop` runs once with the reason. The store logs it and
 * turns its connection's automatic checkpoints back on, as SQLite has them
 * by default, so a failure costs speed only.
 */
export class Checkpointer {
  private worker: Worker | undefined;
  /** Requests sent and requests that a finished checkpoint served, counted from 1. */
  private requested = 0;
  private served = 0;
  private waiting: (() => void)[] = [];
  private closed = false;
  /** The result of the worker's last checkpoint. */
  last: CheckpointResult | undefined;
  /** The reason the worker stopped, after a failure. */
  failure: string | undefined;

  constructor(
    private readonly file: string,
    private readonly onStop: (reason: string) => void,
  ) {}

  /** Whether requests reach a worker: false once it failed, and after `close`. */
  get usable(): boolean {
    return !this.closed && this.failure === undefined;
  }

  /** Asks the worker to checkpoint once more and returns at once. */
  request(): void {
    if (!this.usable) return;
    const worker = this.start();
    this.requested++;
    worker.ref();
    worker.postMessage('checkpoint');
  }

  /** Resolves when every requested checkpoint has finished or the worker has stopped. */
  async settled(): Promise<void> {
    if (this.served >= this.requested) return;
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  /** Stops the worker after the checkpoint it runs. No request is served after this. */
  async close(): Promise<void> {
    this.closed = true;
    const worker = this.worker;
    if (worker === undefined) return;
    this.worker = undefined;
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    worker.ref();
    worker.postMessage('close');
    await exited;
    this.finish();
  }

  private start(): Worker {
    if (this.worker !== undefined) return this.worker;
    const driver = createRequire(import.meta.url).resolve('better-sqlite3');
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { file: this.file, driver, intervalMs: INTERVAL_MS },
    });
    // An idle worker must not keep the process alive (see `finish`).
    worker.on('message', (message: WorkerMessage) => {
      if (message.kind === 'done') {
        this.last = {
          logFrames: message.logFrames,
          checkpointedFrames: message.checkpointedFrames,
        };
        this.served = message.upTo;
      } else {
        this.stop(`WAL checkpoint of ${this.file} failed on the worker thread: ${message.message}`);
        void worker.terminate();
      }
      this.finish();
    });
    worker.on('error', (error) => {
      if (this.worker === worker)
        this.stop(`WAL checkpoint worker of ${this.file} stopped: ${error.message}`);
      this.finish();
    });
    worker.on('exit', () => {
      if (this.worker === worker) this.stop(`WAL checkpoint worker of ${this.file} exited`);
      this.finish();
    });
    this.worker = worker;
    return worker;
  }

  /** Records why the worker is gone and hands checkpoints back to the store's connection. */
  private stop(reason: string): void {
    this.worker = undefined;
    if (this.failure !== undefined) return;
    this.failure = reason;
    this.onStop(reason);
  }

  /**
   * Settles the waiting callers once nothing is pending. The worker is
   * referenced only while a checkpoint is pending, so a process that has
   * nothing else to do waits for that checkpoint and no longer.
   */
  private finish(): void {
    if (this.usable && this.worker !== undefined && this.served < this.requested) return;
    this.worker?.unref();
    this.served = this.requested;
    const waiting = this.waiting;
    this.waiting = [];
    for (const resolve of waiting) resolve();
  }
}

type WorkerMessage =
  | { kind: 'done'; upTo: number; logFrames: number; checkpointedFrames: number }
  | { kind: 'failed'; message: string };
