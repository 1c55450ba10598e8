// Keeping cached identities current without a request waiting: profile sync (PATCH), and the refresh of identities
// past their freshness (stale-while-revalidate) or metrics interval, done once per fleet when a shared store is set.
import type { LRUCache } from 'lru-cache';
import type { BackgroundTasks } from './background-tasks.js';
import type { CallPriority } from './calls/budget.js';
import type { CallPolicy } from './calls/policy.js';
import type { IdentityApi } from './orq-client.js';
import { IdentityMismatchError } from './errors/identity-mismatch-error.js';
import { OrqUnavailableError } from './errors/orq-unavailable-error.js';
import { profileChanges } from './profile.js';
import type { Reporter } from './reporter.js';
import { unavailable, type RedisStore } from './store/redis-store.js';
import type { OrqIdentity, OrqUser } from './types.js';

export interface BackgroundUpdatesDeps<TContext> {
  cache: LRUCache<string, OrqIdentity>;
  api: IdentityApi;
  policy: CallPolicy<TContext>;
  reporter: Reporter<TContext>;
  tasks: BackgroundTasks;
  store: RedisStore | undefined;
  lookupTimeoutMs: number;
  freshMs: number;
  staleMs: number;
  /** undefined when metrics are off. */
  metricsRefreshMs: number | undefined;
  /** The resolver's retrieve, through the call policy. */
  retrieve: (externalId: string, deadline: number, context: TContext | undefined, priority: CallPriority) => Promise<OrqIdentity | undefined>;
  isClosed: () => boolean;
}

/** While another instance holds the refresh lease, look at the store again this soon for its answer. */
const fleetRecheckMs = 2_000;
/** A refresh that failed is tried again after this (or the refresh interval, if shorter): the identity stays usable meanwhile. */
const failedRefreshRetryMs = 60_000;

export class BackgroundUpdates<TContext> {
  /** When each cached identity (the object orq's answer became) is next due for a refresh, in epoch ms. */
  private readonly dueAt = new WeakMap<OrqIdentity, number>();
  private readonly refreshing = new Set<string>();
  private readonly intervalMs: number;

  constructor(private readonly deps: BackgroundUpdatesDeps<TContext>) {
    this.intervalMs = Math.min(deps.freshMs, deps.metricsRefreshMs ?? Infinity);
  }

  /**
   * On every cache hit: one WeakMap read and one clock read, and a background refresh when the identity is due.
   * The request is served the identity it found either way.
   */
  refreshIfDue(identity: OrqIdentity, context: TContext | undefined): void {
    const due = this.dueAt.get(identity);
    if (due === undefined) {
      // An identity put in the cache by someone else (the app's own LRUCache): fresh from first sight.
      this.dueAt.set(identity, Date.now() + this.intervalMs);
      return;
    }
    if (due > Date.now()) return;
    this.startRefresh(identity, context);
  }

  /** Sends orq the profile fields `user` has and `identity` lacks or differs in, if any. */
  syncProfile(identity: OrqIdentity, user: OrqUser, context: TContext | undefined): void {
    const changes = profileChanges(identity, user);
    if (changes === undefined) return;
    const { api, policy, reporter, lookupTimeoutMs, store } = this.deps;
    const externalId = identity.externalId;
    const update = (async () => {
      // One PATCH per fleet: the lease is left to expire, so instances that read the pre-PATCH answer meanwhile skip it.
      if (store !== undefined && (await store.acquireLease(externalId, 'sync', lookupTimeoutMs)) === undefined) return;
      const updated = await policy.call('update', externalId, Date.now() + lookupTimeoutMs, (options) =>
        // By the orq id this answer came with: PATCH by external id would reach another identity whose orq id it is.
        api.update(identity, changes, options), context, false, 'sync',
      );
      const kept = this.replaceCached(externalId, updated, identity.metrics);
      if (kept !== undefined) void store?.writeIdentity({ identity: kept, fetchedAt: Date.now() }, this.deps.staleMs);
    })().catch((error: unknown) => reporter.reportBackgroundFailure(error, externalId, context));
    this.deps.tasks.track(update);
  }

