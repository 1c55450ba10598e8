// The framework-free core: validate → cache → coalesce (one lookup per user in process) → find (registration/
// identity-lookup.ts: shared store, fleet single flight, retrieve → create → verify) → remember failures, queue
// deferred users in the backlog. How each call is made lives in calls/, reporting in reporter.ts, work after the
// answer (sync, stale-while-revalidate refreshes) in background-updates.ts.
import { LRUCache } from 'lru-cache';
import { BackgroundTasks } from './background-tasks.js';
import { BackgroundUpdates } from './background-updates.js';
import { openInstance } from './instances.js';
import { StatsCounters, type OrqIdentityStats } from './observability/stats.js';
import type { BreakerState } from './calls/circuit-breaker.js';
import { CallPolicy, type PrepaidCall } from './calls/policy.js';
import { InvalidUserError } from './errors/invalid-user-error.js';
import { OrqApiError } from './errors/orq-api-error.js';
import type { OrqIdentityError } from './errors/orq-identity-error.js';
import { OrqUnavailableError } from './errors/orq-unavailable-error.js';
import { resolveResolverConfig, type IdentityResolverOptions, type ResolverConfig } from './options.js';
import type { IdentityApi } from './orq-client.js';
import { Reporter } from './reporter.js';
import { RegistrationBacklog, type RegisterOutcome } from './registration/backlog.js';
import { IdentityLookup, type LookupProgress } from './registration/identity-lookup.js';
import { LookupOrder } from './registration/lookup-order.js';
import type { StoredIdentity } from './store/redis-store.js';
import type { OrqIdentity, OrqUser } from './types.js';
import { checkUser, errorText, externalIdOf, externalIdProblem, type CheckedUser, type UserLike } from './user.js';

/** A user to resolve: an OrqUser, or its external id (a string or a safe integer). */
export type ResolvableUser = Exclude<UserLike, null | undefined>;

export interface CloseOptions {
  /** The longest close waits for background lookups and updates. Defaults to `5_000`. */
  timeoutMs?: number | undefined;
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
  resolve(user: ResolvableUser, context?: TContext, waitMs?: number): Promise<OrqIdentity>;
  /** Stops new lookups and waits, at most `timeoutMs`, for the ones in flight. Resolves to how many were still pending. */
  close(options?: CloseOptions): Promise<{ pending: number }>;
  /** The circuit breaker's state, for health checks and dashboards. */
  readonly circuit: BreakerState;
  /** A plain snapshot of the cache, lookups, calls to orq, queue and circuit: cheap enough for a health endpoint. */
  stats(): OrqIdentityStats;
}

/**
 * A lookup that failed for want of room or of orq (the budget, a pause, a full queue, an outage), not because of
 * the user: the user waits in the backlog instead of for its next request.
 */
function isDeferral(error: unknown): boolean {
  if (error instanceof OrqUnavailableError) return error.reason === 'budget' || error.reason === 'circuit-open' || error.reason === 'overloaded';
  return error instanceof OrqApiError && error.isOutage;
}

/** Where a lookup started: a request's cache miss, or the backlog registering a user deferred earlier. */
type LookupSource = 'request' | 'backlog';

/** Creates the core that resolves users to identities; `orqIdentity` is a thin Express adapter over it. */
export function createIdentityResolver<TContext = undefined>(
  options: IdentityResolverOptions<TContext> = {},
): IdentityResolver<TContext> {
  return new Resolver(resolveResolverConfig(options, 'createIdentityResolver'));
}

export class Resolver<TContext> implements IdentityResolver<TContext> {
  private readonly cache: LRUCache<string, OrqIdentity>;
  private readonly api: IdentityApi;
  private readonly reporter: Reporter<TContext>;
  private readonly policy: CallPolicy<TContext>;
  private readonly tasks = new BackgroundTasks();
  private readonly updates: BackgroundUpdates<TContext>;
  /** One lookup per external id at a time, however many requests ask: the coalescing. */
  private readonly lookups = new Map<string, Promise<OrqIdentity>>();
  /** How many requests joined each running lookup, for its event. */
  private readonly joined = new Map<string, number>();
  private readonly counters = new StatsCounters();
  /** Recent failures per user, so a broken user does not cost a call on every request. */
  private readonly failures: LRUCache<string, OrqUnavailableError> | undefined;
  private closed = false;
  private readonly releaseInstance: () => void;
  private readonly stopObservingLimits: () => void;
  private readonly order: LookupOrder;
  private readonly identities: IdentityLookup<TContext>;
  private readonly backlog: RegistrationBacklog | undefined;

