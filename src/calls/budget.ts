// The call budget: never more than `calls` calls to orq in any rolling `windowMs`, per process or, with the shared
// store, per fleet; users waiting for a first identity come first, background work may use only part of it.
// The limit is learned from orq's X-RateLimit-* headers (fleet-wide through the store) and never exceeds `maxCalls`.
import { unavailable, type RedisStore } from '../store/redis-store.js';
import type { RateLimitInfo } from './rate-limit.js';

/**
 * - `finish`: the create (or a retry) of a lookup already under way: a user half-registered is worth more than a new one
 * - `lookup`: a request is waiting for a user's first identity
 * - `backlog`: registering a user deferred earlier (the registration backlog), so its next request finds it
 * - `sync`: a profile change to send to orq
 * - `background`: refreshes of stale identities and of metrics
 */
export type CallPriority = 'finish' | 'lookup' | 'backlog' | 'sync' | 'background';

/**
 * The part of the budget each priority may use: new lookups leave a fifth for the lookups under way to finish (else
 * a burst spends the budget on retrieves and registers no one), and refreshes leave half for new users. The backlog
 * may use it all: it is where a registration wave's users wait, and any share left unused would only slow the wave.
 */
export const budgetShares: Readonly<Record<CallPriority, number>> = { finish: 1, lookup: 0.8, backlog: 1, sync: 0.75, background: 0.5 };
const rank: Readonly<Record<CallPriority, 0 | 1 | 2 | 3 | 4>> = { finish: 0, lookup: 1, backlog: 2, sync: 3, background: 4 };

/**
 * Calls kept unspent below the limit orq announced: answers in flight when orq counted, and the app's own other
 * calls to the same workspace. The store's budget script keeps the same figure (scripts.ts).
 */
export function rateLimitReserve(limit: number): number {
  return Math.max(2, Math.ceil(limit * 0.05));
}

export interface CallBudgetOptions {
  /** Calls per window until orq's headers say otherwise (and with `learn: false`, always). */
  calls: number;
  windowMs: number;
  /** The most calls per window whatever orq announces; defaults to `calls`. */
  maxCalls?: number | undefined;
  /** Whether `learn()` may set the limit; without it, the budget is `calls` and orq's headers are ignored. */
  learn?: boolean | undefined;
  store?: RedisStore | undefined;
  /** Told once when a pause starts: a 429 here (`local`) or on another instance (`fleet`). */
  onPause?: (pauseMs: number, source: 'local' | 'fleet') => void;
  now?: () => number;
}

/** Why a call may not go before its deadline. */
export interface BudgetDenial {
  reason: 'exhausted' | 'paused';
  /** When asking again may succeed. */
  waitMs: number;
}

export class CallBudget {
  /** Grant times in this process, oldest first; at most `calls` of them are ever inside the window. */
  private readonly grants: number[] = [];
  /** The fleet window's members of this process's recent grants, newest last, so a refused call can give one back. */
  private readonly fleetGrants: string[] = [];
  private pausedUntil = 0;
  /** Calls waiting for room right now, by priority rank. */
  private readonly waiting: [number, number, number, number, number] = [0, 0, 0, 0, 0];
  /** The workspace's limit per window, as orq's headers (here, or through the store) last told it. */
  private learnedLimit: number | undefined;
  /** What orq last said was left of its window, less the reserve and the calls granted since, until `orqLeftUntil`. */
  private orqLeft = Infinity;
  private orqLeftUntil = 0;
  /** Instances the fleet last reported; a Redis outage leaves each its share of the budget. */
  private instancesSeen = 1;
  private readonly countedWindowMs: number;
  private readonly now: () => number;

  constructor(private readonly options: CallBudgetOptions) {
    this.now = options.now ?? Date.now;
    // A call is counted a little longer than the window: between our grant and orq's clock lie the network and
    // the event loop, and jitter there must not let orq see one call too many in its own window. 1 % (600 ms of
    // orq's 60 s) is enough for that; a jitter beyond it spends a call of the reserve, not a 429. It was 5 %, which
    // with the reserve made a registration wave 10 % slower than the limit (bench/day-one.ts).
    this.countedWindowMs = options.windowMs + Math.max(50, Math.round(options.windowMs * 0.01));
  }

  /** The calls allowed per window now: the limit orq announced (less a reserve) within `maxCalls`, else `calls`. */
  get calls(): number {
    const { calls, maxCalls = calls } = this.options;
    if (this.learnedLimit === undefined) return calls;
    return Math.max(1, Math.min(maxCalls, this.learnedLimit - rateLimitReserve(this.learnedLimit)));
  }

  /** The limit orq announced for the workspace, undefined until an answer carried X-RateLimit-Limit. */
  get learned(): number | undefined {
    return this.learnedLimit;
  }

  /**
   * What one answer of orq's said about its window: the limit becomes the budget (within `maxCalls`), and when it
   * says that little is left, no call goes before the reset, here and on every instance.
   */
  learn(info: RateLimitInfo): void {
    if (this.options.learn !== true) return;
    const now = this.now();
    this.learnedLimit = info.limit;
    let leftMs = 0;
    if (info.remaining !== undefined && info.resetAt !== undefined && info.resetAt > now) {
      leftMs = info.resetAt - now;
      this.orqLeft = info.remaining - rateLimitReserve(info.limit);
      this.orqLeftUntil = info.resetAt;
    }
    void this.options.store?.learnRateLimit(info.limit, this.options.windowMs, leftMs > 0 ? { left: this.orqLeft, ms: leftMs } : undefined);
  }

  /** Milliseconds left of a pause after a 429 (here or, as last heard, on another instance). Synchronous. */
  get pausedForMs(): number {
    return Math.max(0, this.pausedUntil - this.now());
  }

