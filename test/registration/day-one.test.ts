// Day one: every user new to orq at once, against the emulator's rate limit. The budget follows orq's headers, no
// request waits for room, deferred users are registered from the backlog, and brand-new users cost one call.
import diagnosticsChannel from 'node:diagnostics_channel';
import express from 'express';
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import {
  createIdentityResolver, currentOrqUser, orqIdentity, orqIdentityChannels,
  type OrqBacklogEvent, type OrqIdentityError, type OrqIdentityMiddleware, type OrqIdentityOptions,
} from '../../src/index.js';
import type { OrqEmulator } from '../../src/testing/index.js';
import { eventually, startEmulator, userFromHeader } from '../helpers.js';
import { clientKinds, connectClient, describeRedis, startRedis } from '../redis.js';

const opened: OrqIdentityMiddleware[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((middleware) => middleware.close({ timeoutMs: 1_000 })));
});

/** An app whose /whoami answers with what the request saw: its identity on `req`, and its user in the context. */
function appWith(emulator: OrqEmulator, options: Partial<OrqIdentityOptions> = {}) {
  const errors: OrqIdentityError[] = [];
  const middleware = orqIdentity({ apiKey: emulator.apiKey, serverURL: emulator.url, onError: (error) => errors.push(error), ...options });
  opened.push(middleware);
  const app = express();
  app.use(userFromHeader);
  app.use(middleware);
  app.get('/whoami', (req, res) => {
    res.json({ identity: req.orqIdentity?.externalId ?? null, user: currentOrqUser()?.externalId ?? null });
  });
  return { middleware, errors, whoami: (user: string) => request(app).get('/whoami').set('x-user', user) };
}

const statuses = (emulator: OrqEmulator) => emulator.calls.filter((call) => call.operation !== 'list').map((call) => call.status);

describe('day one against a rate-limited orq', () => {
  it('learns the limit from the first answer, never draws a 429, and registers every user from the backlog, each once', async () => {
    const emulator = await startEmulator({ rateLimit: { calls: 20, windowMs: 1_000 } });
    // Only the window is given: the calls come from orq's headers, starting at 20 a minute (here: 1 per second).
    const { middleware, whoami } = appWith(emulator, { budget: { windowMs: 1_000 } });
    const users = Array.from({ length: 40 }, (_, index) => `day-one-${index}`);
    const first = await Promise.all(users.map((user) => whoami(user).expect(200)));
    // No request waited for room: each went on with its user in the context, attributed by external id.
    expect(first.map((response) => response.body.user)).toEqual(users);
    expect(middleware.stats().budget?.learnedLimit).toBe(20);
    expect(middleware.stats().backlog?.length).toBeGreaterThan(0);

    await eventually(() => users.every((user) => middleware.resolver.cached(user) !== undefined), 'every user registered', 30_000);
    expect(statuses(emulator).filter((status) => status === 429)).toEqual([]);
    // One identity per user, and each request after registration carries its own.
    expect(emulator.identities().map((identity) => identity.external_id).sort()).toEqual([...users].sort());
    const again = await Promise.all(users.map((user) => whoami(user).expect(200)));
    expect(again.map((response) => response.body.identity)).toEqual(users);
    // 10 users the card's way (2 calls each), then one create per user; lookups already started when the order
    // changed (at most the backlog's 4 workers) may still retrieve first.
    expect(emulator.count('create')).toBe(40);
    expect(emulator.count('retrieve')).toBeGreaterThanOrEqual(10);
    expect(emulator.count('retrieve')).toBeLessThanOrEqual(10 + 4);
    expect(middleware.stats().lookups.order).toBe('create-first');
    expect(middleware.stats().backlog).toMatchObject({ length: 0, drainInMs: 0 });
  });

  it('a configured budget is an upper bound the learned limit never exceeds', async () => {
    const emulator = await startEmulator({ rateLimit: { calls: 100, windowMs: 60_000 } });
    const resolver = createIdentityResolver({ apiKey: emulator.apiKey, serverURL: emulator.url, budget: { calls: 30 }, onError: () => undefined });
    await resolver.resolve('first');
    expect(resolver.stats().budget).toEqual({ calls: 30, windowMs: 60_000, learnedLimit: 100 });
    emulator.setRateLimit({ calls: 20, windowMs: 60_000 });
    await resolver.resolve('second');
    // orq's limit less a reserve of 2 for the answers in flight and the app's own other calls.
    expect(resolver.stats().budget).toEqual({ calls: 18, windowMs: 60_000, learnedLimit: 20 });
    await resolver.close();
  });

  it('stops before orq says its window is spent, when other callers use the same workspace', async () => {
    const emulator = await startEmulator({ rateLimit: { calls: 10, windowMs: 60_000 } });
    const errors: OrqIdentityError[] = [];
    const resolver = createIdentityResolver({ apiKey: emulator.apiKey, serverURL: emulator.url, onError: (error) => errors.push(error), backlog: false });
    // The app's own use of the workspace: 6 of its 10 calls gone before ours.
    for (let index = 0; index < 6; index++) emulator.seed({ externalId: `other-${index}` });
    const other = await fetch(`${emulator.url}/v2/identities/other-0`, { headers: { authorization: `Bearer ${emulator.apiKey}` } });
    expect(other.headers.get('x-ratelimit-remaining')).toBe('9');
    for (let index = 1; index < 6; index++) await fetch(`${emulator.url}/v2/identities/other-${index}`, { headers: { authorization: `Bearer ${emulator.apiKey}` } });
    const outcomes = [];
    for (let index = 0; index < 6; index++) outcomes.push(await resolver.resolve(`ours-${index}`).then(() => 'ok', (error: { reason?: string }) => error.reason));
    // Remaining 4 at our first answer (less the reserve of 2) leaves 1 more call: never a 429.
    expect(statuses(emulator).filter((status) => status === 429)).toEqual([]);
    expect(outcomes.filter((outcome) => outcome === 'budget').length).toBeGreaterThan(0);
    await resolver.close();
  });
});