  constructor(private readonly config: ResolverConfig<TContext>) {
    this.releaseInstance = openInstance(config.orqTarget, config.caller);
    this.cache = config.cache;
    this.api = config.api;
    const memory = config.failureMemoryMs > 0 ? { max: config.cache.max || 10_000, ttl: config.failureMemoryMs } : undefined;
    this.reporter = new Reporter(config.onError, memory);
    this.failures = memory === undefined ? undefined : new LRUCache(memory);
    this.policy = new CallPolicy(config, this.reporter, this.counters);
    this.stopObservingLimits = this.api.observeRateLimits((info) => this.policy.learnRateLimit(info));
    this.order = new LookupOrder(config.lookupOrder === 'adaptive');
    this.identities = new IdentityLookup({
      api: this.api, policy: this.policy, reporter: this.reporter, order: this.order, store: config.store,
      lookupTimeoutMs: config.lookupTimeoutMs, staleMs: config.staleMs, metricsRefreshMs: config.metricsRefreshMs, maxUsers: config.cache.max || 10_000,
    });
    this.backlog =
      config.backlog === undefined ? undefined
      : new RegistrationBacklog(config.backlog, {
        store: config.store,
        register: (user) => this.registerFromBacklog(user),
        isRegistered: (externalId) => this.cache.has(externalId),
        pace: () => {
          const budget = this.policy.budgetFigures;
          return { calls: budget?.calls ?? config.maxConcurrency * 60, windowMs: budget?.windowMs ?? 60_000, callsPerUser: this.order.createsFirst ? 1 : 2 };
        },
        // A few at a time: registrations wait for the budget, and must leave the concurrency limit to requests' lookups.
        workers: Math.max(1, Math.min(4, Math.floor(config.maxConcurrency / 2))),
        pausedForMs: () => (this.policy.isOpen ? this.policy.retryInMs : 0),
      });
    this.updates = new BackgroundUpdates({
      cache: this.cache,
      api: this.api,
      policy: this.policy,
      reporter: this.reporter,
      tasks: this.tasks,
      store: config.store,
      lookupTimeoutMs: config.lookupTimeoutMs,
      freshMs: config.freshMs,
      staleMs: config.staleMs,
      metricsRefreshMs: config.metricsRefreshMs,
      retrieve: (externalId, deadline, context, priority) => this.identities.retrieve(externalId, deadline, context, false, priority),
      isClosed: () => this.closed,
    });
  }

  get circuit(): BreakerState {
    return this.policy.circuit;
  }

  /** Reports a failure found outside the resolver (getUser's), through the same once-per-window aggregation. */
  report(error: OrqIdentityError, context: TContext | undefined): void {
    this.reporter.report(error, context);
  }

  cached(externalId: string, context?: TContext): OrqIdentity | undefined {
    const identity = this.cache.get(externalId);
    if (identity === undefined) {
      this.counters.misses++;
      return undefined;
    }
    this.counters.hits++;
    this.updates.refreshIfDue(identity, context);
    return identity;
  }

  stats(): OrqIdentityStats {
    return this.counters.snapshot({
      cacheSize: this.cache.size,
      cacheMax: this.cache.max,
      lookupsInFlight: this.lookups.size,
      inFlight: this.policy.inFlight,
      queued: this.policy.queued,
      maxConcurrency: this.config.maxConcurrency,
      maxQueue: this.config.maxQueue,
      circuit: this.policy.circuit,
      retryInMs: this.policy.retryInMs,
      backgroundTasks: this.tasks.size,
      order: this.order.name,
      budget: this.policy.budgetFigures,
      backlog: this.backlog?.stats(),
    });
  }

