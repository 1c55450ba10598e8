// The failure table, row by row: what a request sees, how long it waits, and what orq receives, under each fault.
import { LRUCache } from 'lru-cache';
import { describe, expect, it } from 'vitest';
import { createIdentityResolver, IdentityMismatchError, OrqApiError, OrqUnavailableError, type OrqIdentity, type OrqIdentityError } from '../src/index.js';
import { connectionFor, eventually, orqClientFor, startApp, startEmulator, transports } from './helpers.js';

const fast = { retries: 0, timeoutMs: 300, lookupTimeoutMs: 1_000 } as const;

async function timed<T>(work: Promise<T>): Promise<[T, number]> {
  const started = Date.now();
  const result = await work;
  return [result, Date.now() - started];
}

// The rows whose outcome depends on how the transport reads the wire run over both transports.
describe.each(transports)('failure behaviour over the %s transport', (transport) => {
  it('5xx: retries with backoff inside the deadline, then attaches the identity', async () => {
    const { whoami, emulator, errors } = await startApp({ transport, middleware: { retries: 2 } });
    emulator.inject({ operation: 'retrieve', kind: 'status', status: 503, times: 2 });

    const response = await whoami('retried').expect(200);
    expect(response.body.identity?.externalId).toBe('retried');
    expect(emulator.calls.map((call) => `${call.operation} ${String(call.status)}`)).toEqual([
      'retrieve 503', 'retrieve 503', 'retrieve 404', 'create 201',
    ]);
    expect(errors).toEqual([]);
  });

  it('5xx with no retries left: the request goes on without identity and onError gets the status', async () => {
    const { whoami, emulator, errors } = await startApp({ transport, middleware: fast });
    emulator.inject({ kind: 'status', status: 500 });

    const response = await whoami('failing').expect(200);
    expect(response.body.identity).toBeNull();
    expect(emulator.count()).toBe(1);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ name: 'OrqApiError', kind: 'http', statusCode: 500, operation: 'retrieve' });
  });

  it('connection reset: reported as a network failure, retried once when allowed', async () => {
    // A reset, a backoff of up to 150 ms and two calls: 300 ms was too tight on a loaded machine and a cold fetch.
    const { whoami, emulator, errors } = await startApp({ transport, middleware: { ...fast, retries: 1, timeoutMs: 1_000 } });
    emulator.inject({ kind: 'reset', times: 1 });

    const response = await whoami('reset-once').expect(200);
    expect(response.body.identity?.externalId).toBe('reset-once');
    expect(emulator.calls.map((call) => String(call.status))).toEqual(['reset', '404', '201']);
    expect(errors).toEqual([]);

    emulator.inject({ kind: 'reset' });
    const broken = await whoami('reset-always').expect(200);
    expect(broken.body.identity).toBeNull();
    expect(errors[0]).toMatchObject({ name: 'OrqApiError', kind: 'network' });
  });

  it('connection refused: the request goes on without identity', async () => {
    const emulator = await startEmulator();
    const gone = { apiKey: emulator.apiKey, url: emulator.url };
    await emulator.close();
    const { whoami, errors } = await startApp({ transport, middleware: { ...fast, ...connectionFor(transport, gone) } });

    const [response, waited] = await timed(whoami('nobody-home').expect(200));
    expect(response.body.identity).toBeNull();
    expect(waited).toBeLessThan(1_500);
    expect(errors[0]).toMatchObject({ kind: 'network' });
  });

  it('orq hangs: the request waits timeoutMs, not longer; the lookup ends at lookupTimeoutMs and is reported', async () => {
    const { whoami, emulator, errors } = await startApp({ transport, middleware: { retries: 0, timeoutMs: 150, lookupTimeoutMs: 600 } });
    emulator.inject({ kind: 'hang' });

    const [response, waited] = await timed(whoami('hung').expect(200));
    expect(response.body.identity).toBeNull();
    expect(waited).toBeGreaterThanOrEqual(140);
    expect(waited).toBeLessThan(1_000);
    expect(errors[0]).toMatchObject({ name: 'OrqUnavailableError', reason: 'timeout' });

    await eventually(() => errors.some((error) => error instanceof OrqApiError && error.kind === 'timeout'), 'the lookup timeout report');
    expect(emulator.count()).toBe(1);
  });

  it('429: honours Retry-After — no calls during the pause, and a retry that fits the deadline succeeds', async () => {
    const { whoami, emulator, errors, middleware } = await startApp({ transport, middleware: { retries: 1, timeoutMs: 100, lookupTimeoutMs: 3_000 } });
    emulator.inject({ kind: 'status', status: 429, headers: { 'Retry-After': '1' }, times: 1 });

    expect((await whoami('limited').expect(200)).body.identity).toBeNull();
    const reported = errors.find((error) => error.cause instanceof OrqApiError);
    expect(reported?.message).toMatch(/rate-limited \(HTTP 429; Retry-After 1 s\)/);

    // Other users during the pause cost no call.
    await whoami('during-pause').expect(200);
    expect(emulator.count()).toBe(1);

    await eventually(() => middleware.resolver.cached('limited') !== undefined, 'the retry after Retry-After');
    const retried = emulator.calls[1];
    expect(retried?.operation).toBe('retrieve');
    // The user met during the pause waited in the backlog, and is registered after it without a request of its own.
    await eventually(() => middleware.resolver.cached('during-pause') !== undefined, 'the backlog after the pause');
    expect(emulator.count('create')).toBe(2);
  });
});

