// Start-up messages for options in the wrong place: the warning names the option the user meant, nested ones included.
import { describe, expect, it, vi } from 'vitest';
import { createIdentityResolver, orqIdentity } from '../src/index.js';

/** The warnings emitted while `create` runs. */
function warningsOf(create: () => unknown): Array<{ message: string; code: string | undefined }> {
  const warnings: Array<{ message: string; code: string | undefined }> = [];
  const emit = vi.spyOn(process, 'emitWarning').mockImplementation(((message: string, options?: { code?: string }) => {
    warnings.push({ message, code: options?.code });
  }) as typeof process.emitWarning);
  let created: unknown;
  try {
    created = create();
  } finally {
    emit.mockRestore();
  }
  // Closed at once, so the next case's instance is not a second one running for the same key.
  void (created as { close?: () => Promise<unknown> } | undefined)?.close?.();
  return warnings;
}

describe('unknown option names', () => {
  it.each([
    [{ ttl: 60_000 }, 'unknown option `ttl` is ignored; did you mean `cache.ttl` (`cache: { ttl: … }`)?'],
    [{ max: 500 }, 'unknown option `max` is ignored; did you mean `cache.max` (`cache: { max: … }`)?'],
    [{ cooldownMs: 1_000 }, 'unknown option `cooldownMs` is ignored; did you mean `circuitBreaker.cooldownMs` (`circuitBreaker: { cooldownMs: … }`)?'],
    [{ failureThreshold: 3 }, 'unknown option `failureThreshold` is ignored; did you mean `circuitBreaker.failureThreshold` (`circuitBreaker: { failureThreshold: … }`)?'],
    [{ refreshMs: 1_000 }, 'unknown option `refreshMs` is ignored; did you mean `metrics.refreshMs` (`metrics: { refreshMs: … }`)?'],
    // A top-level name that is nearer wins over a nested one.
    [{ timeout: 100 }, 'unknown option `timeout` is ignored; did you mean `timeoutMs`?'],
    [{ cache: { ttlMs: 1_000 } }, 'unknown option `cache.ttlMs` is ignored; did you mean `cache.ttl`?'],
    [{ circuitBreaker: { cooldown: 1_000 } }, 'unknown option `circuitBreaker.cooldown` is ignored; did you mean `circuitBreaker.cooldownMs`?'],
    [{ metrics: { refresh: 1_000 } }, 'unknown option `metrics.refresh` is ignored; did you mean `metrics.refreshMs`?'],
    [{ colour: 'blue' }, 'unknown option `colour` is ignored'],
  ])('%j warns with the option meant', (options, message) => {
    const warnings = warningsOf(() => orqIdentity({ apiKey: 'k', ...(options as object) }));
    expect(warnings).toEqual([{ message: `orqIdentity: ${message}`, code: 'ORQ_IDENTITY_UNKNOWN_OPTION' }]);
  });

  it('suggests nested names to createIdentityResolver too', () => {
    const warnings = warningsOf(() => createIdentityResolver({ apiKey: 'k', ttl: 1 } as never));
    expect(warnings[0]?.message).toBe('createIdentityResolver: unknown option `ttl` is ignored; did you mean `cache.ttl` (`cache: { ttl: … }`)?');
  });

  it('says nothing about known names', () => {
    expect(warningsOf(() => orqIdentity({ apiKey: 'k', cache: { ttl: 1_000, max: 5 }, skip: () => false }))).toEqual([]);
  });
});
