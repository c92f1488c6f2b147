import { describe, expect, it } from '@jest/globals';

import { OneAtATime } from '../../src/app/one-at-a-time.js';

/** A promise with its resolve function, to hold a task until the test lets it go. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open: () => void = () => {};
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('OneAtATime', () => {
  it('runs one key in order', async () => {
    const queue = new OneAtATime();
    const events: string[] = [];
    const paused = gate();
    const first = queue.run('s1', async () => {
      events.push('a start');
      await paused.promise;
      events.push('a end');
      return 'a';
    });
    const second = queue.run('s1', async () => {
      events.push('b start');
      return 'b';
    });
    await tick();
    expect(events).toEqual(['a start']);
    expect(queue.busy('s1')).toBe(true);

    paused.open();
    expect(await Promise.all([first, second])).toEqual(['a', 'b']);
    expect(events).toEqual(['a start', 'a end', 'b start']);
    await tick();
    expect(queue.busy('s1')).toBe(false);
  });

  it('runs different keys at once', async () => {
    const queue = new OneAtATime();
    const paused = gate();
    const started: string[] = [];
    const first = queue.run('s1', async () => {
      started.push('s1');
      await paused.promise;
    });
    const second = queue.run('s2', async () => {
      started.push('s2');
      await paused.promise;
    });
    await tick();
    expect(started).toEqual(['s1', 's2']);
    paused.open();
    await Promise.all([first, second]);
  });

  it('continues after a failed task', async () => {
    const queue = new OneAtATime();
    const failing = queue.run('s1', async () => {
      throw new Error('feed unreachable');
    });
    const next = queue.run('s1', async () => 'ran');
    await expect(failing).rejects.toThrow('feed unreachable');
    expect(await next).toBe('ran');
  });
});
