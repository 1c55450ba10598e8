// The `budget` option in one process: what orq receives, what requests see, and what onError gets.
import { describe, expect, it } from 'vitest';
import { createIdentityResolver, OrqUnavailableError } from '../../src/index.js';
import { eventually, startApp, startEmulator } from '../helpers.js';

describe('budget option', () => {
  it('never lets more than `calls` calls reach orq in the window; the rest go on at once without identity, reported once', async () => {
    const { whoami, emulator, errors, middleware } = await startApp({ middleware: { budget: { calls: 4, windowMs: 60_000 } } });
    const started = Date.now();
    const answers = await Promise.all(['a', 'b', 'c', 'd', 'e'].map((user) => whoami(user).expect(200)));
    expect(Date.now() - started).toBeLessThan(1_500);
    // New lookups may use 4 × 0.8 = 3 calls; the fourth goes to a lookup under way (its create) or to the backlog.
    await eventually(() => emulator.count() === 4, 'the window to fill');
    expect(emulator.count('retrieve')).toBeGreaterThanOrEqual(3);
    expect(answers.filter((answer) => answer.body.identity !== null).length).toBeLessThanOrEqual(1);
    // The users that found no room wait in the registration backlog for the next window, and no call more goes.
    expect(middleware.stats().backlog?.length).toBeGreaterThanOrEqual(3);
    expect(emulator.count()).toBe(4);
    expect(errors.map((error) => [error.name, (error as { reason?: string }).reason])).toEqual([['OrqUnavailableError', 'budget']]);
    expect(errors[0]?.message).toMatch(/The call budget \(4 calls to orq per 60000 ms in this process\) had no room for the (retrieve|create) of user/);
  });

  it('keeps the budget for new users: with it spent, a known user is still served from the cache', async () => {
    const { whoami, emulator } = await startApp({ middleware: { budget: { calls: 2, windowMs: 60_000 } } });
    await whoami('known').expect(200);
    await whoami('stranger').expect(200);
    expect(emulator.count()).toBe(2);
    expect((await whoami('known').expect(200)).body.identity?.externalId).toBe('known');
  });

  it('spends no budget on calls the full queue refuses: after an overload, new users still get their calls', async () => {
    const emulator = await startEmulator({ latencyMs: 300 });
    const resolver = createIdentityResolver({
      apiKey: emulator.apiKey, serverURL: emulator.url, budget: { calls: 20, windowMs: 60_000 },
      maxConcurrency: 1, maxQueue: 0, failureMemoryMs: 0, onError: () => undefined,
    });
    const outcomes = await Promise.all(
      Array.from({ length: 16 }, (_, index) => resolver.resolve(`burst-${index}`).then(() => 'ok', (error: unknown) => (error as OrqUnavailableError).reason)),
    );
    expect(outcomes.filter((outcome) => outcome === 'overloaded').length).toBeGreaterThan(10);
    // Before the fix each refused call had taken a grant: 16 users used the window's 16 lookup grants, and this one got 'budget'.
    await expect(resolver.resolve('after-the-burst')).resolves.toMatchObject({ externalId: 'after-the-burst' });
    await resolver.close();
  });
});
