// Several middlewares in one process sharing one real Redis and one emulator: the resolver's flow through the shared store.
import express from 'express';
import { LRUCache } from 'lru-cache';
import request from 'supertest';
import { afterEach, expect, it } from 'vitest';
import { orqIdentity, SharedStoreError, type OrqIdentity, type OrqIdentityError, type OrqIdentityMiddleware, type OrqIdentityOptions } from '../../src/index.js';
import type { OrqEmulator } from '../../src/testing/index.js';
import { eventually, startEmulator, userFromHeader } from '../helpers.js';
import { clientKinds, connectClient, describeRedis, startRedis, type RedisServer } from '../redis.js';

interface Instance {
  middleware: OrqIdentityMiddleware;
  errors: OrqIdentityError[];
  whoami(user: string): request.Test;
}

const instances: OrqIdentityMiddleware[] = [];
afterEach(async () => {
  await Promise.all(instances.splice(0).map((middleware) => middleware.close({ timeoutMs: 1_000 })));
});

async function instance(emulator: OrqEmulator, redis: RedisServer | undefined, index: number, options: Partial<OrqIdentityOptions> = {}): Promise<Instance> {
  const errors: OrqIdentityError[] = [];
  const shared = redis === undefined ? undefined : { redis: await connectClient(clientKinds[index % 2] ?? 'ioredis', redis) };
  const middleware = orqIdentity({
    apiKey: emulator.apiKey, serverURL: emulator.url, onError: (error) => errors.push(error),
    ...(shared === undefined ? {} : { shared }), ...options,
  });
  instances.push(middleware);
  const app = express();
  app.use(userFromHeader);
  app.use(middleware);
  app.get('/whoami', (req, res) => {
    res.json({ identity: req.orqIdentity ?? null });
  });
  return { middleware, errors, whoami: (user) => request(app).get('/whoami').set('x-user', user) };
}