describe('failure behaviour', () => {
  it('slow orq: a lookup that outlives the wait fills the cache for the next request, with no second call', async () => {
    const { whoami, emulator, middleware } = await startApp({ emulator: { latencyMs: 250 }, middleware: { timeoutMs: 50 } });

    expect((await whoami('slowpoke').expect(200)).body.identity).toBeNull();
    await eventually(() => middleware.resolver.cached('slowpoke') !== undefined, 'the background lookup to fill the cache');
    expect((await whoami('slowpoke').expect(200)).body.identity?.externalId).toBe('slowpoke');
    expect(emulator.count()).toBe(2);
  });

  it('outage: after failureThreshold failures the circuit opens, requests pass without calls, and a probe closes it on recovery', async () => {
    const { whoami, emulator, errors, middleware } = await startApp({
      middleware: { ...fast, circuitBreaker: { failureThreshold: 3, cooldownMs: 400 } },
    });
    emulator.inject({ kind: 'status', status: 502 });

    for (const user of ['o1', 'o2', 'o3']) await whoami(user).expect(200);
    expect(emulator.count()).toBe(3);
    expect(middleware.resolver.circuit).toBe('open');
    const opened = errors.filter((error) => error instanceof OrqUnavailableError && error.reason === 'circuit-open');
    expect(opened).toHaveLength(1);
    expect(opened[0]?.message).toMatch(/Calls to orq are paused for 1 s/);

    const [responses, waited] = await timed(Promise.all(['o4', 'o5', 'o6', 'o1'].map((user) => whoami(user).expect(200))));
    expect(responses.every((response) => response.body.identity === null)).toBe(true);
    expect(waited).toBeLessThan(250);
    expect(emulator.count()).toBe(3);

    emulator.clearFaults();
    // The users skipped during the outage wait in the registration backlog: once the cooldown ends, its first
    // registration is the probe that closes the circuit, and they are registered with no request of theirs.
    await eventually(() => ['o1', 'o4', 'o5', 'o6'].every((user) => middleware.resolver.cached(user) !== undefined), 'the backlog to register the skipped users');
    expect(middleware.resolver.circuit).toBe('closed');
    expect(middleware.stats().backlog?.length).toBe(0);
    const recovered = await whoami('o7').expect(200);
    expect(recovered.body.identity?.externalId).toBe('o7');
    expect(middleware.resolver.circuit).toBe('closed');
  });

  it('while the circuit is open, an unusable id is still reported, and an async getUser passes through like a sync one', async () => {
    const { app, emulator, errors, middleware } = await startApp({
      middleware: {
        ...fast,
        circuitBreaker: { failureThreshold: 1, cooldownMs: 60_000 },
        getUser: async (req) => req.header('x-user'),
      },
    });
    const { default: request } = await import('supertest');
    emulator.inject({ kind: 'status', status: 503 });
    await request(app).get('/whoami').set('x-user', 'tripper').expect(200);
    expect(middleware.resolver.circuit).toBe('open');
    const reportedBefore = errors.length;

    await request(app).get('/whoami').set('x-user', 'someone-new').expect(200);
    expect(errors).toHaveLength(reportedBefore);
    await request(app).get('/whoami').set('x-user', '..').expect(200);
    expect(errors.at(-1)).toMatchObject({ name: 'InvalidUserError' });
    expect(emulator.count()).toBe(1);
  });

  it('half-open lets exactly one probe through, and a failed probe re-opens the circuit', async () => {
    const { whoami, emulator, middleware } = await startApp({
      middleware: { ...fast, failureMemoryMs: 0, circuitBreaker: { failureThreshold: 1, cooldownMs: 200 } },
    });
    emulator.inject({ kind: 'status', status: 500 });
    await whoami('p1').expect(200);
    expect(middleware.resolver.circuit).toBe('open');
    await new Promise((resolve) => setTimeout(resolve, 250));

    await Promise.all(['p2', 'p3', 'p4', 'p5'].map((user) => whoami(user).expect(200)));
    expect(emulator.count()).toBe(2);
    expect(middleware.resolver.circuit).toBe('open');
  });

  it('429 whose Retry-After does not fit the deadline is not retried', async () => {
    const { whoami, emulator, errors } = await startApp({ middleware: { retries: 3, timeoutMs: 100, lookupTimeoutMs: 500 } });
    emulator.inject({ kind: 'status', status: 429, headers: { 'Retry-After': '30' }, times: 1 });

    await whoami('long-limit').expect(200);
    await eventually(() => errors.some((error) => error instanceof OrqUnavailableError && error.reason === 'circuit-open'), 'the report');
    await new Promise((resolve) => setTimeout(resolve, 600));
    expect(emulator.count()).toBe(1);
  });

  it('429 stops calls that were already queued, and no later success ends the pause early', async () => {
    const { whoami, emulator, middleware } = await startApp({ middleware: { ...fast, maxConcurrency: 1 } });
    emulator.inject({ kind: 'status', status: 429, headers: { 'Retry-After': '30' }, times: 1 });

    await Promise.all(Array.from({ length: 10 }, (_, index) => whoami(`queued-${index}`).expect(200)));
    expect(emulator.count()).toBe(1);
    expect(middleware.resolver.circuit).toBe('open');
  });

  it('bad API key: reported clearly once per back-off period and not hammered', async () => {
    const { whoami, emulator, errors } = await startApp({
      middleware: { ...fast, apiKey: 'wrong-key', circuitBreaker: { cooldownMs: 60_000 } },
    });

    for (const user of ['k1', 'k2', 'k3', 'k4', 'k5']) await whoami(user).expect(200);
    expect(emulator.count()).toBe(1);
    expect(emulator.calls[0]?.status).toBe(401);
    expect(errors).toHaveLength(1);
    expect(errors[0]?.message).toMatch(/HTTP 401: check the orq API key .* paused for 60 s/);
    expect(errors[0]?.message).not.toContain('wrong-key');
  });

  it('bounds the calls in flight to maxConcurrency; queued lookups still respect timeoutMs', async () => {
    const { whoami, emulator } = await startApp({ emulator: { latencyMs: 60 }, middleware: { maxConcurrency: 2, timeoutMs: 5_000 } });

    const users = Array.from({ length: 12 }, (_, index) => `burst-${index}`);
    const responses = await Promise.all(users.map((user) => whoami(user).expect(200)));
    expect(responses.map((response) => response.body.identity?.externalId)).toEqual(users);
    expect(emulator.peakInFlight).toBe(2);
    expect(emulator.count()).toBe(24);

    emulator.inject({ kind: 'hang' });
    const { whoami: whoamiQueued } = await startApp({ middleware: { maxConcurrency: 1, timeoutMs: 150, serverURL: emulator.url } });
    const [queued, waited] = await timed(Promise.all(['q1', 'q2', 'q3', 'q4'].map((user) => whoamiQueued(user).expect(200))));
    expect(queued.every((response) => response.body.identity === null)).toBe(true);
    expect(waited).toBeLessThan(1_000);
  });

  it('a failed lookup is not cached as a success, is remembered briefly, and the user is registered after recovery', async () => {
    const { whoami, emulator, middleware } = await startApp({
      middleware: { ...fast, failureMemoryMs: 300, circuitBreaker: { failureThreshold: 100 } },
    });
    emulator.inject({ kind: 'status', status: 500 });

    for (let index = 0; index < 5; index++) expect((await whoami('flaky').expect(200)).body.identity).toBeNull();
    expect(emulator.count()).toBe(1);
    expect(middleware.resolver.cached('flaky')).toBeUndefined();

    emulator.clearFaults();
    await new Promise((resolve) => setTimeout(resolve, 350));
    expect((await whoami('flaky').expect(200)).body.identity?.externalId).toBe('flaky');
  });

  it('close() waits for background lookups within its deadline, and reports what is left', async () => {
    const { whoami, emulator, middleware } = await startApp({ emulator: { latencyMs: 200 }, middleware: { timeoutMs: 20 } });
    await whoami('closing').expect(200);
    const { pending } = await middleware.close({ timeoutMs: 2_000 });
    expect(pending).toBe(0);
    expect(middleware.resolver.cached('closing')?.externalId).toBe('closing');

    // After close no lookup starts; cached users are still attached.
    expect((await whoami('after-close').expect(200)).body.identity).toBeNull();
    expect((await whoami('closing').expect(200)).body.identity?.externalId).toBe('closing');
    expect(emulator.count()).toBe(2);
  });

  it('close() also waits for the profile sync a finishing lookup starts while it waits', async () => {
    const { app, emulator, middleware } = await startApp({
      emulator: { latencyMs: 150 },
      middleware: { timeoutMs: 20, getUser: () => ({ externalId: 'renamed', displayName: 'New name' }) },
    });
    emulator.seed({ externalId: 'renamed', displayName: 'Old name' });
    const { default: request } = await import('supertest');
    await request(app).get('/whoami').expect(200);
    const { pending } = await middleware.close({ timeoutMs: 5_000 });
    expect(pending).toBe(0);
    expect(emulator.calls.map((call) => `${call.operation} ${String(call.status)}`)).toEqual(['retrieve 200', 'update 200']);
  });

  it('close() gives up at its deadline when orq hangs', async () => {
    const { whoami, emulator, middleware } = await startApp({ middleware: { timeoutMs: 20, lookupTimeoutMs: 10_000 } });
    emulator.inject({ kind: 'hang' });
    await whoami('stuck').expect(200);
    const [{ pending }, waited] = await timed(middleware.close({ timeoutMs: 200 }));
    expect(pending).toBe(1);
    expect(waited).toBeLessThan(1_000);
  });
});

