// How one call to orq goes: its deadline, the breaker, retries, Retry-After, the budget; what the caller and onError see.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { CallPolicy, maxRetryAfterMs, type CallPolicyConfig } from '../../src/calls/policy.js';
import { OrqApiError, OrqUnavailableError, type OrqFailureKind, type OrqIdentityError } from '../../src/index.js';
import { Reporter } from '../../src/reporter.js';
import type { CallOptions } from '../../src/orq-client.js';
import { commandFunction, type SendCommand } from '../../src/store/command.js';
import { RedisStore } from '../../src/store/redis-store.js';
import { connectClient, describeRedis, startRedis, type RedisServer } from '../redis.js';

function policyWith(overrides: Partial<CallPolicyConfig> = {}) {
  const reported: OrqIdentityError[] = [];
  const config: CallPolicyConfig = {
    lookupTimeoutMs: 10_000, maxConcurrency: 4, maxQueue: 10, retries: 0, failureThreshold: 5, cooldownMs: 1_000, budget: undefined, store: undefined,
    ...overrides,
  };
  const policy = new CallPolicy(config, new Reporter<undefined>((error) => reported.push(error), undefined));
  return { policy, reported };
}

function failure(kind: OrqFailureKind, options: { statusCode?: number; retryAfterMs?: number; externalId?: string } = {}): OrqApiError {
  return new OrqApiError(`orq said no (${kind}).`, { operation: 'retrieve', kind, externalId: options.externalId ?? 'u', ...options });
}

/** A `send` that answers from `script` in turn (an Error is thrown), counting the calls and the timeouts it was given. */
function scripted(...script: unknown[]) {
  const timeouts: number[] = [];
  const send = async (options: CallOptions): Promise<unknown> => {
    timeouts.push(options.timeoutMs as number);
    const next = script.length > 1 ? script.shift() : script[0];
    if (next instanceof Error) throw next;
    return next;
  };
  return { send, timeouts };
}

/** Only Date is faked: the deadline arithmetic is exact, while timers (the retries' sleeps) still run. */
function freezeDate(): void {
  vi.useFakeTimers({ toFake: ['Date'] });
}

function advance(ms: number): void {
  vi.setSystemTime(Date.now() + ms);
}

afterEach(() => {
  vi.useRealTimers();
});

describe('the deadline', () => {
  it('a call left less than 50 ms fails as past its deadline without reaching orq; one left 50 ms goes, given those 50 ms', async () => {
    freezeDate();
    const { policy } = policyWith({ lookupTimeoutMs: 1_234 });
    const { send, timeouts } = scripted('answer');
    const late = policy.call('create', 'late "one"', Date.now() + 49, send, undefined);
    await expect(late).rejects.toBeInstanceOf(OrqApiError);
    await expect(late).rejects.toMatchObject({
      kind: 'timeout', operation: 'create', externalId: 'late "one"',
      message: 'orq create of user "late \\"one\\"" did not finish within lookupTimeoutMs (1234 ms).',
    });
    expect(timeouts).toEqual([]);
    await expect(policy.call('retrieve', 'u', Date.now() + 50, send, undefined)).resolves.toBe('answer');
    expect(timeouts).toEqual([50]);
  });

  it('tells the call how long it has until the deadline', async () => {
    freezeDate();
    const { policy } = policyWith();
    const { send, timeouts } = scripted('answer');
    await policy.call('retrieve', 'u', Date.now() + 777, send, undefined);
    expect(timeouts).toEqual([777]);
  });
});