  private startRefresh(identity: OrqIdentity, context: TContext | undefined): void {
    const externalId = identity.externalId;
    // Not while the circuit is open or its probe is out: the call would be refused, and the identity stays due.
    const { policy } = this.deps;
    if (this.refreshing.has(externalId) || this.deps.isClosed() || policy.isOpen || policy.probing) return;
    this.refreshing.add(externalId);
    const refresh = this.refresh(identity, context).catch((error: unknown) => {
      // Held back by the circuit (its probe went out, or the fleet paused, since the check above): nothing reached
      // orq, so it stays due and the first request after the circuit closes refreshes it. A real failure is tried
      // again a while later instead.
      if (error instanceof OrqUnavailableError && error.reason === 'circuit-open') return;
      this.dueAt.set(identity, Date.now() + Math.min(this.intervalMs, failedRefreshRetryMs));
      this.deps.reporter.reportBackgroundFailure(error, externalId, context);
    }).finally(() => this.refreshing.delete(externalId));
    this.deps.tasks.track(refresh);
  }

  private async refresh(identity: OrqIdentity, context: TContext | undefined): Promise<void> {
    const { store, lookupTimeoutMs } = this.deps;
    const externalId = identity.externalId;
    if (store !== undefined) {
      const shared = await store.readIdentity(externalId);
      const now = Date.now();
      if (shared !== unavailable && shared !== undefined && shared.fetchedAt + this.intervalMs > now) {
        // Another instance refreshed it already: its answer costs no call.
        this.keep(externalId, shared.identity, shared.fetchedAt, now);
        return;
      }
      const lease = await store.acquireLease(externalId, 'refresh', lookupTimeoutMs);
      if (lease === undefined) {
        // Another instance is refreshing it: look for its answer in a moment.
        this.dueAt.set(identity, Date.now() + Math.min(this.intervalMs, fleetRecheckMs));
        return;
      }
      try {
        await this.refreshFromOrq(identity, context);
      } finally {
        if (lease !== unavailable) await store.releaseLease(externalId, 'refresh', lease);
      }
      return;
    }
    await this.refreshFromOrq(identity, context);
  }

  private async refreshFromOrq(identity: OrqIdentity, context: TContext | undefined): Promise<void> {
    const externalId = identity.externalId;
    const fresh = await this.deps.retrieve(externalId, Date.now() + this.deps.lookupTimeoutMs, context, 'background');
    if (fresh === undefined) {
      // Deleted in orq: dropped here and from the store, and registered again on the user's next request.
      this.deps.cache.delete(externalId);
      await this.deps.store?.deleteIdentity(externalId);
      return;
    }
    const fetchedAt = Date.now();
    this.keep(externalId, fresh, fetchedAt, fetchedAt);
    await this.deps.store?.writeIdentity({ identity: fresh, fetchedAt }, this.deps.staleMs);
  }

  /**
   * Puts an answer of orq's in the cache (a lookup's, a refresh's, or another instance's from the store): usable for
   * what is left of `staleMs` since orq gave it, and fresh for one refresh interval from then.
   * @param now the time its age was judged by (one clock reading for both decisions)
   * @throws IdentityMismatchError for another user's identity (a retrieve by external id also finds an identity whose
   *   orq id it is), so a refresh counts as failed and is tried again later, not on every request.
   */
  keep(externalId: string, fresh: OrqIdentity, fetchedAt: number, now: number): void {
    if (fresh.externalId !== externalId) throw new IdentityMismatchError(externalId, fresh.externalId);
    // Never longer than staleMs (an instance whose clock runs ahead stored it), never 0 (lru-cache's "no expiry").
    const usableMs = Math.max(1, Math.min(this.deps.staleMs, this.deps.staleMs - (now - fetchedAt)));
    this.deps.cache.set(externalId, fresh, { ttl: usableMs });
    this.dueAt.set(fresh, fetchedAt + this.intervalMs);
  }

  /** Replaces a cached identity with a PATCH answer, keeping its cache lifetime and refresh time. */
  private replaceCached(externalId: string, fresh: OrqIdentity, keepMetrics?: OrqIdentity['metrics']): OrqIdentity | undefined {
    const cache = this.deps.cache;
    const current = cache.get(externalId);
    if (fresh.externalId !== externalId || current === undefined) return undefined;
    const next = fresh.metrics === undefined && keepMetrics !== undefined ? Object.freeze({ ...fresh, metrics: keepMetrics }) : fresh;
    const due = this.dueAt.get(current);
    if (due !== undefined) this.dueAt.set(next, due);
    cache.set(externalId, next, { noUpdateTTL: true });
    return next;
  }
}
