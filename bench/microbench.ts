// In-process cost of the hot path's parts, in ns per call (run by bench/profile.ts in its own process).
// Synchronous loops over 1 000 cached users with fake req objects: no HTTP, so the differences are not lost in noise.
// ALS.run here shows only its own cost; what an enabled AsyncLocalStorage adds to every async resource of a request
// (async_hooks init/promise hooks) only shows in the HTTP profile.
import { AsyncLocalStorage } from 'node:async_hooks';
import type { NextFunction, Request, Response } from 'express';
import { LRUCache } from 'lru-cache';
import { defaultGetUser, orqIdentity, type OrqIdentity } from '../src/index.js';
import { fakeIdentity, median, userIds } from './lib.js';

const users = userIds('micro', 1_000);
const identities = users.map((user, index) => fakeIdentity(user, index));
const requests = users.map((id) => ({ user: { id } }) as unknown as Request);
const res = {} as Response;
let nexts = 0;
const next = (() => {
  nexts++;
}) as NextFunction;

function fill(cache: LRUCache<string, OrqIdentity>): LRUCache<string, OrqIdentity> {
  users.forEach((user, index) => cache.set(user, identities[index] as OrqIdentity));
  return cache;
}

const map = new Map(users.map((user, index) => [user, identities[index] as OrqIdentity]));
const options = { apiKey: 'unused', serverURL: 'http://127.0.0.1:9', onError: () => undefined };
const withContext = orqIdentity({ ...options, cache: fill(new LRUCache({ max: 10_000, ttl: 600_000 })) });
const withoutContext = orqIdentity({ ...options, context: false, cache: fill(new LRUCache({ max: 10_000, ttl: 600_000 })) });
const lruTtl = fill(new LRUCache<string, OrqIdentity>({ max: 10_000, ttl: 600_000 }));
const lruNoTtl = fill(new LRUCache<string, OrqIdentity>({ max: 10_000 }));
const storage = new AsyncLocalStorage<OrqIdentity>();
const noop = (): void => undefined;
let sink: unknown;

const variants: Record<string, (index: number) => void> = {
  'Map floor middleware': (index) => {
    const req = requests[index] as Request;
    const user = (req as { user?: { id?: unknown } }).user;
    if (user !== undefined && typeof user.id === 'string') {
      const identity = map.get(user.id);
      if (identity !== undefined) req.orqIdentity = identity;
    }
    next();
  },
  'orqIdentity hit, context on': (index) => withContext(requests[index] as Request, res, next),
  'orqIdentity hit, context off': (index) => withoutContext(requests[index] as Request, res, next),
  'resolver.cached(id)': (index) => {
    sink = withContext.resolver.cached(users[index] as string);
  },
  'LRUCache.get, ttl (default cache)': (index) => {
    sink = lruTtl.get(users[index] as string);
  },
  'LRUCache.get, no ttl': (index) => {
    sink = lruNoTtl.get(users[index] as string);
  },
  'Map.get': (index) => {
    sink = map.get(users[index] as string);
  },
  'AsyncLocalStorage.run(store, noop)': (index) => {
    storage.run(identities[index] as OrqIdentity, noop);
  },
  'defaultGetUser(req)': (index) => {
    sink = defaultGetUser(requests[index] as Request);
  },
};

const iterations = Number(process.env.MICRO_ITERATIONS ?? 2_000_000);
const rounds = 5;
const results: Record<string, number[]> = Object.fromEntries(Object.keys(variants).map((name) => [name, []]));
for (let round = 0; round < rounds; round++) {
  for (const [name, fn] of Object.entries(variants)) {
    const started = process.hrtime.bigint();
    for (let i = 0; i < iterations; i++) fn(i % 1_000);
    const ns = Number(process.hrtime.bigint() - started) / iterations;
    if (round > 0) results[name]?.push(ns);
  }
}
if (sink === 'never') console.log(sink);
const report = Object.fromEntries(Object.entries(results).map(([name, values]) => [name, median(values)]));
process.send?.({ report, nexts, iterations, rounds: rounds - 1 }, () => process.exit(0));