describe('the breaker', () => {
  it('opens after failureThreshold outages, reports that once with the cause, then refuses calls without sending them', async () => {
    freezeDate();
    const { policy, reported } = policyWith({ failureThreshold: 2, cooldownMs: 1_500 });
    const first = failure('network');
    const second = failure('network', { externalId: 'v' });
    await expect(policy.call('retrieve', 'u', Date.now() + 5_000, scripted(first).send, undefined)).rejects.toBe(first);
    expect(policy.circuit).toBe('closed');
    expect(reported).toEqual([]);
    await expect(policy.call('retrieve', 'v', Date.now() + 5_000, scripted(second).send, undefined)).rejects.toBe(second);
    expect(policy.circuit).toBe('open');
    expect(policy.isOpen).toBe(true);
    expect(policy.retryInMs).toBe(1_500);
    expect(reported).toHaveLength(1);
    expect(reported[0]).toBeInstanceOf(OrqUnavailableError);
    expect(reported[0]).toMatchObject({
      reason: 'circuit-open', externalId: 'v', cause: second,
      message: 'orq said no (network). Calls to orq are paused for 2 s; meanwhile requests go on without identities.',
    });

    const { send, timeouts } = scripted('answer');
    const refused = policy.call('retrieve', 'w', Date.now() + 5_000, send, undefined);
    await expect(refused).rejects.toBeInstanceOf(OrqUnavailableError);
    await expect(refused).rejects.toMatchObject({
      reason: 'circuit-open', externalId: 'w',
      message: 'Calls to orq are paused after repeated failures (about 2 s left); the request goes on without an identity.',
    });
    expect(timeouts).toEqual([]);
    expect(reported).toHaveLength(1);
  });

  it('a probe that gets any answer from orq closes the circuit, even a 4xx; an error of ours or a request never sent leaves it half-open', async () => {
    freezeDate();
    const { policy } = policyWith({ failureThreshold: 1, cooldownMs: 100 });
    await expect(policy.call('retrieve', 'u', Date.now() + 5_000, scripted(failure('network')).send, undefined)).rejects.toThrow();
    advance(100);
    expect(policy.circuit).toBe('half-open');
    expect(policy.isOpen).toBe(false);
    expect(policy.retryInMs).toBe(0);
    const ours = new TypeError('a bug of ours');
    await expect(policy.call('retrieve', 'u', Date.now() + 5_000, scripted(ours).send, undefined)).rejects.toBe(ours);
    expect(policy.circuit).toBe('half-open');
    await expect(policy.call('retrieve', 'u', Date.now() + 5_000, scripted(failure('not-sent')).send, undefined)).rejects.toThrow();
    expect(policy.circuit).toBe('half-open');
    await expect(policy.call('retrieve', 'u', Date.now() + 5_000, scripted(failure('http', { statusCode: 400 })).send, undefined)).rejects.toThrow();
    expect(policy.circuit).toBe('closed');
  });

  it('a 4xx about one user is never an outage: not retried, and never opens the circuit', async () => {
    const { policy, reported } = policyWith({ failureThreshold: 1, retries: 2 });
    const { send, timeouts } = scripted(failure('http', { statusCode: 422 }));
    await expect(policy.call('retrieve', 'u', Date.now() + 5_000, send, undefined)).rejects.toMatchObject({ statusCode: 422 });
    expect(timeouts).toHaveLength(1);
    expect(policy.circuit).toBe('closed');
    expect(reported).toEqual([]);
  });

  it('a timeout of a call that had less than half of lookupTimeoutMs says nothing about orq: not counted, not retried', async () => {
    freezeDate();
    const { policy } = policyWith({ failureThreshold: 1, retries: 1, lookupTimeoutMs: 2_000 });
    const short = scripted(failure('timeout'));
    await expect(policy.call('retrieve', 'u', Date.now() + 999, short.send, undefined)).rejects.toMatchObject({ kind: 'timeout' });
    expect(short.timeouts).toEqual([999]);
    expect(policy.circuit).toBe('closed');
    // Exactly half is enough to count.
    const half = scripted(failure('timeout'));
    await expect(policy.call('retrieve', 'u', Date.now() + 1_000, half.send, undefined)).rejects.toThrow();
    expect(half.timeouts).toEqual([1_000]);
    expect(policy.circuit).toBe('open');
  });
});

