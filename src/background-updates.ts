// Keeping cached identities current without a request waiting: profile sync (PATCH) and metrics refresh.
import type { LRUCache } from 'lru-cache';
import type { BackgroundTasks } from './background-tasks.js';
import type { CallPolicy } from './calls/policy.js';
import type { IdentityApi } from './orq-client.js';
import { profileChanges } from './profile.js';
import type { Reporter } from './reporter.js';
import type { OrqIdentity, OrqUser } from './types.js';

export interface BackgroundUpdatesDeps<TContext> {
  cache: LRUCache<string, OrqIdentity>;
  api: IdentityApi;
  policy: CallPolicy<TContext>;
  reporter: Reporter<TContext>;
  tasks: BackgroundTasks;
  lookupTimeoutMs: number;
  /** undefined when metrics are off. */
  metricsRefreshMs: number | undefined;
  /** The resolver's retrieve (through the call policy), which also notes when metrics were fetched. */
  retrieve: (externalId: string, deadline: number, context: TContext | undefined) => Promise<OrqIdentity | undefined>;
  isClosed: () => boolean;
}

export class BackgroundUpdates<TContext> {
  private readonly metricsFetchedAt = new WeakMap<OrqIdentity, number>();
  private readonly refreshing = new Set<string>();

  constructor(private readonly deps: BackgroundUpdatesDeps<TContext>) {}

  /** Records that `identity` carries metrics fetched just now. */
  noteMetricsFetched(identity: OrqIdentity): void {
    this.metricsFetchedAt.set(identity, Date.now());
  }

  /** Sends orq the profile fields `user` has and `identity` lacks or differs in, if any. */
  syncProfile(identity: OrqIdentity, user: OrqUser, context: TContext | undefined): void {
    const changes = profileChanges(identity, user);
    if (changes === undefined) return;
    const { api, policy, reporter, lookupTimeoutMs } = this.deps;
    const externalId = identity.externalId;
    const update = policy.call('update', externalId, Date.now() + lookupTimeoutMs, (options) =>
      api.update(externalId, changes, options), context,
    ).then(
      (updated) => this.replaceCached(externalId, updated, identity.metrics),
      (error: unknown) => reporter.reportBackgroundFailure(error, externalId, context),
    );
    this.deps.tasks.track(update);
  }

  /** Starts a background retrieve of a cached identity whose metrics are older than metricsRefreshMs. */
  refreshMetricsIfDue(identity: OrqIdentity, context: TContext | undefined): void {
    const refreshMs = this.deps.metricsRefreshMs as number;
    const fetchedAt = this.metricsFetchedAt.get(identity);
    const now = Date.now();
    if (fetchedAt === undefined) {
      // Created identities carry no metrics yet: their first refresh is due one interval from now.
      this.metricsFetchedAt.set(identity, now);
      return;
    }
    if (now - fetchedAt < refreshMs || this.refreshing.has(identity.externalId) || this.deps.isClosed()) return;
    if (this.deps.policy.isOpen) return;
    const externalId = identity.externalId;
    this.refreshing.add(externalId);
    const refresh = this.deps.retrieve(externalId, now + this.deps.lookupTimeoutMs, context).then(
      (fresh) => {
        // Whatever came back, the next refresh is one interval away: never a call per request.
        this.metricsFetchedAt.set(identity, Date.now());
        if (fresh === undefined) this.deps.cache.delete(externalId);
        else this.replaceCached(externalId, fresh);
      },
      (error: unknown) => {
        // Try again one interval later rather than on the next request.
        this.metricsFetchedAt.set(identity, Date.now());
        this.deps.reporter.reportBackgroundFailure(error, externalId, context);
      },
    ).finally(() => this.refreshing.delete(externalId));
    this.deps.tasks.track(refresh);
  }

  /** Replaces a cached identity with a newer answer, keeping its cache lifetime: sync and refresh never extend it. */
  private replaceCached(externalId: string, fresh: OrqIdentity, keepMetrics?: OrqIdentity['metrics']): void {
    const cache = this.deps.cache;
    if (fresh.externalId !== externalId || !cache.has(externalId)) return;
    const next = fresh.metrics === undefined && keepMetrics !== undefined ? Object.freeze({ ...fresh, metrics: keepMetrics }) : fresh;
    const fetchedAt = this.metricsFetchedAt.get(fresh);
    if (fetchedAt !== undefined) this.metricsFetchedAt.set(next, fetchedAt);
    cache.set(externalId, next, { noUpdateTTL: true });
  }
}