describe('the lookup order', () => {
  it('creates first after 10 new users in a row, and retrieves first again at the first user that existed', async () => {
    const emulator = await startEmulator({ conflictStatus: 409 });
    const resolver = createIdentityResolver({ apiKey: emulator.apiKey, serverURL: emulator.url, budget: false, onError: () => undefined });
    for (let index = 0; index < 10; index++) await resolver.resolve(`wave-${index}`);
    expect(emulator.count()).toBe(20);
    expect(resolver.stats().lookups.order).toBe('create-first');
    emulator.resetCalls();
    await resolver.resolve('wave-10');
    expect(emulator.calls.map((call) => call.operation)).toEqual(['create']);

    // A user orq already has: the create conflicts, a retrieve settles it, and the order goes back.
    const existing = emulator.seed({ externalId: 'old-timer' });
    emulator.resetCalls();
    expect(await resolver.resolve('old-timer')).toMatchObject({ id: existing._id, externalId: 'old-timer' });
    expect(emulator.calls.map((call) => [call.operation, call.status])).toEqual([['create', 409], ['retrieve', 200]]);
    expect(resolver.stats().lookups.order).toBe('retrieve-first');
    expect(emulator.identities().filter((identity) => identity.external_id === 'old-timer')).toHaveLength(1);
    await resolver.close();
  });

  it("`lookupOrder: 'retrieve-first'` pins the card's order", async () => {
    const emulator = await startEmulator();
    const resolver = createIdentityResolver({ apiKey: emulator.apiKey, serverURL: emulator.url, budget: false, lookupOrder: 'retrieve-first', onError: () => undefined });
    for (let index = 0; index < 12; index++) await resolver.resolve(`pinned-${index}`);
    expect(emulator.count('retrieve')).toBe(12);
    expect(resolver.stats().lookups.order).toBe('retrieve-first');
    await resolver.close();
    expect(() => createIdentityResolver({ apiKey: 'k'.repeat(20), lookupOrder: 'create-first' as 'adaptive' })).toThrow(
      "createIdentityResolver: invalid option `lookupOrder`, received `'create-first'`; pass one of `'adaptive'`, `'retrieve-first'`.",
    );
  });
});