describe('retries', () => {
  it('retries an outage `retries` times, then gives its last failure', async () => {
    const { policy } = policyWith({ retries: 2 });
    const last = failure('http', { statusCode: 503 });
    const { send, timeouts } = scripted(failure('network'), failure('network'), last);
    await expect(policy.call('retrieve', 'u', Date.now() + 5_000, send, undefined)).rejects.toBe(last);
    expect(timeouts).toHaveLength(3);
  });

  it('a retry that succeeds is the answer', async () => {
    const { policy } = policyWith({ retries: 1 });
    const { send, timeouts } = scripted(failure('network'), 'second time lucky');
    await expect(policy.call('retrieve', 'u', Date.now() + 5_000, send, undefined)).resolves.toBe('second time lucky');
    expect(timeouts).toHaveLength(2);
  });

  it('no retry when its back-off and a minimal call do not fit before the deadline', async () => {
    freezeDate();
    const { policy } = policyWith({ retries: 3 });
    // The first back-off is 50–150 ms and a call needs 50 ms: 99 ms never fit, 251 ms always do.
    const tight = scripted(failure('network'));
    await expect(policy.call('retrieve', 'u', Date.now() + 99, tight.send, undefined)).rejects.toThrow();
    expect(tight.timeouts).toHaveLength(1);
    const roomy = scripted(failure('network'), 'ok');
    await expect(policy.call('retrieve', 'u', Date.now() + 251, roomy.send, undefined)).resolves.toBe('ok');
    expect(roomy.timeouts).toEqual([251, 251]);
  });

  it('a retry whose wait and a minimal call end exactly at its deadline goes; one a millisecond short does not', async () => {
    freezeDate();
    // A 429 asking for 100 ms: the retry waits 105 ms and then has 50 ms, the least a call is given.
    const asks = () => scripted(failure('rate-limited', { retryAfterMs: 100 }), 'after the pause');
    const exact = asks();
    // Date is frozen: it moves on while the policy waits out the pause (this timer fires just before that wait ends).
    setTimeout(() => advance(105), 100);
    await expect(policyWith({ retries: 1 }).policy.call('retrieve', 'u', Date.now() + 155, exact.send, undefined)).resolves.toBe('after the pause');
    expect(exact.timeouts).toEqual([155, 50]);
    const short = asks();
    await expect(policyWith({ retries: 1 }).policy.call('retrieve', 'u', Date.now() + 154, short.send, undefined)).rejects.toMatchObject({ kind: 'rate-limited' });
    expect(short.timeouts).toEqual([154]);
  });

  it('each retry waits longer than the one before, by a random amount: of lookups failing alike, some fit a second retry, some do not', async () => {
    freezeDate();
    // Date is frozen, so only the back-offs decide: the first (50–150 ms) always leaves the 50 ms a call needs before
    // the deadline 200 ms away; the second (50–250 ms) does in about half the lookups.
    const sends = await Promise.all(Array.from({ length: 100 }, async () => {
      const { policy } = policyWith({ retries: 2, failureThreshold: 1_000 });
      const { send, timeouts } = scripted(failure('network'));
      await expect(policy.call('retrieve', 'u', Date.now() + 200, send, undefined)).rejects.toMatchObject({ kind: 'network' });
      return timeouts.length;
    }));
    // All 100 on one side would happen about once in 10^30 runs.
    expect(new Set(sends)).toEqual(new Set([2, 3]));
  });

  it('the retry of a lookup under way is let into a full queue, ahead of new lookups', async () => {
    const { policy } = policyWith({ retries: 1, maxConcurrency: 1, maxQueue: 0 });
    let tries = 0;
    const retried = policy.call('retrieve', 'a', Date.now() + 5_000, async () => {
      tries += 1;
      if (tries === 1) throw failure('network');
      return 'retried';
    }, undefined);
    await tick();
    // While a's retry waits out its back-off, b takes the only slot; the queue (of none) is full for new lookups.
    const holder = held();
    const holding = policy.call('retrieve', 'b', Date.now() + 5_000, holder.send, undefined);
    await tick();
    await expect(policy.call('retrieve', 'c', Date.now() + 5_000, scripted('never').send, undefined)).rejects.toMatchObject({ reason: 'overloaded' });
    await vi.waitFor(() => expect(policy.queued, "a's retry waiting for the slot").toBe(1), { timeout: 1_000 });
    holder.settle({ value: 'b' });
    await expect(holding).resolves.toBe('b');
    await expect(retried).resolves.toBe('retried');
    expect(tries).toBe(2);
  });
});

