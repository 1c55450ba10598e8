// What a failed call says about orq: only real outages count toward the circuit and are retried.
import { Orq } from '@orq-ai/node';
import request from 'supertest';
import { describe, expect, it, vi } from 'vitest';
import { maxRetryAfterMs, CallPolicy } from '../src/calls/policy.js';
import { OrqApiError, RepeatedFailuresError, createIdentityResolver, type OrqIdentityError } from '../src/index.js';
import { StatsCounters } from '../src/observability/stats.js';
import { Reporter } from '../src/reporter.js';
import { startApp, startEmulator } from './helpers.js';

describe('answers that are not outages (issue 8 point 8)', () => {
  it.each([
    ['invalid JSON', '{"_id":'],
    ['an empty body', ''],
  ])('a 200 with %s is reported as invalid-response, never retried, never opens the circuit', async (_what, body) => {
    const { whoami, emulator, errors, middleware } = await startApp({
      middleware: { retries: 2, circuitBreaker: { failureThreshold: 2 } },
    });
    emulator.inject({ kind: 'raw', status: 200, headers: { 'content-type': 'application/json' }, body, operation: 'retrieve' });
    for (let index = 0; index < 4; index++) await whoami(`bad-answer-${index}`).expect(200);
    expect(emulator.count('retrieve')).toBe(4);
    expect(middleware.resolver.circuit).toBe('closed');
    expect(errors.map((error) => (error.cause as { kind?: string } | undefined)?.kind ?? (error as { kind?: string }).kind)).toEqual(
      Array.from({ length: 4 }, () => 'invalid-response'),
    );
  });
});

describe('failures before the request left the process (issue 8 point 4)', () => {
  it('a not-sent failure of the half-open probe does not close the circuit', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      const reported: OrqIdentityError[] = [];
      const policy = new CallPolicy(
        { lookupTimeoutMs: 10_000, maxConcurrency: 4, maxQueue: 10, retries: 0, failureThreshold: 1, cooldownMs: 1_000, budget: undefined, store: undefined },
        new Reporter<undefined>((error) => reported.push(error), undefined),
        new StatsCounters(),
      );
      const outage = new OrqApiError('down', { operation: 'retrieve', kind: 'network', externalId: 'u' });
      await expect(policy.call('retrieve', 'u', Date.now() + 10_000, () => Promise.reject(outage), undefined)).rejects.toBe(outage);
      expect(policy.circuit).toBe('open');
      vi.setSystemTime(Date.now() + 1_001);
      expect(policy.circuit).toBe('half-open');
      const notSent = new OrqApiError('URIError', { operation: 'retrieve', kind: 'not-sent', externalId: 'v' });
      await expect(policy.call('retrieve', 'v', Date.now() + 10_000, () => Promise.reject(notSent), undefined)).rejects.toBe(notSent);
      // Nothing reached orq, so nothing is known about its health: the next real call is still the probe.
      expect(policy.circuit).toBe('half-open');
    } finally {
      vi.useRealTimers();
    }
  });

  it('users with lone surrogates never open the circuit for everyone else', async () => {
    const { app, emulator, middleware } = await startApp({
      middleware: { getUser: (req) => req.header('x-id') === 'bad' ? '\ud800' : req.header('x-id'), circuitBreaker: { failureThreshold: 2 } },
    });
    app.get('/hello', (req, res) => { res.json({ identity: req.orqIdentity ?? null }); });
    for (let index = 0; index < 10; index++) {
      await request(app).get('/hello').set('x-id', 'bad').expect(200);
      const response = await request(app).get('/hello').set('x-id', `good-${index}`).expect(200);
      expect(response.body.identity?.externalId).toBe(`good-${index}`);
    }
    expect(middleware.resolver.circuit).toBe('closed');
    expect(emulator.count('create')).toBe(10);
  });
});

