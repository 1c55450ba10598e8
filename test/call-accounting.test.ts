// What a failed call says about orq: only real outages count toward the circuit and are retried.
import { describe, expect, it } from 'vitest';
import { startApp } from './helpers.js';

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
