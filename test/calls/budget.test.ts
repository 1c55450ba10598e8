// The call budget: a rolling window per process, fleet-wide on a real Redis, with priorities and a shared pause.
import { describe, expect, it } from 'vitest';
import { CallBudget, type CallPriority } from '../../src/calls/budget.js';
import { commandFunction, guardErrorEvents, type SendCommand } from '../../src/store/command.js';
import { RedisStore } from '../../src/store/redis-store.js';
import { connectClient, describeRedis, startRedis, type RedisServer } from '../redis.js';
import { busiestWindow } from '../busiest-window.js';

async function grantTimes(budgets: readonly CallBudget[], count: number, priority: CallPriority, deadlineMs: number): Promise<{ granted: number[]; denied: number }> {
  const granted: number[] = [];
  let denied = 0;
  const deadline = Date.now() + deadlineMs;
  await Promise.all(Array.from({ length: count }, async (_, index) => {
    const budget = budgets[index % budgets.length] as CallBudget;
    const denial = await budget.acquire(priority, deadline);
    if (denial === undefined) granted.push(Date.now());
    else denied += 1;
  }));
  return { granted, denied };
}

function realDelay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The promise's value if it settles within `ms` of real time, else 'pending'. */
function settledWithin<T>(promise: Promise<T>, ms: number): Promise<T | 'pending'> {
  return Promise.race([promise, realDelay(ms).then(() => 'pending' as const)]);
}

describe('call budget in one process', () => {
  it('never grants more than `calls` in any rolling window, and grants the rest as the window moves', async () => {
    const budget = new CallBudget({ calls: 5, windowMs: 300 });
    const { granted, denied } = await grantTimes([budget], 12, 'finish', 2_000);
    expect(denied).toBe(0);
    expect(granted).toHaveLength(12);
    expect(busiestWindow(granted, 300)).toBeLessThanOrEqual(5);
  });

  it('gives up at once, without waiting, when room will not come before the deadline', async () => {
    const budget = new CallBudget({ calls: 2, windowMs: 10_000 });
    await grantTimes([budget], 2, 'lookup', 100);
    const started = Date.now();
    expect(await budget.acquire('lookup', Date.now() + 500)).toMatchObject({ reason: 'exhausted', waitMs: expect.any(Number) });
    expect(Date.now() - started).toBeLessThan(50);
  });

  it.each([
    ['finish', 10],
    ['lookup', 8],
    ['sync', 7],
    ['background', 5],
  ] as const)('lets %s calls use %i of 10: lookups under way finish first, background work keeps headroom for new users', async (priority, allowed) => {
    const budget = new CallBudget({ calls: 10, windowMs: 60_000 });
    const { granted } = await grantTimes([budget], 12, priority, 50);
    expect(granted).toHaveLength(allowed);
    if (priority === 'background') expect(await budget.acquire('lookup', Date.now() + 10)).toBeUndefined();
    if (priority === 'lookup') expect(await budget.acquire('finish', Date.now() + 10)).toBeUndefined();
  });

  it('a 429 pauses every call until Retry-After', async () => {
    const pauses: string[] = [];
    const budget = new CallBudget({ calls: 100, windowMs: 1_000, onPause: (ms, source) => pauses.push(`${source} ${ms}`) });
    budget.pause(200);
    const started = Date.now();
    // Refused at once, however long the caller could wait: requests go on without identities during a pause.
    expect(await budget.acquire('lookup', Date.now() + 5_000)).toMatchObject({ reason: 'paused', waitMs: expect.any(Number) });
    expect(Date.now() - started).toBeLessThan(50);
    expect(budget.pausedForMs).toBeGreaterThan(100);
    await new Promise((resolve) => setTimeout(resolve, 210));
    expect(await budget.acquire('lookup', Date.now() + 50)).toBeUndefined();
    expect(pauses).toEqual(['local 200']);
  });
});

