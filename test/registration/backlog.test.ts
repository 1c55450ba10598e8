// The registration backlog in one process: most recently active first, deduplicated, bounded, and told when empty.
import diagnosticsChannel from 'node:diagnostics_channel';
import { afterEach, describe, expect, it } from 'vitest';
import { orqIdentityChannels, type OrqBacklogEvent } from '../../src/observability/channels.js';
import { RegistrationBacklog, type BacklogDependencies, type BacklogLimits, type RegisterOutcome } from '../../src/registration/backlog.js';
import type { OrqUser } from '../../src/types.js';

/** A registration the test lets finish, so the order of the users can be read without a clock. */
interface Held {
  user: OrqUser;
  finish(outcome: RegisterOutcome): void;
}

const open: RegistrationBacklog[] = [];
afterEach(() => {
  for (const backlog of open.splice(0)) backlog.close();
});

function backlogWith(limits: Partial<BacklogLimits> = {}, deps: Partial<BacklogDependencies> = {}) {
  const held: Held[] = [];
  const waiters: (() => void)[] = [];
  const registeredIds = new Set<string>();
  const backlog = new RegistrationBacklog(
    { maxEntries: 100, maxBytes: 1_000_000, maxIdleMs: 60_000, ...limits },
    {
      store: undefined,
      register: (user) =>
        new Promise<RegisterOutcome>((resolve) => {
          held.push({
            user,
            finish: (outcome) => {
              if (outcome.kind === 'registered') registeredIds.add(user.externalId);
              resolve(outcome);
            },
          });
          for (const wake of waiters.splice(0)) wake();
        }),
      isRegistered: (externalId) => registeredIds.has(externalId),
      pace: () => ({ calls: 10, windowMs: 60_000, callsPerUser: 1 }),
      workers: 1,
      pausedForMs: () => 0,
      ...deps,
    },
  );
  open.push(backlog);
  /** The next registration the backlog starts. */
  async function next(): Promise<Held> {
    while (held.length === 0) await new Promise<void>((resolve) => waiters.push(resolve));
    return held.shift() as Held;
  }
  return { backlog, next, registeredIds };
}

describe('RegistrationBacklog', () => {
  it('registers the most recently active user first, each once however often it was deferred', async () => {
    const { backlog, next } = backlogWith();
    backlog.add({ externalId: 'first' });
    const first = await next();
    for (const id of ['b', 'c', 'b']) backlog.add({ externalId: id });
    expect(backlog.stats()).toMatchObject({ length: 2 });
    first.finish({ kind: 'registered' });
    const order: string[] = [first.user.externalId];
    for (let i = 0; i < 2; i++) {
      const held = await next();
      order.push(held.user.externalId);
      held.finish({ kind: 'registered' });
    }
    expect(order).toEqual(['first', 'b', 'c']);
    await expect.poll(() => backlog.stats()).toMatchObject({ length: 0, registered: 3, drainInMs: 0, oldestMs: 0 });
  });

  it('keeps at most maxEntries: the least recently active falls out and is counted', async () => {
    const { backlog, next } = backlogWith({ maxEntries: 2 });
    backlog.add({ externalId: 'busy' });
    const busy = await next();
    for (const id of ['old', 'mid', 'new']) backlog.add({ externalId: id });
    expect(backlog.stats()).toMatchObject({ length: 2, dropped: 1 });
    expect([backlog.has('old'), backlog.has('mid'), backlog.has('new')]).toEqual([false, true, true]);
    busy.finish({ kind: 'registered' });
  });

  it('keeps at most maxBytes of profiles', async () => {
    const { backlog, next } = backlogWith({ maxBytes: 200 });
    backlog.add({ externalId: 'busy' });
    await next();
    backlog.add({ externalId: 'small' });
    backlog.add({ externalId: 'large', metadata: { notes: 'x'.repeat(150) } });
    expect([backlog.has('small'), backlog.has('large')]).toEqual([false, true]);
    expect(backlog.stats().dropped).toBe(1);
  });

  it('estimates the drain at the budget\'s pace and says how long the last in line has waited', async () => {
    const { backlog, next } = backlogWith();
    backlog.add({ externalId: 'busy' });
    await next();
    for (let i = 0; i < 5; i++) backlog.add({ externalId: `u${i}` });
    const stats = backlog.stats();
    // 5 users at one call each, 10 calls a minute: half a minute.
    expect(stats.drainInMs).toBe(30_000);
    expect(stats.oldestMs).toBeGreaterThanOrEqual(0);
    expect(stats.oldestMs).toBeLessThan(60_000);
  });

  it('puts a deferred user back first in line, and skips a user registered meanwhile by a request', async () => {
    const { backlog, next, registeredIds } = backlogWith();
    backlog.add({ externalId: 'deferred' });
    const first = await next();
    backlog.add({ externalId: 'served-by-a-request' });
    registeredIds.add('served-by-a-request');
    first.finish({ kind: 'deferred', retryInMs: 10 });
    const again = await next();
    expect(again.user.externalId).toBe('deferred');
    again.finish({ kind: 'registered' });
    await expect.poll(() => backlog.stats().length).toBe(0);
    expect(backlog.stats().registered).toBe(1);
  });

  it('publishes one drained event when the last user is registered', async () => {
    const events: OrqBacklogEvent[] = [];
    const listen = (message: unknown): void => void events.push(message as OrqBacklogEvent);
    diagnosticsChannel.subscribe(orqIdentityChannels.backlog, listen);
    try {
      const { backlog, next } = backlogWith();
      backlog.add({ externalId: 'a' });
      backlog.add({ externalId: 'b' });
      (await next()).finish({ kind: 'registered' });
      expect(events).toEqual([]);
      (await next()).finish({ kind: 'failed' });
      await expect.poll(() => events.length).toBe(1);
      expect(events[0]).toMatchObject({ event: 'drained', registered: 1 });
    } finally {
      diagnosticsChannel.unsubscribe(orqIdentityChannels.backlog, listen);
    }
  });

  it('starts no registration while calls are paused, and none after close', async () => {
    let pausedMs = 60_000;
    const { backlog, next } = backlogWith({}, { pausedForMs: () => pausedMs });
    backlog.add({ externalId: 'waits' });
    const started = next();
    const raced = await Promise.race([started.then(() => 'started'), new Promise((resolve) => setImmediate(() => resolve('waiting')))]);
    expect(raced).toBe('waiting');
    pausedMs = 0;
    backlog.kick();
    (await started).finish({ kind: 'registered' });
    backlog.close();
    backlog.add({ externalId: 'after-close' });
    expect(backlog.stats().length).toBe(0);
  });
});
