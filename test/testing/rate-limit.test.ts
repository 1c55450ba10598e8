// The emulator's rolling-window rate limit: orq's 429 with Retry-After, and the X-RateLimit-* headers on every answer.
import { afterEach, describe, expect, it } from 'vitest';
import { startOrqEmulator, type OrqEmulator } from '../../src/testing/index.js';
import { RollingRateLimit } from '../../src/testing/rate-limit.js';

describe('RollingRateLimit', () => {
  it('answers `calls` per window, then refuses until the oldest call leaves the window', () => {
    const limit = new RollingRateLimit({ calls: 2, windowMs: 10_000 });
    const t0 = 1_000_000;
    expect(limit.take(t0).headers).toMatchObject({ 'x-ratelimit-limit': '2', 'x-ratelimit-remaining': '1' });
    const second = limit.take(t0 + 4_000);
    expect(second).toMatchObject({ allowed: true, headers: { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String((t0 + 10_000) / 1000) } });
    const refused = limit.take(t0 + 5_000);
    expect(refused.allowed).toBe(false);
    expect(refused.headers['retry-after']).toBe('5');
    // A refused call did no work, so it does not hold the window: the first call's slot frees at t0 + 10 s.
    expect(limit.take(t0 + 9_999).allowed).toBe(false);
    expect(limit.take(t0 + 10_000)).toMatchObject({ allowed: true, headers: { 'x-ratelimit-remaining': '0' } });
    expect(limit.take(t0 + 10_001).headers['retry-after']).toBe('4');
  });

  it('says what to change when the limit is not a limit', () => {
    expect(() => new RollingRateLimit({ calls: 0 })).toThrow('rateLimit.calls must be a whole number ≥ 1, got 0');
    expect(() => new RollingRateLimit({ calls: 5, windowMs: -1 })).toThrow('rateLimit.windowMs must be a positive number of ms, got -1');
  });
});

describe('startOrqEmulator({ rateLimit })', () => {
  let emulator: OrqEmulator | undefined;
  afterEach(async () => {
    await emulator?.close();
    emulator = undefined;
  });

  async function retrieve(emu: OrqEmulator, id: string): Promise<Response> {
    return fetch(`${emu.url}/v2/identities/${id}`, { headers: { authorization: `Bearer ${emu.apiKey}` } });
  }

  it('sends the headers on every identity answer, a 404 included, and a 429 with Retry-After past the limit', async () => {
    emulator = await startOrqEmulator({ rateLimit: { calls: 2, windowMs: 60_000 } });
    emulator.seed({ externalId: 'known' });
    const found = await retrieve(emulator, 'known');
    expect(found.status).toBe(200);
    expect(found.headers.get('x-ratelimit-remaining')).toBe('1');
    const missing = await retrieve(emulator, 'unknown');
    expect(missing.status).toBe(404);
    expect(missing.headers.get('x-ratelimit-limit')).toBe('2');
    expect(missing.headers.get('x-ratelimit-remaining')).toBe('0');
    const limited = await retrieve(emulator, 'known');
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(59);
    expect(Number(limited.headers.get('x-ratelimit-reset'))).toBeGreaterThan(Date.now() / 1000);
  });

  it('setRateLimit replaces the limit, and undefined lifts it', async () => {
    emulator = await startOrqEmulator({ rateLimit: { calls: 1 } });
    emulator.seed({ externalId: 'known' });
    expect((await retrieve(emulator, 'known')).status).toBe(200);
    expect((await retrieve(emulator, 'known')).status).toBe(429);
    emulator.setRateLimit({ calls: 3 });
    const after = await retrieve(emulator, 'known');
    expect(after.status).toBe(200);
    expect(after.headers.get('x-ratelimit-remaining')).toBe('2');
    emulator.setRateLimit(undefined);
    const unlimited = await retrieve(emulator, 'known');
    expect(unlimited.status).toBe(200);
    expect(unlimited.headers.get('x-ratelimit-limit')).toBeNull();
  });
});
