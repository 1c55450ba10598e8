// The registration backlog: users whose lookup had no room in the budget (or met a short outage) wait here, most
// recently active first, and are registered in the background as the budget allows, so their next request finds
// the identity cached. With the shared store the backlog is the fleet's (in Redis): each user is taken by one instance.
import { LRUCache } from 'lru-cache';
import { backlogChannel } from '../observability/channels.js';
import { unavailable, type RedisStore } from '../store/redis-store.js';
import type { OrqUser } from '../types.js';

export interface BacklogLimits {
  /** Most users waiting; past it the least recently active falls out. */
  maxEntries: number;
  /** Most memory the waiting users' profiles may take here (the length of their JSON). */
  maxBytes: number;
  /** A user not active for this long falls out: it is looked up again on its next request, if it comes. */
  maxIdleMs: number;
}

/** What registering one waiting user came to. */
export type RegisterOutcome =
  | { kind: 'registered' }
  /** No room or no orq now: the user goes back, and the backlog waits `retryInMs` before the next. */
  | { kind: 'deferred'; retryInMs: number }
  /** Refused for good (orq refused the user's data): it is dropped, reported by the resolver. */
  | { kind: 'failed' };

export interface BacklogDependencies {
  store: RedisStore | undefined;
  register(user: OrqUser): Promise<RegisterOutcome>;
  /** True when the user has an identity here already (registered by a request, or by another instance). */
  isRegistered(externalId: string): boolean;
  /** Calls per window and calls one registration costs now, for the estimate of when the backlog drains. */
  pace(): { calls: number; windowMs: number; callsPerUser: number };
  /** How many users are registered at once from the backlog. */
  workers: number;
  /** Milliseconds until calls to orq may go again (a pause after a 429, an open circuit); 0 while they may. */
  pausedForMs(): number;
}

export interface BacklogStats {
  /** Users waiting to be registered (fleet-wide with `shared`, as the store last said). */
  length: number;
  /** How long ago the least recently active waiting user was active: it is registered last. 0 when empty. */
  oldestMs: number;
  /** Estimate, at the budget's pace, of when the backlog is empty; 0 when it is. */
  drainInMs: number;
  /** Users this process took off the backlog and is registering now (waiting for room, or for orq's answer). */
  registering: number;
  /** Users registered from the backlog, by this process. */
  registered: number;
  /** Users that fell out (inactive past maxIdleMs, or pushed out past maxEntries/maxBytes) before they were registered. */
  dropped: number;
}

/** A waiting user, and when it was last active (epoch ms). */
interface Waiting {
  user: OrqUser;
  activeAt: number;
}

/** How long a user this process queued in the fleet's backlog is taken as still waiting, without asking Redis. */
const fleetMemoryMs = 10_000;
/** How often an idle process looks for users other instances left in the fleet's backlog. */
const fleetPollMs = 5_000;
/** A profile larger than this is stored in the fleet's backlog by id alone (the profile sync sends the rest later). */
const maxStoredProfileChars = 4_096;

export class RegistrationBacklog {
  private readonly local: LRUCache<string, Waiting>;
  /**
   * Users this process queued in the fleet's backlog a moment ago, so a request deferred again costs no second Redis
   * call. Not a reason to skip a request's lookup: another instance may have registered the user since.
   */
  private readonly queuedInFleet: LRUCache<string, true>;
  private running = 0;
  private closed = false;
  private registered = 0;
  private droppedHere = 0;
  private droppedInFleet = 0;
  /** The fleet backlog's length and oldest age as the store last told them (stats() is synchronous). */
  private fleetLength = 0;
  private fleetOldestMs = 0;
  /** When the backlog last went from empty to not: a drain is published once per such period. */
  private busySince: number | undefined;
  private registeredSinceBusy = 0;
  private registering = 0;
  private readonly poll: NodeJS.Timeout | undefined;
  private resumeTimer: NodeJS.Timeout | undefined;
  /** Workers pausing after a deferral, woken early by close(). */
  private readonly sleepers = new Set<() => void>();

  constructor(
    private readonly limits: BacklogLimits,
    private readonly deps: BacklogDependencies,
  ) {
    this.local = new LRUCache<string, Waiting>({
      max: limits.maxEntries,
      maxSize: limits.maxBytes,
      sizeCalculation: (waiting) => Math.max(1, JSON.stringify(waiting.user).length),
      ttl: limits.maxIdleMs,
      dispose: (_waiting, _id, reason) => {
        if (reason === 'evict' || reason === 'expire') this.droppedHere += 1;
      },
    });
    this.queuedInFleet = new LRUCache<string, true>({ max: limits.maxEntries, ttl: fleetMemoryMs });
    if (deps.store !== undefined) {
      // One worker, and only when none runs: an idle fleet costs each instance one Redis call per poll.
      this.poll = setInterval(() => this.kick(1), fleetPollMs);
      this.poll.unref();
    }
  }

  /** Whether this user is waiting in this process's own backlog (not the fleet's, which may have moved on). Synchronous. */
  has(externalId: string): boolean {
    return this.local.has(externalId);
  }