describe('call budget on a clock of its own', () => {
  function clocked(options: { calls: number; windowMs: number; maxCalls?: number; learn?: boolean }) {
    let time = 1_000_000;
    const pauses: string[] = [];
    const budget = new CallBudget({ ...options, now: () => time, onPause: (ms, source) => pauses.push(`${source} ${ms}`) });
    return { budget, pauses, now: () => time, advance: (ms: number) => { time += ms; } };
  }

  it('lets each priority use its share of the calls, and at least one', () => {
    const ten = clocked({ calls: 10, windowMs: 1_000 }).budget;
    expect(['finish', 'lookup', 'backlog', 'sync', 'background'].map((priority) => ten.localRoom(priority as CallPriority))).toEqual([10, 8, 10, 7, 5]);
    const one = clocked({ calls: 1, windowMs: 1_000 }).budget;
    expect(['finish', 'lookup', 'backlog', 'sync', 'background'].map((priority) => one.localRoom(priority as CallPriority))).toEqual([1, 1, 1, 1, 1]);
  });

  it.each([
    [60_000, 60_600],
    [2_000, 2_050],
    [100, 150],
  ])('counts a grant in a %i ms window for %i ms (1 %, at least 50 ms, longer), and says exactly when room comes back', async (windowMs, countedMs) => {
    const { budget, now, advance } = clocked({ calls: 2, windowMs });
    const start = now();
    expect(await budget.acquire('finish', now())).toBeUndefined();
    advance(10);
    expect(await budget.acquire('finish', now())).toBeUndefined();
    expect(budget.localRoom('finish')).toBe(0);
    // The whole budget is back when the first grant leaves; a new lookup (1 of 2) only when the second does.
    expect(await budget.acquire('finish', now())).toEqual({ reason: 'exhausted', waitMs: start + countedMs - now() });
    expect(await budget.acquire('lookup', now())).toEqual({ reason: 'exhausted', waitMs: start + 10 + countedMs - now() });
    advance(countedMs - 11);
    expect(budget.localRoom('finish')).toBe(0);
    advance(1);
    expect(budget.localRoom('finish')).toBe(1);
    expect(budget.localRoom('lookup')).toBe(0);
    expect(await budget.acquire('lookup', now())).toEqual({ reason: 'exhausted', waitMs: 10 });
    advance(10);
    expect(budget.localRoom('lookup')).toBe(1);
    expect(budget.localRoom('finish')).toBe(2);
  });

  it('learns the limit orq announces, less the reserve, within maxCalls; without `learn` it ignores it', () => {
    const learning = clocked({ calls: 20, windowMs: 1_000, maxCalls: 500, learn: true }).budget;
    expect(learning.calls).toBe(20);
    learning.learn({ limit: 100, remaining: undefined, resetAt: undefined });
    // The reserve is max(2, 5 %): 5 of 100.
    expect([learning.learned, learning.calls, learning.localRoom('finish')]).toEqual([100, 95, 95]);
    learning.learn({ limit: 1_000, remaining: undefined, resetAt: undefined });
    expect(learning.calls).toBe(500);
    learning.learn({ limit: 20, remaining: undefined, resetAt: undefined });
    expect(learning.calls).toBe(18);
    const fixed = clocked({ calls: 20, windowMs: 1_000, learn: false }).budget;
    fixed.learn({ limit: 100, remaining: undefined, resetAt: undefined });
    expect([fixed.learned, fixed.calls]).toEqual([undefined, 20]);
  });

  it('stops where orq says its window is spent (less the reserve) until the reset, whatever its own count says', async () => {
    const { budget, now, advance } = clocked({ calls: 100, windowMs: 60_000, learn: true });
    // Other callers of the workspace spent most of orq's window: 7 left, 5 of them kept in reserve (5 % of 100).
    budget.learn({ limit: 100, remaining: 7, resetAt: now() + 1_000 });
    expect(await budget.acquire('finish', now())).toBeUndefined();
    expect(await budget.acquire('finish', now())).toBeUndefined();
    expect(await budget.acquire('finish', now())).toEqual({ reason: 'exhausted', waitMs: 1_000 });
    // A refunded call went nowhere: orq never counted it.
    budget.refund();
    expect(await budget.acquire('finish', now())).toBeUndefined();
    advance(1_000);
    expect(await budget.acquire('finish', now())).toBeUndefined();
  });

  it('a refund gives back the grant of a call that never went', async () => {
    const { budget, now } = clocked({ calls: 2, windowMs: 1_000 });
    budget.refund();
    expect(budget.localRoom('finish')).toBe(2);
    expect(await budget.acquire('finish', now())).toBeUndefined();
    expect(await budget.acquire('finish', now())).toBeUndefined();
    expect(budget.localRoom('finish')).toBe(0);
    budget.refund();
    expect(budget.localRoom('finish')).toBe(1);
  });

  it('a pause is never shortened, is told once per lengthening, and ends at 0', async () => {
    const { budget, pauses, now, advance } = clocked({ calls: 5, windowMs: 1_000 });
    expect(budget.pausedForMs).toBe(0);
    budget.pause(200);
    budget.pause(100);
    expect(budget.pausedForMs).toBe(200);
    advance(150);
    budget.pause(50);
    expect(pauses).toEqual(['local 200']);
    expect(await budget.acquire('finish', now() + 10_000)).toEqual({ reason: 'paused', waitMs: 50 });
    budget.pause(100);
    expect(pauses).toEqual(['local 200', 'local 100']);
    expect(budget.pausedForMs).toBe(100);
    advance(300);
    expect(budget.pausedForMs).toBe(0);
    expect(await budget.acquire('finish', now())).toBeUndefined();
  });
});

