// Usage on the identity: fetched with include_metrics, refreshed no more often than refreshMs, off the critical path.
import { describe, expect, it } from 'vitest';
import { eventually, startApp } from './helpers.js';

describe('metrics option', () => {
  it('exposes the 30-day usage and refreshes it at most every refreshMs', async () => {
    const { whoami, emulator, middleware } = await startApp({ middleware: { metrics: { refreshMs: 300 } } });
    emulator.seed({ externalId: 'spender' });
    emulator.setUsage('spender', { totalCost: 2.5, totalTokens: 1_000, totalRequests: 10, errorRate: 0.1 });

    const first = await whoami('spender').expect(200);
    expect(first.body.identity.metrics).toEqual({ totalCost: 2.5, totalTokens: 1_000, totalRequests: 10, errorRate: 0.1 });
    expect(emulator.calls[0]?.query).toEqual({ include_metrics: 'true' });

    emulator.setUsage('spender', { totalCost: 9, totalTokens: 4_000, totalRequests: 40, errorRate: 0 });
    for (let index = 0; index < 5; index++) await whoami('spender').expect(200);
    expect(emulator.count()).toBe(1);

    await new Promise((resolve) => setTimeout(resolve, 320));
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
});
