// stats(): a plain snapshot of what the middleware did and where it stands, for health endpoints and dashboards.
import { describe, expect, it } from 'vitest';
import { createIdentityResolver } from '../src/index.js';
import { startApp, startEmulator } from './helpers.js';

const zeroCalls = { ok: 0, 'not-found': 0, http: 0, 'rate-limited': 0, unauthorized: 0, network: 0, timeout: 0, 'invalid-response': 0, unexpected: 0 };

describe('stats()', () => {
  it('counts cache hits and misses, lookups started and coalesced, and calls by operation and outcome', async () => {
    const { whoami, emulator, middleware } = await startApp({ emulator: { latencyMs: 30 } });
    emulator.seed({ externalId: 'known' });

    await Promise.all(Array.from({ length: 5 }, () => whoami('newcomer').expect(200)));
    await whoami('known').expect(200);
    for (let index = 0; index < 4; index++) await whoami('newcomer').expect(200);

    expect(middleware.stats()).toEqual({
      cache: { size: 2, max: 10_000, hits: 4, misses: 6 },
      lookups: { started: 2, coalesced: 4, inFlight: 0, found: 1, created: 1, failed: 0 },
      calls: {
        retrieve: { ...zeroCalls, 'not-found': 1, ok: 1 },
        create: { ...zeroCalls, ok: 1 },
        update: zeroCalls,
      },
      queue: { inFlight: 0, queued: 0, maxConcurrency: 16 },
      circuit: { state: 'closed', retryInMs: 0 },
      backgroundTasks: 0,
    });
  });

  it('shows failures by kind, the open circuit and how long it stays open', async () => {
    const { whoami, emulator, middleware } = await startApp({
      middleware: { retries: 0, circuitBreaker: { failureThreshold: 2, cooldownMs: 60_000 } },
    });
    emulator.inject({ kind: 'status', status: 503, times: 2 });
    await whoami('a').expect(200);
    await whoami('b').expect(200);
    await whoami('c').expect(200);

    const stats = middleware.stats();
    expect(stats.calls.retrieve).toEqual({ ...zeroCalls, http: 2 });
    expect(stats.lookups).toMatchObject({ started: 2, failed: 2 });
    expect(stats.circuit.state).toBe('open');
    expect(stats.circuit.retryInMs).toBeGreaterThan(50_000);
    expect(stats.cache.misses).toBe(3);
  });

  it('is a plain, detached snapshot: JSON-safe, and unchanged by later work', async () => {
    const { whoami, middleware } = await startApp();
    const before = middleware.stats();
    expect(JSON.parse(JSON.stringify(before))).toEqual(before);
    await whoami('later').expect(200);
    expect(before.calls.create.ok).toBe(0);
    expect(middleware.stats().calls.create.ok).toBe(1);
  });

  it('is on the framework-free resolver too', async () => {
    const emulator = await startEmulator();
    const resolver = createIdentityResolver({ apiKey: emulator.apiKey, serverURL: emulator.url });
    await resolver.resolve('job-user');
    await resolver.resolve('job-user');
    expect(resolver.stats()).toMatchObject({ cache: { size: 1, hits: 1, misses: 1 }, lookups: { started: 1, created: 1 } });
    await resolver.close();
  });
});
