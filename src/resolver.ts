// The framework-free core: validate → cache → coalesce → retrieve → create → verify, within deadlines and a circuit breaker.
import { LRUCache } from 'lru-cache';
import { CircuitBreaker, type BreakerState, type BreakerTicket } from './circuit-breaker.js';
import { ConcurrencyLimit, DeadlineExceededError } from './concurrency-limit.js';
import { IdentityMismatchError } from './errors/identity-mismatch-error.js';
import { InvalidUserError } from './errors/invalid-user-error.js';
import { OrqApiError, type OrqOperation } from './errors/orq-api-error.js';
import { OrqIdentityError } from './errors/orq-identity-error.js';
import { OrqUnavailableError } from './errors/orq-unavailable-error.js';
import { resolveResolverConfig, type IdentityResolverOptions, type ResolverConfig } from './options.js';
import { createIdentityApi, type CallOptions, type IdentityApi } from './orq-client.js';
import { profileChanges } from './profile.js';
import type { OrqIdentity, OrqUser } from './types.js';
import { checkUser, type CheckedUser } from './user.js';

export interface CloseOptions {
  /** The longest close waits for background lookups and updates. Defaults to `5_000`. */
  timeoutMs?: number;
}

export interface IdentityResolver<TContext = undefined> {
  /**
   * The cached identity of an external id, or undefined. Synchronous and allocation-free: this
   * is what runs on every request of the app. `context` is only used to report a background refresh's failure.
   */
  cached(externalId: string, context?: TContext): OrqIdentity | undefined;
  /**
   * True when a lookup of this user would fail at once without calling orq: the circuit is open, or the
   * user failed less than `failureMemoryMs` ago, and no lookup of theirs is under way. Synchronous and
   * allocation-free, so an app can pass such requests straight through during an outage.
   */
  isBackingOff(externalId: string): boolean;
  /**
   * The user's identity, looked up or registered as needed. Rejects with InvalidUserError (the user
   * cannot be sent to orq) or OrqUnavailableError (orq failed, was too slow, or is being backed off);
   * either has already been reported to `onError` with `context`.
   * @param waitMs stop waiting after this long; the lookup itself goes on and fills the cache.
   */
  resolve(user: OrqUser | string, context?: TContext, waitMs?: number): Promise<OrqIdentity>;
  /** Stops new lookups and waits, at most `timeoutMs`, for the ones in flight. Resolves to how many were still pending. */
  close(options?: CloseOptions): Promise<{ pending: number }>;
  /** The circuit breaker's state, for health checks and dashboards. */
  readonly circuit: BreakerState;
}

/** Creates the core that resolves users to identities; `orqIdentity` is a thin Express adapter over it. */
export function createIdentityResolver<TContext = undefined>(
  options: IdentityResolverOptions<TContext> = {},
): IdentityResolver<TContext> {
  return new Resolver(resolveResolverConfig(options, 'createIdentityResolver'));
}

const minimumCallMs = 50;

export class Resolver<TContext> implements IdentityResolver<TContext> {
  private readonly cache: LRUCache<string, OrqIdentity>;
  private readonly api: IdentityApi;
  private readonly breaker: CircuitBreaker;
  private readonly limit: ConcurrencyLimit;
  /** One lookup per external id at a time, however many requests ask: the coalescing. */
  private readonly lookups = new Map<string, Promise<OrqIdentity>>();
  /** Recent failures per user, so a broken user does not cost a call on every request. */
  private readonly failures: LRUCache<string, OrqUnavailableError> | undefined;
  /** Reports already made in this window, so a user failing on every request is reported once per window. */
  private readonly recentReports: LRUCache<string, true> | undefined;
  private readonly metricsFetchedAt = new WeakMap<OrqIdentity, number>();
  private readonly refreshing = new Set<string>();
  private readonly pending = new Set<Promise<unknown>>();
  private closed = false;

  constructor(private readonly config: ResolverConfig<TContext>) {
    this.cache = config.cache;
    this.api = createIdentityApi(config.client);
    this.breaker = new CircuitBreaker({ failureThreshold: config.failureThreshold, cooldownMs: config.cooldownMs });
    this.limit = new ConcurrencyLimit(config.maxConcurrency);
    if (config.failureMemoryMs > 0) {
      const memory = { max: config.cache.max || 10_000, ttl: config.failureMemoryMs };
      this.failures = new LRUCache(memory);
      this.recentReports = new LRUCache(memory);
    }
  }

  get circuit(): BreakerState {
    return this.breaker.state;
  }

