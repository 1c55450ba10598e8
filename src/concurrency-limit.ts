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
  private readonly queue: Waiter[] = [];

  constructor(private readonly max: number) {}

  get inFlight(): number {
    return this.active;
  }

  get queued(): number {
    return this.queue.length;
  }

  /**
   * Runs `task` when a slot is free. A task still queued after `waitMs` is dropped with
   * DeadlineExceededError, so queued lookups keep their deadline.
   */
  run<T>(task: () => Promise<T>, waitMs: number): Promise<T> {
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
          reject(new DeadlineExceededError(`waited ${waitMs} ms for one of ${this.max} connection slots to orq`));
        }, waitMs),
      };
      this.queue.push(waiter);
    });
  }

  private async start<T>(task: () => Promise<T>): Promise<T> {
    this.active += 1;
    try {
      return await task();
    } finally {
      this.active -= 1;
      this.queue.shift()?.start();
    }
  }
}
