// close() and the background work it waits for: how long it waits, what it reports, and what it leaves behind.
import { describe, expect, it } from 'vitest';
import { createIdentityResolver } from '../src/index.js';
import { orqClientFor, startEmulator } from './helpers.js';

const timers = (): number => process.getActiveResourcesInfo().filter((resource) => resource === 'Timeout').length;

describe('close() and background work', () => {
  it('with nothing in flight: answers at once, not at its deadline, and leaves no timer to hold the process open', async () => {
    const emulator = await startEmulator();
    const resolver = createIdentityResolver({ client: orqClientFor(emulator), onError: () => undefined });
    const before = timers();
    // A deadline longer than the test's own timeout: waiting it out would fail the test.
    await expect(resolver.close({ timeoutMs: 60_000 })).resolves.toEqual({ pending: 0 });
    expect(timers()).toBeLessThanOrEqual(before);
  });
});