  isBackingOff(externalId: string): boolean {
    // A request joins a registration under way (the backlog's too), for at most timeoutMs like any lookup.
    if (this.lookups.has(externalId)) return false;
    if (this.backlog?.has(externalId) === true) return true;
    if (this.policy.isOpen) {
      // Skipped without a lookup while calls are paused: queued by id (once), so it is registered when they resume.
      if (this.backlog !== undefined && externalIdProblem(externalId) === undefined) this.backlog.add({ externalId });
      return true;
    }
    return this.failures?.has(externalId) === true;
  }

  resolve(found: ResolvableUser, context?: TContext, waitMs?: number): Promise<OrqIdentity> {
    // The cache and the failure memory only ever hold checked ids, so they are asked before any checking.
    // externalIdOf reads the id once and never throws, whatever getters or Proxies the app hands in.
    const id = externalIdOf(found);
    if (typeof id === 'string') {
      const hit = this.cached(id, context);
      if (hit !== undefined) return Promise.resolve(hit);
    }
    return this.resolveUncached(found, context, waitMs);
  }

  /** resolve() for a caller that has just asked cached() and missed (the middleware), so the miss counts once. */
  resolveUncached(found: ResolvableUser, context?: TContext, waitMs?: number): Promise<OrqIdentity> {
    const id = externalIdOf(found);
    if (typeof id === 'string') {
      const recentFailure = this.failures?.get(id);
      if (recentFailure !== undefined) return Promise.reject(recentFailure);
    }
    let checked: CheckedUser;
    try {
      checked = checkUser(found);
    } catch (error) {
      const invalid = error as InvalidUserError;
      this.reporter.reportOnce(`invalid:${String(invalid.externalId)}:${invalid.message}`, invalid, context);
      return Promise.reject(invalid);
    }
    const externalId = checked.user.externalId;
    let lookup = this.lookups.get(externalId);
    if (lookup === undefined) lookup = this.startLookup(checked, context);
    else {
      this.counters.lookupsCoalesced++;
      this.joined.set(externalId, (this.joined.get(externalId) ?? 0) + 1);
    }
    return waitMs === undefined ? lookup : this.waitAtMost(lookup, waitMs, externalId, context);
  }

  async close({ timeoutMs = 5_000 }: CloseOptions = {}): Promise<{ pending: number }> {
    this.closed = true;
    this.releaseInstance();
    this.stopObservingLimits();
    this.backlog?.close();
    const pending = await this.tasks.drain(timeoutMs);
    this.reporter.flush();
    return { pending };
  }

  private startLookup(checked: CheckedUser, context: TContext | undefined, source: LookupSource = 'request', prepaid?: PrepaidCall): Promise<OrqIdentity> {
    const externalId = checked.user.externalId;
    if (this.closed) {
      return Promise.reject(new OrqUnavailableError('The identity resolver is closed; no new lookups start.', 'closed', externalId));
    }
    if (this.policy.isOpen) {
      if (source === 'request') this.backlog?.add(checked.user);
      if (prepaid !== undefined) this.policy.release(prepaid);
      return Promise.reject(this.policy.circuitOpenError(externalId));
    }

    this.counters.lookupsStarted++;
    const startedAt = performance.now();
    const progress: LookupProgress = { created: false, prepaid };
    const ended = (outcome: 'found' | 'created' | 'failed'): void => {
      this.counters.lookup(outcome, startedAt, this.joined.get(externalId) ?? 0);
      this.joined.delete(externalId);
    };
    // One chain with one catch: anything thrown after orq answered (an oversized identity, an app's own cache
    // refusing the entry) is a failed lookup too, reported and remembered like an orq failure.
    const lookup = this.identities.find(checked, context, progress, source === 'backlog' ? 'backlog' : 'lookup')
      .then((stored) => {
        const { identity, fetchedAt } = this.refuseOversized(stored);
        // An answer another instance fetched earlier is usable for what is left of its staleMs, not a whole new one.
        this.updates.keep(externalId, identity, fetchedAt, Date.now());
        if (this.config.syncProfile) this.updates.syncProfile(identity, checked.user, context);
        ended(progress.created ? 'created' : 'found');
        if (prepaid !== undefined) this.policy.release(prepaid);
        return identity;
      })
      .catch((error: unknown) => {
        ended('failed');
        // Room taken for a call never made (the answer came from the store, or the lookup failed before it).
        if (prepaid !== undefined) this.policy.release(prepaid);
        if (this.backlog !== undefined && isDeferral(error) && !this.closed) {
          // The backlog's own registrations go back into it (registerFromBacklog); a request's user joins it.
          if (source === 'backlog') throw error;
          this.backlog.add(checked.user);
        }
        throw this.failed(error, externalId, context);
      });
    this.lookups.set(externalId, lookup);
    this.tasks.track(lookup.finally(() => this.lookups.delete(externalId)));
    return lookup;
  }