describe('createIdentityResolver without Express', () => {
  it('resolves users for background jobs, coalescing concurrent calls', async () => {
    const emulator = await startEmulator();
    const errors: Array<[OrqIdentityError, string | undefined]> = [];
    const resolver = createIdentityResolver<string>({ client: orqClientFor(emulator), onError: (error, job) => errors.push([error, job]) });

    const [a, b] = await Promise.all([resolver.resolve('job-user', 'job-1'), resolver.resolve({ externalId: 'job-user' }, 'job-2')]);
    expect(a).toBe(b);
    expect(resolver.cached('job-user')).toBe(a);
    expect(emulator.count()).toBe(2);

    await expect(resolver.resolve('', 'job-3')).rejects.toMatchObject({ name: 'InvalidUserError' });
    expect(errors.map(([error, job]) => `${error.name} ${job}`)).toEqual(['InvalidUserError job-3']);
    await resolver.close();
  });

  it('needs no context argument when there is none', async () => {
    const emulator = await startEmulator();
    const resolver = createIdentityResolver({ client: orqClientFor(emulator) });
    await expect(resolver.resolve('no-context')).resolves.toMatchObject({ externalId: 'no-context' });
    await resolver.close();
  });
});

describe('a lookup, step by step', () => {
  it('a user orq answered 404 for, whose create then failed, goes straight to create next time', async () => {
    const emulator = await startEmulator();
    const resolver = createIdentityResolver({ ...connectionFor('fetch', emulator), failureMemoryMs: 0, retries: 0, lookupTimeoutMs: 1_000, onError: () => undefined });
    emulator.inject({ operation: 'create', kind: 'status', status: 503, times: 1 });
    await expect(resolver.resolve('absent-once')).rejects.toMatchObject({ name: 'OrqUnavailableError', reason: 'failed' });
    await expect(resolver.resolve('absent-once')).resolves.toMatchObject({ externalId: 'absent-once' });
    expect(emulator.calls.map((call) => `${call.operation} ${String(call.status)}`)).toEqual(['retrieve 404', 'create 503', 'create 201']);
    await resolver.close();
  });

  it('a create refused while the retrieve after it still answers 404: the create\'s own error, for an id with no "/", "\\\\" or "%"', async () => {
    const { whoami, emulator, errors } = await startApp({ middleware: { retries: 0 } });
    emulator.inject({ operation: 'create', kind: 'status', status: 409, times: 1 });
    expect((await whoami('plain-id').expect(200)).body.identity).toBeNull();
    expect(emulator.calls.map((call) => `${call.operation} ${String(call.status)}`)).toEqual(['retrieve 404', 'create 409', 'retrieve 404']);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ name: 'OrqApiError', operation: 'create', statusCode: 409 });
    expect(errors[0]?.message).not.toMatch(/proxy/);
  });

  it.each(['tenant/7', 'tenant\\7', 'tenant%7'])('the same for %j: a retrieve error that says a proxy probably decodes the path', async (externalId) => {
    const { whoami, emulator, errors } = await startApp({ middleware: { retries: 0, getUser: () => externalId } });
    emulator.inject({ operation: 'create', kind: 'status', status: 409, times: 1 });
    expect((await whoami('x').expect(200)).body.identity).toBeNull();
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ name: 'OrqApiError', operation: 'retrieve', kind: 'http', statusCode: 404, externalId });
    expect((errors[0]?.cause as OrqApiError | undefined)?.operation).toBe('create');
    expect(errors[0]?.message).toContain(`Retrieving user ${JSON.stringify(externalId)} then answered 404. If orq refused the create because the user exists, the lookup did not reach it`);
    expect(errors[0]?.message).toContain(
      'the id contains "/", "\\" or "%", and something between here and orq (a proxy, a gateway) probably decodes the percent-encoded path (%2F → /) ' +
        'and sends the lookup elsewhere. Configure it to pass encoded slashes through unchanged; until then this user has no identity.',
    );
  });

  it('an identity over cache.maxEntryBytes is neither cached nor attached, and the report says why; one at the limit is kept', async () => {
    const { whoami, emulator, errors, middleware } = await startApp({ middleware: { cache: { maxEntryBytes: 2_000 } } });
    emulator.seed({ externalId: 'huge', metadata: { blob: 'x'.repeat(3_000) } });
    emulator.seed({ externalId: 'small', metadata: { blob: 'x'.repeat(100) } });
    expect((await whoami('huge').expect(200)).body.identity).toBeNull();
    expect(middleware.resolver.cached('huge')).toBeUndefined();
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ name: 'OrqUnavailableError', reason: 'failed', externalId: 'huge' });
    expect(errors[0]?.message).toMatch(
      /^orq's identity of user "huge" is \d{4} bytes \(as JSON\), over cache\.maxEntryBytes \(2000\); it is neither cached nor attached\. Keep large data out of identity metadata, or raise cache\.maxEntryBytes\.$/,
    );
    expect((await whoami('small').expect(200)).body.identity?.externalId).toBe('small');
    expect(middleware.resolver.cached('small')?.externalId).toBe('small');
  });

  it.each([[500, true], [499, false]])('the app\'s own LRUCache with maxEntrySize %i, sizing each identity at 500: attached %s', async (maxEntrySize, attached) => {
    const cache = new LRUCache<string, OrqIdentity>({ max: 10, maxSize: 10_000, maxEntrySize, sizeCalculation: () => 500 });
    const { whoami, errors } = await startApp({ middleware: { cache } });
    expect((await whoami('sized').expect(200)).body.identity?.externalId ?? null).toBe(attached ? 'sized' : null);
    expect(errors.map((error) => error.message)).toEqual(attached ? [] : [expect.stringContaining(`is 500 bytes (as JSON), over cache.maxEntryBytes (${maxEntrySize})`)]);
  });

  it('a wait that runs out is reported once per user, saying what goes on in the background', async () => {
    const { whoami, emulator, errors } = await startApp({ middleware: { timeoutMs: 50, lookupTimeoutMs: 400, retries: 0 } });
    emulator.inject({ kind: 'hang' });
    await Promise.all([whoami('wait-a').expect(200), whoami('wait-b').expect(200)]);
    await whoami('wait-a').expect(200);
    const timeouts = errors.filter((error) => error instanceof OrqUnavailableError && error.reason === 'timeout');
    expect(timeouts.map((error) => error.externalId).sort()).toEqual(['wait-a', 'wait-b']);
    expect(timeouts.find((error) => error.externalId === 'wait-a')?.message).toBe(
      'orq did not answer for user "wait-a" within timeoutMs (50 ms); the request goes on without an identity and the lookup continues in the background (at most lookupTimeoutMs, 400 ms) to fill the cache.',
    );
  });

  it('after close(), resolve() of a new user rejects at once, saying the resolver is closed', async () => {
    const emulator = await startEmulator();
    const resolver = createIdentityResolver({ ...connectionFor('fetch', emulator), onError: () => undefined });
    await resolver.close();
    await expect(resolver.resolve('too-late')).rejects.toMatchObject({
      name: 'OrqUnavailableError', reason: 'closed', externalId: 'too-late', message: 'The identity resolver is closed; no new lookups start.',
    });
    expect(emulator.count()).toBe(0);
  });

  it('a lookup that fails after close() is not remembered as the user\'s failure: the next resolve says closed', async () => {
    const emulator = await startEmulator({ latencyMs: 50 });
    const resolver = createIdentityResolver({ ...connectionFor('fetch', emulator), retries: 0, onError: () => undefined });
    emulator.inject({ kind: 'status', status: 500, times: 1 });
    const failing = resolver.resolve('failing-at-close');
    await resolver.close();
    await expect(failing).rejects.toMatchObject({ reason: 'failed' });
    await expect(resolver.resolve('failing-at-close')).rejects.toMatchObject({ reason: 'closed' });
  });

  it.each([
    ['fails on the way (a reset)', { operation: 'create', kind: 'reset', times: 1 } as const, 'create reset'],
    ['answers 201 with a body that is not an identity', { operation: 'create', kind: 'raw', status: 201, body: 'not json', times: 1 } as const, 'create 201'],
  ])('a create that %s is not followed by a retrieve: only an HTTP refusal might be a lost race', async (_what, fault, create) => {
    const emulator = await startEmulator();
    const resolver = createIdentityResolver({ ...connectionFor('fetch', emulator), retries: 0, onError: () => undefined });
    emulator.inject(fault);
    await expect(resolver.resolve('odd-create')).rejects.toMatchObject({ reason: 'failed' });
    expect(emulator.calls.map((call) => `${call.operation} ${String(call.status)}`)).toEqual(['retrieve 404', create]);
    await resolver.close();
  });

  it('a failure that is not already an OrqUnavailableError reaches the caller wrapped in one that names the user and the cause', async () => {
    const emulator = await startEmulator();
    const resolver = createIdentityResolver({ ...connectionFor('fetch', emulator), retries: 0, onError: () => undefined });
    emulator.inject({ kind: 'status', status: 500, times: 1 });
    const failure = await resolver.resolve('wrapped').catch((error: unknown) => error);
    expect(failure).toMatchObject({ name: 'OrqUnavailableError', reason: 'failed', externalId: 'wrapped' });
    expect((failure as Error).message).toMatch(/^No orq identity for user "wrapped": orq retrieve of user "wrapped" failed with HTTP 500/);
    expect((failure as Error).cause).toBeInstanceOf(OrqApiError);
    await resolver.close();
  });

  it('each unusable user is reported once, whatever else is unusable', async () => {
    const emulator = await startEmulator();
    const errors: OrqIdentityError[] = [];
    const resolver = createIdentityResolver({ ...connectionFor('fetch', emulator), onError: (error) => errors.push(error) });
    for (const user of ['', '..', '', { externalId: 1.5 }, '..']) await expect(resolver.resolve(user as never)).rejects.toMatchObject({ name: 'InvalidUserError' });
    expect(errors).toHaveLength(3);
    // An id that is not a string is never looked up in the cache, so it is no cache miss either.
    expect(resolver.stats().cache).toMatchObject({ hits: 0, misses: 4 });
    await resolver.close();
  });

  it.each([
    ['answers', undefined],
    ['fails', { kind: 'status', status: 500, times: 1 } as const],
  ])('a lookup that %s within the wait leaves no timeout to be reported later', async (_what, fault) => {
    const { whoami, emulator, errors } = await startApp({ middleware: { timeoutMs: 60, retries: 0 } });
    if (fault !== undefined) emulator.inject(fault);
    await whoami('in-time').expect(200);
    await new Promise((resolve) => setTimeout(resolve, 90));
    expect(errors.filter((error) => error instanceof OrqUnavailableError && error.reason === 'timeout')).toEqual([]);
  });

  it('a user whose lookup failed moments ago is refused at once with the same error, without a call or a new lookup', async () => {
    const emulator = await startEmulator();
    const errors: OrqIdentityError[] = [];
    const resolver = createIdentityResolver({ ...connectionFor('fetch', emulator), retries: 0, onError: (error) => errors.push(error) });
    emulator.inject({ kind: 'status', status: 500, times: 1 });
    const failure = await resolver.resolve('remembered').catch((error: unknown) => error);
    expect(failure).toMatchObject({ name: 'OrqUnavailableError', reason: 'failed', externalId: 'remembered' });

    // orq would answer now, but the user failed less than failureMemoryMs (5 s) ago.
    await expect(resolver.resolve('remembered')).rejects.toBe(failure);
    await expect(resolver.resolve({ externalId: 'remembered' })).rejects.toBe(failure);
    expect(emulator.count()).toBe(1);
    expect(resolver.stats().lookups).toMatchObject({ started: 1, failed: 1 });
    expect(errors).toHaveLength(1);
    await resolver.close();
  });

  it('while the circuit is open, resolve() is refused at once as circuit-open: no lookup starts, none is counted as failed', async () => {
    const emulator = await startEmulator();
    const resolver = createIdentityResolver({
      ...connectionFor('fetch', emulator), retries: 0, circuitBreaker: { failureThreshold: 1, cooldownMs: 60_000 }, onError: () => undefined,
    });
    emulator.inject({ kind: 'status', status: 503, times: 1 });
    await expect(resolver.resolve('tripper')).rejects.toMatchObject({ reason: 'failed' });
    expect(resolver.circuit).toBe('open');

    await expect(resolver.resolve('during-outage')).rejects.toMatchObject({ name: 'OrqUnavailableError', reason: 'circuit-open', externalId: 'during-outage' });
    expect(emulator.count()).toBe(1);
    // A refused request is a cache miss, not a lookup: `lookups` counts what went to orq.
    expect(resolver.stats()).toMatchObject({ cache: { misses: 2 }, lookups: { started: 1, failed: 1 } });
    await resolver.close();
  });

  it('a lookup whose create was refused retrieves again ahead of the lookups of users who came after it', async () => {
    // One connection slot: the retrieve that settles a lost race goes before newcomers' first calls, as the create did.
    const { whoami, emulator, middleware } = await startApp({ emulator: { latencyMs: 40 }, middleware: { maxConcurrency: 1, retries: 0, timeoutMs: 5_000 } });
    emulator.seed({ externalId: 'raced' });
    // Another process registers the user between our retrieve and our create: orq answers 404, then refuses the create.
    emulator.inject({ operation: 'retrieve', kind: 'status', status: 404, times: 1 });
    // The create holds the only slot for a second: time for both newcomers to queue, on a loaded machine too.
    emulator.inject({ operation: 'create', kind: 'latency', ms: 1_000, times: 1 });
    // then() sends the request now; supertest sends none until asked for its result.
    const raced = whoami('raced').expect(200).then((response) => response);
    await eventually(() => emulator.count('create') === 1, 'the create to be under way');
    const newcomers = [whoami('newcomer-1').expect(200).then(() => undefined)];
    await eventually(() => middleware.stats().queue.queued === 1, 'the first newcomer to queue');
    newcomers.push(whoami('newcomer-2').expect(200).then(() => undefined));
    await eventually(() => middleware.stats().queue.queued === 2, 'the second newcomer to queue');

    expect((await raced).body.identity?.externalId).toBe('raced');
    await Promise.all(newcomers);
    const user = (call: (typeof emulator.calls)[number]): string =>
      call.operation === 'create' ? String((call.body as { external_id?: unknown }).external_id) : decodeURIComponent(call.path.split('/').at(-1) ?? '');
    const calls = emulator.calls.map((call) => `${call.operation} ${user(call)} ${String(call.status)}`);
    expect(calls.slice(0, 5)).toEqual(['retrieve raced 404', 'create raced 409', 'retrieve newcomer-1 404', 'retrieve raced 200', 'create newcomer-1 201']);
    expect(calls.indexOf('retrieve raced 200')).toBeLessThan(calls.indexOf('retrieve newcomer-2 404'));
  });

  it("an identity orq creates for another external id is refused: never attached, never cached, reported as a mismatch", async () => {
    const { whoami, emulator, errors, middleware } = await startApp({ middleware: { retries: 0 } });
    const other = emulator.seed({ externalId: 'somebody-else' });
    emulator.inject({ operation: 'create', kind: 'status', status: 201, body: other, times: 1 });
    expect((await whoami('me').expect(200)).body.identity).toBeNull();
    expect(middleware.resolver.cached('me')).toBeUndefined();
    expect(middleware.resolver.cached('somebody-else')).toBeUndefined();
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(IdentityMismatchError);
    expect(errors[0]).toMatchObject({ externalId: 'me' });
  });

  it('remembers failed users, and users orq answered 404 for, for at most as many users as the cache holds (cache.max)', async () => {
    const emulator = await startEmulator();
    const resolver = createIdentityResolver({ ...connectionFor('fetch', emulator), cache: { max: 2 }, retries: 0, onError: () => undefined });
    // Three users orq answers 404 for, whose create then fails: each is remembered as failed and as absent.
    emulator.inject({ operation: 'create', kind: 'status', status: 503, times: 3 });
    for (const user of ['first', 'second', 'third']) await expect(resolver.resolve(user)).rejects.toMatchObject({ reason: 'failed' });
    emulator.resetCalls();

    // The third pushed the first out of both memories: it is looked up again, from the start.
    await expect(resolver.resolve('first')).resolves.toMatchObject({ externalId: 'first' });
    expect(emulator.calls.map((call) => `${call.operation} ${String(call.status)}`)).toEqual(['retrieve 404', 'create 201']);
    // The third is still remembered: refused without a call.
    await expect(resolver.resolve('third')).rejects.toMatchObject({ reason: 'failed' });
    expect(emulator.count()).toBe(2);
    await resolver.close();
  });

  it('isBackingOff: a user failed recently or any user with the circuit open, but never one whose lookup is under way', async () => {
    const emulator = await startEmulator();
    const resolver = createIdentityResolver({ ...connectionFor('fetch', emulator), retries: 0, circuitBreaker: { failureThreshold: 2 }, onError: () => undefined });
    emulator.inject({ kind: 'status', status: 500, times: 1 });
    await expect(resolver.resolve('broken')).rejects.toMatchObject({ reason: 'failed' });
    expect(resolver.isBackingOff('broken')).toBe(true);
    expect(resolver.isBackingOff('fine')).toBe(false);

    emulator.inject({ operation: 'retrieve', kind: 'latency', ms: 150, times: 1 });
    emulator.inject({ operation: 'retrieve', kind: 'status', status: 500, times: 1 });
    const slow = resolver.resolve('slow');
    await eventually(() => emulator.count('retrieve') === 2, 'the slow retrieve to be under way');
    await expect(resolver.resolve('tripper')).rejects.toMatchObject({ reason: 'failed' });
    expect(resolver.circuit).toBe('open');
    expect(resolver.isBackingOff('slow')).toBe(false);
    expect(resolver.isBackingOff('anyone')).toBe(true);
    await slow.catch(() => undefined);
    await resolver.close();
  });
});
