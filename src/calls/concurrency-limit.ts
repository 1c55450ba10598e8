// Bounds how many calls to orq are in flight at once, so a burst of new users queues instead of opening a socket each.

export class DeadlineExceededError extends Error {
  override name = 'DeadlineExceededError' as const;
}

interface Waiter {
  start: () => void;
  timer: NodeJS.Timeout;
}

export class ConcurrencyLimit {
  private active = 0;
  /** Urgent waiters sit at the front of the queue, in their own arrival order. */
  private readonly queue: Waiter[] = [];
  private urgentCount = 0;

  constructor(private readonly max: number) {}

  get inFlight(): number {
    return this.active;
  }

  get queued(): number {
    return this.queue.length;
  }

  /**
   * Runs `task` when a slot is free. A task still queued after `waitMs` is dropped with
   * DeadlineExceededError, so queued lookups keep their deadline. An `urgent` task goes ahead of
   * the others: a lookup already under way (its create) finishes before new ones start.
   */
  run<T>(task: () => Promise<T>, waitMs: number, urgent = false): Promise<T> {
    if (this.active < this.max) return this.start(task);
    return new Promise<T>((resolve, reject) => {
      const waiter: Waiter = {
        start: () => {
          clearTimeout(waiter.timer);
          this.start(task).then(resolve, reject);
        },
        timer: setTimeout(() => {
          const index = this.queue.indexOf(waiter);
          if (index >= 0) this.queue.splice(index, 1);
          if (index >= 0 && index < this.urgentCount) this.urgentCount -= 1;
          reject(new DeadlineExceededError(`waited ${waitMs} ms for one of ${this.max} connection slots to orq`));
        }, waitMs),
      };
      if (urgent) this.queue.splice(this.urgentCount++, 0, waiter);
      else this.queue.push(waiter);
    });
  }

  private async start<T>(task: () => Promise<T>): Promise<T> {
    this.active += 1;
    try {
      return await task();
    } finally {
      this.active -= 1;
      const next = this.queue.shift();
      if (next !== undefined && this.urgentCount > 0) this.urgentCount -= 1;
      next?.start();
    }
  }
}
