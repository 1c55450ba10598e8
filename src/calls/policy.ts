// How one call to orq is made: breaker → budget → concurrency limit, retried while its deadline allows.
import { OrqApiError, type OrqOperation } from '../errors/orq-api-error.js';
import { OrqUnavailableError } from '../errors/orq-unavailable-error.js';
import type { CallOptions } from '../orq-client.js';
import { StatsCounters } from '../observability/stats.js';
import type { Reporter } from '../reporter.js';
import type { RedisStore } from '../store/redis-store.js';
import { CallBudget, type BudgetDenial, type CallPriority } from './budget.js';
import type { RateLimitInfo } from './rate-limit.js';
import { CircuitBreaker, type BreakerState, type BreakerTicket } from './circuit-breaker.js';
import { ConcurrencyLimit, DeadlineExceededError, QueueFullError } from './concurrency-limit.js';

/**
 * The part of the resolver's config that decides how calls go. Declared here, not picked from options.ts, so the
 * arrow runs one way: options.ts fills this in (its ResolverConfig has every field), calls/ never reads the options.
 */
export interface CallPolicyConfig {
  lookupTimeoutMs: number;
  maxConcurrency: number;
  maxQueue: number;
  retries: number;
  failureThreshold: number;
  cooldownMs: number;
  budget: BudgetConfig | undefined;
  store: RedisStore | undefined;
}

/** The budget as the call policy takes it: where it starts, its upper bound, and whether orq's headers may set it. */
export interface BudgetConfig {
  calls: number;
  windowMs: number;
  /** Defaults to `calls`. */
  maxCalls?: number | undefined;
  /** Defaults to false: `calls` is the budget whatever orq says. */
  learn?: boolean | undefined;
}

/** Room in the budget taken ahead of a call by `prepay`: `spent` once a call used it or it was given back. */
export interface PrepaidCall {
  spent: boolean;
}

/** A call given less time than this would only add load: it fails as past its deadline instead. */
const minimumCallMs = 50;

/**
 * The longest pause a Retry-After can impose. A 429 with `Retry-After: 100000000` would otherwise stop every
 * call for three years (and a proxy sending milliseconds, 17 h); past this the circuit probes again, one call.
 */
export const maxRetryAfterMs = 300_000;

export class CallPolicy<TContext> {
  private readonly breaker: CircuitBreaker;
  private readonly limit: ConcurrencyLimit;
  private readonly budget: CallBudget | undefined;
  /** When the budget's exhaustion was last reported: once per window, not once per refused call. */
  private budgetReportedAt = 0;
  /** Why the breaker last opened, for the refusals while it stays open. */
  private openedBy = 'repeated failures';

  constructor(
    private readonly config: CallPolicyConfig,
    private readonly reporter: Reporter<TContext>,
    private readonly stats: StatsCounters = new StatsCounters(),
  ) {
    this.breaker = new CircuitBreaker({ failureThreshold: config.failureThreshold, cooldownMs: config.cooldownMs });
    this.limit = new ConcurrencyLimit(config.maxConcurrency, config.maxQueue);
    // Without a budget but with a shared store, an unbounded one still carries the fleet-wide pause after a 429.
    const limits = config.budget ?? (config.store === undefined ? undefined : { calls: Number.MAX_SAFE_INTEGER, windowMs: 60_000, learn: false });
    if (limits !== undefined) {
      this.budget = new CallBudget({
        ...limits,
        store: config.store,
        onPause: (pauseMs, source) => {
          // A pause of our own was reported when our breaker opened on the 429.
          if (source === 'fleet') this.reporter.report(this.pausedError(pauseMs, undefined), undefined);
        },
      });
    }
  }

  /** What an answer's X-RateLimit-* headers said: the budget follows orq's limit from now on. */
  learnRateLimit(info: RateLimitInfo): void {
    this.budget?.learn(info);
  }

