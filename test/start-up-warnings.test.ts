// Start-up warnings: options in the wrong place name the option meant (nested ones included), and a second live
// instance for the same orq, which has its own cache and limits, is pointed out once.
import express from 'express';
import request from 'supertest';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createIdentityResolver, orqIdentity } from '../src/index.js';
import { orqClientFor, startEmulator } from './helpers.js';

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
    [{ ttl: 60_000 }, 'unknown option `ttl` is ignored; did you mean `cache.freshMs` (`cache: { freshMs: … }`)?'],
    [{ max: 500 }, 'unknown option `max` is ignored; did you mean `cache.max` (`cache: { max: … }`)?'],
    [{ cooldownMs: 1_000 }, 'unknown option `cooldownMs` is ignored; did you mean `circuitBreaker.cooldownMs` (`circuitBreaker: { cooldownMs: … }`)?'],
    [{ failureThreshold: 3 }, 'unknown option `failureThreshold` is ignored; did you mean `circuitBreaker.failureThreshold` (`circuitBreaker: { failureThreshold: … }`)?'],
    [{ refreshMs: 1_000 }, 'unknown option `refreshMs` is ignored; did you mean `metrics.refreshMs` (`metrics: { refreshMs: … }`)?'],
    // A top-level name that is nearer wins over a nested one.
    [{ timeout: 100 }, 'unknown option `timeout` is ignored; did you mean `timeoutMs`?'],
    [{ cache: { ttlMs: 1_000 } }, 'unknown option `cache.ttlMs` is ignored; did you mean `cache.ttl`?'],
    [{ circuitBreaker: { cooldown: 1_000 } }, 'unknown option `circuitBreaker.cooldown` is ignored; did you mean `circuitBreaker.cooldownMs`?'],
    [{ metrics: { refresh: 1_000 } }, 'unknown option `metrics.refresh` is ignored; did you mean `metrics.refreshMs`?'],
    [{ budget: { calls: 10, window: 1_000 } }, 'unknown option `budget.window` is ignored; did you mean `budget.windowMs`?'],
    [{ colour: 'blue' }, 'unknown option `colour` is ignored'],
    [{ cache: { colour: 'blue' } }, 'unknown option `cache.colour` is ignored'],
  ])('%j warns with the option meant', (options, message) => {
    const warnings = warningsOf(() => orqIdentity({ apiKey: 'k', ...(options as object) }));
    expect(warnings).toEqual([{ message: `orqIdentity: ${message}`, code: 'ORQ_IDENTITY_UNKNOWN_OPTION' }]);
  });

  it('suggests nested names to createIdentityResolver too', () => {
    const warnings = warningsOf(() => createIdentityResolver({ apiKey: 'k', ttl: 1 } as never));
    expect(warnings[0]?.message).toBe('createIdentityResolver: unknown option `ttl` is ignored; did you mean `cache.freshMs` (`cache: { freshMs: … }`)?');
  });

  it('says nothing about known names', () => {
    expect(warningsOf(() => orqIdentity({ apiKey: 'k', cache: { freshMs: 1_000, max: 5 }, skip: () => false }))).toEqual([]);
  });
});

describe('option shapes refused at start-up', () => {
  it.each([
    [{ metrics: 0 }, /invalid option `metrics`, received `0`; pass `true`, `false` or `\{ refreshMs \}`/],
    [{ metrics: 'false' }, /invalid option `metrics`, received `'false'`/],
    [{ circuitBreaker: 5 }, /invalid option `circuitBreaker`, received `5`; pass `\{ failureThreshold, cooldownMs \}`/],
  ])('%j', (options, message) => {
    expect(() => orqIdentity({ apiKey: 'k', ...(options as object) })).toThrow(message);
  });
});

