// Observability: stats(), a plain snapshot for health endpoints and dashboards, and the diagnostics_channel
// events, one per call to orq and one per lookup, with nothing identifying in them.
import diagnosticsChannel from 'node:diagnostics_channel';
import { afterEach, describe, expect, it } from 'vitest';
import { createIdentityResolver, orqIdentityChannels, type OrqCallEvent, type OrqLookupEvent } from '../src/index.js';
import { startApp, startEmulator } from './helpers.js';

const zeroCalls = { ok: 0, 'not-found': 0, http: 0, 'rate-limited': 0, unauthorized: 0, network: 0, timeout: 0, 'invalid-response': 0, 'not-sent': 0, unexpected: 0 };

describe('stats()', () => {
  it('counts cache hits and misses, lookups started and coalesced, and calls by operation and outcome', async () => {
    const { whoami, emulator, middleware } = await startApp({ emulator: { latencyMs: 30 } });
    emulator.seed({ externalId: 'known' });

    await Promise.all(Array.from({ length: 5 }, () => whoami('newcomer').expect(200)));
    await whoami('known').expect(200);
    for (let index = 0; index < 4; index++) await whoami('newcomer').expect(200);

    expect(middleware.stats()).toEqual({
      cache: { size: 2, max: 10_000, hits: 4, misses: 6 },
      lookups: { started: 2, coalesced: 4, inFlight: 0, found: 1, created: 1, failed: 0, order: 'retrieve-first' },
      calls: {
        retrieve: { ...zeroCalls, 'not-found': 1, ok: 1 },
        create: { ...zeroCalls, ok: 1 },
        update: zeroCalls,
      },
      queue: { inFlight: 0, queued: 0, maxConcurrency: 16, maxQueue: 1_000 },
      circuit: { state: 'closed', retryInMs: 0 },
      backgroundTasks: 0,
      // startApp turns the budget off; the backlog is on by default and stayed empty.
      budget: undefined,
      backlog: { length: 0, oldestMs: 0, drainInMs: 0, registering: 0, registered: 0, dropped: 0 },
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

const unsubscribes: Array<() => void> = [];
afterEach(() => {
  for (const unsubscribe of unsubscribes.splice(0)) unsubscribe();
});

function record<T>(name: string): T[] {
  const events: T[] = [];
  const listener = (message: unknown): void => {
    events.push(message as T);
  };
  diagnosticsChannel.subscribe(name, listener);
  unsubscribes.push(() => diagnosticsChannel.unsubscribe(name, listener));
  return events;
}

describe('diagnostics_channel events', () => {
  it('are published under the documented names', () => {
    expect(orqIdentityChannels).toEqual({
      call: 'express-orq-identity:call', lookup: 'express-orq-identity:lookup', backlog: 'express-orq-identity:backlog',
    });
  });

  it('report every call (operation, outcome, status, attempt, duration) and every lookup (outcome, duration, coalesced)', async () => {
    const calls = record<OrqCallEvent>(orqIdentityChannels.call);
    const lookups = record<OrqLookupEvent>(orqIdentityChannels.lookup);
    const { whoami, emulator } = await startApp({ emulator: { latencyMs: 20 } });

    const started = performance.now();
    await Promise.all(Array.from({ length: 3 }, () => whoami('ada').expect(200)));
    const elapsed = performance.now() - started;
    expect(calls).toEqual([
      { operation: 'retrieve', outcome: 'not-found', statusCode: 404, attempt: 0, durationMs: expect.any(Number) },
      { operation: 'create', outcome: 'ok', statusCode: undefined, attempt: 0, durationMs: expect.any(Number) },
    ]);
    // Each took at least the emulator's latency, and no longer than the requests that waited for it.
    expect(calls.every((event) => event.durationMs >= 15 && event.durationMs <= elapsed)).toBe(true);
    expect(lookups).toEqual([{ outcome: 'created', durationMs: expect.any(Number), coalesced: 2 }]);
    expect(lookups[0]?.durationMs).toBeGreaterThanOrEqual(30);
    expect(lookups[0]?.durationMs).toBeLessThanOrEqual(elapsed);

    emulator.seed({ externalId: 'grace' });
    emulator.inject({ kind: 'status', status: 503, times: 1 });
    await whoami('grace').expect(200);
    expect(calls.slice(2)).toEqual([
      { operation: 'retrieve', outcome: 'http', statusCode: 503, attempt: 0, durationMs: expect.any(Number) },
      { operation: 'retrieve', outcome: 'ok', statusCode: undefined, attempt: 1, durationMs: expect.any(Number) },
    ]);
    expect(lookups[1]).toEqual({ outcome: 'found', durationMs: expect.any(Number), coalesced: 0 });
  });

  it('never carry the API key, user ids or profile fields', async () => {
    const calls = record<unknown>(orqIdentityChannels.call);
    const lookups = record<unknown>(orqIdentityChannels.lookup);
    const { whoami, emulator } = await startApp({
      middleware: {
        getUser: (req) => {
          const id = req.header('x-user');
          return id === undefined ? undefined : { externalId: id, displayName: 'Secret Name', email: 'secret@example.com' };
        },
      },
    });
    emulator.inject({ kind: 'status', status: 401, times: 1 });
    await whoami('private-user-id').expect(200);
    await whoami('private-user-id-2').expect(200);
    const published = JSON.stringify([...calls, ...lookups]);
    expect(calls.length + lookups.length).toBeGreaterThan(0);
    for (const secret of [emulator.apiKey, 'private-user-id', 'Secret Name', 'secret@example.com']) expect(published).not.toContain(secret);
  });
});
