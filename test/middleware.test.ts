// The Express adapter end to end: real apps (Express 4 and 5), over our fetch transport and the real SDK, against the emulator.
import request from 'supertest';
import { describe, expect, it, vi } from 'vitest';
import { IdentityMismatchError, InvalidProfileFieldError, InvalidUserError, OrqApiError, OrqUnavailableError, orqIdentity } from '../src/index.js';
import { expressVersions, shapes, startApp, transports } from './helpers.js';

describe.each(expressVersions)('orqIdentity under %s', (_name, express) => {
  describe.each(shapes.flatMap((shape) => transports.map((transport) => [shape, transport] as const)))('with the %s response shape over the %s transport', (shape, transport) => {
    it('registers a new user once, then serves it from the cache', async () => {
      const { whoami, emulator, errors } = await startApp({ express, transport, emulator: { shape } });

      const first = await whoami('user-1').expect(200);
      expect(first.body.identity).toMatchObject({ externalId: 'user-1', id: expect.stringMatching(/^contact_/) });
      expect(emulator.calls.map((call) => `${call.method} ${call.path} ${String(call.status)}`)).toEqual([
        'GET /v2/identities/user-1 404',
        'POST /v2/identities 201',
      ]);
      expect(emulator.calls[1]?.body).toEqual({ external_id: 'user-1' });

      const second = await whoami('user-1').expect(200);
      expect(second.body.identity).toEqual(first.body.identity);
      expect(emulator.count()).toBe(2);
      expect(errors).toEqual([]);
    });

    it('finds an existing identity with one retrieve and no create, and normalises it', async () => {
      const { whoami, emulator } = await startApp({ express, transport, emulator: { shape } });
      const seeded = emulator.seed({ externalId: 'user-2', displayName: 'Ada', tags: ['beta'], metadata: { plan: 'pro' } });

      const response = await whoami('user-2').expect(200);
      expect(response.body.identity).toMatchObject({
        id: seeded._id, externalId: 'user-2', displayName: 'Ada', tags: ['beta'], metadata: { plan: 'pro' },
      });
      // No nulls reach the app, whatever the wire carried.
      expect(JSON.stringify(response.body.identity)).not.toContain('null');
      expect(emulator.count('retrieve')).toBe(1);
      expect(emulator.count('create')).toBe(0);
    });

    it('makes exactly one retrieve and one create for 25 concurrent first requests of one user', async () => {
      const { whoami, emulator } = await startApp({ express, transport, emulator: { shape, latencyMs: 30 } });

      const responses = await Promise.all(Array.from({ length: 25 }, () => whoami('burst-user')));
      const ids = new Set(responses.map((response) => response.body.identity?.id));
      expect(ids.size).toBe(1);
      expect([...ids][0]).toMatch(/^contact_/);
      expect(emulator.count('retrieve')).toBe(1);
      expect(emulator.count('create')).toBe(1);
    });
  });

  it('costs nothing for anonymous requests', async () => {
    const { whoami, emulator, errors } = await startApp({ express });
    const response = await whoami().expect(200);
    expect(response.body).toEqual({ identity: null, current: null, before: null });
    expect(emulator.count()).toBe(0);
    expect(errors).toEqual([]);
  });

  it('takes a user of null (passport after a logout, a getUser that found no one) for an anonymous request', async () => {
    const { whoami, emulator, errors } = await startApp({ express, middleware: { getUser: () => null } });
    const response = await whoami('ignored').expect(200);
    expect(response.body).toEqual({ identity: null, current: null, before: null });
    expect(emulator.count()).toBe(0);
    expect(errors).toEqual([]);
  });

  it.each([
    [409, 'fetch'], [409, 'sdk'], [400, 'fetch'], [422, 'fetch'],
  ] as const)('ends with the existing identity when a create loses the race (HTTP %i over %s)', async (conflictStatus, transport) => {
    const { whoami, emulator, errors } = await startApp({ express, transport, emulator: { conflictStatus } });
    // Another process registers the user between our retrieve and our create.
    const winner = emulator.seed({ externalId: 'raced' });
    emulator.inject({ operation: 'retrieve', times: 1, kind: 'status', status: 404, body: { error: 'Identity not found' } });

    const response = await whoami('raced').expect(200);
    expect(response.body.identity).toMatchObject({ id: winner._id, externalId: 'raced' });
    expect(emulator.calls.map((call) => `${call.operation} ${String(call.status)}`)).toEqual([
      'retrieve 404', `create ${conflictStatus}`, 'retrieve 200',
    ]);
    expect(errors).toEqual([]);
  });

  it.each([
    ['empty', ''],
    ['a dot', '.'],
    ['two dots', '..'],
    ['a lone surrogate', '\ud800'],
    ['a C1 control', 'a\u0085b'],
    ['121 characters', 'x'.repeat(121)],
    ['a newline', 'a\nb'],
    ['surrounding spaces', ' user '],
  ])('skips and reports an external id with %s, sending nothing', async (_what, externalId) => {
    const { app, emulator, errors } = await startApp({ express, middleware: { getUser: () => externalId } });
    app.get('/hello', (req, res) => { res.json({ identity: req.orqIdentity ?? null }); });

    const response = await request(app).get('/hello').expect(200);
    expect(response.body.identity).toBeNull();
    expect(emulator.count()).toBe(0);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(InvalidUserError);
    expect(errors[0]?.message).toMatch(/was skipped: the external id/);
  });

  it('accepts 120-character and unusual-but-safe external ids, each reaching only GET /v2/identities/{id}', async () => {
    const ids = ['x'.repeat(120), 'a.b', '...', 'auth0|5f7c8ec7', 'ü-ser', 'a?b#c', '%2F', 'john+smith@example.com'];
    for (const externalId of ids) {
      const { app, emulator, errors } = await startApp({ express, middleware: { getUser: () => externalId } });
      app.get('/hello', (req, res) => { res.json({ identity: req.orqIdentity ?? null }); });
      const response = await request(app).get('/hello').expect(200);
      expect(response.body.identity?.externalId).toBe(externalId);
      expect(errors).toEqual([]);
      expect(emulator.calls[0]?.path).toBe(`/v2/identities/${encodeURIComponent(externalId)}`);
      expect(emulator.calls[0]?.method).toBe('GET');
    }
  });

  it('never attaches an identity that belongs to another user', async () => {
    const { app, emulator, errors } = await startApp({ express, middleware: { getUser: (req) => req.header('x-user') } });
    app.get('/hello', (req, res) => { res.json({ identity: req.orqIdentity ?? null }); });
    const other = emulator.seed({ externalId: 'someone-else' });

    // This user's external id happens to equal the other identity's orq id, which retrieve also accepts.
    const response = await request(app).get('/hello').set('x-user', other._id).expect(200);
    expect(response.body.identity.externalId).toBe(other._id);
    expect(response.body.identity.id).not.toBe(other._id);
    expect(errors.some((error) => error instanceof IdentityMismatchError)).toBe(true);
  });

  it('drops profile fields that fail the documented formats, reports them, and still registers the user', async () => {
    const { app, emulator, errors } = await startApp({
      express,
      middleware: {
        getUser: () => ({
          externalId: 'profiled',
          displayName: 'Grace',
          email: 'not-an-email',
          avatarUrl: 'javascript:alert(1)',
          tags: ['ok', 7] as unknown as string[],
          metadata: ['not', 'an', 'object'] as unknown as Record<string, unknown>,
        }),
      },
    });
    app.get('/hello', (req, res) => { res.json({ identity: req.orqIdentity ?? null }); });

    const response = await request(app).get('/hello').expect(200);
    expect(response.body.identity).toMatchObject({ externalId: 'profiled', displayName: 'Grace' });
    expect(emulator.calls.find((call) => call.operation === 'create')?.body).toEqual({ external_id: 'profiled', display_name: 'Grace' });
    expect(errors.map((error) => (error as InvalidProfileFieldError).field).sort()).toEqual(['avatarUrl', 'email', 'metadata', 'tags']);
    expect(errors.every((error) => error instanceof InvalidProfileFieldError)).toBe(true);
  });

  it('lets the request go on without an identity when orq fails, and reports why', async () => {
    const { whoami, emulator, errors } = await startApp({ express, middleware: { retries: 0 } });
    emulator.inject({ kind: 'status', status: 500 });

    const response = await whoami('unlucky').expect(200);
    expect(response.body.identity).toBeNull();
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(OrqApiError);
    expect(errors[0]?.message).toMatch(/orq retrieve of user "unlucky" failed with HTTP 500/);
  });

  it('answers 503 through Express error handling when failOpen is false', async () => {
    const { app, emulator } = await startApp({ express, middleware: { failOpen: false, retries: 0 } });
    emulator.inject({ kind: 'status', status: 502 });
    let seen: unknown;
    app.use((error: unknown, _req: unknown, res: { status(code: number): { json(body: unknown): void } }, _next: unknown) => {
      seen = error;
      res.status((error as OrqUnavailableError).status ?? 500).json({ code: (error as OrqUnavailableError).code });
    });

    const response = await request(app).get('/whoami').set('x-user', 'strict').expect(503);
    expect(response.body).toEqual({ code: 'ORQ_IDENTITY_UNAVAILABLE' });
    expect(seen).toBeInstanceOf(OrqUnavailableError);
    expect((seen as OrqUnavailableError).cause).toBeInstanceOf(OrqApiError);
  });

  it('does not wait longer than timeoutMs, and the lookup it stopped waiting for fills the cache', async () => {
    const { whoami, emulator, errors } = await startApp({ express, emulator: { latencyMs: 400 }, middleware: { timeoutMs: 100 } });

    const started = Date.now();
    const first = await whoami('slow').expect(200);
    expect(Date.now() - started).toBeLessThan(380);
    expect(first.body.identity).toBeNull();
    expect(errors[0]).toMatchObject({ name: 'OrqUnavailableError', reason: 'timeout' });

    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const later = await whoami('slow').expect(200);
    expect(later.body.identity?.externalId).toBe('slow');
    expect(emulator.count()).toBe(2);
  });

  it('accepts an async getUser returning a full profile', async () => {
    const { app, emulator } = await startApp({
      express,
      middleware: { getUser: async (req) => ({ externalId: `async-${req.header('x-user') ?? ''}`, email: 'a@example.com' }) },
    });
    app.get('/hello', (req, res) => { res.json({ identity: req.orqIdentity ?? null }); });
    const response = await request(app).get('/hello').set('x-user', '7').expect(200);
    expect(response.body.identity).toMatchObject({ externalId: 'async-7', email: 'a@example.com' });
    expect(emulator.count('create')).toBe(1);
  });

  it('reports a getUser that throws or rejects and lets the request go on', async () => {
    const { app, errors } = await startApp({
      express,
      middleware: { getUser: (req) => { if (req.path === '/sync') throw new Error('boom'); return Promise.reject(new Error('async boom')); } },
    });
    app.get(['/sync', '/async'], (_req, res) => { res.send('ok'); });
    await request(app).get('/sync').expect(200, 'ok');
    await request(app).get('/async').expect(200, 'ok');
    expect(errors.map((error) => error.code)).toEqual(['ORQ_IDENTITY_GET_USER_FAILED', 'ORQ_IDENTITY_GET_USER_FAILED']);
    expect(errors[1]?.message).toContain('async boom');
  });
});