describe('rate limits and refused keys', () => {
  it('a 429 opens the circuit for Retry-After at once, and the retry goes just after it', async () => {
    const { policy, reported } = policyWith({ retries: 1, failureThreshold: 5 });
    const { send, timeouts } = scripted(failure('rate-limited', { statusCode: 429, retryAfterMs: 40 }), 'after the pause');
    await expect(policy.call('retrieve', 'u', Date.now() + 5_000, send, undefined)).resolves.toBe('after the pause');
    expect(timeouts).toHaveLength(2);
    expect(reported.map((error) => error.message)).toEqual([
      'orq said no (rate-limited). Calls to orq are paused for 1 s; meanwhile requests go on without identities.',
    ]);
    expect(policy.circuit).toBe('closed');
  });

  it('a 429 without Retry-After pauses for cooldownMs and is not retried', async () => {
    freezeDate();
    const { policy } = policyWith({ retries: 2, cooldownMs: 3_000 });
    const { send, timeouts } = scripted(failure('rate-limited', { statusCode: 429 }), 'never');
    await expect(policy.call('retrieve', 'u', Date.now() + 60_000, send, undefined)).rejects.toMatchObject({ kind: 'rate-limited' });
    expect(timeouts).toHaveLength(1);
    expect(policy.circuit).toBe('open');
    expect(policy.retryInMs).toBe(3_000);
  });

  it(`a Retry-After over ${maxRetryAfterMs / 1000} s is capped, and the report says so; one of exactly that is not`, async () => {
    freezeDate();
    const capped = policyWith();
    await expect(capped.policy.call('retrieve', 'u', Date.now() + 60_000, scripted(failure('rate-limited', { retryAfterMs: 100_000_000_000 })).send, undefined)).rejects.toThrow();
    expect(capped.policy.retryInMs).toBe(maxRetryAfterMs);
    expect(capped.reported.map((error) => error.message)).toEqual([
      'orq said no (rate-limited). Calls to orq are paused for 300 s (orq asked for 100000000 s; the pause is capped at 300 s, then one call probes again); meanwhile requests go on without identities.',
    ]);
    const exact = policyWith();
    await expect(exact.policy.call('retrieve', 'u', Date.now() + 60_000, scripted(failure('rate-limited', { retryAfterMs: maxRetryAfterMs })).send, undefined)).rejects.toThrow();
    expect(exact.policy.retryInMs).toBe(maxRetryAfterMs);
    expect(exact.reported.map((error) => error.message)).toEqual([
      'orq said no (rate-limited). Calls to orq are paused for 300 s; meanwhile requests go on without identities.',
    ]);
  });

  it('a refused key (401/403) opens the circuit for cooldownMs at once and is never retried', async () => {
    freezeDate();
    const { policy, reported } = policyWith({ retries: 2, failureThreshold: 5, cooldownMs: 2_500 });
    const { send, timeouts } = scripted(failure('unauthorized', { statusCode: 401 }), 'never');
    await expect(policy.call('retrieve', 'u', Date.now() + 60_000, send, undefined)).rejects.toMatchObject({ kind: 'unauthorized' });
    expect(timeouts).toHaveLength(1);
    expect(policy.retryInMs).toBe(2_500);
    expect(reported).toHaveLength(1);
    // A refusal while open says why: one 401, not "repeated failures".
    await expect(policy.call('retrieve', 'v', Date.now() + 60_000, scripted('never').send, undefined)).rejects.toMatchObject({
      reason: 'circuit-open', message: 'Calls to orq are paused after orq refused the API key (about 3 s left); the request goes on without an identity.',
    });
  });

  it('a 429 that lands in a pause opened by failures lengthens it, and the refusals then say it was a 429', async () => {
    freezeDate();
    const { policy } = policyWith({ retries: 0, failureThreshold: 1, cooldownMs: 1_000, maxConcurrency: 2 });
    const slow = held();
    const out = policy.call('retrieve', 'slow', Date.now() + 60_000, slow.send, undefined);
    await tick();
    await expect(policy.call('retrieve', 'u', Date.now() + 60_000, scripted(failure('network')).send, undefined)).rejects.toMatchObject({ kind: 'network' });
    slow.settle({ error: failure('rate-limited', { statusCode: 429, retryAfterMs: 5_000 }) });
    await expect(out).rejects.toMatchObject({ kind: 'rate-limited' });
    await expect(policy.call('retrieve', 'v', Date.now() + 60_000, scripted('never').send, undefined)).rejects.toMatchObject({
      reason: 'circuit-open', message: 'Calls to orq are paused after orq rate-limited this workspace (HTTP 429) (about 5 s left); the request goes on without an identity.',
    });
  });
});