  /** Calls that `priority` may still make in the current window of this process (for stats and tests). */
  localRoom(priority: CallPriority): number {
    this.prune(this.now());
    return Math.max(0, this.allowed(priority, this.localShare()) - this.grants.length);
  }

  /**
   * Waits for room for one call, at most until `deadline` (epoch ms). Resolves to undefined when the call may go
   * (and counts it), or to why it may not: paused after a 429, or no room before the deadline (then it gave up at
   * once, without waiting for a room it could not reach).
   */
  async acquire(priority: CallPriority, deadline: number): Promise<BudgetDenial | undefined> {
    for (;;) {
      // Waiting calls of a higher priority in this process ask first when room comes back.
      if (this.waitingAbove(priority)) {
        if (this.now() + waitingStepMs > deadline) return { reason: 'exhausted', waitMs: waitingStepMs };
        await sleep(waitingStepMs);
        continue;
      }
      const denial = await this.tryTake(priority);
      if (denial === undefined) return undefined;
      // A pause is not waited out: like an open circuit, it lets requests go on without identities at once.
      if (denial.reason === 'paused' || this.now() + denial.waitMs > deadline) return denial;
      this.waiting[rank[priority]] += 1;
      try {
        // Jitter, so the waiters woken by the same expiring call do not all ask at the same instant.
        await sleep(denial.waitMs + Math.random() * Math.min(50, denial.waitMs));
      } finally {
        this.waiting[rank[priority]] -= 1;
      }
    }
  }

  /**
   * Gives back one grant taken by `acquire` whose call was then refused before it was sent (the queue full, the
   * circuit taken by another probe): such a call cost orq nothing, so it must not cost the window either.
   * Grants are alike, so the newest is the one given back.
   */
  refund(): void {
    this.grants.pop();
    this.orqLeft += 1;
    const member = this.fleetGrants.pop();
    if (member !== undefined) void this.options.store?.refundBudget(member);
  }

  private waitingAbove(priority: CallPriority): boolean {
    for (let index = 0; index < rank[priority]; index++) if ((this.waiting[index] as number) > 0) return true;
    return false;
  }

  /** A 429: every call waits `pauseMs`, here at once, and on every instance through the store. */
  pause(pauseMs: number): void {
    const until = this.now() + pauseMs;
    if (until <= this.pausedUntil) return;
    this.pausedUntil = until;
    this.options.onPause?.(pauseMs, 'local');
    void this.options.store?.pause(pauseMs);
  }

  private async tryTake(priority: CallPriority): Promise<BudgetDenial | undefined> {
    const paused = this.pausedForMs;
    if (paused > 0) return { reason: 'paused', waitMs: paused };
    const store = this.options.store;
    if (store !== undefined && store.available) {
      const learning = this.options.learn === true;
      const answer = await store.takeBudget(this.countedWindowMs, {
        calls: this.calls,
        share: budgetShares[priority],
        maxCalls: learning ? (this.options.maxCalls ?? this.options.calls) : undefined,
      });
      if (answer !== unavailable) {
        this.instancesSeen = answer.instances;
        if (learning && answer.learnedLimit !== undefined) this.learnedLimit = answer.learnedLimit;
        if (answer.granted) {
          this.record(this.now());
          this.orqLeft -= 1;
          if (answer.member !== undefined) {
            this.fleetGrants.push(answer.member);
            if (this.fleetGrants.length > Math.min(this.calls, 100_000)) this.fleetGrants.shift();
          }
          return undefined;
        }
        if (answer.paused) {
          this.learnFleetPause(answer.waitMs);
          return { reason: 'paused', waitMs: answer.waitMs };
        }
        return { reason: 'exhausted', waitMs: answer.waitMs };
      }
    }
    return this.takeLocally(priority);
  }

  private takeLocally(priority: CallPriority): BudgetDenial | undefined {
    const now = this.now();
    this.prune(now);
    // What orq said is left of its own window binds too: the app may make other calls to the same workspace.
    if (this.orqLeft <= 0 && now < this.orqLeftUntil) return { reason: 'exhausted', waitMs: this.orqLeftUntil - now };
    const allowed = this.allowed(priority, this.localShare());
    if (this.grants.length < allowed) {
      this.record(now);
      this.orqLeft -= 1;
      return undefined;
    }
    // Room comes back when enough of the oldest grants leave the window to bring the count under `allowed`.
    const freeing = this.grants[this.grants.length - allowed] ?? now;
    return { reason: 'exhausted', waitMs: Math.max(1, freeing + this.countedWindowMs - now) };
  }

  private learnFleetPause(waitMs: number): void {
    const now = this.now();
    // Reported once per pause: a later ask lands inside it, and so does one that was already on its way to the store.
    // A pause that starts the very millisecond ours ends is a new one.
    if (this.pausedUntil <= now) this.options.onPause?.(waitMs, 'fleet');
    this.pausedUntil = Math.max(this.pausedUntil, now + waitMs);
  }

  /** With the shared store up this process may use the whole budget; without it, its share of the fleet last seen. */
  private localShare(): number {
    // Only the store's answers change `instancesSeen`: without a store this is 1.
    return 1 / this.instancesSeen;
  }

  private allowed(priority: CallPriority, share: number): number {
    return Math.max(1, Math.floor(this.calls * share * budgetShares[priority]));
  }

  private record(now: number): void {
    this.prune(now);
    this.grants.push(now);
    if (this.grants.length > Math.max(this.calls, this.options.maxCalls ?? 0)) this.grants.shift();
  }

  private prune(now: number): void {
    const oldest = now - this.countedWindowMs;
    while ((this.grants[0] ?? Infinity) <= oldest) this.grants.shift();
  }
}

/** How often a call behind higher-priority waiters looks again. */
const waitingStepMs = 50;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