describe('a throwing onError', () => {
  it.each([
    ['getUser throws', () => { throw new Error('no user'); }],
    ['getUser rejects', () => Promise.reject(new Error('no user'))],
    ['orq fails', () => 'user-x'],
  ])('does not affect the request when %s', async (_what, getUser) => {
    const stderr = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      const { app, emulator } = await startApp({ middleware: { getUser, retries: 0, onError: () => { throw new Error('hook broke'); } } });
      emulator.inject({ kind: 'status', status: 500 });
      app.get('/ok', (_req, res) => { res.send('ok'); });
      await request(app).get('/ok').timeout(2_000).expect(200, 'ok');
      expect(String(stderr.mock.calls[0]?.[0])).toContain('onError threw');
    } finally {
      stderr.mockRestore();
    }
  });
});

describe('the default onError', () => {
  it('writes one concise line per event and never the API key', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    try {
      const { whoami } = await startApp({ middleware: { apiKey: 'sk-secret-wrong-key', onError: undefined } });
      await whoami('who').expect(200);
      expect(warn).toHaveBeenCalledTimes(1);
      const line = String(warn.mock.calls[0]?.[0]);
      expect(line).toMatch(/^\[express-orq-identity\] OrqUnavailableError \(ORQ_IDENTITY_UNAVAILABLE\): .*HTTP 401: check the orq API key/);
      expect(line).not.toContain('sk-secret-wrong-key');
      expect(line).not.toContain('\n');
    } finally {
      warn.mockRestore();
    }
  });
});