describe('the budget', () => {
  it('refuses a call with no room before its deadline, reported once per window and then again', async () => {
    freezeDate();
    const { policy, reported } = policyWith({ budget: { calls: 1, windowMs: 1_000 } });
    await expect(policy.call('retrieve', 'a', Date.now() + 500, scripted('ok').send, undefined)).resolves.toBe('ok');
    const { send, timeouts } = scripted('never');
    const refused = policy.call('update', 'b', Date.now() + 500, send, undefined);
    await expect(refused).rejects.toBeInstanceOf(OrqUnavailableError);
    await expect(refused).rejects.toMatchObject({
      reason: 'budget', externalId: 'b',
      message: 'The call budget (1 call to orq per 1000 ms in this process) had no room for the update of user "b" before its deadline; ' +
        'the request goes on without it, and the user is registered when there is room (the registration backlog) or on a later request. ' +
        'Set `budget.calls` only to stay below what orq allows.',
    });
    await expect(policy.call('retrieve', 'c', Date.now() + 500, send, undefined)).rejects.toMatchObject({ reason: 'budget' });
    expect(timeouts).toEqual([]);
    expect(reported.map((error) => error.externalId)).toEqual(['b']);
    // The grant is counted a little longer than the window (1 050 ms): one window on, it is still refused, and reported again.
    advance(1_000);
    await expect(policy.call('retrieve', 'e', Date.now() + 99, send, undefined)).rejects.toMatchObject({ reason: 'budget' });
    expect(reported.map((error) => error.externalId)).toEqual(['b', 'e']);
  });

  it('the create or a retry of a lookup under way may use the room new lookups leave', async () => {
    const { policy } = policyWith({ budget: { calls: 2, windowMs: 60_000 }, retries: 1 });
    // New lookups may use 1 of 2: the retry of this one takes the second.
    const { send, timeouts } = scripted(failure('network'), 'retried');
    await expect(policy.call('retrieve', 'a', Date.now() + 2_000, send, undefined)).resolves.toBe('retried');
    expect(timeouts).toHaveLength(2);
    await expect(policy.call('retrieve', 'b', Date.now() + 200, send, undefined)).rejects.toMatchObject({ reason: 'budget' });
  });

  it('an urgent call (a create) may use the room new lookups leave; background work may not', async () => {
    const { policy } = policyWith({ budget: { calls: 5, windowMs: 60_000 } });
    for (const user of ['a', 'b']) await policy.call('retrieve', user, Date.now() + 200, scripted('ok').send, undefined, false, 'background');
    await expect(policy.call('retrieve', 'c', Date.now() + 200, scripted('ok').send, undefined, false, 'background')).rejects.toMatchObject({ reason: 'budget' });
    for (const user of ['c', 'd']) await policy.call('retrieve', user, Date.now() + 200, scripted('ok').send, undefined);
    await expect(policy.call('retrieve', 'e', Date.now() + 200, scripted('ok').send, undefined)).rejects.toMatchObject({ reason: 'budget' });
    await expect(policy.call('create', 'e', Date.now() + 200, scripted('created').send, undefined, true)).resolves.toBe('created');
  });

  it("a retry of background work stays within background's share: only a lookup's may use the room kept for lookups under way", async () => {
    // Background work may use 2 of 4.
    const { policy } = policyWith({ budget: { calls: 4, windowMs: 60_000 }, retries: 1 });
    await expect(policy.call('retrieve', 'a', Date.now() + 2_000, scripted('ok').send, undefined, false, 'background')).resolves.toBe('ok');
    const { send, timeouts } = scripted(failure('network'), 'never');
    await expect(policy.call('retrieve', 'b', Date.now() + 2_000, send, undefined, false, 'background')).rejects.toMatchObject({ reason: 'budget' });
    expect(timeouts).toHaveLength(1);
  });

  it('while the circuit is open a call is refused as circuit-open before the budget is asked: no budget refusal is reported', async () => {
    freezeDate();
    const { policy, reported } = policyWith({ failureThreshold: 1, budget: { calls: 1, windowMs: 60_000 } });
    await expect(policy.call('retrieve', 'a', Date.now() + 500, scripted(failure('network')).send, undefined)).rejects.toThrow();
    expect(reported).toMatchObject([{ reason: 'circuit-open' }]);
    // The budget has no room either, but the open circuit is what keeps this call from orq.
    await expect(policy.call('retrieve', 'b', Date.now() + 500, scripted('never').send, undefined)).rejects.toMatchObject({
      reason: 'circuit-open', externalId: 'b', message: expect.stringMatching(/^Calls to orq are paused after repeated failures/),
    });
    expect(reported).toHaveLength(1);
  });

  it('a call the full queue refuses is not attempted, says which maxQueue, and costs no budget', async () => {
    // New lookups may use 2 of 3.
    const { policy } = policyWith({ budget: { calls: 3, windowMs: 60_000 }, maxConcurrency: 1, maxQueue: 0 });
    let release: (value: string) => void = () => undefined;
    const slow = policy.call('retrieve', 'a', Date.now() + 2_000, () => new Promise<string>((resolve) => { release = resolve; }), undefined);
    await new Promise((resolve) => setTimeout(resolve, 10));
    const refused = policy.call('retrieve', 'b "x"', Date.now() + 2_000, scripted('never').send, undefined);
    await expect(refused).rejects.toBeInstanceOf(OrqUnavailableError);
    await expect(refused).rejects.toMatchObject({ reason: 'overloaded', externalId: 'b "x"', message: expect.stringMatching(/^orq retrieve of user "b \\"x\\"" was not attempted: .* \(maxQueue 0\)\. The request goes on without an identity; raise maxConcurrency or maxQueue if orq can take more\.$/) });
    release('done');
    await expect(slow).resolves.toBe('done');
    // The refused call gave its grant back: a new lookup still has its one.
    await expect(policy.call('retrieve', 'c', Date.now() + 200, scripted('ok').send, undefined)).resolves.toBe('ok');
  });
});