describe('call budget: who waits for room', () => {
  it('a call behind a waiting call of higher priority gives up at once when its deadline is near, and asks again once that one is served', async () => {
    const budget = new CallBudget({ calls: 1, windowMs: 100 });
    expect(await budget.acquire('finish', Date.now() + 1_000)).toBeUndefined();
    const waiting = budget.acquire('finish', Date.now() + 2_000);
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect(await budget.acquire('background', Date.now() + 20)).toEqual({ reason: 'exhausted', waitMs: 50 });
    expect(await waiting).toBeUndefined();
    // Nobody waits now: the answer is the window's own, room again in about 150 ms.
    const denial = await budget.acquire('background', Date.now() + 20);
    expect(denial).toMatchObject({ reason: 'exhausted' });
    expect(denial?.waitMs).toBeGreaterThan(50);
  });

  it('on its own clock: a call behind a higher-priority waiter looks again while its deadline allows one more look, gives up when it does not, and is served after that waiter', async () => {
    let time = 1_000_000;
    const budget = new CallBudget({ calls: 1, windowMs: 100, now: () => time });
    const start = time;
    expect(await budget.acquire('finish', start)).toBeUndefined();
    // Room comes back 150 ms after the grant (100 ms + 50 counted over): a deadline just then is reachable.
    const finish = budget.acquire('finish', start + 150);
    await realDelay(5);
    // A waiter of the same priority is no reason to wait: this one gets the window's own answer at once.
    expect(await settledWithin(budget.acquire('finish', start + 10), 100)).toEqual({ reason: 'exhausted', waitMs: 150 });
    expect(await settledWithin(budget.acquire('background', start + 49), 100)).toEqual({ reason: 'exhausted', waitMs: 50 });
    const patient = budget.acquire('background', start + 50);
    const far = budget.acquire('sync', start + 10_000);
    // The clock stands still: no room, so the waiters wait.
    expect(await settledWithin(patient, 100)).toBe('pending');
    time += 150;
    expect(await settledWithin(finish, 1_000)).toBeUndefined();
    // The finish took the room; the patient call's deadline has passed, the far one's has not.
    expect(await settledWithin(patient, 1_000)).toMatchObject({ reason: 'exhausted' });
    expect(await settledWithin(far, 300)).toBe('pending');
    time += 150;
    expect(await settledWithin(far, 1_000)).toBeUndefined();
  });

  it('when room comes back, the waiting call of higher priority gets it first', async () => {
    const budget = new CallBudget({ calls: 1, windowMs: 100 });
    expect(await budget.acquire('finish', Date.now() + 1_000)).toBeUndefined();
    const order: string[] = [];
    await Promise.all((['background', 'finish'] as const).map(async (priority) => {
      expect(await budget.acquire(priority, Date.now() + 2_000)).toBeUndefined();
      order.push(priority);
    }));
    expect(order).toEqual(['finish', 'background']);
  });
});

