// Regression guard for the hot path (not a timing test): a cached user costs no orq call, no promise and no await.
import type { NextFunction, Request, Response } from 'express';
import { describe, expect, it, vi } from 'vitest';
import { resourcesCreatedBy } from './async-resources.js';
import { currentOrqIdentity, type OrqIdentity, type OrqIdentityMiddleware } from '../src/index.js';
import { expressVersions, startApp } from './helpers.js';

function fakeReq(id: string): Request {
  return { user: { id } } as unknown as Request;
}

const fakeRes = {} as Response;


/** Calls the middleware for `id` and records whether `next` ran before it returned, and what it saw. */
function callMiddleware(middleware: OrqIdentityMiddleware, id: string) {
  const req = fakeReq(id);
  let returned = false;
  let calledBeforeReturn = false;
  let current: OrqIdentity | undefined;
  const next = vi.fn(() => {
    calledBeforeReturn = !returned;
    current = currentOrqIdentity();
  });
  const result: unknown = middleware(req, fakeRes, next as unknown as NextFunction);
  returned = true;
  return { req, next, result, calledBeforeReturn, current: () => current };
}

describe.each(expressVersions)('the hot path under %s', (_name, express) => {
  it('serves 25 more requests of a warmed user without any orq call', async () => {
    const { whoami, emulator, errors } = await startApp({ express });
    const first = await whoami('hot-user').expect(200);
    expect(first.body.identity).toMatchObject({ externalId: 'hot-user', id: expect.stringMatching(/^contact_/) });
    const callsAfterWarm = emulator.count();
    expect(callsAfterWarm).toBe(2);

    for (let i = 0; i < 25; i++) {
      const response = await whoami('hot-user').expect(200);
      expect(response.body.identity).toEqual(first.body.identity);
      expect(response.body.current).toEqual(first.body.identity);
    }
    expect(emulator.count()).toBe(callsAfterWarm);
    expect(errors).toEqual([]);
  });
});

describe.each([
  ['context on', true],
  ['context off', false],
])('a cache hit, called in-process with %s', (_name, context) => {
  async function warmed(id: string): Promise<{ middleware: OrqIdentityMiddleware; identity: OrqIdentity }> {
    const { middleware, emulator } = await startApp({ middleware: { context } });
    const identity = await middleware.resolver.resolve(id, fakeReq(id));
    expect(emulator.count()).toBe(2);
    return { middleware, identity };
  }

  it('calls next synchronously, with no argument, before the middleware returns, and sets req.orqIdentity', async () => {
    const { middleware, identity } = await warmed('sync-user');
    const call = callMiddleware(middleware, 'sync-user');
    expect(call.next).toHaveBeenCalledTimes(1);
    expect(call.next).toHaveBeenCalledWith();
    expect(call.calledBeforeReturn).toBe(true);
    expect(call.result).toBeUndefined();
    expect(call.req.orqIdentity).toBe(identity);
    expect(call.current()).toBe(context ? identity : undefined);
  });

  it('returns the same frozen object from resolver.cached each time, the one attached to req', async () => {
    const { middleware, identity } = await warmed('frozen-user');
    const first = middleware.resolver.cached('frozen-user');
    const second = middleware.resolver.cached('frozen-user');
    expect(first).toBeDefined();
    expect(second).toBe(first);
    expect(first).toBe(identity);
    expect(Object.isFrozen(first)).toBe(true);
    expect(callMiddleware(middleware, 'frozen-user').req.orqIdentity).toBe(first);
  });

  it('creates no promise on a hit (and the counter does see the promises of a miss)', async () => {
    const { middleware } = await warmed('promise-user');
    const hit = resourcesCreatedBy('PROMISE', () => {
      callMiddleware(middleware, 'promise-user');
    });
    expect(hit).toBe(0);

    // The same counter around calls that do make promises: proves it would catch one on the hit path.
    const resolveHit = resourcesCreatedBy('PROMISE', () => {
      void middleware.resolver.resolve('promise-user', fakeReq('promise-user'));
    });
    expect(resolveHit).toBeGreaterThan(0);
    let miss: ReturnType<typeof callMiddleware> | undefined;
    const missPromises = resourcesCreatedBy('PROMISE', () => {
      miss = callMiddleware(middleware, 'not-cached-yet');
    });
    expect(missPromises).toBeGreaterThan(0);
    expect(miss?.calledBeforeReturn).toBe(false);
    await vi.waitFor(() => expect(miss?.next).toHaveBeenCalledTimes(1));
  });
});

describe('an open circuit, called in-process', () => {
  it('passes a new user straight through: next runs synchronously, no promise, no call, nothing reported per request', async () => {
    const { middleware, emulator, errors } = await startApp({ middleware: { retries: 0, circuitBreaker: { failureThreshold: 1, cooldownMs: 60_000 } } });
    emulator.inject({ kind: 'status', status: 503 });
    await expect(middleware.resolver.resolve('tripper', fakeReq('tripper'))).rejects.toMatchObject({ name: 'OrqUnavailableError' });
    expect(middleware.resolver.circuit).toBe('open');
    const reported = errors.length;

    let call: ReturnType<typeof callMiddleware> | undefined;
    const created = resourcesCreatedBy('PROMISE', () => {
      call = callMiddleware(middleware, 'new-during-outage');
    });
    expect(created).toBe(0);
    expect(call?.calledBeforeReturn).toBe(true);
    // No error: `next(undefined)` is `next()` to Express 4 and 5.
    expect(call?.next).toHaveBeenCalledWith(undefined);
    expect(call?.req.orqIdentity).toBeUndefined();
    expect(emulator.count()).toBe(1);
    expect(errors).toHaveLength(reported);
  });
});