describe('start-up checks', () => {
  it('fails at creation, not at the first request, without a key or a client', () => {
    const saved = process.env.ORQ_API_KEY;
    delete process.env.ORQ_API_KEY;
    try {
      expect(() => orqIdentity()).toThrow(/no orq API key\. Set ORQ_API_KEY, pass `apiKey`/);
    } finally {
      if (saved !== undefined) process.env.ORQ_API_KEY = saved;
    }
  });

  it.each([
    [{ cache: { ttl: '10m' } }, /invalid option `cache.ttl`, received `'10m'`; pass a number of milliseconds .* e\.g\. `ttl: 600_000`/],
    [{ cache: { max: 0 } }, /invalid option `cache.max`, received `0`; pass a whole number of at least 1/],
    [{ timeoutMs: -1 }, /invalid option `timeoutMs`/],
    [{ failOpen: 'no' }, /invalid option `failOpen`, received `'no'`; pass `true` or `false`/],
    [{ getUser: 'user.id' }, /invalid option `getUser`, received `'user.id'`; pass a function/],
    [{ serverURL: 'api.orq.ai' }, /invalid option `serverURL`.*absolute URL/],
  ])('rejects %j with a message that says what to pass', (options, message) => {
    expect(() => orqIdentity({ apiKey: 'k', ...(options as object) })).toThrow(message);
  });

  it('warns about an unknown option and suggests the right name', () => {
    const warnings: Array<{ message: string; code?: string }> = [];
    const listener = (warning: Error & { code?: string }): void => { warnings.push(warning); };
    const emit = vi.spyOn(process, 'emitWarning').mockImplementation(((message: string, options: { code: string }) => {
      listener(Object.assign(new Error(message), { code: options.code }));
    }) as typeof process.emitWarning);
    try {
      orqIdentity({ apiKey: 'k', timeout: 100 } as never);
      expect(warnings).toHaveLength(1);
      expect(warnings[0]?.message).toMatch(/unknown option `timeout` is ignored; did you mean `timeoutMs`\?/);
      expect(warnings[0]?.code).toBe('ORQ_IDENTITY_UNKNOWN_OPTION');
    } finally {
      emit.mockRestore();
    }
  });
});

