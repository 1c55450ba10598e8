// The bound on calls in flight: queueing order, urgency, and queued deadlines.
import { describe, expect, it } from 'vitest';
import { ConcurrencyLimit, DeadlineExceededError } from '../../src/calls/concurrency-limit.js';

function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((done) => {
    resolve = done;
  });
  return { promise, resolve };
}

describe('ConcurrencyLimit', () => {
  it('runs at most max tasks at once; urgent ones jump the queue in their own order', async () => {
    const limit = new ConcurrencyLimit(1);
    const gate = deferred();
    const started: string[] = [];
    const task = (name: string, wait?: Promise<void>) => () => {
      started.push(name);
      return wait ?? Promise.resolve();
    };
    const runs = [
      limit.run(task('first', gate.promise), 1_000),
      limit.run(task('new-1'), 1_000),
      limit.run(task('new-2'), 1_000),
      limit.run(task('urgent-1'), 1_000, true),
      limit.run(task('urgent-2'), 1_000, true),
    ];
    expect(limit.inFlight).toBe(1);
    expect(limit.queued).toBe(4);
    gate.resolve();
    await Promise.all(runs);
    expect(started).toEqual(['first', 'urgent-1', 'urgent-2', 'new-1', 'new-2']);
    expect(limit.inFlight).toBe(0);
  });

  it('drops a task that waited past its deadline, and the queue goes on', async () => {
    const limit = new ConcurrencyLimit(1);
    const gate = deferred();
    const blocker = limit.run(() => gate.promise, 1_000);
    const late = limit.run(() => Promise.resolve('never'), 20, true);
    const after = limit.run(() => Promise.resolve('ran'), 1_000, true);
    await expect(late).rejects.toBeInstanceOf(DeadlineExceededError);
    expect(limit.queued).toBe(1);
    gate.resolve();
    await blocker;
    await expect(after).resolves.toBe('ran');
  });
});
