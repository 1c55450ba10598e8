// Overload: thousands of new users at once. In a file of its own because it bounds wall-clock time (nobody waits
// for the queue to drain), which instrumented code cannot meet: `npm run mutation` leaves out this file only
// (vitest.mutation.config.ts), and every other test of call accounting runs in the mutation suite.
import { describe, expect, it } from 'vitest';
import { OrqUnavailableError, RepeatedFailuresError, createIdentityResolver, type OrqIdentityError } from '../src/index.js';
import { startEmulator } from './helpers.js';

describe('overload (issue 8 point 6)', () => {
  it('thousands of new users at once: a bounded queue, one retrieve and at most one create per user, few reports, no late answers', async () => {
    const emulator = await startEmulator({ latencyMs: 50 });
    const errors: OrqIdentityError[] = [];
    // No call budget: this is about the queue, which the default budget (60 calls a minute) would keep empty.
    const resolver = createIdentityResolver({
      apiKey: emulator.apiKey, serverURL: emulator.url, maxConcurrency: 4, maxQueue: 40, lookupTimeoutMs: 600,
      failureMemoryMs: 0, budget: false, onError: (error) => errors.push(error),
    });
    const users = Array.from({ length: 3_000 }, (_, index) => `crowd-${index}`);
    const waitMs = 300;
    const wave = async (): Promise<number> => {
      let latest = 0;
      await Promise.all(users.map(async (user) => {
        const started = Date.now();
        await resolver.resolve(user, undefined, waitMs).catch(() => undefined);
        latest = Math.max(latest, Date.now() - started);
      }));
      return latest;
    };
    const slowest = await wave();
    // Counted after close: the wave ends when every request stopped waiting, while admitted lookups go on, and a
    // call cut after that would free its slot without being counted.
    await resolver.close({ timeoutMs: 5_000 });
    const { calls } = resolver.stats();
    // A call cut at its deadline frees its slot at once, while the emulator still holds that request for its
    // latency: on a loaded machine the server may then briefly see one more per such call, never more.
    const cutCalls = Object.values(calls).reduce((sum, outcomes) => sum + outcomes.timeout, 0);
    expect(emulator.peakInFlight).toBeLessThanOrEqual(4 + cutCalls);
    // Calls actually made stay near what the slots allow in the time, not one per user.
    expect(emulator.count()).toBeLessThan(users.length / 4);
    const perUser = new Map<string, { retrieve: number; create: number }>();
    for (const call of emulator.calls) {
      const id = call.operation === 'create' ? String((call.body as { external_id: string }).external_id) : decodeURIComponent(call.path.split('/').pop() ?? '');
      const counts = perUser.get(id) ?? { retrieve: 0, create: 0 };
      if (call.operation === 'retrieve' || call.operation === 'create') counts[call.operation] += 1;
      perUser.set(id, counts);
    }
    expect([...perUser.values()].filter((counts) => counts.retrieve > 1 || counts.create > 1)).toEqual([]);
    expect(errors.some((error) => error instanceof OrqUnavailableError && error.reason === 'overloaded')).toBe(true);
    expect(errors.some((error) => error instanceof RepeatedFailuresError && error.count > 100)).toBe(true);
    expect(errors.length).toBeLessThan(60);
    // A generous margin: the machine is shared; the point is that nobody waits for the queue to drain.
    expect(slowest).toBeLessThan(waitMs + 1_500);
  });
});
