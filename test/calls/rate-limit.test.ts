// Reading orq's X-RateLimit-* headers: the forms in use for the reset, and what is not believed.
import { describe, expect, it } from 'vitest';
import { readRateLimit } from '../../src/calls/rate-limit.js';

const now = 1_800_000_000_000;

describe('readRateLimit', () => {
  it('reads the limit, what is left and the reset, from Headers or a plain record, in any letter case', () => {
    const headers = new Headers({ 'X-RateLimit-Limit': '100', 'X-RateLimit-Remaining': '37', 'X-RateLimit-Reset': '12' });
    expect(readRateLimit(headers, now)).toEqual({ limit: 100, remaining: 37, resetAt: now + 12_000 });
    expect(readRateLimit({ 'X-RATELIMIT-LIMIT': ['50'], 'x-ratelimit-remaining': '0' }, now)).toEqual({ limit: 50, remaining: 0, resetAt: undefined });
  });

  it.each([
    ['seconds from now', '30', now + 30_000],
    ['epoch seconds', String(now / 1000 + 45), now + 45_000],
    ['epoch milliseconds', String(now + 5_500), now + 5_500],
    ['epoch seconds, floored, a moment ago', String(Math.floor((now - 400) / 1000)), now],
  ])('takes a reset in %s', (_form, reset, at) => {
    expect(readRateLimit({ 'x-ratelimit-limit': '20', 'x-ratelimit-reset': reset }, now)?.resetAt).toBe(at);
  });

  it('believes no reset in the past or a day away, and no remaining above the limit', () => {
    expect(readRateLimit({ 'x-ratelimit-limit': '20', 'x-ratelimit-reset': String(now / 1000 - 60) }, now)?.resetAt).toBeUndefined();
    expect(readRateLimit({ 'x-ratelimit-limit': '20', 'x-ratelimit-reset': String(2 * 86_400) }, now)?.resetAt).toBeUndefined();
    expect(readRateLimit({ 'x-ratelimit-limit': '20', 'x-ratelimit-remaining': '500' }, now)?.remaining).toBe(20);
  });

  it('says nothing without a usable limit: the other two alone cannot be acted on', () => {
    expect(readRateLimit(new Headers({ 'x-ratelimit-remaining': '3', 'x-ratelimit-reset': '10' }), now)).toBeUndefined();
    for (const limit of ['0', '-5', 'many', '', '1e3']) expect(readRateLimit({ 'x-ratelimit-limit': limit }, now)).toBeUndefined();
  });
});