  /** Queues a user (or makes it the most recently active again) and starts registering if nothing is. */
  add(user: OrqUser): void {
    if (this.closed) return;
    this.markBusy();
    const store = this.deps.store;
    if (store !== undefined && store.available) {
      if (this.queuedInFleet.has(user.externalId)) return;
      this.queuedInFleet.set(user.externalId, true);
      void this.addToFleet(store, user);
      return;
    }
    this.local.set(user.externalId, { user, activeAt: Date.now() });
    this.kick();
  }

  stats(): BacklogStats {
    const length = this.local.size + this.fleetLength;
    let oldestMs = this.fleetOldestMs;
    // The least recently active comes first in reverse order: one step, not a scan.
    const leastRecent = this.local.rvalues().next().value as Waiting | undefined;
    if (leastRecent !== undefined) oldestMs = Math.max(oldestMs, Date.now() - leastRecent.activeAt);
    const { calls, windowMs, callsPerUser } = this.deps.pace();
    return {
      length,
      oldestMs: length === 0 ? 0 : oldestMs,
      drainInMs: length === 0 ? 0 : Math.ceil((length * callsPerUser * windowMs) / Math.max(1, calls)),
      registering: this.registering,
      registered: this.registered,
      dropped: this.droppedHere + this.droppedInFleet,
    };
  }

  /** Stops registering; users still waiting here are left (their next request looks them up again). */
  close(): void {
    this.closed = true;
    if (this.poll !== undefined) clearInterval(this.poll);
    clearTimeout(this.resumeTimer);
    for (const wake of this.sleepers) wake();
  }

  /** Starts workers up to `workers` (or `count`); each takes users until none is left. */
  kick(count = this.deps.workers): void {
    // During a pause a worker could only wait: one timer (no promise, nothing per request) starts them when it ends.
    const pausedMs = this.deps.pausedForMs();
    if (pausedMs > 0) {
      if (this.resumeTimer === undefined && !this.closed) {
        this.resumeTimer = setTimeout(() => {
          this.resumeTimer = undefined;
          this.kick();
        }, pausedMs + 5);
        this.resumeTimer.unref();
      }
      return;
    }
    while (!this.closed && this.running < Math.min(count, this.deps.workers)) {
      this.running += 1;
      void this.work().finally(() => {
        this.running -= 1;
        if (this.running === 0) this.drainedIfEmpty();
      });
    }
  }

  private async work(): Promise<void> {
    while (!this.closed) {
      // While calls are paused nothing could be registered: users stay in line, in their order, untouched.
      const pausedMs = this.deps.pausedForMs();
      if (pausedMs > 0) {
        await this.pause(pausedMs + 5);
        continue;
      }
      const waiting = await this.take();
      if (waiting === undefined) return;
      if (this.deps.isRegistered(waiting.user.externalId)) continue;
      this.registering += 1;
      let outcome: RegisterOutcome;
      try {
        outcome = await this.deps.register(waiting.user);
      } finally {
        this.registering -= 1;
      }
      if (outcome.kind !== 'deferred') this.queuedInFleet.delete(waiting.user.externalId);
      if (outcome.kind === 'registered') {
        this.registered += 1;
        this.registeredSinceBusy += 1;
      } else if (outcome.kind === 'deferred') {
        this.putBack(waiting);
        await this.pause(outcome.retryInMs);
      }
    }
  }

  /** The most recently active user: this process's own first (no Redis call), then the fleet's. */
  private async take(): Promise<Waiting | undefined> {
    for (const [externalId, waiting] of this.local.entries()) {
      this.local.delete(externalId);
      return waiting;
    }
    const store = this.deps.store;
    if (store === undefined || !store.available) return undefined;
    const taken = await store.takeFromBacklog(this.limits.maxIdleMs);
    if (taken === unavailable) return undefined;
    this.fleetLength = taken.length;
    this.fleetOldestMs = taken.oldestMs;
    this.droppedInFleet += taken.dropped;
    return taken.user === undefined ? undefined : { user: taken.user, activeAt: Date.now() };
  }

  /** A user that found no room goes back first in line: it was the most recently active when it was taken. */
  private putBack(waiting: Waiting): void {
    const store = this.deps.store;
    if (store !== undefined && store.available) void this.addToFleet(store, waiting.user);
    else this.local.set(waiting.user.externalId, waiting);
  }

  private async addToFleet(store: RedisStore, user: OrqUser): Promise<void> {
    const profile = JSON.stringify(user);
    const added = await store.addToBacklog(user.externalId, profile.length <= maxStoredProfileChars ? profile : '', this.limits);
    if (added === unavailable) {
      // Redis failed just now: the user waits here instead, and this process registers it.
      this.local.set(user.externalId, { user, activeAt: Date.now() });
    } else {
      this.fleetLength = added.length;
      this.droppedInFleet += added.dropped;
    }
    this.kick();
  }

  /** Waits before the next user, or until close(). */
  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        this.sleepers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, Math.max(10, ms));
      timer.unref();
      this.sleepers.add(wake);
    });
  }

  private markBusy(): void {
    if (this.busySince !== undefined) return;
    this.busySince = performance.now();
    this.registeredSinceBusy = 0;
  }

  private drainedIfEmpty(): void {
    if (this.busySince === undefined || this.local.size > 0 || this.fleetLength > 0 || this.closed) return;
    if (backlogChannel.hasSubscribers) {
      backlogChannel.publish({ event: 'drained', registered: this.registeredSinceBusy, durationMs: performance.now() - this.busySince });
    }
    this.busySince = undefined;
  }
}