/** A `send` that waits until the test settles it. */
function held() {
  let settle: (outcome: { value?: unknown; error?: unknown }) => void = () => undefined;
  let sent = 0;
  const send = (): Promise<unknown> => {
    sent += 1;
    return new Promise((resolve, reject) => {
      settle = (outcome) => (outcome.error === undefined ? resolve(outcome.value) : reject(outcome.error));
    });
  };
  return { send, settle: (outcome: { value?: unknown; error?: unknown }) => settle(outcome), sent: () => sent };
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 5));

describe('the queue', () => {
  it('a call still queued at its deadline fails as timed out, never sent, and gives its grant back', async () => {
    // New lookups may use 2 of 3.
    const { policy } = policyWith({ budget: { calls: 3, windowMs: 60_000 }, maxConcurrency: 1 });
    const holder = held();
    const holding = policy.call('retrieve', 'a', Date.now() + 2_000, holder.send, undefined);
    await tick();
    const { send, timeouts } = scripted('never');
    const late = policy.call('retrieve', 'b', Date.now() + 100, send, undefined);
    await expect(late).rejects.toBeInstanceOf(OrqApiError);
    await expect(late).rejects.toMatchObject({ kind: 'timeout', message: expect.stringMatching(/^orq retrieve of user "b" did not finish within lookupTimeoutMs/), cause: { name: 'DeadlineExceededError' } });
    expect(timeouts).toEqual([]);
    holder.settle({ value: 'a' });
    await expect(holding).resolves.toBe('a');
    await expect(policy.call('retrieve', 'c', Date.now() + 200, scripted('ok').send, undefined)).resolves.toBe('ok');
  });

  it('a queued call finds the circuit its predecessor opened: refused without being sent', async () => {
    const { policy } = policyWith({ maxConcurrency: 1, failureThreshold: 1 });
    const holder = held();
    const holding = policy.call('retrieve', 'a', Date.now() + 2_000, holder.send, undefined);
    await tick();
    const { send, timeouts } = scripted('never');
    const queued = policy.call('retrieve', 'b', Date.now() + 2_000, send, undefined);
    await tick();
    holder.settle({ error: failure('network') });
    await expect(holding).rejects.toThrow();
    await expect(queued).rejects.toMatchObject({ reason: 'circuit-open', externalId: 'b', message: expect.stringMatching(/^Calls to orq are paused after repeated failures/) });
    expect(timeouts).toEqual([]);
  });

  it.each([
    ['without a budget', undefined],
    ['with a budget (no 429, so no pause to speak of)', { calls: 100, windowMs: 60_000 }],
  ])('while the probe of a half-open circuit is out, other calls are refused without being sent (%s)', async (_with, budget) => {
    freezeDate();
    const { policy } = policyWith({ failureThreshold: 1, cooldownMs: 100, budget });
    await expect(policy.call('retrieve', 'u', Date.now() + 5_000, scripted(failure('network')).send, undefined)).rejects.toThrow();
    advance(100);
    const probe = held();
    const probing = policy.call('retrieve', 'p', Date.now() + 5_000, probe.send, undefined);
    await tick();
    const { send, timeouts } = scripted('never');
    await expect(policy.call('retrieve', 'q', Date.now() + 5_000, send, undefined)).rejects.toMatchObject({
      reason: 'circuit-open', externalId: 'q', message: 'Calls to orq are paused while one call checks whether orq is back; the request goes on without an identity.',
    });
    expect(timeouts).toEqual([]);
    probe.settle({ value: 'back' });
    await expect(probing).resolves.toBe('back');
    expect(policy.circuit).toBe('closed');
  });

  it('an urgent call (the create of a lookup under way) leaves the queue before new lookups that came first', async () => {
    const { policy } = policyWith({ maxConcurrency: 1 });
    const order: string[] = [];
    const holder = held();
    const holding = policy.call('retrieve', 'a', Date.now() + 2_000, holder.send, undefined);
    await tick();
    const queued = [
      policy.call('retrieve', 'x', Date.now() + 2_000, async () => order.push('x'), undefined),
      policy.call('create', 'y', Date.now() + 2_000, async () => order.push('y'), undefined, true),
    ];
    await tick();
    holder.settle({ value: 'a' });
    await Promise.all([holding, ...queued]);
    expect(order).toEqual(['y', 'x']);
  });

  it('a call that reached orq keeps its grant, even when it failed', async () => {
    const { policy } = policyWith({ budget: { calls: 1, windowMs: 60_000 } });
    await expect(policy.call('retrieve', 'a', Date.now() + 200, scripted(failure('http', { statusCode: 400 })).send, undefined)).rejects.toMatchObject({ statusCode: 400 });
    await expect(policy.call('retrieve', 'b', Date.now() + 200, scripted('ok').send, undefined)).rejects.toMatchObject({ reason: 'budget' });
  });
});