describe('orqIdentity without the async context', () => {
  it('context: false still attaches a cached user to req on the hot path, and puts nothing in the context', async () => {
    const { whoami, emulator } = await startApp({ middleware: { context: false } });
    await whoami('hot-no-context').expect(200);
    const cached = await whoami('hot-no-context').expect(200);
    expect(cached.body.identity?.externalId).toBe('hot-no-context');
    expect(cached.body.current).toBeNull();
    expect(emulator.count()).toBe(2);
  });

  it('context: false with failOpen: false still passes the outage to Express as a 503', async () => {
    const { app, emulator } = await startApp({ middleware: { context: false, failOpen: false, retries: 0 } });
    emulator.inject({ kind: 'status', status: 502 });
    app.use((error: OrqUnavailableError, _req: unknown, res: { status(code: number): { json(body: unknown): void } }, _next: unknown) => {
      res.status(error.status ?? 500).json({ code: error.code });
    });
    expect((await request(app).get('/whoami').set('x-user', 'strict-no-context').expect(503)).body).toEqual({ code: 'ORQ_IDENTITY_UNAVAILABLE' });
  });
});

describe('failOpen: false while the circuit is open', () => {
  it('a new user gets the 503, not the fail-open pass-through', async () => {
    const { app, emulator, middleware } = await startApp({ middleware: { failOpen: false, retries: 0, circuitBreaker: { failureThreshold: 1, cooldownMs: 60_000 } } });
    emulator.inject({ kind: 'status', status: 503 });
    await expect(middleware.resolver.resolve('tripper')).rejects.toMatchObject({ name: 'OrqUnavailableError' });
    expect(middleware.resolver.circuit).toBe('open');
    app.use((error: OrqUnavailableError, _req: unknown, res: { status(code: number): { json(body: unknown): void } }, _next: unknown) => {
      res.status(error.status ?? 500).json({ reason: error.reason });
    });
    expect((await request(app).get('/whoami').set('x-user', 'new-while-open').expect(503)).body).toEqual({ reason: 'circuit-open' });
    expect(emulator.count()).toBe(1);
  });
});

describe('an async getUser and its deadline', () => {
  it.each([
    ['resolves', () => Promise.resolve(undefined), 0],
    ['rejects', () => Promise.reject(new Error('session store down')), 1],
  ] as const)('one that %s in time is done with: its deadline passing later reports nothing and runs nothing again', async (_what, getUser, reports) => {
    const { app, errors } = await startApp({ middleware: { timeoutMs: 50, getUser } });
    let runs = 0;
    app.get('/count', (_req, res) => {
      runs += 1;
      res.send('ok');
    });
    await request(app).get('/count').expect(200, 'ok');
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(runs).toBe(1);
    expect(errors).toHaveLength(reports);
  });

  it('one that rejects after the deadline is not reported again', async () => {
    let fail: (error: Error) => void = () => undefined;
    const { app, errors } = await startApp({ middleware: { timeoutMs: 50, getUser: () => new Promise<string>((_resolve, reject) => { fail = reject; }) } });
    app.get('/late', (_req, res) => { res.send('ok'); });
    await request(app).get('/late').timeout(3_000).expect(200, 'ok');
    fail(new Error('too late'));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(errors.map((error) => error.message)).toEqual([expect.stringMatching(/did not settle within timeoutMs \(50 ms\)/)]);
  });
});