  /** Registers one user the backlog kept: what became of it decides whether it goes back in. */
  private async registerFromBacklog(user: OrqUser): Promise<RegisterOutcome> {
    if (this.closed) return { kind: 'failed' };
    let checked: CheckedUser;
    try {
      // Checked again: a user from the fleet's backlog came through Redis, and is trusted no more than getUser's.
      checked = checkUser(user);
    } catch (error) {
      const invalid = error as InvalidUserError;
      this.reporter.reportOnce(`invalid:${String(invalid.externalId)}:${invalid.message}`, invalid, undefined);
      return { kind: 'failed' };
    }
    try {
      const externalId = checked.user.externalId;
      let lookup = this.lookups.get(externalId);
      if (lookup === undefined) {
        // Room first, then the lookup: while it waits for room, the user's requests go on at once (isBackingOff)
        // instead of joining a lookup (here, or through the fleet's lease) that would keep them waiting.
        const prepaid = await this.policy.prepay('backlog', externalId, Date.now() + this.config.lookupTimeoutMs, undefined);
        lookup = this.lookups.get(externalId);
        if (lookup !== undefined || this.cache.has(externalId)) this.policy.release(prepaid);
        else lookup = this.startLookup(checked, undefined, 'backlog', prepaid);
      }
      await lookup;
      this.failures?.delete(checked.user.externalId);
      return { kind: 'registered' };
    } catch (error) {
      if (!isDeferral(error) || this.closed) return { kind: 'failed' };
      // After a pause, when it ends; after a budget refusal (which waited for room up to the lookup's deadline), soon.
      return { kind: 'deferred', retryInMs: Math.max(this.policy.retryInMs, 250) };
    }
  }

  /** An identity too large to cache is not attached either: attaching it would cost a lookup per request. */
  private refuseOversized(stored: StoredIdentity): StoredIdentity {
    const { identity } = stored;
    const { sizeCalculation, maxEntrySize } = this.cache;
    // lru-cache refuses a sizeCalculation without a positive maxEntrySize (which defaults to maxSize).
    if (sizeCalculation === undefined) return stored;
    const size = sizeCalculation(identity, identity.externalId);
    if (size <= maxEntrySize) return stored;
    throw new OrqUnavailableError(
      `orq's identity of user ${JSON.stringify(identity.externalId)} is ${size} bytes (as JSON), over cache.maxEntryBytes (${maxEntrySize}); ` +
        'it is neither cached nor attached. Keep large data out of identity metadata, or raise cache.maxEntryBytes.',
      'failed', identity.externalId,
    );
  }

  /** Turns a lookup's failure into what waiting requests see, reporting it and remembering it for a while. */
  private failed(error: unknown, externalId: string, context: TContext | undefined): OrqIdentityError {
    if (error instanceof OrqUnavailableError && error.reason === 'circuit-open') return error;
    this.reporter.reportBackgroundFailure(error, externalId, context);
    const unavailable =
      error instanceof OrqUnavailableError ? error
      : new OrqUnavailableError(
        `No orq identity for user ${JSON.stringify(externalId)}: ${errorText(error)}`,
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
        this.reporter.reportOnce(`timeout:${externalId}`, error, context);
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
}
