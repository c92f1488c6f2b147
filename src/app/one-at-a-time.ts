/**
 * Runs tasks that share a key one after the other, and tasks of different
 * keys at once. Used for polls: two polls of one source in one process
 * (a scheduled one and one asked for through the API, or one job that a
 * server without atomic updates let two scans lock) would otherwise write
 * the same sightings and versions side by side.
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

  /** Whether a task of `key` runs or waits. */
  busy(key: string): boolean {
    return this.tails.has(key);
  }
}