  cached(externalId: string, context?: TContext): OrqIdentity | undefined {
    const identity = this.cache.get(externalId);
    if (identity !== undefined && this.config.metricsRefreshMs !== undefined) this.refreshMetricsIfDue(identity, context);
    return identity;
  }

  isBackingOff(externalId: string): boolean {
    if (this.lookups.has(externalId)) return false;
    return this.breaker.state === 'open' || this.failures?.has(externalId) === true;
  }

  resolve(found: OrqUser | string, context?: TContext, waitMs?: number): Promise<OrqIdentity> {
    // The cache and the failure memory only ever hold checked ids, so they are asked before any checking.
    const id = typeof found === 'string' ? found : (found as Partial<OrqUser> | null)?.externalId;
    if (typeof id === 'string') {
      const hit = this.cached(id, context);
      if (hit !== undefined) return Promise.resolve(hit);
      const recentFailure = this.failures?.get(id);
      if (recentFailure !== undefined) return Promise.reject(recentFailure);
    }
    let checked: CheckedUser;
    try {
      checked = checkUser(found);
    } catch (error) {
      const invalid = error as InvalidUserError;
      this.reportOnce(`invalid:${String(invalid.externalId)}:${invalid.message}`, invalid, context);
      return Promise.reject(invalid);
    }
    const externalId = checked.user.externalId;
    const lookup = this.lookups.get(externalId) ?? this.startLookup(checked, context);
    return waitMs === undefined ? lookup : this.waitAtMost(lookup, waitMs, externalId, context);
  }

  async close({ timeoutMs = 5_000 }: CloseOptions = {}): Promise<{ pending: number }> {
    this.closed = true;
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
    return { pending: this.pending.size };
  }

  private startLookup(checked: CheckedUser, context: TContext | undefined): Promise<OrqIdentity> {
    const externalId = checked.user.externalId;
    if (this.closed) {
      return Promise.reject(new OrqUnavailableError('The identity resolver is closed; no new lookups start.', 'closed', externalId));
    }
    if (this.breaker.state === 'open') return Promise.reject(this.circuitOpenError(externalId));

    const lookup = this.lookup(checked, context).then(
      (identity) => {
        this.cache.set(externalId, identity);
        if (this.config.syncProfile) this.syncProfile(identity, checked.user, context);
        return identity;
      },
      (error: unknown) => {
        throw this.failed(error, externalId, context);
      },
    );
    this.lookups.set(externalId, lookup);
    this.track(lookup.finally(() => this.lookups.delete(externalId)));
    return lookup;
  }

  private async lookup({ user, dropped }: CheckedUser, context: TContext | undefined): Promise<OrqIdentity> {
    const externalId = user.externalId;
    const deadline = Date.now() + this.config.lookupTimeoutMs;
    for (const problem of dropped) this.reportOnce(`dropped:${externalId}:${problem.field}`, problem, context);

    const found = await this.retrieve(externalId, deadline, context);
    if (found !== undefined && found.externalId === externalId) return found;
    if (found !== undefined) this.report(new IdentityMismatchError(externalId, found.externalId), context);

    let created: OrqIdentity;
    try {
      created = await this.call('create', externalId, deadline, (options) => this.api.create(user, options), context, true);
    } catch (error) {
      // The documents say a create for an existing external id "will fail" but not with which 4xx:
      // whatever the status, another process may have won the race, so one more retrieve settles it.
      if (!(error instanceof OrqApiError) || error.kind !== 'http' || error.isOutage) throw error;
      const existing = await this.retrieve(externalId, deadline, context, true);
      if (existing === undefined) throw error;
      if (existing.externalId !== externalId) throw new IdentityMismatchError(externalId, existing.externalId);
      return existing;
    }
    if (created.externalId !== externalId) throw new IdentityMismatchError(externalId, created.externalId);
    return created;
  }

  private retrieve(externalId: string, deadline: number, context: TContext | undefined, urgent = false): Promise<OrqIdentity | undefined> {
    const includeMetrics = this.config.metricsRefreshMs !== undefined;
    return this.call('retrieve', externalId, deadline, async (options) => {
      const identity = await this.api.retrieve(externalId, { ...options, includeMetrics });
      if (identity !== undefined && includeMetrics) this.metricsFetchedAt.set(identity, Date.now());
      return identity;
    }, context, urgent);
  }

