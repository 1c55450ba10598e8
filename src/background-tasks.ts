// Work that outlives the request that started it (lookups, profile syncs, refreshes), so close() can wait for it.

export class BackgroundTasks {
  private readonly pending = new Set<Promise<unknown>>();

  get size(): number {
    return this.pending.size;
  }

  track(promise: Promise<unknown>): void {
    const settled = promise.then(noop, noop);
    this.pending.add(settled);
    void settled.then(() => this.pending.delete(settled));
  }

  /** Waits, at most `timeoutMs`, until no task is left; resolves to how many still are. */
  async drain(timeoutMs: number): Promise<number> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs);
    });
    let timedOut = false;
    void deadline.then(() => {
      timedOut = true;
    });
    // Work can start while we wait (a lookup that ends starts its profile sync), so wait until none is left.
    while (this.pending.size > 0 && !timedOut) {
      await Promise.race([Promise.allSettled([...this.pending]), deadline]);
    }
    clearTimeout(timer);
    return this.pending.size;
  }
}

function noop(): void {}
