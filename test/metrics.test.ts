// Usage on the identity: fetched with include_metrics, refreshed no more often than refreshMs, off the critical path.
import { describe, expect, it } from 'vitest';
import { eventually, startApp } from './helpers.js';

describe('metrics option', () => {
  it('exposes the 30-day usage and refreshes it at most every refreshMs', async () => {
    const { whoami, emulator, middleware } = await startApp({ middleware: { metrics: { refreshMs: 1_500 } } });
    emulator.seed({ externalId: 'spender' });
    emulator.setUsage('spender', { totalCost: 2.5, totalTokens: 1_000, totalRequests: 10, errorRate: 0.1 });

    const first = await whoami('spender').expect(200);
    expect(first.body.identity.metrics).toEqual({ totalCost: 2.5, totalTokens: 1_000, totalRequests: 10, errorRate: 0.1 });
    expect(emulator.calls[0]?.query).toEqual({ include_metrics: 'true' });

    emulator.setUsage('spender', { totalCost: 9, totalTokens: 4_000, totalRequests: 40, errorRate: 0 });
    for (let index = 0; index < 5; index++) await whoami('spender').expect(200);
    expect(emulator.count()).toBe(1);

    // 1.5 s, not less: each group of five requests must fall inside one refresh period on a loaded machine.
    await new Promise((resolve) => setTimeout(resolve, 1_520));
    // The request that finds the metrics stale is served at once; the refresh runs behind it.
    expect((await whoami('spender').expect(200)).body.identity.metrics.totalCost).toBe(2.5);
    await eventually(() => middleware.resolver.cached('spender')?.metrics?.totalCost === 9, 'the refresh');
    for (let index = 0; index < 5; index++) await whoami('spender').expect(200);
    expect(emulator.count('retrieve')).toBe(2);
  });

  it('is off by default: no include_metrics, no refreshes', async () => {
    const { whoami, emulator } = await startApp();
    emulator.seed({ externalId: 'plain' });
    expect((await whoami('plain').expect(200)).body.identity.metrics).toBeUndefined();
    expect(emulator.calls[0]?.query).toEqual({});
  });

  it('a refresh that finds the identity gone drops it from the cache and does not retry on every request', async () => {
    const { whoami, emulator, middleware } = await startApp({ middleware: { metrics: { refreshMs: 100 } } });
    emulator.seed({ externalId: 'deleted-later' });
    await whoami('deleted-later').expect(200);
    emulator.inject({ operation: 'retrieve', kind: 'status', status: 404, body: { error: 'Identity not found' } });
    await new Promise((resolve) => setTimeout(resolve, 120));

    for (let index = 0; index < 10; index++) middleware.resolver.cached('deleted-later');
    await eventually(() => middleware.resolver.cached('deleted-later') === undefined, 'the entry to be dropped');
    expect(emulator.count('retrieve')).toBe(2);
  });
});