describe('several instances', () => {
  let codes: Array<string | undefined> = [];
  let messages: string[] = [];
  beforeEach(() => {
    codes = [];
    messages = [];
    vi.spyOn(process, 'emitWarning').mockImplementation(((message: string, options?: { code?: string }) => {
      codes.push(options?.code);
      messages.push(message);
    }) as typeof process.emitWarning);
  });
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('warns once when a second instance for the same key and server is created while the first runs', async () => {
    const emulator = await startEmulator();
    const options = { apiKey: emulator.apiKey, serverURL: emulator.url, getUser: (req: express.Request) => req.header('x-user') };
    const instances = [orqIdentity(options), orqIdentity(options), orqIdentity(options)];
    expect(codes).toEqual(['ORQ_IDENTITY_SEVERAL_INSTANCES']);
    expect(messages[0]).toBe(
      'orqIdentity: another instance for the same orq configuration is already running. Each instance has its own cache, ' +
        'circuit breaker and concurrency limit, so every new user costs a lookup per instance and the limits do not hold for the app. ' +
        "Create the middleware once at start-up and reuse it (`const identity = orqIdentity(); app.get('/x', auth, identity, handler)`); " +
        'for work outside requests use `identity.resolver`. Call `close()` on an instance you replace.',
    );
    expect(messages[0]).not.toContain(emulator.apiKey);

    // What the warning is about: one new user, registered inline per route, costs a lookup per instance.
    const app = express();
    instances.forEach((instance, index) => app.get(`/r${index}`, instance, (_req, res) => res.end()));
    for (let index = 0; index < instances.length; index++) await request(app).get(`/r${index}`).set('x-user', 'newcomer').expect(200);
    expect(emulator.count('retrieve')).toBe(3);
    await Promise.all(instances.map((instance) => instance.close()));
  });

  it('says nothing when the first instance was closed before its replacement was made', async () => {
    const emulator = await startEmulator();
    const options = { apiKey: emulator.apiKey, serverURL: emulator.url };
    await orqIdentity(options).close();
    const replacement = orqIdentity(options);
    expect(codes).toEqual([]);
    await replacement.close();
  });

  it('closing an instance twice releases it once: a later pair of instances is still pointed out', async () => {
    const emulator = await startEmulator();
    const options = { apiKey: emulator.apiKey, serverURL: emulator.url };
    const first = orqIdentity(options);
    await first.close();
    const second = orqIdentity(options);
    await first.close();
    const third = orqIdentity(options);
    expect(codes).toEqual(['ORQ_IDENTITY_SEVERAL_INSTANCES']);
    await Promise.all([second.close(), third.close()]);
  });

  it('says nothing for instances that talk to different orq servers or with different clients', async () => {
    const [first, second] = await Promise.all([startEmulator(), startEmulator()]);
    const instances = [
      orqIdentity({ apiKey: first.apiKey, serverURL: first.url }),
      orqIdentity({ apiKey: second.apiKey, serverURL: second.url }),
      orqIdentity({ client: orqClientFor(first) }),
      orqIdentity({ client: orqClientFor(first) }),
    ];
    expect(codes).toEqual([]);
    await Promise.all(instances.map((instance) => instance.close()));
  });

  // The registry is process-wide (shared by the ESM and CJS copies of the package): what closed instances leave
  // there stays for the life of the process.
  it('a closed instance leaves nothing in the process-wide registry; an open one is counted once', async () => {
    const registry = (globalThis as Record<symbol, { open: Map<unknown, number> } | undefined>)[Symbol.for('express-orq-identity.instances/2')];
    const before = new Set(registry?.open.keys());
    const added = (): Array<[unknown, number]> => [...(registry?.open ?? [])].filter(([target]) => !before.has(target));
    const emulator = await startEmulator();
    const client = orqClientFor(emulator);
    const byKey = [orqIdentity({ apiKey: emulator.apiKey, serverURL: emulator.url }), orqIdentity({ apiKey: emulator.apiKey, serverURL: emulator.url })];
    const byClient = [orqIdentity({ client }), createIdentityResolver({ client }), orqIdentity({ client })];
    expect(added().map(([, count]) => count).sort()).toEqual([2, 3]);
    expect(added().some(([target]) => typeof target === 'string' && target.includes(emulator.apiKey))).toBe(false);
    await byKey[0]?.close();
    await byClient[0]?.close();
    expect(added().map(([, count]) => count).sort()).toEqual([1, 2]);
    await byKey[1]?.close();
    await Promise.all(byClient.map((instance) => instance.close()));
    expect(added()).toEqual([]);
  });

  it('counts a resolver beside the middleware, and one client object handed to two instances', async () => {
    const emulator = await startEmulator();
    const client = orqClientFor(emulator);
    const middleware = orqIdentity({ client });
    const resolver = createIdentityResolver({ client });
    expect(codes).toEqual(['ORQ_IDENTITY_SEVERAL_INSTANCES']);
    expect(messages[0]).toMatch(/^createIdentityResolver: .*for work outside requests use `identity\.resolver`/);
    await Promise.all([middleware.close(), resolver.close()]);
  });
});