describeRedis('call budget across a fleet on Redis', () => {
  async function fleet(size: number, redis: RedisServer, calls: number, windowMs: number, sends?: SendCommand[]) {
    const budgets: CallBudget[] = [];
    const pauses: string[] = [];
    for (let i = 0; i < size; i++) {
      const client = await connectClient(i % 2 === 0 ? 'node-redis' : 'ioredis', redis);
      const send = commandFunction(client) as SendCommand;
      sends?.push(send);
      const store = new RedisStore({ send, prefix: 'test:', scope: 'ws', commandTimeoutMs: 200, report: () => undefined });
      guardErrorEvents(client, (error) => store.connectionError(error));
      budgets.push(new CallBudget({ calls, windowMs, store, onPause: (ms, source) => pauses.push(`${i} ${source}`) }));
    }
    return { budgets, pauses };
  }

  it('four instances together never pass `calls` in any window (one rolling window on Redis TIME)', async () => {
    const redis = await startRedis();
    const { budgets } = await fleet(4, redis, 10, 500);
    const { granted, denied } = await grantTimes(budgets, 40, 'finish', 4_000);
    expect(denied).toBe(0);
    expect(busiestWindow(granted, 500)).toBeLessThanOrEqual(10);
    // Fixed windows would let up to 2 × calls through around a boundary; a rolling one spreads them out.
    expect(Math.max(...granted) - Math.min(...granted)).toBeGreaterThanOrEqual(3 * 500);
  });

  it('background work on any instance leaves the fleet headroom for new users', async () => {
    const redis = await startRedis();
    const { budgets } = await fleet(2, redis, 10, 60_000);
    expect((await grantTimes(budgets, 10, 'background', 50)).granted).toHaveLength(5);
    expect((await grantTimes(budgets, 10, 'lookup', 50)).granted).toHaveLength(3);
    expect((await grantTimes(budgets, 10, 'finish', 50)).granted).toHaveLength(2);
  });

  it('a 429 on one instance pauses them all, each told once', async () => {
    const redis = await startRedis();
    const { budgets, pauses } = await fleet(3, redis, 100, 1_000);
    const [first, second, third] = budgets as [CallBudget, CallBudget, CallBudget];
    first.pause(400);
    await new Promise((resolve) => setTimeout(resolve, 20));
    // Two asks on their way to the store at once: both paused, the pause told once.
    const asks = await Promise.all([second.acquire('lookup', Date.now() + 50), second.acquire('lookup', Date.now() + 50)]);
    expect(asks).toMatchObject([{ reason: 'paused' }, { reason: 'paused' }]);
    expect(await second.acquire('lookup', Date.now() + 50)).toMatchObject({ reason: 'paused' });
    expect(second.pausedForMs).toBeGreaterThan(200);
    expect(await third.acquire('lookup', Date.now() + 2_000)).toMatchObject({ reason: 'paused' });
    await new Promise((resolve) => setTimeout(resolve, 420));
    expect(await third.acquire('lookup', Date.now() + 50)).toBeUndefined();
    expect(pauses.sort()).toEqual(['0 local', '1 fleet', '2 fleet']);
  });

  it('a fleet pause that starts the millisecond this instance\'s own pause ends is told as a new pause', async () => {
    const redis = await startRedis();
    const { budgets } = await fleet(1, redis, 100, 1_000);
    const [other] = budgets as [CallBudget];
    const pauses: string[] = [];
    let time = 1_000_000;
    const client = await connectClient('node-redis', redis);
    const send = commandFunction(client) as SendCommand;
    const store = new RedisStore({ send, prefix: 'test:', scope: 'ws', commandTimeoutMs: 200, report: () => undefined });
    guardErrorEvents(client, (error) => store.connectionError(error));
    const budget = new CallBudget({ calls: 100, windowMs: 1_000, store, now: () => time, onPause: (ms, source) => pauses.push(source) });
    budget.pause(100);
    time += 100;
    expect(budget.pausedForMs).toBe(0);
    other.pause(2_000);
    await realDelay(20);
    expect(await budget.acquire('lookup', time + 50)).toMatchObject({ reason: 'paused' });
    expect(pauses).toEqual(['local', 'fleet']);
  });

  it('with Redis gone each instance keeps to its share of the fleet it last saw', async () => {
    const redis = await startRedis();
    const { budgets } = await fleet(4, redis, 20, 60_000);
    // Twice, so that every instance has heard of all four.
    await grantTimes(budgets, 4, 'lookup', 100);
    await grantTimes(budgets, 4, 'lookup', 100);
    await redis.kill();
    const [first] = budgets as [CallBudget];
    // 20 calls over the 4 instances seen: 5 each, two already used.
    expect((await grantTimes([first], 10, 'finish', 50)).granted).toHaveLength(3);
  });

  it('a refund takes the newest grants this process remembers back out of the fleet window', async () => {
    const redis = await startRedis();
    const { budgets } = await fleet(1, redis, 2, 60_000);
    const [budget] = budgets as [CallBudget];
    for (let i = 0; i < 3; i++) await budget.acquire('finish', Date.now() + 100);
    expect(await redis.command('ZCARD', 'test:{ws}:budget')).toBe(':2\r\n');
    budget.refund();
    expect(await budget.acquire('finish', Date.now() + 100)).toBeUndefined();
    for (let i = 0; i < 3; i++) budget.refund();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(await redis.command('ZCARD', 'test:{ws}:budget')).toBe(':0\r\n');
  });

  it('one instance learns the limit from orq, and every instance keeps to it (one limit for the workspace, in Redis)', async () => {
    const redis = await startRedis();
    const budgets: CallBudget[] = [];
    for (let i = 0; i < 2; i++) {
      const client = await connectClient(i === 0 ? 'node-redis' : 'ioredis', redis);
      const store = new RedisStore({ send: commandFunction(client) as SendCommand, prefix: 'test:', scope: 'ws', commandTimeoutMs: 200, report: () => undefined });
      guardErrorEvents(client, (error) => store.connectionError(error));
      budgets.push(new CallBudget({ calls: 40, windowMs: 60_000, maxCalls: 1_000, learn: true, store }));
    }
    const [learner, other] = budgets as [CallBudget, CallBudget];
    learner.learn({ limit: 12, remaining: undefined, resetAt: undefined });
    await new Promise((resolve) => setTimeout(resolve, 50));
    // 12 less a reserve of 2: ten calls for the fleet, whichever instance makes them.
    const { granted } = await grantTimes([other, learner], 20, 'finish', 100);
    expect(granted).toHaveLength(10);
    expect(other.learned).toBe(12);
  });

  it('counts the fleet in one sorted set under the workspace hash tag', async () => {
    const redis = await startRedis();
    const { budgets } = await fleet(1, redis, 5, 1_000);
    await grantTimes(budgets, 3, 'lookup', 100);
    const keys = await redis.command('KEYS', '*');
    expect(keys).toContain('test:{ws}:budget');
    expect(keys).toContain('test:{ws}:instances');
    expect(await redis.command('ZCARD', 'test:{ws}:budget')).toBe(':3\r\n');
  });
});
