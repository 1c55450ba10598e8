// Stops calling orq while it is failing, and lets one probe through now and then to notice it is back.

export type BreakerState = 'closed' | 'open' | 'half-open';

export interface CircuitBreakerOptions {
  /** Consecutive outage failures that open the circuit. */
  failureThreshold: number;
  /** How long the circuit stays open before one probe may go through. */
  cooldownMs: number;
  now?: () => number;
}

/**
 * closed → (threshold consecutive failures, or one rate-limit/auth failure) → open
 * open → (cooldown elapsed) → half-open: exactly one call, the probe, is allowed
 * half-open → probe succeeds → closed; probe fails → open again
 */
export class CircuitBreaker {
  private consecutiveFailures = 0;
  private openUntil = 0;
  private probeInFlight = false;
  private opened = false;
  private readonly now: () => number;

  constructor(private readonly options: CircuitBreakerOptions) {
    this.now = options.now ?? Date.now;
  }

  get state(): BreakerState {
    if (!this.opened) return 'closed';
    return this.now() < this.openUntil ? 'open' : 'half-open';
  }

  /** Milliseconds until a probe may go, 0 when calls may go now. */
  get retryInMs(): number {
    return this.opened ? Math.max(0, this.openUntil - this.now()) : 0;
  }

  /** Whether a call may go now. In half-open, only the first caller gets true until its result is known. */
  tryAcquire(): boolean {
    if (!this.opened) return true;
    if (this.now() < this.openUntil || this.probeInFlight) return false;
    this.probeInFlight = true;
    return true;
  }

  /** A call that went got through to a working orq (even a 404 counts: orq answered). */
  recordSuccess(): void {
    this.consecutiveFailures = 0;
    this.opened = false;
    this.probeInFlight = false;
  }

  /**
   * An outage failure. Returns true when this failure opened the circuit, so the caller reports
   * the outage once per opening rather than once per request.
   * @param pauseMs open at once for exactly this long instead of the cooldown (Retry-After, a refused key)
   */
  recordFailure(pauseMs?: number): boolean {
    this.consecutiveFailures += 1;
    const wasProbe = this.probeInFlight;
    this.probeInFlight = false;
    const opensNow = pauseMs !== undefined || wasProbe || this.consecutiveFailures >= this.options.failureThreshold;
    if (!opensNow) return false;
    const wasOpen = this.opened;
    this.opened = true;
    this.openUntil = this.now() + (pauseMs ?? this.options.cooldownMs);
    return !wasOpen;
  }

  /** A call that went but whose result says nothing about orq's health (e.g. it was abandoned). */
  release(): void {
    this.probeInFlight = false;
  }
}
