// The call budget: never more than `calls` calls to orq in any rolling `windowMs`, per process or, with the shared
// store, per fleet; users waiting for a first identity come first, background work may use only part of it.
import { unavailable, type RedisStore } from '../store/redis-store.js';

/**
 * - `finish`: the create (or a retry) of a lookup already under way: a user half-registered is worth more than a new one
 * - `lookup`: a request is waiting for a user's first identity
 * - `sync`: a profile change to send to orq
 * - `background`: refreshes of stale identities and of metrics
 */
export type CallPriority = 'finish' | 'lookup' | 'sync' | 'background';

/**
 * The part of the budget each priority may use: new lookups leave a fifth for the lookups under way to finish (else
 * a burst spends the budget on retrieves and registers no one), and refreshes leave half for new users.
 */
export const budgetShares: Readonly<Record<CallPriority, number>> = { finish: 1, lookup: 0.8, sync: 0.75, background: 0.5 };
const rank: Readonly<Record<CallPriority, 0 | 1 | 2 | 3>> = { finish: 0, lookup: 1, sync: 2, background: 3 };

export interface CallBudgetOptions {
  calls: number;
  windowMs: number;
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
  private readonly waiting: [number, number, number, number] = [0, 0, 0, 0];
  /** Instances the fleet last reported; a Redis outage leaves each its share of the budget. */
  private instancesSeen = 1;
  private readonly countedWindowMs: number;
  private readonly now: () => number;

  constructor(private readonly options: CallBudgetOptions) {
    this.now = options.now ?? Date.now;
    // A call is counted a little longer than the window: between our grant and orq's clock lie the network and
    // the event loop, and jitter there must not let orq see one call too many in its own window.
    this.countedWindowMs = options.windowMs + Math.max(50, Math.round(options.windowMs * 0.05));
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
      const answer = await store.takeBudget(this.countedWindowMs, this.allowed(priority, 1));
      if (answer !== unavailable) {
        this.instancesSeen = answer.instances;
        if (answer.granted) {
          this.record(this.now());
          if (answer.member !== undefined) {
            this.fleetGrants.push(answer.member);
            if (this.fleetGrants.length > this.options.calls) this.fleetGrants.shift();
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
    const allowed = this.allowed(priority, this.localShare());
    if (this.grants.length < allowed) {
      this.record(now);
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
    return Math.max(1, Math.floor(this.options.calls * share * budgetShares[priority]));
  }

  private record(now: number): void {
    this.prune(now);
    this.grants.push(now);
    if (this.grants.length > this.options.calls) this.grants.shift();
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
