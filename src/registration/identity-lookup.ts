// Finding one user's identity once the cache missed: the shared store, then orq once per fleet (the lease holder
// asks, the others read its answer), then the calls themselves: retrieve → create on a 404 → verify, or create
// first while users arrive new to orq (LookupOrder). Coalescing, failure memory and the backlog stay in the resolver.
import { LRUCache } from 'lru-cache';
import type { CallPriority } from '../calls/budget.js';
import type { CallPolicy, PrepaidCall } from '../calls/policy.js';
import { IdentityMismatchError } from '../errors/identity-mismatch-error.js';
import { OrqApiError } from '../errors/orq-api-error.js';
import type { IdentityApi } from '../orq-client.js';
import type { Reporter } from '../reporter.js';
import { fleetSingleFlight } from '../store/fleet-single-flight.js';
import { unavailable, type RedisStore, type StoredIdentity } from '../store/redis-store.js';
import type { OrqIdentity } from '../types.js';
import type { CheckedUser } from '../user.js';
import type { LookupOrder } from './lookup-order.js';

/** What one lookup did so far: whether it created the identity, and the room its first call may spend. */
export interface LookupProgress {
  created: boolean;
  prepaid: PrepaidCall | undefined;
}

export interface IdentityLookupDeps<TContext> {
  api: IdentityApi;
  policy: CallPolicy<TContext>;
  reporter: Reporter<TContext>;
  order: LookupOrder;
  store: RedisStore | undefined;
  lookupTimeoutMs: number;
  staleMs: number;
  /** Set when identities carry their 30-day metrics: every retrieve then asks for them. */
  metricsRefreshMs: number | undefined;
  /** How many users `knownAbsent` remembers: the cache's size. */
  maxUsers: number;
}

/**
 * A create refused as a duplicate, then a retrieve answering 404: orq has the user but the lookup did not reach
 * it. For an id with "/", "\\" or "%", a proxy on the way likely decoded the percent-encoded path segment.
 */
function mangledOrMissing(createError: OrqApiError, externalId: string): OrqApiError {
  if (!/[/\\%]/.test(externalId)) return createError;
  return new OrqApiError(
    `${createError.message} Retrieving user ${JSON.stringify(externalId)} then answered 404. If orq refused the create because the user exists, ` +
      'the lookup did not reach it: the id contains "/", "\\" or "%", and something between here and orq (a proxy, a gateway) probably decodes ' +
      'the percent-encoded path (%2F → /) and sends the lookup elsewhere. Configure it to pass encoded slashes through unchanged; until then this user has no identity.',
    { operation: 'retrieve', kind: 'http', externalId, statusCode: 404, cause: createError },
  );
}

export class IdentityLookup<TContext> {
  /**
   * Users orq answered 404 for whose lookup then failed (its create expired in the queue, or failed): their next
   * lookup goes straight to create, so an overloaded moment costs each user one retrieve, not one per attempt.
   */
  private readonly knownAbsent: LRUCache<string, true>;

  constructor(private readonly deps: IdentityLookupDeps<TContext>) {
    this.knownAbsent = new LRUCache({ max: deps.maxUsers, ttl: deps.lookupTimeoutMs * 60 });
  }

  /**
   * The shared store, then orq once per fleet: the lease holder looks the user up and writes the answer, the other
   * instances read it. Without a store, or while it fails, this process looks the user up itself.
   */
  async find(checked: CheckedUser, context: TContext | undefined, progress: LookupProgress, priority: CallPriority): Promise<StoredIdentity> {
    const { store, lookupTimeoutMs, staleMs } = this.deps;
    if (store === undefined) return { identity: await this.fromOrq(checked, context, progress, priority), fetchedAt: Date.now() };
    const externalId = checked.user.externalId;
    const shared = await store.readIdentity(externalId);
    if (shared !== undefined && shared !== unavailable) return shared;
    // Half the lookup's time to wait for another instance's answer, the rest to look it up here if none comes.
    const flight = await fleetSingleFlight(store, externalId, {
      leaseMs: lookupTimeoutMs, deadline: Date.now() + lookupTimeoutMs / 2, keepMs: staleMs, work: () => this.fromOrq(checked, context, progress, priority),
    });
    return flight.entry;
  }

  /** One retrieve by external id: the identity, or undefined on a 404. */
  retrieve(
    externalId: string, deadline: number, context: TContext | undefined, urgent = false, priority: CallPriority = 'lookup', prepaid?: PrepaidCall,
  ): Promise<OrqIdentity | undefined> {
    const { api, policy, metricsRefreshMs } = this.deps;
    const includeMetrics = metricsRefreshMs !== undefined;
    return policy.call('retrieve', externalId, deadline, (options) => api.retrieve(externalId, { ...options, includeMetrics }), context, urgent, priority, prepaid);
  }

  /**
   * retrieve → create on a 404 → verify the answer is this user's; or, while users arrive new to orq (LookupOrder),
   * create → retrieve on a conflict.
   */
  private async fromOrq(
    { user, dropped }: CheckedUser, context: TContext | undefined, progress: LookupProgress, priority: CallPriority,
  ): Promise<OrqIdentity> {
    const { api, policy, reporter, order } = this.deps;
    const externalId = user.externalId;
    const deadline = Date.now() + this.deps.lookupTimeoutMs;
    for (const problem of dropped) reporter.reportOnce(`dropped:${externalId}:${problem.field}`, problem, context);

    const knownAbsent = this.knownAbsent.has(externalId);
    const createFirst = !knownAbsent && order.createsFirst;
    if (!knownAbsent && !createFirst) {
      const found = await this.retrieve(externalId, deadline, context, false, priority, progress.prepaid);
      order.retrieved(found !== undefined);
      if (found !== undefined && found.externalId === externalId) return found;
      if (found !== undefined) reporter.report(new IdentityMismatchError(externalId, found.externalId), context);
      else this.knownAbsent.set(externalId, true);
    }

    let created: OrqIdentity;
    try {
      // Created first, the create is the lookup's first call and asks the budget as one; after a 404 it finishes one.
      created = await policy.call('create', externalId, deadline, (options) => api.create(user, options), context, !createFirst, priority, progress.prepaid);
    } catch (error) {
      // The documents say a create for an existing external id "will fail" but not with which 4xx:
      // whatever the status, another process may have won the race, so one more retrieve settles it.
      if (!(error instanceof OrqApiError) || error.kind !== 'http' || error.isOutage) throw error;
      // Created first and refused: users that exist in orq are arriving (a flushed store, another service's users).
      if (createFirst) order.conflicted();
      this.knownAbsent.delete(externalId);
      const existing = await this.retrieve(externalId, deadline, context, true, priority);
      if (existing === undefined) throw mangledOrMissing(error, externalId);
      if (existing.externalId !== externalId) throw new IdentityMismatchError(externalId, existing.externalId);
      return existing;
    }
    this.knownAbsent.delete(externalId);
    if (created.externalId !== externalId) throw new IdentityMismatchError(externalId, created.externalId);
    progress.created = true;
    return created;
  }
}
