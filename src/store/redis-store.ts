// The shared store on Redis: identities, leases and the fleet's call budget, each command with its own deadline and
// the whole store behind its own breaker, so a slow or dead Redis costs a request at most one short deadline.
import { randomBytes } from 'node:crypto';
import { CircuitBreaker, type BreakerTicket } from '../calls/circuit-breaker.js';
import { SharedStoreError } from '../errors/shared-store-error.js';
import { identityFromWire, parseJson } from '../orq-client.js';
import type { OrqIdentity, OrqUser } from '../types.js';
import type { SendCommand } from './command.js';
import { addToBacklogScript, learnRateLimitScript, pauseScript, releaseLeaseScript, takeBudgetScript, takeFromBacklogScript } from './scripts.js';

/** An identity as the fleet knows it: the answer and when orq gave it (epoch ms). */
export interface StoredIdentity {
  readonly identity: OrqIdentity;
  readonly fetchedAt: number;
}

/** A held lease: only its holder's token releases it. */
export interface Lease {
  readonly token: string;
}

export interface BudgetAnswer {
  granted: boolean;
  /** When not granted: ms until asking again may succeed (or the fleet-wide pause ends). */
  waitMs: number;
  paused: boolean;
  /** Instances that asked for budget in the last 5 minutes (this one included). */
  instances: number;
  /** When granted: the grant's member in the window, to give it back with `refundBudget` if the call never goes. */
  member?: string;
  /** The limit orq announced to some instance of the fleet, when the budget learns and one did. */
  learnedLimit?: number;
}

/** How one call asks the fleet's window: the calls per window this instance knows, its priority's share of them, and
 * the most a limit learned by another instance may allow (undefined: the budget does not learn). */
export interface BudgetAsk {
  calls: number;
  share: number;
  maxCalls: number | undefined;
}

/** A user taken off the fleet's backlog (undefined when it was empty), and the backlog's figures after. */
export interface BacklogTake {
  user: OrqUser | undefined;
  length: number;
  oldestMs: number;
  dropped: number;
}

/** What the store answers when Redis failed or is being skipped: the caller goes on with this process alone. */
export const unavailable = 'unavailable' as const;
export type Unavailable = typeof unavailable;

export interface RedisStoreOptions {
  send: SendCommand;
  /** Key prefix, ending in `:`. */
  prefix: string;
  /** Separates workspaces (a hash of the API key and server URL, never the key itself). */
  scope: string;
  commandTimeoutMs: number;
  report: (error: SharedStoreError) => void;
}

/** The format of stored values; a reader skips any other version (a rolling deploy may run two). */
const valueVersion = 1;
const firstBackoffMs = 1_000;
const maxBackoffMs = 30_000;

export class RedisStore {
  /** Distinguishes this process in the budget's instance count and in lease tokens. */
  readonly instanceId = randomBytes(8).toString('hex');
  private readonly breaker: CircuitBreaker;
  private backoffMs = firstBackoffMs;
  private leaseCounter = 0;

  constructor(private readonly options: RedisStoreOptions) {
    // One failed command is enough: Redis answers in well under a millisecond when healthy.
    this.breaker = new CircuitBreaker({ failureThreshold: 1, cooldownMs: firstBackoffMs });
  }

  /** False while the store is being skipped after a failure. Synchronous. */
  get available(): boolean {
    return this.breaker.state !== 'open';
  }

  async readIdentity(externalId: string): Promise<StoredIdentity | undefined | Unavailable> {
    const raw = await this.run(['GET', this.userKey(externalId, 'identity')]);
    if (raw === unavailable) return unavailable;
    return typeof raw === 'string' ? parseStored(raw, externalId) : undefined;
  }

  /** Stores the identity for `keepMs`; a failure is reported by the breaker and otherwise ignored. */
  async writeIdentity(entry: StoredIdentity, keepMs: number): Promise<void> {
    const value = JSON.stringify({ v: valueVersion, at: entry.fetchedAt, identity: entry.identity });
    await this.run(['SET', this.userKey(entry.identity.externalId, 'identity'), value, 'PX', String(Math.ceil(keepMs))]);
  }

  /** Forgets an identity orq no longer has, so no instance adopts it from the store. */
  async deleteIdentity(externalId: string): Promise<void> {
    await this.run(['DEL', this.userKey(externalId, 'identity')]);
  }