describe('Retry-After (issue 8 point 5)', () => {
  it(`a huge Retry-After pauses calls for at most ${maxRetryAfterMs / 1000} s, and the report says it was capped`, async () => {
    // Only Date is faked (the breaker reads it when made), so the app, the SDK and the emulator run on real timers.
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      const { whoami, emulator, errors, middleware } = await startApp({ middleware: { retries: 0 } });
      emulator.inject({ kind: 'status', status: 429, headers: { 'Retry-After': '100000000' }, times: 1 });
      await whoami('limited').expect(200);
      expect(middleware.resolver.circuit).toBe('open');
      expect(errors[0]?.message).toMatch(/Retry-After 100000000 s\).* paused for 300 s \(orq asked for 100000000 s; the pause is capped at 300 s, then one call probes again\)/);
      vi.setSystemTime(Date.now() + maxRetryAfterMs + 10);
      expect(middleware.resolver.circuit).toBe('half-open');
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('overload (issue 8 point 6)', () => {
  it('a user whose create expired in the queue goes straight to create next time, without a second retrieve', async () => {
    const emulator = await startEmulator();
    const resolver = createIdentityResolver({ apiKey: emulator.apiKey, serverURL: emulator.url, failureMemoryMs: 0, retries: 0, onError: () => undefined });
    emulator.inject({ operation: 'create', kind: 'status', status: 503, times: 1 });
    await expect(resolver.resolve('absent-once')).rejects.toThrow();
    const identity = await resolver.resolve('absent-once');
    expect(identity.externalId).toBe('absent-once');
    expect(emulator.calls.map((call) => `${call.operation} ${String(call.status)}`)).toEqual(['retrieve 404', 'create 503', 'create 201']);
  });
});

describe('the cache in bytes (issue 8 point 7)', () => {
  const bigMetadata = (bytes: number): Record<string, unknown> => ({ blob: 'x'.repeat(bytes) });

  it('keeps the cache under cache.maxBytes, evicting the least recently used', async () => {
    const { whoami, emulator } = await startApp({ middleware: { cache: { maxBytes: 1_000_000, maxEntryBytes: 300_000 } } });
    for (let index = 0; index < 10; index++) emulator.seed({ externalId: `big-${index}`, metadata: bigMetadata(250_000) });
    for (let index = 0; index < 10; index++) await whoami(`big-${index}`).expect(200);
    emulator.resetCalls();
    await whoami('big-9').expect(200);
    expect(emulator.count()).toBe(0);
    await whoami('big-0').expect(200);
    expect(emulator.count('retrieve')).toBe(1);
  });
});

describe('ids with "/" through a proxy that decodes %2F (issue 11 point 5)', () => {
  // The emulator decoding the path as such a proxy would, end to end (resolver.test.ts fakes the 409 instead).
  it('reports clearly that the lookup looks mangled on the way', async () => {
    const { whoami, emulator, errors } = await startApp({ emulator: { decodeEncodedSlashes: true }, middleware: { getUser: () => 'tenant/7' } });
    emulator.seed({ externalId: 'tenant/7' });
    const response = await whoami('x').expect(200);
    expect(response.body.identity).toBeNull();
    expect(emulator.calls.map((call) => `${call.operation} ${String(call.status)}`)).toEqual(['unknown 404', 'create 409', 'unknown 404']);
    expect(errors[0]?.message).toMatch(/probably decodes the percent-encoded path \(%2F → \/\)/);
  });
});

describe('start-up checks of the bounds', () => {
  it.each([
    [{ maxQueue: -1 }, /invalid option `maxQueue`, received `-1`; pass a whole number of at least 0, e\.g\. `maxQueue: 1000`/],
    [{ maxQueue: 1.5 }, /invalid option `maxQueue`/],
    [{ cache: { maxBytes: '50MB' } }, /invalid option `cache\.maxBytes`, received `'50MB'`; pass a whole number of at least 1/],
    [{ cache: { maxEntryBytes: 0 } }, /invalid option `cache\.maxEntryBytes`, received `0`/],
  ])('rejects %j with a message that says what to pass', (options, message) => {
    expect(() => createIdentityResolver({ apiKey: 'k', ...(options as object) })).toThrow(message);
  });
});

describe('reports of one kind are summed up (issue 8 point 6)', () => {
  it('a getUser that throws on every request: 10 reports, then one RepeatedFailuresError with the count on close()', async () => {
    const { app, errors, middleware } = await startApp({ middleware: { getUser: () => { throw new Error('session store down'); } } });
    app.get('/hello', (_req, res) => { res.send('ok'); });
    for (let index = 0; index < 25; index++) await request(app).get('/hello').expect(200, 'ok');
    expect(errors).toHaveLength(10);
    await middleware.close();
    expect(errors).toHaveLength(11);
    expect(errors[10]).toBeInstanceOf(RepeatedFailuresError);
    expect(errors[10]).toMatchObject({ count: 15, code: 'ORQ_IDENTITY_REPEATED_FAILURES' });
    expect(errors[10]?.message).toMatch(/^15 more OrqIdentityError \(ORQ_IDENTITY_GET_USER_FAILED\) in the last \d+ s were counted rather than reported one by one; the last: getUser threw \(session store down\)/);
  });
});

describe('stats() counts not-sent calls (issue 8 point 4 with issue 11 stats)', () => {
  it('a call refused before it left the process is counted under not-sent, not NaN', async () => {
    const emulator = await startEmulator();
    const client = new Orq({ serverURL: emulator.url, apiKey: async () => 'sk-live-abcdef\nX-Evil: 1' });
    const resolver = createIdentityResolver({ client, retries: 2, onError: () => undefined });
    await resolver.resolve('refused-header').catch(() => undefined);
    expect(resolver.stats().calls.retrieve['not-sent']).toBe(1);
    expect(Object.values(resolver.stats().calls.retrieve).every(Number.isInteger)).toBe(true);
    expect(emulator.count()).toBe(0);
    await resolver.close();
  });
});