  /** One call to orq: through the concurrency limit and the breaker, retried while the deadline allows. */
  private async call<T>(
    operation: OrqOperation,
    externalId: string,
    deadline: number,
    send: (options: CallOptions) => Promise<T>,
    context: TContext | undefined,
    urgent = false,
  ): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      const remaining = deadline - Date.now();
      if (remaining < minimumCallMs) throw this.deadlineError(operation, externalId);
      if (this.breaker.state === 'open') throw this.circuitOpenError(externalId);
      let retryDelay: number | undefined;
      try {
        return await this.limit.run(async () => {
          // Asked when the call leaves the queue: the circuit may have opened while it waited.
          const ticket = this.breaker.tryAcquire();
          if (ticket === undefined) throw this.circuitOpenError(externalId);
          const budgetMs = Math.max(minimumCallMs, deadline - Date.now());
          try {
            const result = await send({ timeoutMs: budgetMs });
            this.breaker.recordSuccess(ticket);
            return result;
          } catch (error) {
            // Judged before the slot is freed, so the next queued call already sees a circuit this failure opened.
            retryDelay = this.judgeFailure(error, ticket, budgetMs, attempt, context);
            throw error;
          }
        }, remaining, urgent || attempt > 0);
      } catch (error) {
        if (error instanceof DeadlineExceededError) throw this.deadlineError(operation, externalId, error);
        if (retryDelay === undefined || attempt >= this.config.retries || Date.now() + retryDelay + minimumCallMs > deadline) throw error;
        await sleep(retryDelay);
      }
    }
  }

  /** Tells the breaker what a failed call says about orq; returns how long to wait before a retry, or undefined for none. */
  private judgeFailure(error: unknown, ticket: BreakerTicket, budgetMs: number, attempt: number, context: TContext | undefined): number | undefined {
    if (!(error instanceof OrqApiError) || !error.isOutage) {
      // orq answered (a 4xx about this user): it is up, whatever the answer.
      if (error instanceof OrqApiError) this.breaker.recordSuccess(ticket);
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
    const pauseMs =
      error.kind === 'rate-limited' ? (error.retryAfterMs ?? this.config.cooldownMs)
      : error.kind === 'unauthorized' ? this.config.cooldownMs
      : undefined;
    if (this.breaker.recordFailure(ticket, pauseMs)) {
      const pause = Math.ceil(this.breaker.retryInMs / 1000);
      const opened = new OrqUnavailableError(
        `${error.message} Calls to orq are paused for ${pause} s; meanwhile requests go on without identities.`,
        'circuit-open', error.externalId, error,
      );
      this.report(opened, context);
      reportedErrors.add(error);
    }
    if (error.kind === 'unauthorized') return undefined;
    // A few ms past Retry-After, so the retry finds the pause over (timers may fire a little early against Date.now()).
    if (error.kind === 'rate-limited') return error.retryAfterMs === undefined ? undefined : error.retryAfterMs + 5;
    return jitteredBackoff(attempt);
  }

  /** Reports a failure unless it already was, or is the circuit being open (reported once, when it opened). */
  private reportBackgroundFailure(error: unknown, externalId: string, context: TContext | undefined): void {
    if (reportedErrors.has(error as object) || (error instanceof OrqUnavailableError && error.reason === 'circuit-open')) return;
    this.report(error instanceof OrqIdentityError ? error : wrapUnexpected(error, externalId), context);
  }

  /** Turns a lookup's failure into what waiting requests see, reporting it and remembering it for a while. */
  private failed(error: unknown, externalId: string, context: TContext | undefined): OrqIdentityError {
    if (error instanceof OrqUnavailableError && error.reason === 'circuit-open') return error;
    this.reportBackgroundFailure(error, externalId, context);
    const unavailable =
      error instanceof OrqUnavailableError ? error
      : new OrqUnavailableError(
        `No orq identity for user ${JSON.stringify(externalId)}: ${error instanceof Error ? error.message : String(error)}`,
        'failed', externalId, error,
      );
    if (!this.closed) this.failures?.set(externalId, unavailable);
    return unavailable;
  }

  private waitAtMost(lookup: Promise<OrqIdentity>, waitMs: number, externalId: string, context: TContext | undefined): Promise<OrqIdentity> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const error = new OrqUnavailableError(
          `orq did not answer for user ${JSON.stringify(externalId)} within timeoutMs (${waitMs} ms); the request goes on without ` +
            `an identity and the lookup continues in the background (at most lookupTimeoutMs, ${this.config.lookupTimeoutMs} ms) to fill the cache.`,
          'timeout', externalId,
        );
        this.reportOnce(`timeout:${externalId}`, error, context);
        reject(error);
      }, waitMs);
      lookup.then(
        (identity) => {
          clearTimeout(timer);
          resolve(identity);
        },
        (error: unknown) => {
          clearTimeout(timer);
          reject(error as Error);
        },
      );
    });
  }

  private syncProfile(identity: OrqIdentity, user: OrqUser, context: TContext | undefined): void {
    const changes = profileChanges(identity, user);
    if (changes === undefined) return;
    const externalId = identity.externalId;
    const update = this.call('update', externalId, Date.now() + this.config.lookupTimeoutMs, (options) =>
      this.api.update(externalId, changes, options), context,
    ).then(
      (updated) => this.replaceCached(externalId, updated, identity.metrics),
      (error: unknown) => this.reportBackgroundFailure(error, externalId, context),
    );
    this.track(update);
  }

  private refreshMetricsIfDue(identity: OrqIdentity, context: TContext | undefined): void {
    const refreshMs = this.config.metricsRefreshMs as number;
    const fetchedAt = this.metricsFetchedAt.get(identity);
    const now = Date.now();
    if (fetchedAt === undefined) {
      // Created identities carry no metrics yet: their first refresh is due one interval from now.
      this.metricsFetchedAt.set(identity, now);
      return;
    }
    if (now - fetchedAt < refreshMs || this.refreshing.has(identity.externalId) || this.closed) return;
    if (this.breaker.state === 'open') return;
    const externalId = identity.externalId;
    this.refreshing.add(externalId);
    const refresh = this.retrieve(externalId, now + this.config.lookupTimeoutMs, context).then(
      (fresh) => {
        // Whatever came back, the next refresh is one interval away: never a call per request.
        this.metricsFetchedAt.set(identity, Date.now());
        if (fresh === undefined) this.cache.delete(externalId);
        else this.replaceCached(externalId, fresh);
      },
      (error: unknown) => {
        // Try again one interval later rather than on the next request.
        this.metricsFetchedAt.set(identity, Date.now());
        this.reportBackgroundFailure(error, externalId, context);
      },
    ).finally(() => this.refreshing.delete(externalId));
    this.track(refresh);
  }

  /** Replaces a cached identity with a newer answer, keeping its cache lifetime: sync and refresh never extend it. */
  private replaceCached(externalId: string, fresh: OrqIdentity, keepMetrics?: OrqIdentity['metrics']): void {
    if (fresh.externalId !== externalId || !this.cache.has(externalId)) return;
    const next = fresh.metrics === undefined && keepMetrics !== undefined ? Object.freeze({ ...fresh, metrics: keepMetrics }) : fresh;
    const fetchedAt = this.metricsFetchedAt.get(fresh);
    if (fetchedAt !== undefined) this.metricsFetchedAt.set(next, fetchedAt);
    this.cache.set(externalId, next, { noUpdateTTL: true });
  }

  private circuitOpenError(externalId: string): OrqUnavailableError {
    return new OrqUnavailableError(
      `Calls to orq are paused after repeated failures (about ${Math.ceil(this.breaker.retryInMs / 1000)} s left); the request goes on without an identity.`,
      'circuit-open', externalId,
    );
  }

  private deadlineError(operation: OrqOperation, externalId: string, cause?: unknown): OrqApiError {
    return new OrqApiError(
      `orq ${operation} of user ${JSON.stringify(externalId)} did not finish within lookupTimeoutMs (${this.config.lookupTimeoutMs} ms).`,
      { operation, kind: 'timeout', externalId, cause },
    );
  }

  private track(promise: Promise<unknown>): void {
    const settled = promise.then(noop, noop);
    this.pending.add(settled);
    void settled.then(() => this.pending.delete(settled));
  }

  private report(error: OrqIdentityError, context: TContext | undefined): void {
    reportedErrors.add(error);
    this.config.onError(error, context as TContext);
  }

  private reportOnce(key: string, error: OrqIdentityError, context: TContext | undefined): void {
    if (this.recentReports?.has(key) === true) return;
    this.recentReports?.set(key, true);
    this.report(error, context);
  }
}

/** Errors already handed to onError, so one failure is reported once however many places see it. */
const reportedErrors = new WeakSet<object>();

function wrapUnexpected(error: unknown, externalId: string): OrqIdentityError {
  return new OrqUnavailableError(
    `Unexpected failure while resolving user ${JSON.stringify(externalId)}: ${error instanceof Error ? error.message : String(error)}`,
    'failed', externalId, error,
  );
}

/** Full jitter (AWS architecture blog, "Exponential Backoff And Jitter"), so retries of many lookups spread out. */
function jitteredBackoff(attempt: number): number {
  return Math.round(50 + Math.random() * 100 * 2 ** attempt);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function noop(): void {}
