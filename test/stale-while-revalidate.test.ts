// Stale-while-revalidate: fresh for freshMs, then served at once while one background retrieve renews it, usable until staleMs.
import { LRUCache } from 'lru-cache';
import { describe, expect, it } from 'vitest';
import { orqIdentity, type OrqIdentity } from '../src/index.js';
import { eventually, startApp } from './helpers.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('stale-while-revalidate cache', () => {
  it('serves a stale identity at once and renews it with one background retrieve, however many requests see it stale', async () => {
    const { whoami, emulator, errors } = await startApp({ middleware: { cache: { freshMs: 200 } } });
    emulator.seed({ externalId: 'sam', displayName: 'Sam' });
    await whoami('sam').expect(200);
    expect(emulator.count('retrieve')).toBe(1);

    await sleep(220);
    emulator.inject({ operation: 'retrieve', kind: 'latency', ms: 300 });
    const started = Date.now();
    const responses = await Promise.all(Array.from({ length: 5 }, () => whoami('sam').expect(200)));
    expect(Date.now() - started).toBeLessThan(250);
    expect(responses.every((response) => response.body.identity?.displayName === 'Sam')).toBe(true);
    await eventually(() => emulator.count('retrieve') === 2, 'one background refresh');
    await sleep(350);
    expect(emulator.count('retrieve')).toBe(2);
    expect(errors).toEqual([]);
  });

  it('keeps serving the last answer while orq is down, reporting the failed refresh once', async () => {
    const { whoami, emulator, errors } = await startApp({ middleware: { cache: { freshMs: 100 }, retries: 0 } });
    emulator.seed({ externalId: 'kim' });
    await whoami('kim').expect(200);
    emulator.inject({ kind: 'status', status: 503 });
    await sleep(120);
    for (let index = 0; index < 5; index++) expect((await whoami('kim').expect(200)).body.identity?.externalId).toBe('kim');
    await eventually(() => errors.length > 0, 'the failed refresh to be reported');
    await sleep(50);
    expect(emulator.count('retrieve')).toBe(2);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ name: 'OrqApiError', statusCode: 503 });
  });

  it('drops an identity after staleMs: the next request looks it up again', async () => {
    const { whoami, emulator } = await startApp({ middleware: { cache: { freshMs: 100, staleMs: 150 } } });
    emulator.seed({ externalId: 'lee' });
    await whoami('lee').expect(200);
    await sleep(170);
    expect((await whoami('lee').expect(200)).body.identity?.externalId).toBe('lee');
    expect(emulator.count('retrieve')).toBe(2);
  });

  it('reads the old `cache.ttl` as freshMs, with a warning that says what to rename it to', async () => {
    const warnings: Array<{ code?: string; message: string }> = [];
    const onWarning = (warning: Error & { code?: string }) => warnings.push({ code: warning.code, message: warning.message });
    process.on('warning', onWarning);
    try {
      const { whoami, emulator } = await startApp({ middleware: { cache: { ttl: 100 } } });
      await sleep(0);
      expect(warnings).toContainEqual({ code: 'ORQ_IDENTITY_CACHE_TTL_RENAMED', message: expect.stringContaining('`cache: { freshMs: 100 }`') });
      emulator.seed({ externalId: 'old' });
      await whoami('old').expect(200);
      await sleep(120);
      await whoami('old').expect(200);
      await eventually(() => emulator.count('retrieve') === 2, 'a refresh after the old ttl');
    } finally {
      process.off('warning', onWarning);
    }
  });

  it.each([
    [{ cache: { freshMs: 10_000, staleMs: 5_000 } }, /invalid option `cache\.staleMs`, received `5000`; pass at least `freshMs` \(10000\)/],
    [{ cache: { freshMs: '1h' } }, /invalid option `cache\.freshMs`, received `'1h'`; pass a number of milliseconds .* e\.g\. `freshMs: 3_600_000`/],
    [{ budget: { calls: 0, windowMs: 1_000 } }, /invalid option `budget\.calls`, received `0`; pass a whole number of at least 1/],
    [{ budget: { calls: 0 } }, /invalid option `budget\.calls`, received `0`; pass a whole number of at least 1/],
    [{ budget: 100 }, /invalid option `budget`, received `100`; pass `\{ calls, windowMs \}`/],
    [{ shared: { redis: 'redis://localhost' } }, /invalid option `shared\.redis`, received `'redis:\/\/localhost'`; pass a connected node-redis client/],
  ])('fails at start-up on %j', (options, message) => {
    expect(() => orqIdentity({ apiKey: 'k', ...(options as object) })).toThrow(message);
  });
});

describe('the app\'s own LRUCache', () => {
  it('keeps its ttl as the usable period: entries set by a lookup never outlive it', async () => {
    const cache = new LRUCache<string, OrqIdentity>({ max: 100, ttl: 60_000 });
    const { whoami, emulator } = await startApp({ middleware: { cache } });
    emulator.seed({ externalId: 'own' });
    await whoami('own').expect(200);
    expect(cache.getRemainingTTL('own')).toBeGreaterThan(0);
    expect(cache.getRemainingTTL('own')).toBeLessThanOrEqual(60_000);
  });

  it('is refused at start-up when bounded in bytes without a way to size entries (every set would throw)', () => {
    const cache = new LRUCache<string, OrqIdentity>({ max: 100, maxSize: 1_000_000, sizeCalculation: undefined as never });
    expect(() => orqIdentity({ apiKey: 'k', cache })).toThrow(/invalid option `cache`.*give it a `sizeCalculation`, or drop `maxSize`/);
  });
});
