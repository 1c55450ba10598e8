// Work on cached identities that no request waits for: the refresh of stale ones and the profile sync (PATCH).
import express from 'express';
import { LRUCache } from 'lru-cache';
import request from 'supertest';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { IdentityMismatchError, orqIdentity, type OrqIdentity, type OrqIdentityMiddleware, type OrqIdentityOptions, type OrqUser } from '../src/index.js';
import type { OrqEmulator } from '../src/testing/index.js';
import { connectionFor, eventually, startApp, startEmulator, transports, userFromHeader } from './helpers.js';
import { connectClient, describeRedis, startRedis, type RedisServer } from './redis.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('background refresh of a stale identity', () => {
  it('whose answer is another user\'s identity keeps this user\'s, never attaches the other, and is tried again later, not on every request', async () => {
    // Only Date is faked, and it stands still but when the test moves it: sockets and timers run as usual.
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      const { whoami, emulator, errors, middleware } = await startApp({ middleware: { cache: { freshMs: 1_000 } } });
      const other = emulator.seed({ externalId: 'someone-else' });
      // This user's external id is the other identity's orq id, which a retrieve also accepts.
      const mine = (await whoami(other._id).expect(200)).body.identity as OrqIdentity;
      expect(mine.id).not.toBe(other._id);
      vi.setSystemTime(Date.now() + 1_000);
      await whoami(other._id).expect(200);
      await eventually(() => emulator.count('retrieve') === 2 && middleware.stats().backgroundTasks === 0, 'the refresh');
      expect(middleware.resolver.cached(other._id)?.id).toBe(mine.id);
      expect((await whoami(other._id).expect(200)).body.identity?.id).toBe(mine.id);
      expect(errors.length).toBeGreaterThan(0);
      expect(errors.every((error) => error instanceof IdentityMismatchError)).toBe(true);
      for (let i = 0; i < 3; i++) await whoami(other._id).expect(200);
      await sleep(20);
      expect(middleware.stats().backgroundTasks).toBe(0);
      expect(emulator.count('retrieve')).toBe(2);
    } finally {
      vi.useRealTimers();
    }
  });

  it('waits for a connection slot behind the lookups of requests that came before it, never ahead of them', async () => {
    const { whoami, emulator, middleware } = await startApp({ middleware: { maxConcurrency: 1, cache: { freshMs: 50 }, timeoutMs: 5_000 } });
    for (const externalId of ['stale-one', 'asked-first', 'asked-second']) emulator.seed({ externalId });
    await whoami('stale-one').expect(200);
    await sleep(60);
    // The first lookup holds the only slot for a second: time for the others to queue, on a loaded machine too.
    emulator.inject({ operation: 'retrieve', kind: 'latency', ms: 1_000, times: 1 });
    // then() sends a request now; supertest sends none until asked for its result.
    const first = whoami('asked-first').expect(200).then(() => undefined);
    await eventually(() => emulator.count('retrieve') === 2, 'the first lookup to hold the slot');
    const second = whoami('asked-second').expect(200).then(() => undefined);
    await eventually(() => middleware.stats().queue.queued === 1, 'the second lookup to queue');
    expect((await whoami('stale-one').expect(200)).body.identity?.externalId).toBe('stale-one');
    await eventually(() => middleware.stats().queue.queued === 2, 'the refresh to queue');

    await Promise.all([first, second]);
    await eventually(() => emulator.count('retrieve') === 4, 'the refresh');
    expect(emulator.calls.slice(1).map((call) => decodeURIComponent(call.path.split('/').at(-1) ?? ''))).toEqual(['asked-first', 'asked-second', 'stale-one']);
  });

  it('does not start after close(): the identity is still served, and orq is not called', async () => {
    const { whoami, emulator, middleware } = await startApp({ middleware: { cache: { freshMs: 50 } } });
    emulator.seed({ externalId: 'closed-stale' });
    await whoami('closed-stale').expect(200);
    await middleware.close({ timeoutMs: 1_000 });
    await sleep(60);
    expect((await whoami('closed-stale').expect(200)).body.identity?.externalId).toBe('closed-stale');
    await sleep(30);
    expect(emulator.count()).toBe(1);
  });

  it('does not start while the circuit is open: the identity is still served, with no call and no report', async () => {
    const { whoami, emulator, middleware, errors } = await startApp({
      middleware: { retries: 0, cache: { freshMs: 50 }, circuitBreaker: { failureThreshold: 1, cooldownMs: 60_000 } },
    });
    emulator.seed({ externalId: 'open-stale' });
    await whoami('open-stale').expect(200);
    emulator.inject({ kind: 'status', status: 503, times: 1 });
    await expect(middleware.resolver.resolve('tripper')).rejects.toMatchObject({ name: 'OrqUnavailableError' });
    expect(middleware.resolver.circuit).toBe('open');
    const calls = emulator.count();
    const reported = errors.length;
    await sleep(60);
    expect((await whoami('open-stale').expect(200)).body.identity?.externalId).toBe('open-stale');
    await sleep(30);
    expect(emulator.count()).toBe(calls);
    expect(errors).toHaveLength(reported);
  });

  describe('while the circuit is open', () => {
    // Only Date is faked (the cache's clock and the breaker's), and it stands still but when the test moves it: a
    // refresh put off by an interval could never come, so "at once" needs no timing.
    async function staleWithCircuitOpen() {
      vi.useFakeTimers({ toFake: ['Date'] });
      // No backlog: the user who trips the circuit would wait in it and could take the circuit's one probe.
      const app = await startApp({
        middleware: { retries: 0, backlog: false, cache: { freshMs: 3_000 }, circuitBreaker: { failureThreshold: 1, cooldownMs: 1_000 } },
      });
      const { whoami, emulator, middleware } = app;
      emulator.seed({ externalId: 'open-then-closed' });
      await whoami('open-then-closed').expect(200);
      vi.setSystemTime(Date.now() + 2_500);
      emulator.inject({ kind: 'status', status: 503, times: 1 });
      await expect(middleware.resolver.resolve('tripper')).rejects.toMatchObject({ name: 'OrqUnavailableError' });
      vi.setSystemTime(Date.now() + 600);
      expect(middleware.resolver.circuit).toBe('open');
      // Stale, circuit open: served, and no refresh starts (decided before the response leaves).
      expect((await whoami('open-then-closed').expect(200)).body.identity?.externalId).toBe('open-then-closed');
      expect(middleware.stats().backgroundTasks).toBe(0);
      const refreshes = () => emulator.calls.filter((call) => call.operation === 'retrieve' && call.path.endsWith('/open-then-closed')).length;
      expect(refreshes()).toBe(1);
      vi.setSystemTime(Date.now() + 1_000);
      return { ...app, refreshes };
    }

    afterEach(() => {
      vi.useRealTimers();
    });

    it('a stale identity is refreshed by the first request after the circuit closes, not an interval later', async () => {
      const { whoami, middleware, refreshes } = await staleWithCircuitOpen();
      expect(middleware.resolver.circuit).not.toBe('open');
      await whoami('open-then-closed').expect(200);
      // The emulator counts the call when it arrives; the circuit closes when its answer is back.
      await eventually(() => refreshes() === 2 && middleware.resolver.circuit === 'closed', 'the refresh, as the probe, to close the circuit');
    });

    it('a refresh held back because another call has the probe stays due, and the next request refreshes it', async () => {
      const { whoami, emulator, middleware, refreshes } = await staleWithCircuitOpen();
      // Long enough that the probe is surely still out when the request comes, well inside lookupTimeoutMs.
      emulator.inject({ operation: 'retrieve', kind: 'latency', ms: 3_000, times: 1 });
      const probe = middleware.resolver.resolve('prober');
      await eventually(() => emulator.inFlight === 1, 'the probe to reach orq');
      await whoami('open-then-closed').expect(200);
      expect(emulator.inFlight).toBe(1);
      await probe;
      expect(refreshes()).toBe(1);
      expect(middleware.resolver.circuit).toBe('closed');
      await whoami('open-then-closed').expect(200);
      await eventually(() => refreshes() === 2, 'the refresh on the next request');
    });
  });

  it('that failed is tried again after the refresh interval when that is shorter than a minute', async () => {
    // Date faked and moved by hand: on a slow machine the 60 ms interval could pass between two requests.
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      const { whoami, emulator, errors } = await startApp({ middleware: { retries: 0, cache: { freshMs: 60 } } });
      emulator.seed({ externalId: 'retry-refresh' });
      await whoami('retry-refresh').expect(200);
      emulator.inject({ operation: 'retrieve', kind: 'status', status: 503, times: 1 });
      vi.setSystemTime(Date.now() + 70);
      await whoami('retry-refresh').expect(200);
      await eventually(() => errors.length === 1, 'the failed refresh');
      await whoami('retry-refresh').expect(200);
      expect(emulator.count('retrieve')).toBe(2);
      vi.setSystemTime(Date.now() + 70);
      await whoami('retry-refresh').expect(200);
      await eventually(() => emulator.count('retrieve') === 3, 'the second try');
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('the refresh interval', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('an identity is fresh for exactly freshMs: the first request freshMs after orq answered starts the refresh', async () => {
    // Only Date is faked, and frozen: the age of the answer is exact, while sockets and timers run as usual.
    vi.useFakeTimers({ toFake: ['Date'] });
    const { whoami, emulator, middleware } = await startApp({ middleware: { cache: { freshMs: 1_000 } } });
    emulator.seed({ externalId: 'on-the-dot' });
    const answered = Date.now();
    await whoami('on-the-dot').expect(200);
    vi.setSystemTime(answered + 999);
    await whoami('on-the-dot').expect(200);
    await sleep(20);
    expect(middleware.stats().backgroundTasks).toBe(0);
    expect(emulator.count('retrieve')).toBe(1);
    vi.setSystemTime(answered + 1_000);
    await whoami('on-the-dot').expect(200);
    vi.useRealTimers();
    await eventually(() => emulator.count('retrieve') === 2, 'the refresh');
  });
});

describe('an identity the app put in its own LRUCache', () => {
  it('is fresh for freshMs from first sight, then refreshed in the background', async () => {
    const cache = new LRUCache<string, OrqIdentity>({ max: 10, ttl: 60_000 });
    const { whoami, emulator } = await startApp({ middleware: { cache, metrics: { refreshMs: 80 } } });
    emulator.seed({ externalId: 'preloaded' });
    cache.set('preloaded', Object.freeze({ id: 'contact_preloaded', externalId: 'preloaded' }));
    for (let index = 0; index < 3; index++) expect((await whoami('preloaded').expect(200)).body.identity?.id).toBe('contact_preloaded');
    expect(emulator.count()).toBe(0);
    await sleep(90);
    await whoami('preloaded').expect(200);
    await eventually(() => emulator.count('retrieve') === 1, 'the refresh');
  });
});

describe('profile sync', () => {
  const profiles: Record<string, OrqUser> = {
    metered: { externalId: 'metered', displayName: 'New name' },
    evicted: { externalId: 'evicted', displayName: 'New name' },
  };

  it('keeps the metrics of the cached identity when the PATCH answer carries none', async () => {
    const { app, emulator, middleware } = await startApp({ middleware: { metrics: true, getUser: (req) => profiles[req.header('x-user') ?? ''] } });
    emulator.seed({ externalId: 'metered', displayName: 'Old name' });
    emulator.setUsage('metered', { totalCost: 2.5, totalTokens: 1_000, totalRequests: 10, errorRate: 0 });
    await request(app).get('/whoami').set('x-user', 'metered').expect(200);
    await eventually(() => middleware.resolver.cached('metered')?.displayName === 'New name', 'the PATCH');
    expect(middleware.resolver.cached('metered')?.metrics).toMatchObject({ totalCost: 2.5, totalRequests: 10 });
  });

  it('adds no metrics key to a PATCHed identity that had none', async () => {
    const { app, emulator, middleware } = await startApp({ middleware: { getUser: (req) => profiles[req.header('x-user') ?? ''] } });
    emulator.seed({ externalId: 'metered', displayName: 'Old name' });
    await request(app).get('/whoami').set('x-user', 'metered').expect(200);
    await eventually(() => middleware.resolver.cached('metered')?.displayName === 'New name', 'the PATCH');
    expect(Object.keys(middleware.resolver.cached('metered') ?? {})).not.toContain('metrics');
  });

  it('keeps the refresh time of the identity it replaces', async () => {
    const { app, emulator } = await startApp({ middleware: { cache: { freshMs: 100 }, getUser: (req) => profiles[req.header('x-user') ?? ''] } });
    emulator.seed({ externalId: 'metered', displayName: 'Old name' });
    await request(app).get('/whoami').set('x-user', 'metered').expect(200);
    const answered = Date.now();
    await eventually(() => emulator.count('update') === 1, 'the PATCH');
    await sleep(20);
    // The first request after the PATCH landed, freshMs after the retrieve was answered: it starts a refresh.
    await sleep(Math.max(0, answered + 110 - Date.now()));
    await request(app).get('/whoami').set('x-user', 'metered').expect(200);
    await eventually(() => emulator.count('retrieve') === 2, 'the refresh');
  });

  it('keeps the cache lifetime of the identity it replaces: a PATCH does not make an entry usable for longer', async () => {
    // The cache's own clock (lru-cache's `perf`; above 0, which lru-cache reads as "no start time").
    const clock = { now: () => 100_000 };
    const cache = new LRUCache<string, OrqIdentity>({ max: 10, ttl: 60_000, perf: clock });
    const { app, emulator, middleware } = await startApp({ middleware: { cache, getUser: (req) => profiles[req.header('x-user') ?? ''] } });
    // It moves on 5 s when orq gets the PATCH: the entry is 5 s old when the answer lands, whatever the machine's speed.
    clock.now = () => (emulator.count('update') === 0 ? 100_000 : 105_000);
    emulator.seed({ externalId: 'evicted', displayName: 'Old name' });
    await request(app).get('/whoami').set('x-user', 'evicted').expect(200);
    await eventually(() => cache.get('evicted')?.displayName === 'New name' && middleware.stats().backgroundTasks === 0, 'the PATCH to land');
    expect(cache.getRemainingTTL('evicted')).toBeLessThanOrEqual(55_000);
  });

  it('does not cache a PATCH answer that is another user\'s identity: this user keeps its own', async () => {
    const { app, emulator, middleware } = await startApp({ middleware: { getUser: (req) => profiles[req.header('x-user') ?? ''] } });
    const mine = emulator.seed({ externalId: 'metered', displayName: 'Old name' });
    emulator.inject({ operation: 'update', kind: 'status', status: 200, body: { _id: 'contact_someone_else', external_id: 'someone-else', display_name: 'New name' }, times: 1 });
    await request(app).get('/whoami').set('x-user', 'metered').expect(200);
    await eventually(() => emulator.count('update') === 1 && middleware.stats().backgroundTasks === 0, 'the PATCH to be answered');
    expect(middleware.resolver.cached('metered')).toMatchObject({ id: mine._id, externalId: 'metered', displayName: 'Old name' });
    expect((await request(app).get('/whoami').set('x-user', 'metered').expect(200)).body.identity).toMatchObject({ id: mine._id, externalId: 'metered' });
  });

  it('takes the metrics a PATCH answer carries over the cached ones', async () => {
    const { app, emulator, middleware } = await startApp({ middleware: { metrics: true, getUser: (req) => profiles[req.header('x-user') ?? ''] } });
    const seeded = emulator.seed({ externalId: 'metered', displayName: 'Old name' });
    emulator.setUsage('metered', { totalCost: 2.5, totalTokens: 1_000, totalRequests: 10, errorRate: 0 });
    const metrics = { total_cost: 4, total_tokens: 2_000, total_requests: 20, error_rate: 0 };
    emulator.inject({ operation: 'update', kind: 'status', status: 200, body: { _id: seeded._id, external_id: 'metered', display_name: 'New name', metrics }, times: 1 });
    await request(app).get('/whoami').set('x-user', 'metered').expect(200);
    await eventually(() => middleware.resolver.cached('metered')?.displayName === 'New name', 'the PATCH');
    expect(middleware.resolver.cached('metered')?.metrics).toMatchObject({ totalCost: 4, totalRequests: 20 });
  });

  it('waits behind the lookups new users are waiting for, in the order the calls queued', async () => {
    const { app, emulator, middleware } = await startApp({
      middleware: { maxConcurrency: 1, getUser: (req) => profiles[req.header('x-user') ?? ''] ?? { externalId: req.header('x-user') ?? '' } },
    });
    const metered = emulator.seed({ externalId: 'metered', displayName: 'Old name' });
    emulator.seed({ externalId: 'waiting-1' });
    emulator.seed({ externalId: 'waiting-2' });
    // The first user's retrieve holds the only slot while two new users' retrieves queue behind it.
    emulator.inject({ operation: 'retrieve', kind: 'latency', ms: 1_000, times: 1 });
    const first = request(app).get('/whoami').set('x-user', 'metered').expect(200);
    const requests = [first.then(() => undefined)];
    await eventually(() => emulator.count('retrieve') === 1, 'the first retrieve');
    requests.push(request(app).get('/whoami').set('x-user', 'waiting-1').expect(200).then(() => undefined));
    await eventually(() => middleware.stats().queue.queued === 1, 'the first new user to queue');
    requests.push(request(app).get('/whoami').set('x-user', 'waiting-2').expect(200).then(() => undefined));
    await eventually(() => middleware.stats().queue.queued === 2, 'the second new user to queue');
    expect(emulator.count('retrieve')).toBe(1);
    await Promise.all(requests);
    await eventually(() => emulator.count('update') === 1 && middleware.stats().backgroundTasks === 0, 'the PATCH');
    // The PATCH, asked for when the first retrieve was answered, goes after both queued retrieves (by orq id).
    expect(emulator.calls.map((call) => `${call.operation} ${decodeURIComponent(call.path.split('/').at(-1) ?? '')}`)).toEqual([
      'retrieve metered', 'retrieve waiting-1', 'retrieve waiting-2', `update ${metered._id}`,
    ]);
  });

  it('does not put back an identity the cache dropped while the PATCH was under way', async () => {
    const cache = new LRUCache<string, OrqIdentity>({ max: 10, ttl: 60_000 });
    const { app, emulator, middleware } = await startApp({ middleware: { cache, getUser: (req) => profiles[req.header('x-user') ?? ''] } });
    emulator.seed({ externalId: 'evicted', displayName: 'Old name' });
    emulator.inject({ operation: 'update', kind: 'latency', ms: 300 });
    await request(app).get('/whoami').set('x-user', 'evicted').expect(200);
    // Dropped by the app (or evicted) before orq answers the PATCH: the answer must not bring it back.
    expect(cache.delete('evicted')).toBe(true);
    await eventually(() => emulator.count('update') === 1 && middleware.stats().backgroundTasks === 0, 'the PATCH to be answered');
    expect(cache.has('evicted')).toBe(false);
  });
});

describeRedis('background work on a shared store', () => {
  async function instance(emulator: OrqEmulator, redis: RedisServer, options: Partial<OrqIdentityOptions> = {}) {
    const middleware = orqIdentity({
      apiKey: emulator.apiKey, serverURL: emulator.url, onError: () => undefined, budget: false,
      shared: { redis: await connectClient('ioredis', redis) }, ...options,
    });
    const app = express();
    app.use(userFromHeader);
    app.use(middleware);
    app.get('/whoami', (req, res) => { res.json({ identity: req.orqIdentity ?? null }); });
    closing.push(middleware);
    return { middleware, whoami: (user: string) => request(app).get('/whoami').set('x-user', user) };
  }

  const closing: OrqIdentityMiddleware[] = [];
  afterEach(async () => {
    vi.useRealTimers();
    await Promise.all(closing.splice(0).map((middleware) => middleware.close({ timeoutMs: 1_000 })));
  });

  it('a profile change is PATCHed once and written to the store: an instance with a cold cache reads it without a call', async () => {
    const emulator = await startEmulator();
    const redis = await startRedis();
    const getUser = () => ({ externalId: 'fleet-ada', displayName: 'New name' });
    const first = await instance(emulator, redis, { getUser });
    emulator.seed({ externalId: 'fleet-ada', displayName: 'Old name' });
    await first.whoami('fleet-ada').expect(200);
    await eventually(() => emulator.count('update') === 1 && first.middleware.stats().backgroundTasks === 0, 'the PATCH');

    const cold = await instance(emulator, redis, { getUser });
    expect((await cold.whoami('fleet-ada').expect(200)).body.identity?.displayName).toBe('New name');
    await sleep(30);
    expect(emulator.calls.map((call) => call.operation)).toEqual(['retrieve', 'update']);
  });

  it.each(transports)('a profile change of a user whose external id is another identity\'s orq id is PATCHed onto this user\'s identity, never the other (%s)', async (transport) => {
    const emulator = await startEmulator();
    const redis = await startRedis();
    const other = emulator.seed({ externalId: 'someone-else', displayName: 'Someone' });
    // An app whose users pick their own ids: this one picked the other identity's orq id, which orq reads as an orq id first.
    const registering = await instance(emulator, redis, { ...connectionFor(transport, emulator), getUser: () => ({ externalId: other._id, displayName: 'Mallory' }) });
    const mine = (await registering.whoami(other._id).expect(200)).body.identity as OrqIdentity;
    expect(mine).toMatchObject({ externalId: other._id, displayName: 'Mallory' });
    expect(mine.id).not.toBe(other._id);

    // Another instance takes the identity from the store and sees the new name: the profile sync.
    const renaming = await instance(emulator, redis, { ...connectionFor(transport, emulator), getUser: () => ({ externalId: other._id, displayName: 'Mallory renamed' }) });
    await renaming.whoami(other._id).expect(200);
    await eventually(() => emulator.count('update') === 1 && renaming.middleware.stats().backgroundTasks === 0, 'the PATCH');
    const byId = (id: string) => emulator.identities().find((identity) => identity._id === id);
    expect(byId(other._id)).toMatchObject({ external_id: 'someone-else', display_name: 'Someone' });
    expect(byId(mine.id)).toMatchObject({ external_id: other._id, display_name: 'Mallory renamed' });
    expect(emulator.calls.find((call) => call.operation === 'update')?.path).toBe(`/v2/identities/${mine.id}`);
    expect(renaming.middleware.resolver.cached(other._id)).toMatchObject({ id: mine.id, displayName: 'Mallory renamed' });
  });

  it('a profile change two instances see while the first PATCH is under way is PATCHed once per fleet', async () => {
    const emulator = await startEmulator();
    const redis = await startRedis();
    const options = { getUser: () => ({ externalId: 'fleet-max', displayName: 'New name' }), retries: 0, lookupTimeoutMs: 2_000 };
    const first = await instance(emulator, redis, options);
    const second = await instance(emulator, redis, options);
    emulator.seed({ externalId: 'fleet-max', displayName: 'Old name' });
    // The first instance's PATCH gets no answer (it ends at lookupTimeoutMs): the store keeps the old profile meanwhile.
    emulator.inject({ operation: 'update', kind: 'hang', times: 1 });
    await first.whoami('fleet-max').expect(200);
    await eventually(() => emulator.count('update') === 1, 'the first instance\'s PATCH');
    // Its lease, under the key docs/many-instances.md lists, left to expire.
    expect(await redis.command('KEYS', '*fleet-max}:sync')).toContain('fleet-max}:sync');
    expect((await second.whoami('fleet-max').expect(200)).body.identity?.displayName).toBe('Old name');
    await eventually(() => second.middleware.stats().backgroundTasks === 0, 'the second instance\'s profile sync');
    expect(emulator.count('update')).toBe(1);
  });

  it('an answer in the store as old as the refresh interval is due: the instance refreshes it from orq instead', async () => {
    // Only Date is faked, and frozen: the answer's age is exact, while sockets and timers run as usual.
    vi.useFakeTimers({ toFake: ['Date'] });
    const emulator = await startEmulator();
    const redis = await startRedis();
    const first = await instance(emulator, redis, { cache: { freshMs: 1_000 } });
    const second = await instance(emulator, redis, { cache: { freshMs: 1_000 } });
    emulator.seed({ externalId: 'fleet-due' });
    const answered = Date.now();
    await first.whoami('fleet-due').expect(200);
    await second.whoami('fleet-due').expect(200);
    expect(emulator.count('retrieve')).toBe(1);
    // Taking it would make the identity due again at once, and every request would read it from the store again.
    vi.setSystemTime(answered + 1_000);
    await second.whoami('fleet-due').expect(200);
    await eventually(() => emulator.count('retrieve') === 2 && second.middleware.stats().backgroundTasks === 0, 'the refresh from orq');
  });

  it('an instance that finds another refreshing takes its answer from the store one refresh interval later (when under 2 s), not on every request before', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const emulator = await startEmulator();
    const redis = await startRedis();
    const first = await instance(emulator, redis, { metrics: { refreshMs: 500 } });
    const second = await instance(emulator, redis, { metrics: { refreshMs: 500 } });
    emulator.seed({ externalId: 'fleet-joe' });
    emulator.setUsage('fleet-joe', { totalCost: 1, totalTokens: 1, totalRequests: 1, errorRate: 0 });
    const start = Date.now();
    await first.whoami('fleet-joe').expect(200);
    await second.whoami('fleet-joe').expect(200);
    expect(emulator.count('retrieve')).toBe(1);
    const cost = (member: typeof first) => member.middleware.resolver.cached('fleet-joe')?.metrics?.totalCost;

    emulator.setUsage('fleet-joe', { totalCost: 9, totalTokens: 9, totalRequests: 9, errorRate: 0 });
    // orq is slow to answer the first instance's refresh, which holds the refresh lease meanwhile.
    // Seconds of real time: the steps below must all happen before it answers, on a loaded machine too.
    emulator.inject({ operation: 'retrieve', kind: 'latency', ms: 3_000, times: 1 });
    vi.setSystemTime(start + 500);
    await first.whoami('fleet-joe').expect(200);
    await eventually(() => emulator.count('retrieve') === 2, 'the first instance\'s refresh');
    await second.whoami('fleet-joe').expect(200);
    await eventually(() => second.middleware.stats().backgroundTasks === 0, 'the second instance to find the lease taken');
    expect(first.middleware.stats().backgroundTasks).toBe(1);
    // orq answers the first instance 100 ms later.
    vi.setSystemTime(start + 600);
    await eventually(() => first.middleware.stats().backgroundTasks === 0 && cost(first) === 9, 'the first instance\'s answer');

    // Until its recheck the second instance does not look in the store again: it serves the identity it has.
    await second.whoami('fleet-joe').expect(200);
    await eventually(() => second.middleware.stats().backgroundTasks === 0, 'any work of the second instance');
    expect(cost(second)).toBe(1);
    // Its recheck, 500 ms after it found the lease taken, takes the first instance's answer, without a call.
    vi.setSystemTime(start + 1_000);
    await second.whoami('fleet-joe').expect(200);
    await eventually(() => second.middleware.stats().backgroundTasks === 0, 'the recheck');
    expect(cost(second)).toBe(9);
    expect(emulator.count('retrieve')).toBe(2);
  });

  it('an answer another instance refreshed earlier is usable here only for what is left of its lifetime', async () => {
    const emulator = await startEmulator();
    const redis = await startRedis();
    const ttl = 10_000;
    const cache = new LRUCache<string, OrqIdentity>({ max: 10, ttl });
    // Refreshed every 500 ms (metrics), usable for 10 s (the app's own cache's ttl).
    const other = await instance(emulator, redis, { metrics: { refreshMs: 500 } });
    const here = await instance(emulator, redis, { cache, metrics: { refreshMs: 500 } });
    emulator.seed({ externalId: 'fleet-lee' });
    emulator.setUsage('fleet-lee', { totalCost: 1, totalTokens: 1, totalRequests: 1, errorRate: 0 });
    await other.whoami('fleet-lee').expect(200);
    await here.whoami('fleet-lee').expect(200);
    expect(emulator.count('retrieve')).toBe(1);
    emulator.setUsage('fleet-lee', { totalCost: 9, totalTokens: 9, totalRequests: 9, errorRate: 0 });
    await sleep(520);
    // The other instance refreshes first; this one, 50 ms later, takes that answer from the store, without a call.
    const asked = Date.now();
    await other.whoami('fleet-lee').expect(200);
    await eventually(() => emulator.count('retrieve') === 2 && other.middleware.stats().backgroundTasks === 0, 'the other instance\'s refresh');
    const refreshed = Date.now();
    await sleep(50);
    await here.whoami('fleet-lee').expect(200);
    await eventually(() => here.middleware.resolver.cached('fleet-lee')?.metrics?.totalCost === 9, 'this instance to take the other\'s answer');
    expect(emulator.count('retrieve')).toBe(2);
    // Usable for ttl from when orq answered the other instance (after `asked`, over 50 ms ago), not from now.
    const remaining = cache.getRemainingTTL('fleet-lee');
    expect(Date.now() - refreshed).toBeGreaterThanOrEqual(50);
    expect(remaining).toBeLessThanOrEqual(ttl - 40);
    expect(remaining).toBeGreaterThanOrEqual(ttl - (Date.now() - asked) - 5);
  });

  it('a refresh writes its answer to the store, and one that finds the user gone in orq removes it there too', async () => {
    const emulator = await startEmulator();
    const redis = await startRedis();
    const first = await instance(emulator, redis, { metrics: { refreshMs: 60 } });
    emulator.seed({ externalId: 'fleet-kim' });
    emulator.setUsage('fleet-kim', { totalCost: 1, totalTokens: 1, totalRequests: 1, errorRate: 0 });
    await first.whoami('fleet-kim').expect(200);
    emulator.setUsage('fleet-kim', { totalCost: 7, totalTokens: 7, totalRequests: 7, errorRate: 0 });
    await sleep(70);
    await first.whoami('fleet-kim').expect(200);
    await eventually(() => first.middleware.resolver.cached('fleet-kim')?.metrics?.totalCost === 7 && first.middleware.stats().backgroundTasks === 0, 'the refresh');

    const cold = await instance(emulator, redis, { metrics: { refreshMs: 60 } });
    expect((await cold.whoami('fleet-kim').expect(200)).body.identity?.metrics?.totalCost).toBe(7);
    expect(emulator.count('retrieve')).toBe(2);

    // Deleted in orq: the next refresh drops it here and from the store, so no instance serves it from there.
    emulator.inject({ operation: 'retrieve', kind: 'status', status: 404, body: { error: 'Identity not found' }, times: 1 });
    await sleep(70);
    first.middleware.resolver.cached('fleet-kim');
    await eventually(() => first.middleware.resolver.cached('fleet-kim') === undefined && first.middleware.stats().backgroundTasks === 0, 'the entry to be dropped');
    const third = await instance(emulator, redis, { metrics: { refreshMs: 60 } });
    await third.whoami('fleet-kim').expect(200);
    expect(emulator.count('retrieve')).toBe(4);
  });
});