  /** The budget's calls per window now, and the limit orq announced (undefined until it did), for stats. */
  get budgetFigures(): { calls: number; windowMs: number; learnedLimit: number | undefined } | undefined {
    if (this.budget === undefined || this.config.budget === undefined) return undefined;
    return { calls: this.budget.calls, windowMs: this.config.budget.windowMs, learnedLimit: this.budget.learned };
  }

  /** The breaker's state, reading `open` too while a 429 seen anywhere in the fleet pauses calls: no call goes then either. */
  get circuit(): BreakerState {
    return this.budget !== undefined && this.budget.pausedForMs > 0 ? 'open' : this.breaker.state;
  }

  /** Milliseconds until calls may go again (the breaker's cooldown or a fleet-wide pause); 0 while they may. */
  get retryInMs(): number {
    return Math.max(this.breaker.retryInMs, this.budget?.pausedForMs ?? 0);
  }

  get inFlight(): number {
    return this.limit.inFlight;
  }

  get queued(): number {
    return this.limit.queued;
  }

  /** True while the circuit's one probe is out: a call now would be refused, though the circuit is not open. */
  get probing(): boolean {
    return this.breaker.probing;
  }

  /** True while no call may go: the breaker is open, or the fleet is paused after a 429. Synchronous. */
  get isOpen(): boolean {
    return this.breaker.state === 'open' || (this.budget !== undefined && this.budget.pausedForMs > 0);
  }

  /**
   * Takes the budget's room for one call before the work that makes it, waiting until `deadline`: a background
   * registration waits for room here, not while it holds the user's lookup (which the user's requests would join
   * and wait on). The first `call` given the token spends it; `release` gives back one that no call spent.
   */
  async prepay(priority: CallPriority, externalId: string, deadline: number, context: TContext | undefined): Promise<PrepaidCall> {
    if (this.budget === undefined) return { spent: true };
    if (this.breaker.state === 'open') throw this.circuitOpenError(externalId);
    const denial = await this.budget.acquire(priority, deadline - minimumCallMs);
    if (denial !== undefined) throw this.budgetError(denial, 'retrieve', externalId, context);
    return { spent: false };
  }

  release(prepaid: PrepaidCall): void {
    if (prepaid.spent) return;
    prepaid.spent = true;
    this.budget?.refund();
  }

