// Bounds how many calls to orq are in flight at once, so a burst of new users queues instead of opening a socket each.

export class DeadlineExceededError extends Error {
  override name = 'DeadlineExceededError' as const;
}

/** The queue was full: the task was refused at once, before it cost a timer or a call. */
export class QueueFullError extends Error {
  override name = 'QueueFullError' as const;
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

  /**
   * @param maxQueue most non-urgent tasks waiting; past it `run` refuses at once. Urgent tasks (the next call of a
   * lookup already admitted) are always admitted, so a lookup never loses its create to a burst of newcomers;
   * there is at most one per admitted lookup, so they stay bounded too.
   */
  constructor(
    private readonly max: number,
    private readonly maxQueue = Number.POSITIVE_INFINITY,
  ) {}

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
  /** Why `run` would refuse a task now (the queue is full), or undefined when it would take it. */
  refusal(urgent = false): QueueFullError | undefined {
    if (this.active < this.max || urgent || this.queue.length - this.urgentCount < this.maxQueue) return undefined;
    return new QueueFullError(`${this.queue.length} calls already wait for one of ${this.max} connection slots to orq`);
  }

  run<T>(task: () => Promise<T>, waitMs: number, urgent = false): Promise<T> {
    if (this.active < this.max) return this.start(task);
    const refused = this.refusal(urgent);
    if (refused !== undefined) return Promise.reject(refused);
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
