// Work on cached identities that no request waits for: the refresh of stale ones and the profile sync (PATCH).
import { LRUCache } from 'lru-cache';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { IdentityMismatchError, type OrqIdentity, type OrqUser } from '../src/index.js';
import { eventually, startApp } from './helpers.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('background refresh of a stale identity', () => {
  it('whose answer is another user\'s identity keeps this user\'s, and never attaches the other', async () => {
    const { whoami, emulator, errors, middleware } = await startApp({ middleware: { cache: { freshMs: 50 } } });
    const other = emulator.seed({ externalId: 'someone-else' });
    // This user's external id is the other identity's orq id, which a retrieve also accepts.
    const mine = (await whoami(other._id).expect(200)).body.identity as OrqIdentity;
    expect(mine.id).not.toBe(other._id);
    await sleep(60);
    await whoami(other._id).expect(200);
    await eventually(() => emulator.count('retrieve') === 2, 'the refresh');
    await sleep(20);
    expect(middleware.resolver.cached(other._id)?.id).toBe(mine.id);
    expect((await whoami(other._id).expect(200)).body.identity?.id).toBe(mine.id);
    expect(errors.every((error) => error instanceof IdentityMismatchError)).toBe(true);
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

  it('that failed is tried again after the refresh interval when that is shorter than a minute', async () => {
    const { whoami, emulator, errors } = await startApp({ middleware: { retries: 0, cache: { freshMs: 60 } } });
    emulator.seed({ externalId: 'retry-refresh' });
    await whoami('retry-refresh').expect(200);
    emulator.inject({ operation: 'retrieve', kind: 'status', status: 503, times: 1 });
    await sleep(70);
    await whoami('retry-refresh').expect(200);
    await eventually(() => errors.length === 1, 'the failed refresh');
    await whoami('retry-refresh').expect(200);
    expect(emulator.count('retrieve')).toBe(2);
    await sleep(70);
    await whoami('retry-refresh').expect(200);
    await eventually(() => emulator.count('retrieve') === 3, 'the second try', 2_000);
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
    other: { externalId: 'other' },
  };

  it('keeps the metrics of the cached identity when the PATCH answer carries none', async () => {
    const { app, emulator, middleware } = await startApp({ middleware: { metrics: true, getUser: (req) => profiles[req.header('x-user') ?? ''] } });
    emulator.seed({ externalId: 'metered', displayName: 'Old name' });
    emulator.setUsage('metered', { totalCost: 2.5, totalTokens: 1_000, totalRequests: 10, errorRate: 0 });
    await request(app).get('/whoami').set('x-user', 'metered').expect(200);
    await eventually(() => middleware.resolver.cached('metered')?.displayName === 'New name', 'the PATCH');
    expect(middleware.resolver.cached('metered')?.metrics).toMatchObject({ totalCost: 2.5, totalRequests: 10 });
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
    await eventually(() => emulator.count('retrieve') === 2, 'the refresh', 1_000);
  });

  it('does not put back an identity the cache dropped while the PATCH was under way', async () => {
    const { app, emulator, middleware } = await startApp({ middleware: { cache: { max: 1 }, getUser: (req) => profiles[req.header('x-user') ?? ''] } });
    emulator.seed({ externalId: 'evicted', displayName: 'Old name' });
    emulator.inject({ operation: 'update', kind: 'latency', ms: 150 });
    await request(app).get('/whoami').set('x-user', 'evicted').expect(200);
    await request(app).get('/whoami').set('x-user', 'other').expect(200);
    expect(middleware.resolver.cached('evicted')).toBeUndefined();
    await eventually(() => emulator.count('update') === 1 && middleware.stats().backgroundTasks === 0, 'the PATCH to be answered');
    expect(middleware.stats().cache.size).toBe(1);
    expect(middleware.resolver.cached('other')?.externalId).toBe('other');
  });
});
