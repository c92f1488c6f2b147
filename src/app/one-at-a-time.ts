/**
 * Runs tasks that share a key one after the other, and tasks of different
 * keys at once. Polls use it, so that two polls of one source in a process
 * never write the same sightings and versions side by side. Such pairs come
 * from a scheduled poll and one requested through the API, or from a job
 * that two scans locked on a server without atomic updates (FerretDB).
 */
export class OneAtATime {
  private readonly tails = new Map<string, Promise<void>>();

  /** Runs `task` once every task queued before it under `key` has settled. */
  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key);
    const result = previous === undefined ? task() : previous.then(task);
    const tail = result.then(
      () => undefined,
      () => undefined,
    );
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return result;
  }

  /** Returns true while a task of `key` runs or waits. */
  busy(key: string): boolean {
    return this.tails.has(key);
  }
}