describe('the registration backlog', () => {
  it('a deferred user goes on at once, is registered in the background, and its next request carries the identity; a drain is published', async () => {
    const drained: OrqBacklogEvent[] = [];
    const listener = (event: unknown) => drained.push(event as OrqBacklogEvent);
    diagnosticsChannel.subscribe(orqIdentityChannels.backlog, listener);
    try {
      const emulator = await startEmulator({ latencyMs: 20 });
      // Room for one new lookup at a time (a fifth of 5 is kept for lookups under way): most users are deferred.
      const { middleware, whoami } = appWith(emulator, { budget: { calls: 5, windowMs: 1_000 } });
      const users = ['b1', 'b2', 'b3', 'b4', 'b5', 'b6'];
      const first = await Promise.all(users.map((user) => whoami(user).expect(200)));
      expect(first.map((response) => response.body.user)).toEqual(users);
      expect(first.filter((response) => response.body.identity === null).length).toBeGreaterThan(2);
      const waiting = middleware.stats().backlog;
      expect(waiting?.length).toBeGreaterThan(0);
      expect(waiting?.drainInMs).toBeGreaterThan(0);

      await eventually(() => drained.length > 0, 'the backlog to drain', 15_000);
      const next = await Promise.all(users.map((user) => whoami(user).expect(200)));
      expect(next.map((response) => response.body.identity)).toEqual(users);
      expect(drained[0]?.registered).toBeGreaterThan(0);
      expect(middleware.stats().backlog?.registered).toBe(drained[0]?.registered);
    } finally {
      diagnosticsChannel.unsubscribe(orqIdentityChannels.backlog, listener);
    }
  });

  it('a user whose registration waits for room: its requests go on at once, they do not join the wait', async () => {
    const emulator = await startEmulator();
    // Room for one user per 10 s window; requests would wait up to a minute for a lookup they joined. No failure
    // memory: it alone would send the request on at once.
    const { middleware, whoami } = appWith(emulator, { budget: { calls: 2, windowMs: 10_000 }, timeoutMs: 60_000, lookupTimeoutMs: 60_000, failureMemoryMs: 0 });
    expect((await whoami('first').expect(200)).body.identity).toBe('first');
    expect((await whoami('waiting').expect(200)).body.identity).toBeNull();
    // The backlog took the user and now waits for room, which comes back when the window has passed.
    await eventually(() => middleware.stats().backlog?.length === 0, 'the backlog to take the user');
    const again = await whoami('waiting').expect(200);
    expect(again.body).toEqual({ identity: null, user: 'waiting' });
    expect(emulator.count()).toBe(2);
  });

  it('is bounded: past maxEntries the least recently active user falls out, and is counted', async () => {
    const emulator = await startEmulator();
    // A 429 pauses every call for a minute: every user met meanwhile is queued, none registered.
    emulator.inject({ kind: 'status', status: 429, headers: { 'Retry-After': '60' }, times: 1 });
    const { middleware, whoami } = appWith(emulator, { backlog: { maxEntries: 3 } });
    for (const user of ['q0', 'q1', 'q2', 'q3', 'q4']) await whoami(user).expect(200);
    expect(middleware.stats().backlog).toMatchObject({ length: 3, dropped: 2 });
    expect(emulator.count()).toBe(1);
  });
});

describeRedis('the fleet registration backlog', () => {
  it('a user another instance is registering from the backlog: its requests here go on at once', async () => {
    const emulator = await startEmulator();
    const redis = await startRedis();
    const options = { budget: { calls: 2, windowMs: 10_000 }, timeoutMs: 60_000, lookupTimeoutMs: 60_000, failureMemoryMs: 0 };
    const [one, two] = await Promise.all(
      [0, 1].map(async (index) => appWith(emulator, { ...options, shared: { redis: await connectClient(clientKinds[index] ?? 'ioredis', redis) } })),
    );
    if (one === undefined || two === undefined) throw new Error('two instances expected');
    expect((await one.whoami('first').expect(200)).body.identity).toBe('first');
    expect((await one.whoami('waiting').expect(200)).body.identity).toBeNull();
    // Taken off the fleet's backlog by one of the two, which waits for room without holding the user's lease.
    const registering = () => [one, two].map((member) => member.middleware.stats().backlog?.registering ?? 0);
    await eventually(() => registering().includes(1), 'one instance to take the user off the fleet backlog');
    const answers = await Promise.all([one.whoami('waiting').expect(200), two.whoami('waiting').expect(200)]);
    expect(answers.map((answer) => answer.body)).toEqual([{ identity: null, user: 'waiting' }, { identity: null, user: 'waiting' }]);
    expect(emulator.count()).toBe(2);
  });

  it('two instances share one backlog: every user registered once, by one of them', async () => {
    const emulator = await startEmulator({ latencyMs: 10, rateLimit: { calls: 20, windowMs: 1_000 } });
    const redis = await startRedis();
    const members = await Promise.all(
      [0, 1].map(async (index) => appWith(emulator, { budget: { windowMs: 1_000 }, shared: { redis: await connectClient(clientKinds[index] ?? 'ioredis', redis) } })),
    );
    const users = Array.from({ length: 30 }, (_, index) => `fleet-${index}`);
    await Promise.all(users.map((user, index) => (members[index % 2] ?? members[0])?.whoami(user).expect(200)));
    await eventually(
      () => members.every((member) => member.middleware.stats().backlog?.length === 0) && emulator.identities().length === users.length,
      'the fleet backlog to drain', 30_000,
    );
    expect(emulator.count('create')).toBe(users.length);
    expect(statuses(emulator).filter((status) => status === 429)).toEqual([]);
    const registered = members.map((member) => member.middleware.stats().backlog?.registered ?? 0);
    expect(registered.reduce((sum, count) => sum + count, 0)).toBeGreaterThan(0);
    for (const member of members) expect(member.errors.filter((error) => error.name !== 'OrqUnavailableError')).toEqual([]);
  });
});
