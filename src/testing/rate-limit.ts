// A rolling-window rate limit like orq's per-workspace one: a 429 with Retry-After once the window is full, and the
// X-RateLimit-* headers on every answer, so an app can rehearse its day one (every user new at once) offline.

export interface EmulatorRateLimit {
  /** Calls answered per rolling window; the next one gets a 429. */
  calls: number;
  /** The window, in ms. Defaults to `60_000`, orq's; tests shorten it to run in seconds. */
  windowMs?: number | undefined;
}

/** What the limit decided for one call, and the headers that say so. */
export interface RateLimitVerdict {
  allowed: boolean;
  headers: Record<string, string>;
}

export class RollingRateLimit {
  /** Times of the calls answered in the window, oldest first. */
  private readonly answered: number[] = [];
  private readonly calls: number;
  private readonly windowMs: number;

  constructor(limit: EmulatorRateLimit) {
    if (!Number.isSafeInteger(limit.calls) || limit.calls < 1) throw new RangeError(`rateLimit.calls must be a whole number ≥ 1, got ${limit.calls}`);
    const windowMs = limit.windowMs ?? 60_000;
    if (!Number.isFinite(windowMs) || windowMs <= 0) throw new RangeError(`rateLimit.windowMs must be a positive number of ms, got ${windowMs}`);
    this.calls = limit.calls;
    this.windowMs = windowMs;
  }

  /** Counts one call when there is room; a refused call is not counted (it did no work). */
  take(now = Date.now()): RateLimitVerdict {
    while ((this.answered[0] ?? Infinity) <= now - this.windowMs) this.answered.shift();
    const allowed = this.answered.length < this.calls;
    if (allowed) this.answered.push(now);
    // Room comes back when the oldest call in the window leaves it.
    const freesAt = this.answered.length < this.calls ? now : (this.answered[0] as number) + this.windowMs;
    const headers: Record<string, string> = {
      'x-ratelimit-limit': String(this.calls),
      'x-ratelimit-remaining': String(this.calls - this.answered.length),
      // Unix seconds, as most APIs send it; the package also reads seconds from now.
      'x-ratelimit-reset': String(Math.ceil(freesAt / 1000)),
    };
    if (!allowed) headers['retry-after'] = String(Math.max(1, Math.ceil((freesAt - now) / 1000)));
    return { allowed, headers };
  }
}
