// Counters behind stats(): plain numbers bumped where things happen, read into a fresh snapshot on demand.
import type { BreakerState } from '../calls/circuit-breaker.js';
import type { OrqOperation } from '../errors/orq-api-error.js';
import { OrqApiError } from '../errors/orq-api-error.js';
import type { BacklogStats } from '../registration/backlog.js';
import { callChannel, lookupChannel, type OrqCallOutcome, type OrqLookupOutcome } from './channels.js';

const operations: readonly OrqOperation[] = ['retrieve', 'create', 'update'];
// A record, not a list: a failure kind added to OrqFailureKind fails to compile here until stats() counts it.
const callOutcomeSet: Record<OrqCallOutcome, true> = {
  ok: true, 'not-found': true, http: true, 'rate-limited': true, unauthorized: true, network: true, timeout: true,
  'invalid-response': true, 'not-sent': true, unexpected: true,
};
const callOutcomes = Object.keys(callOutcomeSet) as OrqCallOutcome[];

/** A snapshot of one middleware's (or resolver's) state and counters since it was created. */
export interface OrqIdentityStats {
  cache: {
    /** Identities cached now. */
    size: number;
    max: number;
    /** Requests (or `cached()` calls) that found their user cached. */
    hits: number;
    /** Requests that did not, and so started, joined or were refused a lookup. */
    misses: number;
  };
  lookups: {
    /** Lookups started: at most one per user at a time. */
    started: number;
    /** Requests that joined a lookup already under way instead of starting one. */
    coalesced: number;
    inFlight: number;
    found: number;
    created: number;
    failed: number;
    /** What a lookup of a user unknown here calls first now (see the `lookupOrder` option). */
    order: 'retrieve-first' | 'create-first';
  };
  /** The call budget now: calls per window, and the limit orq announced (undefined until it did). Undefined with `budget: false`. */
  budget: { calls: number; windowMs: number; learnedLimit: number | undefined } | undefined;
  /** The registration backlog (fleet-wide length with `shared`). Undefined with `backlog: false`. */
  backlog: BacklogStats | undefined;
  /** Calls to orq, by operation and outcome (each retry counts; `not-sent` ones never left the process). */
  calls: Record<OrqOperation, Record<OrqCallOutcome, number>>;
  queue: {
    /** Calls to orq in flight now. */
    inFlight: number;
    /** Calls waiting for one of `maxConcurrency` slots. */
    queued: number;
    maxConcurrency: number;
    maxQueue: number;
  };
  circuit: {
    state: BreakerState;
    /** Milliseconds until calls may go again; 0 unless open. */
    retryInMs: number;
  };
  /** Lookups, profile syncs and metric refreshes still running (what close() waits for). */
  backgroundTasks: number;
}

/** What the counters cannot know by themselves, read at snapshot time. */
export interface LiveFigures {
  cacheSize: number;
  cacheMax: number;
  lookupsInFlight: number;
  inFlight: number;
  queued: number;
  maxConcurrency: number;
  maxQueue: number;
  circuit: BreakerState;
  retryInMs: number;
  backgroundTasks: number;
  order: 'retrieve-first' | 'create-first';
  budget: OrqIdentityStats['budget'];
  backlog: BacklogStats | undefined;
}

export class StatsCounters {
  hits = 0;
  misses = 0;
  lookupsStarted = 0;
  lookupsCoalesced = 0;
  private readonly lookupOutcomes: Record<OrqLookupOutcome, number> = { found: 0, created: 0, failed: 0 };
  private readonly calls = Object.fromEntries(
    operations.map((operation) => [operation, Object.fromEntries(callOutcomes.map((outcome) => [outcome, 0]))]),
  ) as Record<OrqOperation, Record<OrqCallOutcome, number>>;

  /**
   * Counts a call that was sent to orq, and publishes it. Not guarded by `hasSubscribers`: this follows an HTTP call,
   * beside which building the event costs nothing, and publishing to a channel nobody listens to does nothing.
   */
  call(operation: OrqOperation, startedAt: number, attempt: number, result: unknown, error?: unknown): void {
    // Only a retrieve answers undefined (no such user): a create or update that succeeds returns the identity.
    const outcome: OrqCallOutcome =
      error === undefined ? (result === undefined ? 'not-found' : 'ok')
      : error instanceof OrqApiError ? error.kind
      : 'unexpected';
    this.calls[operation][outcome] += 1;
    callChannel.publish({
      operation,
      outcome,
      statusCode: error instanceof OrqApiError ? error.statusCode : outcome === 'not-found' ? 404 : undefined,
      attempt,
      durationMs: performance.now() - startedAt,
    });
  }

  /** Counts a lookup that ended, and publishes it (unguarded, as for calls: a lookup is never on the hot path). */
  lookup(outcome: OrqLookupOutcome, startedAt: number, coalesced: number): void {
    this.lookupOutcomes[outcome] += 1;
    lookupChannel.publish({ outcome, durationMs: performance.now() - startedAt, coalesced });
  }

  snapshot(live: LiveFigures): OrqIdentityStats {
    const calls = {} as Record<OrqOperation, Record<OrqCallOutcome, number>>;
    for (const operation of operations) calls[operation] = { ...this.calls[operation] };
    return {
      cache: { size: live.cacheSize, max: live.cacheMax, hits: this.hits, misses: this.misses },
      lookups: {
        started: this.lookupsStarted,
        coalesced: this.lookupsCoalesced,
        inFlight: live.lookupsInFlight,
        ...this.lookupOutcomes,
        order: live.order,
      },
      calls,
      queue: { inFlight: live.inFlight, queued: live.queued, maxConcurrency: live.maxConcurrency, maxQueue: live.maxQueue },
      circuit: { state: live.circuit, retryInMs: live.retryInMs },
      backgroundTasks: live.backgroundTasks,
      budget: live.budget,
      backlog: live.backlog,
    };
  }
}