  /** `SET NX PX`: the lease when we got it, undefined when another instance holds it. */
  async acquireLease(externalId: string, name: string, leaseMs: number): Promise<Lease | undefined | Unavailable> {
    const token = `${this.instanceId}:${(this.leaseCounter += 1)}`;
    const answer = await this.run(['SET', this.userKey(externalId, name), token, 'NX', 'PX', String(Math.ceil(leaseMs))]);
    if (answer === unavailable) return unavailable;
    return answer === 'OK' ? { token } : undefined;
  }

  async releaseLease(externalId: string, name: string, lease: Lease): Promise<void> {
    await this.run(['EVAL', releaseLeaseScript, '1', this.userKey(externalId, name), lease.token]);
  }

  /** Asks the fleet's rolling window for one call. */
  async takeBudget(windowMs: number, ask: BudgetAsk): Promise<BudgetAnswer | Unavailable> {
    const member = `${this.instanceId}:${(this.leaseCounter += 1)}`;
    const answer = await this.run([
      'EVAL', takeBudgetScript, '5', this.fleetKey('budget'), this.fleetKey('pause'), this.fleetKey('instances'), this.fleetKey('limit'),
      this.fleetKey('left'), String(Math.ceil(windowMs)), String(ask.calls), member, this.instanceId, String(ask.share), String(ask.maxCalls ?? 0),
    ]);
    if (answer === unavailable) return unavailable;
    if (!Array.isArray(answer)) return this.malformed('budget script', answer);
    const [outcome, waitMs, instances, learned] = answer.map(Number) as [number, number, number, number | undefined];
    const granted = outcome === 1;
    return {
      granted, waitMs: Math.max(0, waitMs), paused: outcome === -1, instances: Math.max(1, instances || 1),
      ...(granted ? { member } : {}), ...(learned !== undefined && learned > 0 ? { learnedLimit: learned } : {}),
    };
  }

  /**
   * Shares what an answer of orq's said: the workspace's limit (kept ten windows, so a quiet fleet forgets a plan
   * change), and what is left of orq's window until its reset.
   */
  async learnRateLimit(limit: number, windowMs: number, left: { left: number; ms: number } | undefined): Promise<void> {
    await this.run([
      'EVAL', learnRateLimitScript, '2', this.fleetKey('limit'), this.fleetKey('left'), String(limit), String(Math.ceil(windowMs * 10)),
      left === undefined ? '' : String(Math.floor(left.left)), left === undefined ? '' : String(Math.max(1, Math.ceil(left.ms))),
    ]);
  }

  /** Queues a user in the fleet's registration backlog; `profile` is the user as JSON, or '' to keep its id alone. */
  async addToBacklog(externalId: string, profile: string, limits: { maxEntries: number; maxIdleMs: number }): Promise<{ length: number; dropped: number } | Unavailable> {
    const answer = await this.run([
      'EVAL', addToBacklogScript, '2', this.fleetKey('backlog'), this.fleetKey('backlog-users'), externalId, profile,
      String(limits.maxEntries), String(Math.ceil(limits.maxIdleMs)),
    ]);
    if (answer === unavailable) return unavailable;
    if (!Array.isArray(answer)) return this.malformed('backlog script', answer);
    const [length, dropped] = answer.map(Number) as [number, number];
    return { length: length || 0, dropped: dropped || 0 };
  }

  /** Takes the most recently active user off the fleet's backlog; no other instance gets it. */
  async takeFromBacklog(maxIdleMs: number): Promise<BacklogTake | Unavailable> {
    const answer = await this.run(['EVAL', takeFromBacklogScript, '2', this.fleetKey('backlog'), this.fleetKey('backlog-users'), String(Math.ceil(maxIdleMs))]);
    if (answer === unavailable) return unavailable;
    if (!Array.isArray(answer) || answer.length < 5) return this.malformed('backlog script', answer);
    const [length, externalId, profile, oldestMs, dropped] = answer as [unknown, unknown, unknown, unknown, unknown];
    return {
      user: typeof externalId === 'string' && externalId !== '' ? backlogUser(externalId, profile) : undefined,
      length: Number(length) || 0,
      oldestMs: Number(oldestMs) || 0,
      dropped: Number(dropped) || 0,
    };
  }

  /** Gives a grant back to the fleet's window: its call was refused here before it was sent. */
  async refundBudget(member: string): Promise<void> {
    await this.run(['ZREM', this.fleetKey('budget'), member]);
  }