async function fleet(size: number, options: Partial<OrqIdentityOptions> = {}) {
  const emulator = await startEmulator();
  const redis = await startRedis();
  const members: Instance[] = [];
  for (let index = 0; index < size; index++) members.push(await instance(emulator, redis, index, options));
  return { emulator, redis, members };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describeRedis('the resolver on a shared store', () => {
  it('three instances meet ten new users at once: one retrieve and one create per user, every request gets its identity', async () => {
    const { emulator, members } = await fleet(3);
    emulator.setLatency(30);
    const users = Array.from({ length: 10 }, (_, index) => `new-${index}`);
    const responses = await Promise.all(users.flatMap((user) => members.map((member) => member.whoami(user).expect(200))));
    expect(responses.every((response) => typeof response.body.identity?.id === 'string')).toBe(true);
    expect(members.flatMap((member) => member.errors)).toEqual([]);
    expect(emulator.count('retrieve')).toBe(10);
    expect(emulator.count('create')).toBe(10);
  });

  it('an instance with a cold cache takes a known user from Redis: no call to orq', async () => {
    const { emulator, redis, members } = await fleet(1);
    await members[0]?.whoami('known').expect(200);
    emulator.resetCalls();
    const cold = await instance(emulator, redis, 1);
    expect((await cold.whoami('known').expect(200)).body.identity?.externalId).toBe('known');
    expect(emulator.count()).toBe(0);
  });

  it('an identity another instance fetched earlier is usable here only for what is left of its lifetime', async () => {
    const { emulator, redis, members } = await fleet(1);
    const ttl = 10_000;
    const cache = new LRUCache<string, OrqIdentity>({ max: 10, ttl });
    const here = await instance(emulator, redis, 1, { cache });
    const asked = Date.now();
    await members[0]?.whoami('fetched-there').expect(200);
    const fetched = Date.now();
    await sleep(100);
    expect((await here.whoami('fetched-there').expect(200)).body.identity?.externalId).toBe('fetched-there');
    expect(emulator.count('retrieve')).toBe(1);
    // Usable for ttl from when orq answered the other instance (after `asked`, over 100 ms ago), not from now.
    const remaining = cache.getRemainingTTL('fetched-there');
    expect(Date.now() - fetched).toBeGreaterThanOrEqual(100);
    expect(remaining).toBeLessThanOrEqual(ttl - 90);
    expect(remaining).toBeGreaterThanOrEqual(ttl - (Date.now() - asked) - 5);
  });

  it('a request waiting on an instance whose lookup hangs still gets its identity: after half of lookupTimeoutMs its own instance looks the user up', async () => {
    // The holder's lease lasts lookupTimeoutMs; waiting for it to lapse would outlast the waiting request's timeoutMs.
    const { emulator, members } = await fleet(2, { retries: 0, lookupTimeoutMs: 2_000, timeoutMs: 1_500 });
    const [holder, waiter] = members as [Instance, Instance];
    emulator.inject({ operation: 'retrieve', kind: 'hang', times: 1 });
    const held = holder.whoami('hung-there').expect(200).then((response) => response);
    await eventually(() => emulator.count('retrieve') === 1, 'the holder\'s retrieve to hang');
    expect((await waiter.whoami('hung-there').expect(200)).body.identity?.externalId).toBe('hung-there');
    expect(emulator.calls.map((call) => `${call.operation} ${String(call.status)}`)).toEqual(['retrieve hang', 'retrieve 404', 'create 201']);
    expect((await held).body.identity).toBeNull();
  });

  it('a stale identity is refreshed once per fleet, and the others take the answer from Redis', async () => {
    const { emulator, members } = await fleet(3, { cache: { freshMs: 300 } });
    emulator.seed({ externalId: 'stale' });
    for (const member of members) await member.whoami('stale').expect(200);
    expect(emulator.count('retrieve')).toBe(1);
    await sleep(320);
    for (let round = 0; round < 3; round++) {
      await Promise.all(members.map((member) => member.whoami('stale').expect(200)));
      await sleep(50);
    }
    await eventually(() => members.every((member) => member.middleware.resolver.cached('stale') !== undefined), 'all still cached');
    expect(emulator.count('retrieve')).toBe(2);
  });

  it('Redis killed: no failed request, registrations go on against orq, one report per instance; back without restart', async () => {
    const { emulator, redis, members } = await fleet(2);
    await members[0]?.whoami('before').expect(200);
    await redis.kill();
    const started = Date.now();
    const during = await Promise.all(members.map((member, index) => member.whoami(`during-${index}`).expect(200)));
    expect(Date.now() - started).toBeLessThan(2_100);
    expect(during.every((response) => typeof response.body.identity?.id === 'string')).toBe(true);
    for (const member of members) {
      await eventually(() => member.errors.length === 1, 'one report');
      expect(member.errors[0]).toBeInstanceOf(SharedStoreError);
    }

    await redis.restart();
    // Once the clients reconnect and the store's back-off ends, new answers go to Redis again.
    await eventually(() => members.every((member) => member.errors.length === 1), 'no more reports');
    let shared = false;
    for (let attempt = 0; attempt < 40 && !shared; attempt++) {
      await members[0]?.whoami(`after-${attempt}`).expect(200);
      shared = (await redis.command('KEYS', '*after-*')).includes('identity');
      if (!shared) await sleep(100);
    }
    expect(shared).toBe(true);
    expect(emulator.count('create')).toBeGreaterThanOrEqual(3);
  });

  it('a 429 seen by one instance pauses every instance until Retry-After', async () => {
    const { emulator, members } = await fleet(2, { retries: 0 });
    const [first, second] = members as [Instance, Instance];
    emulator.inject({ operation: 'retrieve', kind: 'status', status: 429, headers: { 'retry-after': '1' }, times: 1 });
    await first.whoami('limited').expect(200);
    expect(emulator.count()).toBe(1);

    await sleep(50);
    const response = await second.whoami('other').expect(200);
    expect(second.errors.map((error) => error.message)).toEqual([expect.stringMatching(/paused on every instance/)]);
    expect(response.body.identity).toBeNull();
    expect(emulator.count()).toBe(1);
    // A health endpoint on the paused instance sees the pause, not a closed circuit.
    const { circuit } = second.middleware.stats();
    expect(circuit.state).toBe('open');
    expect(circuit.retryInMs).toBeGreaterThan(0);
    await eventually(() => second.errors.some((error) => /paused on every instance/.test(error.message)), 'the pause to be reported');

    await sleep(1_000);
    expect((await second.whoami('other').expect(200)).body.identity?.externalId).toBe('other');
  });
});
