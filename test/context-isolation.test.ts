// Issue 8.1: a request resumed from inside another request's callback must not inherit that request's user downstream.
import express5 from 'express';
import type { Express, NextFunction, Request, Response } from 'express';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { currentOrqIdentity, currentOrqUser, orqIdentity, type OrqIdentityOptions } from '../src/index.js';
import { expressVersions, startEmulator } from './helpers.js';

/**
 * A size-1 pool with callback hand-over, as mysql's `Pool` and many session stores do it: `release()` hands
 * the freed resource to the next waiter synchronously, so the waiter's request resumes inside the context of
 * whichever request released it.
 */
class CallbackPool {
  private busy = false;
  private readonly waiters: Array<() => void> = [];
  private onWaiter: (() => void) | undefined;

  acquire(callback: () => void): void {
    if (!this.busy) {
      this.busy = true;
      callback();
      return;
    }
    this.waiters.push(callback);
    this.onWaiter?.();
  }

  release(): void {
    const waiter = this.waiters.shift();
    if (waiter === undefined) this.busy = false;
    else waiter();
  }

  /** Resolves once a request is queued behind the holder. */
  someoneWaiting(): Promise<void> {
    if (this.waiters.length > 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.onWaiter = () => {
        this.onWaiter = undefined;
        resolve();
      };
    });
  }
}

interface Seen {
  identity: string | null;
  user: string | null;
  status?: number;
}

function seenNow(status?: number): Seen {
  return { identity: currentOrqIdentity()?.externalId ?? null, user: currentOrqUser()?.externalId ?? null, ...(status === undefined ? {} : { status }) };
}

type ExpressFactory = () => Express;

/** The app: pool → orqIdentity → `/` holds the pool until another request queues, then releases it; the others release at once. */
async function poolApp(createApp: ExpressFactory, middlewareOptions: Partial<OrqIdentityOptions> = {}) {
  const emulator = await startEmulator();
  const middleware = orqIdentity({
    apiKey: emulator.apiKey,
    serverURL: emulator.url,
    onError: () => undefined,
    // x-user: the user; x-throw: getUser throws; x-async: the user comes through a promise (rejected when "reject").
    getUser: (req) => {
      if (req.header('x-throw') !== undefined) throw new Error('session store down');
      const asyncUser = req.header('x-async');
      if (asyncUser === 'reject') return Promise.reject(new Error('session store down'));
      if (asyncUser !== undefined) return Promise.resolve(asyncUser);
      return req.header('x-user');
    },
    ...middlewareOptions,
  });
  const pool = new CallbackPool();
  const app = createApp();
  app.use((_req: Request, _res: Response, next: NextFunction) => pool.acquire(() => next()));
  app.use(middleware);
  app.get('/warm', (_req: Request, res: Response) => {
    res.json(seenNow());
    pool.release();
  });
  app.get('/', (_req: Request, res: Response) => {
    const seen = seenNow();
    void pool.someoneWaiting().then(() => {
      // Released from this request's own context, exactly as a handler would free its connection.
      pool.release();
      res.json(seen);
    });
  });
  app.get('/second', (_req: Request, res: Response) => {
    res.json(seenNow());
    pool.release();
  });
  app.use((error: Error & { status?: number }, _req: Request, res: Response, _next: NextFunction) => {
    res.status(error.status ?? 500).json(seenNow(error.status ?? 500));
    pool.release();
  });
  return { emulator, middleware, app };
}

/** Alice (cached) holds the pool; the second request waits for it and is resumed from inside Alice's context. */
async function afterAlice(app: Express, second: Record<string, string>): Promise<{ first: Seen; second: Seen }> {
  await request(app).get('/warm').set('x-user', 'alice').expect(200);
  const alice = request(app).get('/').set('x-user', 'alice');
  let secondRequest = request(app).get('/second');
  for (const [name, value] of Object.entries(second)) secondRequest = secondRequest.set(name, value);
  const [first, other] = await Promise.all([alice.then((response) => response.body as Seen), secondRequest.then((response) => response.body as Seen)]);
  return { first, second: other };
}

