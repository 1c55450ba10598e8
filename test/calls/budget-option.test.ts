// The `budget` option in one process: what orq receives, what requests see, and what onError gets.
import { describe, expect, it } from 'vitest';
import { startApp } from '../helpers.js';

describe('budget option', () => {
  it('never lets more than `calls` calls reach orq in the window; the rest go on at once without identity, reported once', async () => {
    const { whoami, emulator, errors } = await startApp({ middleware: { budget: { calls: 4, windowMs: 60_000 } } });
    const started = Date.now();
    const answers = await Promise.all(['a', 'b', 'c', 'd', 'e'].map((user) => whoami(user).expect(200)));
    expect(Date.now() - started).toBeLessThan(1_500);
    expect(emulator.count()).toBe(4);
    // New lookups may use 4 × 0.8 = 3 calls; the fourth is kept for a lookup under way to finish (its create).
    expect(emulator.count('retrieve')).toBe(3);
    expect(emulator.count('create')).toBe(1);
    expect(answers.filter((answer) => answer.body.identity !== null)).toHaveLength(1);
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
});
