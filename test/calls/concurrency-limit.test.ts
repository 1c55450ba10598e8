// The bound on calls in flight: queueing order, urgency, and queued deadlines.
import { describe, expect, it } from 'vitest';
import { ConcurrencyLimit, DeadlineExceededError, QueueFullError } from '../../src/calls/concurrency-limit.js';

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

describe('ConcurrencyLimit: urgent-queue bookkeeping', () => {
  /** A limit of one slot held by a blocker, and a log of the order in which queued tasks start. */
  function heldLimit() {
    const limit = new ConcurrencyLimit(1);
    const started: string[] = [];
    const blocker = deferred();
    const runs: Array<Promise<unknown>> = [limit.run(() => blocker.promise, 5_000)];
    const queue = (name: string, options: { urgent?: boolean; waitMs?: number; hold?: Promise<void> } = {}) => {
      const run = limit.run(() => {
        started.push(name);
        return options.hold ?? Promise.resolve();
      }, options.waitMs ?? 5_000, options.urgent ?? false);
      runs.push(run.catch(() => undefined));
      return run;
    };
    const finish = async () => {
      blocker.resolve();
      await Promise.all(runs);
      return started;
    };
    return { limit, queue, finish };
  }

  it('an urgent waiter that expired gives up its place among the urgent ones: the next urgent one still goes first', async () => {
    const { queue, finish } = heldLimit();
    const expired = queue('urgent-expired', { urgent: true, waitMs: 20 });
    queue('new-1');
    await expect(expired).rejects.toBeInstanceOf(DeadlineExceededError);
    queue('urgent-2', { urgent: true });
    expect(await finish()).toEqual(['urgent-2', 'new-1']);
  });

  it('a non-urgent waiter that expired leaves the urgent ones in their arrival order', async () => {
    const { queue, finish, limit } = heldLimit();
    queue('urgent-1', { urgent: true });
    const expired = queue('new-expired', { waitMs: 20 });
    await expect(expired).rejects.toBeInstanceOf(DeadlineExceededError);
    expect(limit.queued).toBe(1);
    queue('urgent-2', { urgent: true });
    queue('new-2');
    expect(await finish()).toEqual(['urgent-1', 'urgent-2', 'new-2']);
  });

  it('an urgent waiter that started gives up its place: a later urgent one goes ahead of the waiting others', async () => {
    const { queue, finish, limit } = heldLimit();
    const hold = deferred();
    queue('urgent-1', { urgent: true, hold: hold.promise });
    queue('new-1');
    const finished = finish();
    while (limit.queued > 1) await new Promise((resolve) => setTimeout(resolve, 1));
    queue('urgent-2', { urgent: true });
    hold.resolve();
    expect(await finished).toEqual(['urgent-1', 'urgent-2', 'new-1']);
  });

  it('starting non-urgent waiters does not count against the urgent ones', async () => {
    const { queue, finish, limit } = heldLimit();
    const hold = deferred();
    queue('new-1', { hold: hold.promise });
    queue('new-2');
    queue('new-3');
    const finished = finish();
    while (limit.queued > 2) await new Promise((resolve) => setTimeout(resolve, 1));
    queue('urgent-1', { urgent: true });
    hold.resolve();
    expect(await finished).toEqual(['new-1', 'urgent-1', 'new-2', 'new-3']);
  });

  it('says how long it waited and for how many slots', async () => {
    const limit = new ConcurrencyLimit(2);
    const gate = deferred();
    const blockers = [limit.run(() => gate.promise, 1_000), limit.run(() => gate.promise, 1_000)];
    await expect(limit.run(() => Promise.resolve(), 20)).rejects.toThrow('waited 20 ms for one of 2 connection slots to orq');
    gate.resolve();
    await Promise.all(blockers);
  });

  it('a task that fails frees its slot for the next one', async () => {
    const limit = new ConcurrencyLimit(1);
    const gate = deferred();
    const failing = limit.run(async () => {
      await gate.promise;
      throw new Error('orq said no');
    }, 1_000);
    const next = limit.run(() => Promise.resolve('ran'), 1_000);
    gate.resolve();
    await expect(failing).rejects.toThrow('orq said no');
    await expect(next).resolves.toBe('ran');
    expect(limit.inFlight).toBe(0);
    expect(limit.queued).toBe(0);
  });
});

describe('ConcurrencyLimit: the bound on waiting tasks', () => {
  it('refuses a non-urgent task at once when maxQueue non-urgent tasks wait, and admits it again when one leaves', async () => {
    const limit = new ConcurrencyLimit(1, 2);
    const gate = deferred();
    const started: string[] = [];
    const task = (name: string) => () => {
      started.push(name);
      return Promise.resolve();
    };
    const runs = [limit.run(() => gate.promise, 5_000), limit.run(task('new-1'), 5_000), limit.run(task('new-2'), 5_000)];
    await expect(limit.run(task('refused'), 5_000)).rejects.toThrow(new QueueFullError('2 calls already wait for one of 1 connection slots to orq'));
    expect(limit.queued).toBe(2);
    gate.resolve();
    await Promise.all(runs);
    expect(started).toEqual(['new-1', 'new-2']);
    await expect(limit.run(task('admitted'), 5_000)).resolves.toBeUndefined();
  });

  it('always admits urgent tasks, and does not count them against the bound', async () => {
    const limit = new ConcurrencyLimit(1, 1);
    const gate = deferred();
    const started: string[] = [];
    const task = (name: string) => () => {
      started.push(name);
      return Promise.resolve();
    };
    const runs = [
      limit.run(() => gate.promise, 5_000),
      limit.run(task('urgent-1'), 5_000, true),
      limit.run(task('urgent-2'), 5_000, true),
      limit.run(task('new-1'), 5_000),
    ];
    expect(limit.queued).toBe(3);
    await expect(limit.run(task('refused'), 5_000)).rejects.toBeInstanceOf(QueueFullError);
    gate.resolve();
    await Promise.all(runs);
    expect(started).toEqual(['urgent-1', 'urgent-2', 'new-1']);
  });

  it('with no bound given, queues as many as come', async () => {
    const limit = new ConcurrencyLimit(1);
    const gate = deferred();
    const runs = [limit.run(() => gate.promise, 5_000)];
    for (let index = 0; index < 50; index++) runs.push(limit.run(() => Promise.resolve(), 5_000));
    expect(limit.queued).toBe(50);
    gate.resolve();
    await Promise.all(runs);
  });
});