  /** One call to orq: through the concurrency limit and the breaker, retried while the deadline allows. */
  async call<T>(
    operation: OrqOperation,
    externalId: string,
    deadline: number,
    send: (options: CallOptions) => Promise<T>,
    context: TContext | undefined,
    urgent = false,
    priority: CallPriority = 'lookup',
    prepaid?: PrepaidCall,
  ): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      if (deadline - Date.now() < minimumCallMs) {
        if (prepaid !== undefined) this.release(prepaid);
        throw this.deadlineError(operation, externalId);
      }
      if (this.breaker.state === 'open') {
        if (prepaid !== undefined) this.release(prepaid);
        throw this.circuitOpenError(externalId);
      }
      if (prepaid !== undefined && !prepaid.spent) {
        prepaid.spent = true;
      } else if (this.budget !== undefined) {
        // The create or a retry of a lookup under way finishes before new lookups start, as in the concurrency limit.
        // A request may be waiting on a lookup: it never waits for room, its user goes to the backlog instead.
        const waitUntil = priority === 'lookup' ? Date.now() : deadline - minimumCallMs;
        const asking = (priority === 'lookup' || priority === 'backlog') && (urgent || attempt > 0) ? 'finish' : priority;
        const denial = await this.budget.acquire(asking, waitUntil);
        if (denial !== undefined) throw this.budgetError(denial, operation, externalId, context);
      }
      const remaining = deadline - Date.now();
      let retryDelay: number | undefined;
      let sent = false;
      try {
        return await this.limit.run(async () => {
          // Asked when the call leaves the queue: the circuit may have opened while it waited.
          const ticket = this.breaker.tryAcquire();
          if (ticket === undefined) throw this.circuitOpenError(externalId);
          const budgetMs = Math.max(minimumCallMs, deadline - Date.now());
          const startedAt = performance.now();
          sent = true;
          try {
            const result = await send({ timeoutMs: budgetMs });
            this.breaker.recordSuccess(ticket);
            this.stats.call(operation, startedAt, attempt, result);
            return result;
          } catch (error) {
            this.stats.call(operation, startedAt, attempt, undefined, error);
            // Judged before the slot is freed, so the next queued call already sees a circuit this failure opened.
            retryDelay = this.judgeFailure(error, ticket, budgetMs, attempt, context);
            throw error;
          }
        }, remaining, urgent || attempt > 0);
      } catch (error) {
        // Refused here (the queue full, its deadline passed in the queue, the circuit taken): the call never reached
        // orq, so its grant goes back to the window instead of starving the users after it.
        if (!sent) this.budget?.refund();
        if (error instanceof DeadlineExceededError) throw this.deadlineError(operation, externalId, error);
        if (error instanceof QueueFullError) throw this.overloadedError(operation, externalId, error);
        if (retryDelay === undefined || attempt >= this.config.retries || Date.now() + retryDelay + minimumCallMs > deadline) throw error;
        await sleep(retryDelay);
      }
    }
  }

  /** Refused by the budget: a pause is the circuit being open; exhaustion is reported once per window, not per call. */
  private budgetError(denial: BudgetDenial, operation: OrqOperation, externalId: string, context: TContext | undefined): OrqUnavailableError {
    if (denial.reason === 'paused') return this.pausedError(denial.waitMs, externalId);
    // Only a real budget says no for want of room (the unbounded one never does).
    const windowMs = this.config.budget?.windowMs ?? 60_000;
    const calls = this.budget?.calls ?? Number.MAX_SAFE_INTEGER;
    const learned = this.budget?.learned;
    const source =
      this.config.budget?.learn !== true ? ''
      : learned !== undefined ? `, from orq's limit of ${learned}`
      : (this.config.budget.maxCalls ?? this.config.budget.calls) > this.config.budget.calls ? ", until orq's answers say what the plan allows"
      : '';
    const error = new OrqUnavailableError(
      `The call budget (${calls} call${calls === 1 ? '' : 's'} to orq per ${windowMs} ms${this.config.store === undefined ? ' in this process' : ' across the fleet'}${source}) ` +
        `had no room for the ${operation} of user ${JSON.stringify(externalId)} before its deadline; the request goes on without it, and the user ` +
        'is registered when there is room (the registration backlog) or on a later request. Set `budget.calls` only to stay below what orq allows.',
      'budget', externalId,
    );
    const now = Date.now();
    if (now - this.budgetReportedAt >= windowMs) {
      this.budgetReportedAt = now;
      this.reporter.report(error, context);
    } else {
      this.reporter.markReported(error);
    }
    return error;
  }

  private pausedError(pauseMs: number, externalId: string | undefined): OrqUnavailableError {
    return new OrqUnavailableError(
      `orq rate-limited this workspace (HTTP 429); calls to orq are paused on every instance for about ${Math.ceil(pauseMs / 1000)} s; meanwhile requests go on without new identities.`,
      'circuit-open', externalId,
    );
  }

  circuitOpenError(externalId: string): OrqUnavailableError {
    if (this.breaker.state !== 'open' && this.budget !== undefined && this.budget.pausedForMs > 0) return this.pausedError(this.budget.pausedForMs, externalId);
    // Half-open: the pause is over and one call, the probe, is finding out whether orq is back.
    const state = this.breaker.state === 'open' ? `after ${this.openedBy} (about ${Math.ceil(this.breaker.retryInMs / 1000)} s left)` : 'while one call checks whether orq is back';
    return new OrqUnavailableError(
      `Calls to orq are paused ${state}; the request goes on without an identity.`,
      'circuit-open', externalId,
    );
  }

  /** Tells the breaker what a failed call says about orq; returns how long to wait before a retry, or undefined for none. */
  private judgeFailure(error: unknown, ticket: BreakerTicket, budgetMs: number, attempt: number, context: TContext | undefined): number | undefined {
    if (!(error instanceof OrqApiError) || !error.isOutage) {
      // orq answered (a 4xx about this user): it is up, whatever the answer. A request that never left the
      // process (not-sent) or an error of ours says nothing about orq either way.
      if (error instanceof OrqApiError && error.kind !== 'not-sent') this.breaker.recordSuccess(ticket);
      else this.breaker.release(ticket);
      return undefined;
    }
    if (error.kind === 'timeout' && budgetMs < this.config.lookupTimeoutMs / 2) {
      // A call that left a long queue with little time left says more about our load than orq's health.
      this.breaker.release(ticket);
      return undefined;
    }
    return this.onOutage(error, ticket, attempt, context);
  }

  /** Feeds an outage failure to the breaker; returns how long to wait before a retry, or undefined for none. */
  private onOutage(error: OrqApiError, ticket: BreakerTicket, attempt: number, context: TContext | undefined): number | undefined {
    const retryAfterMs = error.retryAfterMs === undefined ? undefined : Math.min(error.retryAfterMs, maxRetryAfterMs);
    const pauseMs =
      error.kind === 'rate-limited' ? (retryAfterMs ?? this.config.cooldownMs)
      : error.kind === 'unauthorized' ? this.config.cooldownMs
      : undefined;
    if (error.kind === 'rate-limited') this.budget?.pause(pauseMs as number);
    const openedNow = this.breaker.recordFailure(ticket, pauseMs);
    // A 429 or a refused key pauses at once, or lengthens the pause it lands in: the refusals then say it was that.
    if (openedNow || pauseMs !== undefined) {
      this.openedBy =
        error.kind === 'rate-limited' ? 'orq rate-limited this workspace (HTTP 429)'
        : error.kind === 'unauthorized' ? 'orq refused the API key'
        : 'repeated failures';
    }
    if (openedNow) {
      const pause = Math.ceil(this.breaker.retryInMs / 1000);
      const capped =
        error.retryAfterMs !== undefined && error.retryAfterMs > maxRetryAfterMs
          ? ` (orq asked for ${Math.ceil(error.retryAfterMs / 1000)} s; the pause is capped at ${maxRetryAfterMs / 1000} s, then one call probes again)`
          : '';
      const opened = new OrqUnavailableError(
        `${error.message} Calls to orq are paused for ${pause} s${capped}; meanwhile requests go on without identities.`,
        'circuit-open', error.externalId, error,
      );
      this.reporter.report(opened, context);
      this.reporter.markReported(error);
    }
    if (error.kind === 'unauthorized') return undefined;
    // A few ms past Retry-After, so the retry finds the pause over (timers may fire a little early against Date.now()).
    if (error.kind === 'rate-limited') return retryAfterMs === undefined ? undefined : retryAfterMs + 5;
    return jitteredBackoff(attempt);
  }

  private overloadedError(operation: OrqOperation, externalId: string, cause: QueueFullError): OrqUnavailableError {
    return new OrqUnavailableError(
      `orq ${operation} of user ${JSON.stringify(externalId)} was not attempted: ${cause.message} (maxQueue ${this.config.maxQueue}). ` +
        'The request goes on without an identity; raise maxConcurrency or maxQueue if orq can take more.',
      'overloaded', externalId, cause,
    );
  }

  private deadlineError(operation: OrqOperation, externalId: string, cause?: unknown): OrqApiError {
    return new OrqApiError(
      `orq ${operation} of user ${JSON.stringify(externalId)} did not finish within lookupTimeoutMs (${this.config.lookupTimeoutMs} ms).`,
      { operation, kind: 'timeout', externalId, cause },
    );
  }
}

/** Full jitter (AWS architecture blog, "Exponential Backoff And Jitter"), so retries of many lookups spread out. */
function jitteredBackoff(attempt: number): number {
  return Math.round(50 + Math.random() * 100 * 2 ** attempt);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