describeRedis('the call policy on a shared store', () => {
  async function sharedStore(redis: RedisServer): Promise<RedisStore> {
    const send = commandFunction(await connectClient('ioredis', redis)) as SendCommand;
    return new RedisStore({ send, prefix: 'test:', scope: 'ws', commandTimeoutMs: 500, report: () => undefined });
  }

  it("a 429 on one instance: the others refuse calls as paused fleet-wide, report that once, and read their circuit as open", async () => {
    const redis = await startRedis();
    const first = policyWith({ store: await sharedStore(redis) });
    const second = policyWith({ store: await sharedStore(redis) });
    await expect(first.policy.call('retrieve', 'a', Date.now() + 2_000, scripted(failure('rate-limited', { retryAfterMs: 1_500 })).send, undefined)).rejects.toThrow();
    expect(first.reported).toHaveLength(1);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(second.policy.circuit).toBe('closed');

    const { send, timeouts } = scripted('never');
    const refused = second.policy.call('retrieve', 'b', Date.now() + 2_000, send, undefined);
    await expect(refused).rejects.toBeInstanceOf(OrqUnavailableError);
    await expect(refused).rejects.toMatchObject({
      reason: 'circuit-open', externalId: 'b',
      message: 'orq rate-limited this workspace (HTTP 429); calls to orq are paused on every instance for about 2 s; meanwhile requests go on without new identities.',
    });
    await expect(second.policy.call('retrieve', 'c', Date.now() + 2_000, send, undefined)).rejects.toMatchObject({ reason: 'circuit-open', externalId: 'c' });
    expect(timeouts).toEqual([]);
    expect(second.reported).toHaveLength(1);
    expect(second.reported[0]).toMatchObject({ reason: 'circuit-open', externalId: undefined, message: expect.stringMatching(/^orq rate-limited this workspace \(HTTP 429\); calls to orq are paused on every instance/) });
    expect(second.policy.circuit).toBe('open');
    expect(second.policy.isOpen).toBe(true);
    expect(second.policy.retryInMs).toBeGreaterThan(1_000);
    expect(second.policy.retryInMs).toBeLessThanOrEqual(1_500);
    expect(second.policy.circuitOpenError('d')).toMatchObject({ externalId: 'd', message: expect.stringMatching(/paused on every instance/) });
    // The instance that got the 429 says so too, with its own breaker's time left.
    expect(first.policy.circuitOpenError('d').message).toMatch(/^Calls to orq are paused after orq rate-limited this workspace \(HTTP 429\) \(about [12] s left\)/);
  });

  it('a refused key on one instance pauses only that one: the fleet goes on', async () => {
    const redis = await startRedis();
    const first = policyWith({ store: await sharedStore(redis) });
    const second = policyWith({ store: await sharedStore(redis) });
    await expect(first.policy.call('retrieve', 'a', Date.now() + 2_000, scripted(failure('unauthorized', { statusCode: 401 })).send, undefined)).rejects.toThrow();
    expect(first.policy.circuit).toBe('open');
    await new Promise((resolve) => setTimeout(resolve, 20));
    await expect(second.policy.call('retrieve', 'b', Date.now() + 2_000, scripted('ok').send, undefined)).resolves.toBe('ok');
    expect(second.reported).toEqual([]);
  });

  it('a budget over a shared store is the fleet\'s, and says so when it has no room', async () => {
    const redis = await startRedis();
    const { policy, reported } = policyWith({ store: await sharedStore(redis), budget: { calls: 1, windowMs: 60_000 } });
    await expect(policy.call('retrieve', 'a', Date.now() + 200, scripted('ok').send, undefined)).resolves.toBe('ok');
    await expect(policy.call('retrieve', 'b', Date.now() + 200, scripted('ok').send, undefined)).rejects.toMatchObject({ reason: 'budget' });
    expect(reported.map((error) => error.message)).toEqual([expect.stringMatching(/^The call budget \(1 call to orq per 60000 ms across the fleet\) had no room for the retrieve of user "b"/)]);
  });
});