  /** Pauses every instance's calls to orq for `pauseMs` (a 429's Retry-After). */
  async pause(pauseMs: number): Promise<void> {
    await this.run(['EVAL', pauseScript, '1', this.fleetKey('pause'), String(Math.ceil(pauseMs))]);
  }

  /**
   * The client's `error` event (a lost connection, a failed reconnect): the store is skipped at once rather than
   * after the next command's deadline. While it is skipped, the events say nothing new and are not reported again.
   */
  connectionError(error: unknown): void {
    if (this.breaker.state !== 'closed') return;
    const ticket = this.breaker.tryAcquire();
    if (ticket !== undefined) this.failed(ticket, 'connection', error);
  }

  /** Keys of one user share the user's hash tag, so a script over several of them works on Cluster. */
  private userKey(externalId: string, kind: string): string {
    return `${this.options.prefix}{${this.options.scope}:${externalId}}:${kind}`;
  }

  /** The budget's keys share the workspace's hash tag: one slot holds the whole fleet's window. */
  private fleetKey(kind: string): string {
    return `${this.options.prefix}{${this.options.scope}}:${kind}`;
  }

  /** One command within its deadline, through the breaker; `unavailable` instead of any failure. */
  private async run(args: string[]): Promise<unknown> {
    const ticket = this.breaker.tryAcquire();
    if (ticket === undefined) return unavailable;
    let timer: NodeJS.Timeout | undefined;
    try {
      const reply = await Promise.race([
        this.options.send(args),
        new Promise<never>((_, reject) => {
          // The timer runs before I/O in an event-loop turn: when the loop lagged past the deadline, a reply already
          // waiting on the socket would lose to it. setImmediate lets that I/O be read first, so only Redis's own
          // slowness counts, not the app's.
          timer = setTimeout(
            () => setImmediate(() => reject(new Error(`no answer within commandTimeoutMs (${this.options.commandTimeoutMs} ms)`))),
            this.options.commandTimeoutMs,
          );
        }),
      ]);
      if (ticket === 'probe') this.backoffMs = firstBackoffMs;
      this.breaker.recordSuccess(ticket);
      return reply;
    } catch (error) {
      this.failed(ticket, args[0] as string, error);
      return unavailable;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Opens the breaker (longer each time a probe fails) and reports once per opening, never per command. */
  private failed(ticket: BreakerTicket, command: string, error: unknown): void {
    const pauseMs = this.backoffMs;
    if (ticket === 'probe') this.backoffMs = Math.min(maxBackoffMs, this.backoffMs * 2);
    if (!this.breaker.recordFailure(ticket, pauseMs)) return;
    const reason = error instanceof Error ? error.message : String(error);
    this.options.report(
      new SharedStoreError(
        `Shared store (Redis) ${command} failed: ${reason}. For the next ${Math.ceil(pauseMs / 1000)} s this process ` +
          'works alone: its own cache, its own single flight and its share of the call budget.',
        pauseMs,
        error,
      ),
    );
  }

  /** Reports a reply we cannot read (a proxy or a client option changing replies) like a failure. */
  private malformed(what: string, reply: unknown): Unavailable {
    const ticket = this.breaker.tryAcquire();
    if (ticket !== undefined) this.failed(ticket, what, new Error(`unexpected reply ${JSON.stringify(reply)?.slice(0, 80)}`));
    return unavailable;
  }
}

function parseStored(raw: string, externalId: string): StoredIdentity | undefined {
  // Not JSON comes back undefined, and is refused with every other value that is not an object.
  const parsed = parseJson(raw);
  if (parsed === null || typeof parsed !== 'object') return undefined;
  const { v, at, identity: wire } = parsed as { v?: unknown; at?: unknown; identity?: unknown };
  if (v !== valueVersion || typeof at !== 'number') return undefined;
  const identity = identityFromWire(wire);
  // A value that is not this user's (a hand edit, a bug elsewhere) is treated as absent, never attached.
  if (identity === undefined || identity.externalId !== externalId) return undefined;
  return { identity, fetchedAt: at };
}

/**
 * The user as queued: its profile when it was stored and is still this user's, else its id alone (a profile left
 * out for size, or unreadable; the profile sync sends it after registration).
 */
function backlogUser(externalId: string, profile: unknown): OrqUser {
  const parsed = typeof profile === 'string' && profile !== '' ? parseJson(profile) : undefined;
  if (parsed !== null && typeof parsed === 'object' && (parsed as { externalId?: unknown }).externalId === externalId) return parsed as OrqUser;
  return { externalId };
}