describe.each(expressVersions)('a request resumed from another request\'s context, under %s', (_name, createApp) => {
  it.each([
    ['anonymous', {}, { identity: null, user: null }],
    ['an invalid user', { 'x-user': '..' }, { identity: null, user: null }],
    ['getUser throwing', { 'x-throw': '1' }, { identity: null, user: null }],
    ['an async getUser rejecting', { 'x-async': 'reject' }, { identity: null, user: null }],
    ['a cached user', { 'x-user': 'alice' }, { identity: 'alice', user: 'alice' }],
    ['a new user through an async getUser', { 'x-async': 'bob' }, { identity: 'bob', user: 'bob' }],
  ])('sees only its own user downstream: %s', async (_case, headers, expected) => {
    const { app } = await poolApp(createApp);
    const { first, second } = await afterAlice(app, headers);
    expect(first).toEqual({ identity: 'alice', user: 'alice' });
    expect(second).toEqual(expected);
  });

  it('a new user while orq hangs: its own user and no identity downstream', async () => {
    const { app, emulator } = await poolApp(createApp, { timeoutMs: 100, lookupTimeoutMs: 300 });
    await request(app).get('/warm').set('x-user', 'alice').expect(200);
    emulator.inject({ kind: 'hang', operation: 'retrieve' });
    const { second } = await afterAlice(app, { 'x-user': 'bob' });
    expect(second).toEqual({ identity: null, user: 'bob' });
  });

  it('a new user while the circuit is open: its own user and no identity downstream', async () => {
    const { app, emulator, middleware } = await poolApp(createApp, { retries: 0, circuitBreaker: { failureThreshold: 1, cooldownMs: 60_000 } });
    await request(app).get('/warm').set('x-user', 'alice').expect(200);
    emulator.inject({ kind: 'status', status: 503 });
    await expect(middleware.resolver.resolve('tripper')).rejects.toMatchObject({ name: 'OrqUnavailableError' });
    expect(middleware.resolver.circuit).toBe('open');
    const { second } = await afterAlice(app, { 'x-user': 'bob' });
    expect(second).toEqual({ identity: null, user: 'bob' });
  });

  it('failOpen: false: the error handler runs in the failing request\'s context, not the releaser\'s', async () => {
    const { app, emulator } = await poolApp(createApp, { failOpen: false, timeoutMs: 100, lookupTimeoutMs: 300 });
    await request(app).get('/warm').set('x-user', 'alice').expect(200);
    emulator.inject({ kind: 'hang', operation: 'retrieve' });
    const { second } = await afterAlice(app, { 'x-user': 'bob' });
    expect(second).toEqual({ identity: null, user: 'bob', status: 503 });
  });
});

describe('the user in the context', () => {
  it('is there before orq answers: a handler of a request whose lookup times out still knows its user and profile', async () => {
    const emulator = await startEmulator();
    emulator.inject({ kind: 'hang' });
    const middleware = orqIdentity({
      apiKey: emulator.apiKey,
      serverURL: emulator.url,
      timeoutMs: 50,
      lookupTimeoutMs: 200,
      onError: () => undefined,
      getUser: () => ({ externalId: 'slow-user', displayName: 'Slow User', tags: ['beta'], email: 'not an email' }),
    });
    const app = express5();
    app.use(middleware);
    app.get('/', (_req, res) => {
      const user = currentOrqUser();
      res.json({ user, frozen: Object.isFrozen(user) && Object.isFrozen(user?.tags), identity: currentOrqIdentity() ?? null });
    });
    const response = await request(app).get('/').expect(200);
    // The invalid email was dropped by the same checks as the lookup's: the context never holds what orq would refuse.
    expect(response.body).toEqual({ user: { externalId: 'slow-user', displayName: 'Slow User', tags: ['beta'] }, frozen: true, identity: null });
    await middleware.close({ timeoutMs: 500 });
  });
});
