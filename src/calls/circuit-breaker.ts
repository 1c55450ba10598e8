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
 * What tryAcquire hands out: a call that went while the circuit was closed, or the one probe of a
 * half-open circuit. Results are recorded with their ticket, so a slow call that started before the
 * circuit opened cannot be taken for the probe.
 */
export type BreakerTicket = 'closed' | 'probe';

/**
 * closed → (threshold consecutive failures, or one rate-limit/auth failure) → open
 * open → (cooldown or pause elapsed) → half-open: exactly one call, the probe, is allowed
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

  /** True while the circuit is half-open and its one probe is out: any other call would be refused. */
  get probing(): boolean {
    return this.opened && this.probeInFlight;
  }

  /** Milliseconds until a probe may go, 0 when calls may go now. */
  get retryInMs(): number {
    return this.opened ? Math.max(0, this.openUntil - this.now()) : 0;
  }

  /** A ticket when a call may go now, undefined when it may not. In half-open only one probe is out at a time. */
  tryAcquire(): BreakerTicket | undefined {
    if (!this.opened) return 'closed';
    if (this.now() < this.openUntil || this.probeInFlight) return undefined;
    this.probeInFlight = true;
    return 'probe';
  }

  /**
   * A call got an answer from a working orq (even a 404 counts). Only the probe closes an open circuit:
   * a call that started before the circuit opened must not end a Retry-After pause early.
   */
  recordSuccess(ticket: BreakerTicket): void {
    if (ticket === 'probe') {
      this.probeInFlight = false;
      this.opened = false;
    }
    if (!this.opened) this.consecutiveFailures = 0;
  }

  /**
   * An outage failure. Returns true when this failure opened the circuit, so the caller reports
   * the outage once per opening rather than once per request.
   * @param pauseMs open at once for exactly this long instead of the cooldown (Retry-After, a refused key)
   */
  recordFailure(ticket: BreakerTicket, pauseMs?: number): boolean {
    this.consecutiveFailures += 1;
    const wasProbe = ticket === 'probe';
    if (wasProbe) this.probeInFlight = false;
    const opensNow = pauseMs !== undefined || wasProbe || this.consecutiveFailures >= this.options.failureThreshold;
    if (!opensNow) return false;
    const wasOpen = this.opened && !wasProbe;
    const until = this.now() + (pauseMs ?? this.options.cooldownMs);
    // Several failures can land while open (calls that were already out): they never shorten the pause.
    this.openUntil = wasOpen ? Math.max(this.openUntil, until) : until;
    this.opened = true;
    return !wasOpen;
  }

  /** A call whose result says nothing about orq's health (it was abandoned, or its budget was too short). */
  release(ticket: BreakerTicket): void {
    if (ticket === 'probe') this.probeInFlight = false;
  }
}
